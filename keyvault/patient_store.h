// PatientStore: the keyvault's record of per-patient key material, so that
// the HSM holds a constant number of objects however many patients there
// are.
//
// A patient's key is never stored. What is stored, per patient and key
// generation, is a random 32-byte seed and the master key version it goes
// with; the patient key is derived inside the HSM from that master key and
// the seed (data_keys.h). The seeds are worthless without the HSM.
// Destroying a patient's seeds (Shred) therefore makes every key ever
// derived for that patient underivable: crypto-shredding. A tombstone keeps
// the patient from silently getting new keys afterwards.
//
// Storage: one SQLite file (the SQLCipher library, used here without
// encryption) in WAL mode with secure_delete, so deleted seeds are
// overwritten in the database file, and the WAL is checkpointed and
// truncated after a shred so no copy lingers there. Backups of this file
// keep seeds: a shred is complete only once backups older than it expire.
//
// Thread-safe (one connection, serialised).
#ifndef MEDVAULT_KEYVAULT_PATIENT_STORE_H_
#define MEDVAULT_KEYVAULT_PATIENT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"

struct sqlite3;

namespace medvault::keyvault {

struct PatientGeneration {
  uint32_t generation = 0;      // 1, 2, ... per patient
  uint32_t master_version = 0;  // master key the patient key derives from
  SecretData seed;              // 32 random bytes
};

class PatientStore {
 public:
  static constexpr size_t kSeedSize = 32;

  // Opens (creating if needed) the store at `path`.
  static absl::StatusOr<std::unique_ptr<PatientStore>> Open(const std::string& path);
  ~PatientStore();

  // The patient's newest generation; nullopt when it has none.
  // FAILED_PRECONDITION when the patient was shredded.
  absl::StatusOr<std::optional<PatientGeneration>> Latest(const std::string& patient_id);
  // One generation; NOT_FOUND when it does not exist, FAILED_PRECONDITION
  // when the patient was shredded.
  absl::StatusOr<PatientGeneration> Get(const std::string& patient_id, uint32_t generation);
  // Records a new generation (number = newest + 1) and returns it.
  // FAILED_PRECONDITION when the patient was shredded. `seed` must be
  // kSeedSize bytes.
  absl::StatusOr<PatientGeneration> Add(const std::string& patient_id, uint32_t master_version,
                                        SecretData seed);
  // Destroys every generation of the patient and leaves a tombstone.
  // Returns how many generations were destroyed. Idempotent.
  absl::StatusOr<uint32_t> Shred(const std::string& patient_id);

  struct Counts {
    uint64_t patients = 0;
    uint64_t shredded = 0;
  };
  absl::StatusOr<Counts> Count();

 private:
  explicit PatientStore(sqlite3* db) : db_(db) {}
  absl::Status CheckNotShredded(const std::string& patient_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `body` in one write transaction: committed if it returns a value,
  // rolled back if it returns an error.
  absl::StatusOr<uint32_t> InTransaction(absl::FunctionRef<absl::StatusOr<uint32_t>()> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_PATIENT_STORE_H_
