// The gateway's registry database: organisations, practitioners, patients,
// records, access requests, grants, emergency accesses, disputes, consent
// nonces and the audit events. SQLCipher keyed with the keyvault's database
// key "gateway" (a raw key, no KDF), WAL mode, foreign keys on, schema
// migrations applied at open.
//
// One connection, used under a mutex: every change and its audit event go
// in one transaction (Write), so a crash leaves either both or neither.
// Concurrent writers share commits (group commit): while one transaction
// commits, the writes that arrive queue, and the next transaction runs them
// one after another, each in its own savepoint, with one commit (one
// fsync) for all. A write that fails is rolled back to its savepoint alone;
// a commit that fails fails every write in it.
#ifndef MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_
#define MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_

#include <sqlite3.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"

namespace medvault::gateway {

class AuditAppender;

// SQLCipher page sizes of registry.db: new databases get 4 KiB pages, the
// file system's (SQLCipher 3's default of 1 KiB makes each page write a
// read-modify-write of a 4 KiB block and costs four HMACs where one would
// do: about twice the audit appends per second, see bench/audit-log);
// databases created with 1 KiB pages keep them. For SqliteOpenEncrypted.
inline constexpr int kRegistryPageSizes[] = {4096, 1024};

class RegistryDb {
 public:
  // Opens (creating it) <dir>/registry.db and migrates it to the current
  // schema. FAILED_PRECONDITION for a wrong key or a newer schema.
  static absl::StatusOr<std::unique_ptr<RegistryDb>> Open(const std::string& dir,
                                                          const SecretData& key);
  ~RegistryDb();
  RegistryDb(const RegistryDb&) = delete;
  RegistryDb& operator=(const RegistryDb&) = delete;

  // Runs `body` in an IMMEDIATE transaction, possibly shared with other
  // writers' bodies (each in its own savepoint); returns once that
  // transaction has committed. Any error of `body` rolls back what it did
  // and is returned; the others' changes are not affected.
  absl::Status Write(absl::FunctionRef<absl::Status(sqlite3*)> body);
  // Runs `body` with the connection, outside a transaction (reads).
  absl::Status Read(absl::FunctionRef<absl::Status(sqlite3*)> body);

  // The schema version after migrations.
  int64_t schema_version() const { return version_; }
  // Appends audit events on this database's connection with statements
  // prepared once. Only inside a Write body, on the connection it gets.
  AuditAppender& audit_appender();

  // Writes and the transactions that committed them so far.
  uint64_t writes() const { return writes_.load(); }
  uint64_t transactions() const { return transactions_.load(); }

  static constexpr char kOwner[] = "registry database";

 private:
  // A writer waiting for its body to be run and committed.
  struct PendingWrite {
    absl::FunctionRef<absl::Status(sqlite3*)> body;
    absl::Status status;
    bool done = false;
  };
  // Writes at most this many bodies per transaction.
  static constexpr size_t kMaxBatch = 256;

  RegistryDb(sqlite3* db, int64_t version);
  // Runs `batch` in one transaction on the connection; sets each status.
  void RunBatch(const std::vector<PendingWrite*>& batch);

  // The connection.
  absl::Mutex mu_;
  sqlite3* const db_;
  const int64_t version_;
  // Made on first use, under mu_; finalised before the connection closes.
  std::unique_ptr<AuditAppender> appender_;
  // The queue of writers and whether one of them is running a batch.
  absl::Mutex queue_mu_;
  absl::CondVar batch_done_;
  std::deque<PendingWrite*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool leading_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> transactions_{0};
};

// Whether `sql` (a SELECT with one parameter) finds a row for `key`.
absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key);
// The same with two parameters.
absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key,
                               absl::string_view second);
// Whether `organization_id` cares for the patient (patient_care).
absl::StatusOr<bool> PatientInCare(sqlite3* db, absl::string_view patient_id,
                                   absl::string_view organization_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_
