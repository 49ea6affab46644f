// KeyHierarchy: the symmetric keys of a deployment, rooted in the HSM.
//
//   master key v1..vN   AES-256 token objects ("medvault-master-v<N>", id
//                       "master/<N>"): sensitive, never extractable, usable
//                       only to derive and to encrypt/decrypt. Rotation adds
//                       version N+1; older versions stay to open old keys.
//   patient key         AES-256, derived inside the HSM from a master key
//                       and a per-patient random seed (patient_store.h):
//                           data = SHA-256("medvault/patient-key/v1" 0x00
//                                          || u16 len || patient_id || seed)
//                           key  = C_DeriveKey(master, CKM_AES_CBC_ENCRYPT_DATA,
//                                              iv = 0, data)
//                       A session object only, sensitive and not
//                       extractable, cached (bounded) and re-derived at will,
//                       so the token holds a constant number of objects
//                       whatever the number of patients. Destroying the
//                       seeds (Shred) makes it underivable.
//   data key            32 random bytes from the HSM, returned in plaintext
//                       once and wrapped with AES-256-GCM under the patient
//                       key, bound to its context (patient, record, purpose).
//   database key        32 random bytes per consumer ("gateway", "signer"),
//                       kept in <state_dir>/database-key-<name>.blob wrapped
//                       with AES-256-GCM directly under a master key.
//
// Data key blob, format version 1 (integers big-endian), 73 bytes:
//   0   4  magic "MVDK"
//   4   1  format version = 1
//   5   4  patient key generation
//   9   4  master key version of that generation
//   13  12 GCM IV (random)
//   25  32 encrypted data key
//   57  16 GCM tag
// The GCM additional data is bytes 0..25 followed by the context:
//   "medvault/data-key/v1" 0x00 || u16 len || patient_id
//                               || u16 len || record_id || u16 len || purpose
// so a blob opens only under the context it was made for, and no header
// byte can change unnoticed.
//
// Database key file, format version 1, 69 bytes: "MVDB", version 1,
// master version (u32), IV (12), encrypted key (32), tag (16); additional
// data = bytes 0..21 || "medvault/database-key/v1" 0x00 || name.
//
// Thread-safe.
#ifndef MEDVAULT_KEYVAULT_DATA_KEYS_H_
#define MEDVAULT_KEYVAULT_DATA_KEYS_H_

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"
#include "keyvault/patient_store.h"
#include "keyvault/pkcs11_token.h"

namespace medvault::keyvault {

struct DataKeyContext {
  std::string patient_id;
  std::string record_id;
  std::string purpose;
};

// INVALID_ARGUMENT naming the field unless every field is well-formed:
// patient_id and record_id 1..128, purpose 1..64 characters of
// [A-Za-z0-9._:-].
absl::Status ValidateContext(const DataKeyContext& context);
// The same rule for a patient id alone.
absl::Status ValidatePatientId(absl::string_view patient_id);

struct DataKey {
  SecretData plaintext;  // empty after a rewrap
  std::string blob;
  uint32_t master_version = 0;
};

class KeyHierarchy {
 public:
  static constexpr size_t kBlobSize = 73;
  static constexpr size_t kDatabaseKeyFileSize = 69;

  struct Options {
    std::string state_dir;
    // Derived patient keys kept in the HSM session at most.
    size_t patient_key_cache = 1024;
  };

  // Opens the patient store in `options.state_dir` and finds the master
  // keys (there may be none yet). `token` must outlive the hierarchy.
  static absl::StatusOr<std::unique_ptr<KeyHierarchy>> Open(Pkcs11Token& token,
                                                            const Options& options);
  ~KeyHierarchy();

  // Creates master key version 1 when no master key exists, and the
  // database key of each of `database_key_names` that has none. Returns
  // what it created ("medvault-master-v1", "database-key-gateway", ...).
  absl::StatusOr<std::vector<std::string>> InitializeMissing(
      const std::vector<std::string>& database_key_names);
  // Creates master key version N+1 and returns N+1.
  absl::StatusOr<uint32_t> RotateMaster();
  // 0 when no master key exists.
  uint32_t latest_master_version() const;

  absl::StatusOr<DataKey> Generate(const DataKeyContext& context);
  absl::StatusOr<SecretData> Decrypt(absl::string_view blob, const DataKeyContext& context);
  absl::StatusOr<DataKey> Rewrap(absl::string_view blob, const DataKeyContext& context);
  // Crypto-shredding; returns the number of patient key generations destroyed.
  absl::StatusOr<uint32_t> Shred(const std::string& patient_id);

  // NOT_FOUND when the key file does not exist (InitializeMissing makes it).
  absl::StatusOr<SecretData> DatabaseKey(const std::string& name);

  PatientStore& store() { return *store_; }

 private:
  struct PatientKey;
  KeyHierarchy(Pkcs11Token& token, const Options& options, std::unique_ptr<PatientStore> store);

  absl::Status LoadMasterKeys();
  absl::StatusOr<CK_OBJECT_HANDLE> MasterKey(uint32_t version);
  absl::Status CreateMasterKey(uint32_t version);
  absl::StatusOr<std::shared_ptr<PatientKey>> PatientKeyFor(const std::string& patient_id,
                                                            const PatientGeneration& generation);
  absl::StatusOr<PatientGeneration> GenerationForNewKeys(const std::string& patient_id);
  absl::StatusOr<std::string> Wrap(const SecretData& key, const std::string& patient_id,
                                   const PatientGeneration& generation,
                                   const DataKeyContext& context);
  void Forget(const std::string& patient_id);
  absl::StatusOr<SecretData> Random(size_t size);

  Pkcs11Token& token_;
  const Options options_;
  std::unique_ptr<PatientStore> store_;

  mutable absl::Mutex mu_;
  // Master key handles by version, found again after a reconnect.
  std::map<uint32_t, CK_OBJECT_HANDLE> masters_ ABSL_GUARDED_BY(mu_);
  int masters_reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  // Least recently used first.
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  struct CacheEntry {
    std::shared_ptr<PatientKey> key;
    std::list<std::string>::iterator lru;
  };
  // Key: patient_id + '\0' + generation.
  absl::flat_hash_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_DATA_KEYS_H_
