#include "keyvault/patient_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"

namespace medvault::keyvault {
namespace {

// Schema version 1. Generations are never updated, only added or deleted.
constexpr char kSchema[] = R"sql(
  CREATE TABLE IF NOT EXISTS patient_key_generations (
    patient_id     TEXT    NOT NULL,
    generation     INTEGER NOT NULL,
    master_version INTEGER NOT NULL,
    seed           BLOB    NOT NULL,
    created_at     INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    PRIMARY KEY (patient_id, generation)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS shredded_patients (
    patient_id  TEXT    PRIMARY KEY,
    shredded_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
  ) WITHOUT ROWID;
  PRAGMA user_version = 1;
)sql";

constexpr char kOwner[] = "patient store";

PatientGeneration FromRow(SqliteStatement& row) {
  PatientGeneration g;
  g.generation = static_cast<uint32_t>(row.Int(0));
  g.master_version = static_cast<uint32_t>(row.Int(1));
  g.seed = row.SecretBlob(2);
  return g;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PatientStore>> PatientStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::FailedPreconditionError(
        absl::StrCat("cannot open patient store ", path, ": ", sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<PatientStore> store(new PatientStore(db));
  // Another process still holding the file (a keyvault being replaced)
  // delays rather than fails a write.
  sqlite3_busy_timeout(db, 5000);
  // Deleted seeds are overwritten, not merely unlinked from the b-tree;
  // every commit reaches the disk before it is acknowledged.
  RETURN_IF_ERROR(SqliteExec(db, kOwner,
                             "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                             "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;"));
  RETURN_IF_ERROR(SqliteExec(db, kOwner, kSchema));
  return store;
}

PatientStore::~PatientStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status PatientStore::CheckNotShredded(const std::string& patient_id) {
  SqliteStatement q(db_, kOwner, "SELECT 1 FROM shredded_patients WHERE patient_id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  ASSIGN_OR_RETURN(bool shredded, q.Step());
  if (shredded) {
    return absl::FailedPreconditionError(
        absl::StrCat("the keys of patient ", patient_id, " were destroyed (crypto-shredded)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<PatientGeneration>> PatientStore::Latest(
    const std::string& patient_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckNotShredded(patient_id));
  SqliteStatement q(db_, kOwner,
                    "SELECT generation, master_version, seed FROM patient_key_generations "
                    "WHERE patient_id = ? ORDER BY generation DESC LIMIT 1");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return std::optional<PatientGeneration>();
  return std::optional<PatientGeneration>(FromRow(q));
}

absl::StatusOr<PatientGeneration> PatientStore::Get(const std::string& patient_id,
                                                    uint32_t generation) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckNotShredded(patient_id));
  SqliteStatement q(db_, kOwner,
                    "SELECT generation, master_version, seed FROM patient_key_generations "
                    "WHERE patient_id = ? AND generation = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id).Bind(2, static_cast<int64_t>(generation));
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) {
    return absl::NotFoundError(
        absl::StrCat("patient ", patient_id, " has no key generation ", generation));
  }
  return FromRow(q);
}

absl::StatusOr<uint32_t> PatientStore::InTransaction(
    absl::FunctionRef<absl::StatusOr<uint32_t>()> body) {
  RETURN_IF_ERROR(SqliteExec(db_, kOwner, "BEGIN IMMEDIATE"));
  absl::StatusOr<uint32_t> result = body();
  if (!result.ok()) {
    SqliteExec(db_, kOwner, "ROLLBACK").IgnoreError();
    return result.status();
  }
  RETURN_IF_ERROR(SqliteExec(db_, kOwner, "COMMIT"));
  return result;
}

absl::StatusOr<PatientGeneration> PatientStore::Add(const std::string& patient_id,
                                                    uint32_t master_version, SecretData seed) {
  if (seed.size() != kSeedSize) return absl::InternalError("patient seed must be 32 bytes");
  absl::MutexLock lock(&mu_);
  absl::StatusOr<uint32_t> generation = InTransaction([&]() -> absl::StatusOr<uint32_t> {
    RETURN_IF_ERROR(CheckNotShredded(patient_id));
    SqliteStatement next(db_, kOwner,
                         "SELECT COALESCE(MAX(generation), 0) + 1 FROM patient_key_generations "
                         "WHERE patient_id = ?");
    RETURN_IF_ERROR(next.status());
    next.BindText(1, patient_id);
    RETURN_IF_ERROR(next.Step().status());
    uint32_t generation = static_cast<uint32_t>(next.Int(0));
    SqliteStatement insert(db_, kOwner,
                           "INSERT INTO patient_key_generations (patient_id, generation, "
                           "master_version, seed) VALUES (?, ?, ?, ?)");
    RETURN_IF_ERROR(insert.status());
    insert.BindText(1, patient_id)
        .Bind(2, static_cast<int64_t>(generation))
        .Bind(3, static_cast<int64_t>(master_version))
        .BindBlob(4, seed.view());
    RETURN_IF_ERROR(insert.Step().status());
    return generation;
  });
  if (!generation.ok()) return generation.status();
  PatientGeneration g;
  g.generation = *generation;
  g.master_version = master_version;
  g.seed = std::move(seed);
  return g;
}

absl::StatusOr<uint32_t> PatientStore::Shred(const std::string& patient_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<uint32_t> destroyed = InTransaction([&]() -> absl::StatusOr<uint32_t> {
    SqliteStatement del(db_, kOwner, "DELETE FROM patient_key_generations WHERE patient_id = ?");
    RETURN_IF_ERROR(del.status());
    del.BindText(1, patient_id);
    RETURN_IF_ERROR(del.Step().status());
    uint32_t destroyed = static_cast<uint32_t>(sqlite3_changes(db_));
    SqliteStatement tomb(db_, kOwner,
                         "INSERT OR IGNORE INTO shredded_patients (patient_id) VALUES (?)");
    RETURN_IF_ERROR(tomb.status());
    tomb.BindText(1, patient_id);
    RETURN_IF_ERROR(tomb.Step().status());
    return destroyed;
  });
  if (!destroyed.ok()) return destroyed.status();
  // Copies of the deleted pages may still sit in the WAL: fold it into the
  // (securely overwritten) database file and empty it.
  RETURN_IF_ERROR(SqliteExec(db_, kOwner, "PRAGMA wal_checkpoint(TRUNCATE)"));
  return *destroyed;
}

absl::StatusOr<PatientStore::Counts> PatientStore::Count() {
  absl::MutexLock lock(&mu_);
  Counts counts;
  SqliteStatement patients(db_, kOwner,
                           "SELECT COUNT(DISTINCT patient_id) FROM patient_key_generations");
  RETURN_IF_ERROR(patients.status());
  RETURN_IF_ERROR(patients.Step().status());
  counts.patients = static_cast<uint64_t>(patients.Int(0));
  SqliteStatement shredded(db_, kOwner, "SELECT COUNT(*) FROM shredded_patients");
  RETURN_IF_ERROR(shredded.status());
  RETURN_IF_ERROR(shredded.Step().status());
  counts.shredded = static_cast<uint64_t>(shredded.Int(0));
  return counts;
}

}  // namespace medvault::keyvault
