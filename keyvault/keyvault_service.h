// The medvault.internal.v1.KeyVault service: key custody over a logged-in
// PKCS#11 token. Which uid may call which method is decided before any
// handler runs (method_guard.h); the handlers validate sizes and fields
// first, then act. UnwrapDatabaseKey additionally requires the caller to
// be the user of the role whose key it asks for.
#ifndef MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
#define MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/method_guard.h"
#include "daemon/common/peer_registry.h"
#include "keyvault/data_keys.h"
#include "keyvault/pkcs11_token.h"
#include "keyvault/signing_keys.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::keyvault {

// The roles that own a database key, and their users' uids.
using DatabaseKeyOwners = absl::flat_hash_map<std::string, uid_t>;

class KeyVaultService : public Guardable<internal::v1::KeyVault::Service> {
 public:
  // Everything must outlive the service. Call InitializeMissing() or
  // LoadSigningKeys() before serving.
  // `hold_regulator_key` (development only, keyvault.hold_regulator_key):
  // the regulator's chain key is created and used too.
  KeyVaultService(Pkcs11Token* token, KeyHierarchy* keys, DatabaseKeyOwners owners,
                  bool hold_regulator_key = false);

  // Loads the chain and log keys (and the regulator key where held) from the
  // token; a key that cannot be loaded is logged and its methods answer
  // with the reason.
  void LoadSigningKeys();

  // The credentials of the internal server's connections; set once before
  // the server starts.
  void set_peers(const PeerRegistry* peers) { peers_ = peers; }

  // Creates whatever key is missing (InitializeKeys and start-up with
  // initialize_missing_keys); returns what it created.
  absl::StatusOr<std::vector<std::string>> InitializeMissing();

  grpc::Status GetTokenInfo(grpc::ServerContext*, const internal::v1::GetTokenInfoRequest*,
                            internal::v1::GetTokenInfoResponse*) override;
  grpc::Status ListKeys(grpc::ServerContext*, const internal::v1::ListKeysRequest*,
                        internal::v1::ListKeysResponse*) override;
  grpc::Status InitializeKeys(grpc::ServerContext*, const internal::v1::InitializeKeysRequest*,
                              internal::v1::InitializeKeysResponse*) override;
  grpc::Status RotateMasterKey(grpc::ServerContext*, const internal::v1::RotateMasterKeyRequest*,
                               internal::v1::RotateMasterKeyResponse*) override;
  grpc::Status GenerateDataKey(grpc::ServerContext*, const internal::v1::GenerateDataKeyRequest*,
                               internal::v1::GenerateDataKeyResponse*) override;
  grpc::Status Decrypt(grpc::ServerContext*, const internal::v1::DecryptRequest*,
                       internal::v1::DecryptResponse*) override;
  grpc::Status RewrapDataKey(grpc::ServerContext*, const internal::v1::RewrapDataKeyRequest*,
                             internal::v1::RewrapDataKeyResponse*) override;
  grpc::Status ShredPatient(grpc::ServerContext*, const internal::v1::ShredPatientRequest*,
                            internal::v1::ShredPatientResponse*) override;
  grpc::Status SignDigest(grpc::ServerContext*, const internal::v1::SignDigestRequest*,
                          internal::v1::SignDigestResponse*) override;
  grpc::Status GetChainPublicKey(grpc::ServerContext*,
                                 const internal::v1::GetChainPublicKeyRequest*,
                                 internal::v1::GetChainPublicKeyResponse*) override;
  grpc::Status SignLogMessage(grpc::ServerContext*, const internal::v1::SignLogMessageRequest*,
                              internal::v1::SignLogMessageResponse*) override;
  grpc::Status GetLogPublicKey(grpc::ServerContext*, const internal::v1::GetLogPublicKeyRequest*,
                               internal::v1::GetLogPublicKeyResponse*) override;
  grpc::Status UnwrapDatabaseKey(grpc::ServerContext*,
                                 const internal::v1::UnwrapDatabaseKeyRequest*,
                                 internal::v1::UnwrapDatabaseKeyResponse*) override;

 private:
  absl::StatusOr<const ChainKey*> Chain(internal::v1::ChainKeyName name);
  absl::StatusOr<const LogKey*> Log();

  Pkcs11Token* const token_;
  KeyHierarchy* const keys_;
  const DatabaseKeyOwners owners_;
  const PeerRegistry* peers_ = nullptr;
  const bool hold_regulator_key_;

  absl::Mutex mu_;
  // A key, or why it could not be loaded (not initialised, wrong curve,
  // extractable, ...): the reason is what callers are told.
  absl::StatusOr<std::unique_ptr<ChainKey>> chain_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<std::unique_ptr<ChainKey>> regulator_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<std::unique_ptr<LogKey>> log_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_KEYVAULT_SERVICE_H_
