#include "daemon/common/roles.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "medvault/internal/v1/keyvault.pb.h"
#include "medvault/internal/v1/policy.pb.h"
#include "medvault/internal/v1/signer.pb.h"
#include "medvault/internal/v1/storage.pb.h"

namespace medvault {

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kKeyvault:
      return "keyvault";
    case Role::kPolicy:
      return "policy";
    case Role::kStorage:
      return "storage";
    case Role::kSigner:
      return "signer";
    case Role::kGateway:
      return "gateway";
  }
  return "unknown";
}

std::optional<Role> RoleFromName(absl::string_view name) {
  for (Role role : kStartOrder) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

std::string BinaryName(Role role) { return absl::StrCat("medvault-", RoleName(role)); }

std::string SocketPath(const config::v1::Config& config, Role role) {
  return absl::StrCat(config.runtime_dir(), "/", RoleName(role), ".sock");
}

const config::v1::Process& ProcessConfig(const config::v1::Config& config, Role role) {
  switch (role) {
    case Role::kKeyvault:
      return config.keyvault().process();
    case Role::kPolicy:
      return config.policy().process();
    case Role::kStorage:
      return config.storage().process();
    case Role::kSigner:
      return config.signer().process();
    case Role::kGateway:
      return config.gateway().process();
  }
  return config::v1::Process::default_instance();
}

const google::protobuf::ServiceDescriptor* InternalService(Role role) {
  // Naming a message of each file keeps its generated descriptor linked in.
  switch (role) {
    case Role::kKeyvault:
      return internal::v1::GetTokenInfoRequest::descriptor()->file()->FindServiceByName("KeyVault");
    case Role::kPolicy:
      return internal::v1::GetPolicyInfoRequest::descriptor()->file()->FindServiceByName("Policy");
    case Role::kStorage:
      return internal::v1::GetStoreInfoRequest::descriptor()->file()->FindServiceByName("Storage");
    case Role::kSigner:
      return internal::v1::GetChainInfoRequest::descriptor()->file()->FindServiceByName("Signer");
    case Role::kGateway:
      return nullptr;
  }
  return nullptr;
}

}  // namespace medvault
