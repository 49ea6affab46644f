// The gateway's clients of the internal services (policy, keyvault,
// storage, signer), over their Unix sockets, with one deadline rule and
// one way of reporting a backend's failure to a public caller.
#ifndef MEDVAULT_DAEMON_GATEWAY_BACKENDS_H_
#define MEDVAULT_DAEMON_GATEWAY_BACKENDS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "medvault/config/v1/config.pb.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/internal/v1/policy.grpc.pb.h"
#include "medvault/internal/v1/signer.grpc.pb.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::gateway {

class Backends {
 public:
  // Channels connect lazily; nothing is reached here.
  explicit Backends(const config::v1::Config& config);

  internal::v1::Policy::Stub& policy() { return *policy_; }
  internal::v1::KeyVault::Stub& keyvault() { return *keyvault_; }
  internal::v1::Storage::Stub& storage() { return *storage_; }
  internal::v1::Signer::Stub& signer() { return *signer_; }

  // Sets the per-call deadline on `context`.
  void SetDeadline(grpc::ClientContext& context) const;
  // The anchoring chain's id (the EIP-712 domain of patients' signatures),
  // asked of the signer on first use and kept once known; 0 while the
  // signer cannot say (callers answer UNAVAILABLE then).
  uint64_t ChainId();

 private:
  std::unique_ptr<internal::v1::Policy::Stub> policy_;
  std::unique_ptr<internal::v1::KeyVault::Stub> keyvault_;
  std::unique_ptr<internal::v1::Storage::Stub> storage_;
  std::unique_ptr<internal::v1::Signer::Stub> signer_;
  absl::Duration timeout_;
  std::atomic<uint64_t> chain_id_{0};
};

// A failed call to `backend` ("storage") as the public caller should see
// it: the backend being down or slow is UNAVAILABLE ("storage is
// unavailable; retry later"), anything else INTERNAL with the backend's
// message logged but not returned (it may name internal paths).
absl::Status BackendError(absl::string_view backend, absl::string_view method,
                          const grpc::Status& status);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_BACKENDS_H_
