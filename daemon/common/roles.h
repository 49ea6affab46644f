// The five service processes of the fleet, in start-up order, and the facts
// derived from a role: its name, binary, socket and internal service.
#ifndef MEDVAULT_DAEMON_COMMON_ROLES_H_
#define MEDVAULT_DAEMON_COMMON_ROLES_H_

#include <array>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "medvault/config/v1/config.pb.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace medvault {

enum class Role { kKeyvault, kPolicy, kStorage, kSigner, kGateway };

// Dependency order: medvaultd starts them in this order and stops them in
// the reverse order.
inline constexpr std::array<Role, 5> kStartOrder = {Role::kKeyvault, Role::kPolicy, Role::kStorage,
                                                    Role::kSigner, Role::kGateway};

// "keyvault", "policy", ...
absl::string_view RoleName(Role role);
std::optional<Role> RoleFromName(absl::string_view name);
// "medvault-keyvault", ...
std::string BinaryName(Role role);
// <runtime_dir>/<role>.sock
std::string SocketPath(const config::v1::Config& config, Role role);
// The process section of the role's configuration.
const config::v1::Process& ProcessConfig(const config::v1::Config& config, Role role);
// The internal service the role serves on its socket; nullptr for the
// gateway, whose internal socket serves only the health service for now.
const google::protobuf::ServiceDescriptor* InternalService(Role role);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_ROLES_H_
