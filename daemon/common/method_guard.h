// The per-method caller allowlist of an internal service, enforced in one
// place for every method.
//
// gRPC C++ 1.51 server interceptors can observe a call but cannot refuse
// it, so the check sits one level lower: GuardedService re-registers each
// method of the real service behind a GuardHandler that looks up the
// caller's uid (PeerRegistry) and either runs the real handler or answers
// PERMISSION_DENIED without running it. The decision is made before the
// request is even deserialised (for methods with a request message) and
// again when the handler would run (for streaming requests). Denials are
// logged with the caller's uid and pid and the method.
#ifndef MEDVAULT_DAEMON_COMMON_METHOD_GUARD_H_
#define MEDVAULT_DAEMON_COMMON_METHOD_GUARD_H_

#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/method_handler.h>
#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "daemon/common/peer_registry.h"
#include "medvault/config/v1/config.pb.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace medvault {

// Method name ("GetTokenInfo") -> uids allowed to call it.
class MethodAllowlist {
 public:
  // Resolves the user names of `process.allow`; NOT_FOUND for an unknown
  // user, INVALID_ARGUMENT for a method `service` does not have.
  static absl::StatusOr<MethodAllowlist> FromConfig(
      const config::v1::Process& process, const google::protobuf::ServiceDescriptor& service);

  void Allow(const std::string& method, uid_t uid) { allowed_[method].insert(uid); }
  bool IsAllowed(const std::string& method, uid_t uid) const;

 private:
  absl::flat_hash_map<std::string, absl::flat_hash_set<uid_t>> allowed_;
};

// Implemented by the real service classes so their handlers can be wrapped;
// derive from Guardable<GeneratedService> below.
class GuardableService {
 public:
  virtual ~GuardableService() = default;
  virtual grpc::internal::MethodHandler* Handler(int index) = 0;
};

template <typename GeneratedService>
class Guardable : public GeneratedService, public GuardableService {
 public:
  grpc::internal::MethodHandler* Handler(int index) override { return this->GetHandler(index); }
};

// A grpc::Service that serves the methods of `inner` (described by
// `descriptor`, in declaration order) behind the allowlist. Register this
// object with the server, never `inner` itself. `inner` and `peers` must
// outlive it.
class GuardedService : public grpc::Service {
 public:
  GuardedService(GuardableService* inner, const google::protobuf::ServiceDescriptor& descriptor,
                 MethodAllowlist allowlist, const PeerRegistry* peers);

 private:
  std::deque<std::string> paths_;  // RpcServiceMethod keeps the char pointers
  std::shared_ptr<const MethodAllowlist> allowlist_;
};

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_METHOD_GUARD_H_
