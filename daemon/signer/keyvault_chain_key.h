// KeyvaultChainKey: a chain key held by medvault-keyvault (the operator's,
// or in development the regulator's), reached over its Unix socket
// (GetChainPublicKey, SignDigest). The
// keyvault checks the caller against its allowlist and verifies each
// signature before it answers; this side re-checks the shapes it is sent.
//
// Thread-safe. The address is fetched once and kept.
#ifndef MEDVAULT_DAEMON_SIGNER_KEYVAULT_CHAIN_KEY_H_
#define MEDVAULT_DAEMON_SIGNER_KEYVAULT_CHAIN_KEY_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/common/secret.h"
#include "daemon/signer/chain_key.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::signer {

class KeyvaultChainKey : public ChainKey {
 public:
  // `socket_path`: the keyvault's socket. Connects lazily. `timeout` bounds
  // each call; an unreachable keyvault is UNAVAILABLE.
  KeyvaultChainKey(const std::string& socket_path, absl::Duration timeout,
                   internal::v1::ChainKeyName name = internal::v1::CHAIN_KEY_OPERATOR);

  absl::StatusOr<std::string> Address() override;
  absl::StatusOr<EthSignature> SignDigest(absl::string_view digest) override;

  // UnwrapDatabaseKey("signer"): the outbox database's 32-byte key. Waits
  // for the keyvault (it may still be starting) until `wait` has passed;
  // then UNAVAILABLE. The key is wiped from the reply; errors never hold it.
  absl::StatusOr<SecretData> DatabaseKey(absl::Duration wait);

 private:
  // Constant after construction.
  const std::unique_ptr<internal::v1::KeyVault::Stub> stub_;
  const absl::Duration timeout_;
  const internal::v1::ChainKeyName name_;

  absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);  // empty until fetched
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_KEYVAULT_CHAIN_KEY_H_
