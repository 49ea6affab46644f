#include "daemon/gateway/registry_db.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"

namespace medvault::gateway {
namespace {

// migrations[i] brings the schema from version i to i + 1. Append only:
// a released step is never edited. Times are unix milliseconds; sets are
// comma-separated policy names (validated before they are written).
constexpr const char* kMigrations[] = {
    // 1: the registry, records, access, disputes and the audit events.
    R"sql(
CREATE TABLE organizations (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  display_name TEXT NOT NULL,
  registered_at INTEGER NOT NULL
);
CREATE TABLE practitioners (
  id TEXT PRIMARY KEY,
  hospital_id TEXT NOT NULL REFERENCES organizations(id),
  licence_number TEXT NOT NULL UNIQUE,
  licence_key BLOB NOT NULL,
  specialties TEXT NOT NULL,
  registered_at INTEGER NOT NULL
);
CREATE TABLE patients (
  id TEXT PRIMARY KEY,
  address BLOB NOT NULL,
  registered_at INTEGER NOT NULL
);
CREATE TABLE patient_care (
  patient_id TEXT NOT NULL REFERENCES patients(id),
  organization_id TEXT NOT NULL REFERENCES organizations(id),
  since INTEGER NOT NULL,
  PRIMARY KEY (patient_id, organization_id)
);
CREATE TABLE records (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  category TEXT NOT NULL,
  content_type TEXT NOT NULL,
  fhir_resource_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  cid TEXT NOT NULL,
  wrapped_key BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  author_organization_id TEXT NOT NULL REFERENCES organizations(id),
  author_practitioner_id TEXT NOT NULL,
  amends_record_id TEXT REFERENCES records(id),
  amendment_reason TEXT NOT NULL,
  dispute_id TEXT NOT NULL
);
CREATE INDEX records_by_patient ON records(patient_id, created_at);
CREATE INDEX records_by_original ON records(amends_record_id);
CREATE TABLE access_requests (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  organization_id TEXT NOT NULL,
  scope BLOB NOT NULL,
  purpose TEXT NOT NULL,
  not_after INTEGER NOT NULL,
  reason TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  decided_at INTEGER NOT NULL,
  grant_id TEXT NOT NULL
);
CREATE INDEX access_requests_by_patient ON access_requests(patient_id, created_at);
CREATE INDEX access_requests_by_practitioner ON access_requests(practitioner_id, created_at);
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  grantee_id TEXT NOT NULL,
  grant_proto BLOB NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX grants_by_patient ON grants(patient_id, created_at);
CREATE INDEX grants_by_grantee ON grants(grantee_id, patient_id);
CREATE TABLE consent_nonces (
  patient_id TEXT NOT NULL REFERENCES patients(id),
  nonce INTEGER NOT NULL,
  used_at INTEGER NOT NULL,
  PRIMARY KEY (patient_id, nonce)
);
CREATE TABLE emergency_accesses (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  practitioner_id TEXT NOT NULL REFERENCES practitioners(id),
  organization_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  decision_id TEXT NOT NULL
);
CREATE TABLE disputes (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  record_id TEXT NOT NULL REFERENCES records(id),
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  state_entered_at INTEGER NOT NULL,
  amendment_id TEXT NOT NULL,
  obligations BLOB NOT NULL
);
CREATE INDEX disputes_by_patient ON disputes(patient_id, created_at);
CREATE TABLE dispute_events (
  dispute_id TEXT NOT NULL REFERENCES disputes(id),
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (dispute_id, seq)
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  action TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  event BLOB NOT NULL
);
CREATE INDEX audit_events_by_patient ON audit_events(patient_id, seq);
)sql",
    // 2: the audit log's Merkle tree (RFC 6962) over audit_events, leaf
    // index = seq - 1: the hash of every perfect subtree, (level, idx)
    // covering leaves [idx * 2^level, (idx + 1) * 2^level); the signed tree
    // heads; the heads handed to the signer for anchoring on chain; and the
    // log's name (one row, set with the first signed head: its id on chain).
    R"sql(
CREATE TABLE audit_tree (
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE audit_tree_heads (
  tree_size INTEGER PRIMARY KEY,
  timestamp_ms INTEGER NOT NULL,
  root_hash BLOB NOT NULL,
  signature BLOB NOT NULL
);
CREATE TABLE audit_log_name (
  log_name TEXT PRIMARY KEY
);
CREATE TABLE audit_anchor_requests (
  tree_size INTEGER PRIMARY KEY REFERENCES audit_tree_heads(tree_size),
  outbox_id INTEGER NOT NULL,
  requested_at INTEGER NOT NULL
);
)sql",
    // 3: what research statistics count. The patient's year of birth (0:
    // not given) and region (ISO 3166-2, '': not given), the ICD-10 codes a
    // record is about, and each organisation's privacy budget spends
    // (epsilon in millionths, delta in units of 1e-15, so that sums are
    // exact).
    R"sql(
ALTER TABLE patients ADD COLUMN birth_year INTEGER NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN region TEXT NOT NULL DEFAULT '';
CREATE TABLE record_diagnoses (
  record_id TEXT NOT NULL REFERENCES records(id),
  code TEXT NOT NULL,
  PRIMARY KEY (record_id, code)
) WITHOUT ROWID;
CREATE TABLE privacy_spends (
  seq INTEGER PRIMARY KEY,
  organization_id TEXT NOT NULL,
  time INTEGER NOT NULL,
  epsilon_micros INTEGER NOT NULL,
  delta_femtos INTEGER NOT NULL,
  decision_id TEXT NOT NULL
);
CREATE INDEX privacy_spends_by_organization ON privacy_spends(organization_id, time);
)sql",
    // 4: live vitals. The devices enrolled to patients (stored_through:
    // the highest sample sequence number durably stored; revoked_at 0
    // while active), and which samples each stored segment (a VITALS
    // record) holds.
    R"sql(
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL REFERENCES patients(id),
  status TEXT NOT NULL,
  enrolled_by_organization_id TEXT NOT NULL REFERENCES organizations(id),
  enrolled_by_practitioner_id TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL,
  stored_through INTEGER NOT NULL
);
CREATE INDEX devices_by_patient ON devices(patient_id);
CREATE TABLE vitals_segments (
  record_id TEXT PRIMARY KEY REFERENCES records(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  first_sequence INTEGER NOT NULL,
  last_sequence INTEGER NOT NULL
);
CREATE INDEX vitals_segments_by_device ON vitals_segments(device_id, first_sequence);
)sql",
};

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryDb>> RegistryDb::Open(const std::string& dir,
                                                             const SecretData& key) {
  ASSIGN_OR_RETURN(sqlite3 * db,
                   SqliteOpenEncrypted(dir + "/registry.db", key, kOwner, kRegistryPageSizes));
  auto close_on_error = [db](absl::Status status) {
    sqlite3_close(db);
    return status;
  };
  // WAL: readers do not block the writer; synchronous=FULL: a committed
  // change (and its audit event) survives a power cut.
  // A 32 MiB page cache: the audit log's indexes grow with every call.
  if (absl::Status s = SqliteExec(db, kOwner,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                  "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
                                  "PRAGMA cache_size=-32768;");
      !s.ok()) {
    return close_on_error(s);
  }
  absl::StatusOr<int64_t> version = SqliteMigrate(db, kOwner, kMigrations);
  if (!version.ok()) return close_on_error(version.status());
  return std::unique_ptr<RegistryDb>(new RegistryDb(db, *version));
}

RegistryDb::RegistryDb(sqlite3* db, int64_t version) : db_(db), version_(version) {}

RegistryDb::~RegistryDb() {
  appender_.reset();  // its statements, before the connection
  sqlite3_close(db_);
}

AuditAppender& RegistryDb::audit_appender() {
  if (appender_ == nullptr) appender_ = std::make_unique<AuditAppender>(db_);
  return *appender_;
}

absl::Status RegistryDb::Write(absl::FunctionRef<absl::Status(sqlite3*)> body) {
  PendingWrite me{body, absl::OkStatus(), false};
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(&me);
  while (!me.done) {
    if (leading_) {
      batch_done_.Wait(&queue_mu_);
      continue;
    }
    // Lead: run what has queued (oldest first, this write among them or
    // still behind), then wake everyone whose write is done.
    leading_ = true;
    std::vector<PendingWrite*> batch;
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    queue_mu_.Unlock();
    RunBatch(batch);
    queue_mu_.Lock();
    for (PendingWrite* w : batch) w->done = true;
    leading_ = false;
    batch_done_.SignalAll();
  }
  return me.status;
}

void RegistryDb::RunBatch(const std::vector<PendingWrite*>& batch) {
  absl::MutexLock lock(&mu_);
  writes_ += batch.size();
  ++transactions_;
  if (batch.size() == 1) {
    batch[0]->status = SqliteTransaction(db_, kOwner, [&] { return batch[0]->body(db_); });
    return;
  }
  auto fail_all = [&](const absl::Status& status) {
    SqliteExec(db_, kOwner, "ROLLBACK").IgnoreError();
    for (PendingWrite* w : batch) {
      if (w->status.ok()) w->status = status;
    }
  };
  if (absl::Status begun = SqliteExec(db_, kOwner, "BEGIN IMMEDIATE"); !begun.ok()) {
    return fail_all(begun);
  }
  for (PendingWrite* w : batch) {
    if (absl::Status s = SqliteExec(db_, kOwner, "SAVEPOINT write"); !s.ok()) return fail_all(s);
    w->status = w->body(db_);
    absl::Status undone =
        w->status.ok() ? absl::OkStatus() : SqliteExec(db_, kOwner, "ROLLBACK TO write");
    absl::Status released = SqliteExec(db_, kOwner, "RELEASE write");
    if (!undone.ok()) return fail_all(undone);
    if (!released.ok()) return fail_all(released);
  }
  if (absl::Status committed = SqliteExec(db_, kOwner, "COMMIT"); !committed.ok()) {
    fail_all(committed);
  }
}

absl::Status RegistryDb::Read(absl::FunctionRef<absl::Status(sqlite3*)> body) {
  absl::MutexLock lock(&mu_);
  return body(db_);
}

absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key) {
  SqliteStatement q(db, RegistryDb::kOwner, sql);
  RETURN_IF_ERROR(q.status());
  q.BindText(1, key);
  return q.Step();
}

absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key,
                               absl::string_view second) {
  SqliteStatement q(db, RegistryDb::kOwner, sql);
  RETURN_IF_ERROR(q.status());
  q.BindText(1, key).BindText(2, second);
  return q.Step();
}

absl::StatusOr<bool> PatientInCare(sqlite3* db, absl::string_view patient_id,
                                   absl::string_view organization_id) {
  return RowExists(db, "SELECT 1 FROM patient_care WHERE patient_id = ? AND organization_id = ?",
                   patient_id, organization_id);
}

}  // namespace medvault::gateway
