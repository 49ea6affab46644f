#include "daemon/signer/event_index.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"

namespace medvault::signer {
namespace {

constexpr char kSchemaV1[] = R"sql(
  CREATE TABLE state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    contracts  BLOB    NOT NULL,
    from_block INTEGER NOT NULL,
    next_block INTEGER NOT NULL,
    reorgs     INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE blocks (
    number INTEGER PRIMARY KEY,
    hash   BLOB    NOT NULL
  );
  CREATE TABLE licence_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    practitioner    BLOB    NOT NULL,
    previous_status INTEGER NOT NULL,
    status          INTEGER NOT NULL,
    valid_until     INTEGER NOT NULL,
    evidence_hash   BLOB    NOT NULL,
    block_number    INTEGER NOT NULL,
    block_hash      BLOB    NOT NULL,
    tx_hash         BLOB    NOT NULL,
    log_index       INTEGER NOT NULL,
    block_timestamp INTEGER NOT NULL,
    UNIQUE (block_number, log_index)
  );
  CREATE INDEX licence_events_by_practitioner
    ON licence_events (practitioner, block_number, log_index);
  CREATE TABLE policy_publications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    version         INTEGER NOT NULL,
    bundle_hash     BLOB    NOT NULL,
    block_number    INTEGER NOT NULL,
    block_hash      BLOB    NOT NULL,
    tx_hash         BLOB    NOT NULL,
    log_index       INTEGER NOT NULL,
    block_timestamp INTEGER NOT NULL,
    UNIQUE (block_number, log_index)
  );
  CREATE TABLE anchor_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    log_id          BLOB    NOT NULL,
    tree_size       INTEGER NOT NULL,
    root_hash       BLOB    NOT NULL,
    operator        BLOB    NOT NULL,
    block_number    INTEGER NOT NULL,
    block_hash      BLOB    NOT NULL,
    tx_hash         BLOB    NOT NULL,
    log_index       INTEGER NOT NULL,
    block_timestamp INTEGER NOT NULL,
    UNIQUE (block_number, log_index)
  );
  CREATE INDEX anchor_events_by_log ON anchor_events (log_id, block_number, log_index);
)sql";

constexpr char kOwner[] = "signer index";

constexpr const char* kEventTables[] = {"licence_events", "policy_publications", "anchor_events"};

// The position columns, in the order PositionFrom reads them.
constexpr char kPositionColumns[] = "block_number, block_hash, tx_hash, log_index, block_timestamp";

int64_t AsInt(uint64_t value) { return static_cast<int64_t>(value); }
uint64_t AsUint(int64_t value) { return static_cast<uint64_t>(value); }

// Binds the five position columns from parameter `first` on.
void BindPosition(SqliteStatement& q, int first, const EventPosition& p) {
  q.Bind(first, AsInt(p.block_number))
      .BindBlob(first + 1, p.block_hash)
      .BindBlob(first + 2, p.transaction_hash)
      .Bind(first + 3, static_cast<int64_t>(p.log_index))
      .Bind(first + 4, AsInt(p.block_timestamp));
}

EventPosition PositionFrom(SqliteStatement& row, int first) {
  EventPosition p;
  p.block_number = AsUint(row.Int(first));
  p.block_hash = row.Blob(first + 1);
  p.transaction_hash = row.Blob(first + 2);
  p.log_index = static_cast<uint32_t>(row.Int(first + 3));
  p.block_timestamp = AsUint(row.Int(first + 4));
  return p;
}

absl::Status InsertLicence(sqlite3* db, const LicenceChangedEvent& e) {
  SqliteStatement q(db, kOwner,
                    absl::StrCat("INSERT INTO licence_events (practitioner, previous_status, "
                                 "status, valid_until, evidence_hash, ",
                                 kPositionColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, e.practitioner)
      .Bind(2, e.previous_status)
      .Bind(3, e.status)
      .Bind(4, AsInt(e.valid_until))
      .BindBlob(5, e.evidence_hash);
  BindPosition(q, 6, e.position);
  return q.Step().status();
}

absl::Status InsertPolicy(sqlite3* db, const PolicyPublishedEvent& e) {
  SqliteStatement q(db, kOwner,
                    absl::StrCat("INSERT INTO policy_publications (version, bundle_hash, ",
                                 kPositionColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?)")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.Bind(1, AsInt(e.version)).BindBlob(2, e.bundle_hash);
  BindPosition(q, 3, e.position);
  return q.Step().status();
}

absl::Status InsertAnchor(sqlite3* db, const AnchoredEvent& e) {
  SqliteStatement q(db, kOwner,
                    absl::StrCat("INSERT INTO anchor_events (log_id, tree_size, root_hash, "
                                 "operator, ",
                                 kPositionColumns, ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, e.log_id)
      .Bind(2, AsInt(e.tree_size))
      .BindBlob(3, e.root_hash)
      .BindBlob(4, e.operator_address);
  BindPosition(q, 5, e.position);
  return q.Step().status();
}

constexpr char kLicenceColumns[] =
    "id, practitioner, previous_status, status, valid_until, evidence_hash, block_number, "
    "block_hash, tx_hash, log_index, block_timestamp";

LicenceChangedEvent LicenceFrom(SqliteStatement& row) {
  LicenceChangedEvent e;
  e.practitioner = row.Blob(1);
  e.previous_status = static_cast<uint8_t>(row.Int(2));
  e.status = static_cast<uint8_t>(row.Int(3));
  e.valid_until = AsUint(row.Int(4));
  e.evidence_hash = row.Blob(5);
  e.position = PositionFrom(row, 6);
  return e;
}

PolicyPublishedEvent PolicyFrom(SqliteStatement& row) {
  PolicyPublishedEvent e;
  e.version = AsUint(row.Int(0));
  e.bundle_hash = row.Blob(1);
  e.position = PositionFrom(row, 2);
  return e;
}

AnchoredEvent AnchorFrom(SqliteStatement& row) {
  AnchoredEvent e;
  e.log_id = row.Blob(0);
  e.tree_size = AsUint(row.Int(1));
  e.root_hash = row.Blob(2);
  e.operator_address = row.Blob(3);
  e.position = PositionFrom(row, 4);
  return e;
}

// Every row of the (prepared and bound) query `q`, each made by `from`.
template <typename From>
auto ReadRows(SqliteStatement& q, From from) -> absl::StatusOr<std::vector<decltype(from(q))>> {
  std::vector<decltype(from(q))> rows;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return rows;
    rows.push_back(from(q));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventIndex>> EventIndex::Open(const std::string& path,
                                                             const SecretData& key,
                                                             const EventIndexScope& scope) {
  ASSIGN_OR_RETURN(sqlite3 * db, SqliteOpenEncrypted(path, key, kOwner));
  std::unique_ptr<EventIndex> index(new EventIndex(db));
  absl::MutexLock lock(&index->mu_);
  // NORMAL: each commit is atomic, but the last ones may be lost to a power
  // failure; the chain has them (see the header).
  RETURN_IF_ERROR(
      SqliteExec(db, kOwner, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"));
  RETURN_IF_ERROR(SqliteMigrate(db, kOwner, {kSchemaV1}).status());
  RETURN_IF_ERROR(index->Bind(scope));
  return index;
}

EventIndex::~EventIndex() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status EventIndex::InTransaction(absl::FunctionRef<absl::Status()> body) {
  return SqliteTransaction(db_, kOwner, body);
}

absl::Status EventIndex::Bind(const EventIndexScope& scope) {
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    SqliteStatement q(db_, kOwner, "SELECT contracts FROM state WHERE id = 1");
    RETURN_IF_ERROR(q.status());
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (found && q.Blob(0) == scope.contracts) return absl::OkStatus();
    if (found) {
      // Events of other contracts, and a cursor past blocks the new ones
      // may have events in: start again.
      RETURN_IF_ERROR(DropFrom(0));
      dropped_other_scope_ = true;
    }
    SqliteStatement upsert(db_, kOwner,
                           "INSERT OR REPLACE INTO state (id, contracts, from_block, next_block, "
                           "reorgs) VALUES (1, ?, ?, ?, "
                           "COALESCE((SELECT reorgs FROM state WHERE id = 1), 0))");
    RETURN_IF_ERROR(upsert.status());
    upsert.BindBlob(1, scope.contracts)
        .Bind(2, AsInt(scope.from_block))
        .Bind(3, AsInt(scope.from_block));
    return upsert.Step().status();
  });
}

// Deletes the events and hashes of blocks from `first` on.
absl::Status EventIndex::DropFrom(uint64_t first) {
  for (const char* table : kEventTables) {
    SqliteStatement del(db_, kOwner,
                        absl::StrCat("DELETE FROM ", table, " WHERE block_number >= ?").c_str());
    RETURN_IF_ERROR(del.status());
    del.Bind(1, AsInt(first));
    RETURN_IF_ERROR(del.Step().status());
  }
  SqliteStatement del(db_, kOwner, "DELETE FROM blocks WHERE number >= ?");
  RETURN_IF_ERROR(del.status());
  del.Bind(1, AsInt(first));
  return del.Step().status();
}

absl::StatusOr<IndexCursor> EventIndex::CursorLocked() {
  SqliteStatement q(db_, kOwner, "SELECT from_block, next_block, reorgs FROM state WHERE id = 1");
  RETURN_IF_ERROR(q.status());
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::InternalError("signer index: no state row");
  return IndexCursor{AsUint(q.Int(0)), AsUint(q.Int(1)), AsUint(q.Int(2))};
}

absl::StatusOr<IndexCursor> EventIndex::Cursor() {
  absl::MutexLock lock(&mu_);
  return CursorLocked();
}

absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> EventIndex::BlockHashes() {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner, "SELECT number, hash FROM blocks ORDER BY number DESC");
  RETURN_IF_ERROR(q.status());
  return ReadRows(q, [](SqliteStatement& row) {
    return std::pair<uint64_t, std::string>(AsUint(row.Int(0)), row.Blob(1));
  });
}

absl::Status EventIndex::Commit(const IndexBatch& batch) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(IndexCursor cursor, CursorLocked());
    if (batch.from_block != cursor.next_block || batch.to_block < batch.from_block) {
      return absl::FailedPreconditionError(
          absl::StrCat("signer index: batch of blocks ", batch.from_block, " to ", batch.to_block,
                       " does not start at the cursor (", cursor.next_block, ")"));
    }
    bool has_last_hash = false;
    for (const auto& [number, hash] : batch.block_hashes) {
      has_last_hash |= number == batch.to_block;
      SqliteStatement q(db_, kOwner, "INSERT OR REPLACE INTO blocks (number, hash) VALUES (?, ?)");
      RETURN_IF_ERROR(q.status());
      q.Bind(1, AsInt(number)).BindBlob(2, hash);
      RETURN_IF_ERROR(q.Step().status());
    }
    if (!has_last_hash) {
      return absl::FailedPreconditionError(
          absl::StrCat("signer index: batch without the hash of its last block ", batch.to_block));
    }
    for (const AnchoredEvent& e : batch.anchors) RETURN_IF_ERROR(InsertAnchor(db_, e));
    for (const LicenceChangedEvent& e : batch.licences) RETURN_IF_ERROR(InsertLicence(db_, e));
    for (const PolicyPublishedEvent& e : batch.policies) RETURN_IF_ERROR(InsertPolicy(db_, e));
    SqliteStatement forget(db_, kOwner, "DELETE FROM blocks WHERE number < ?");
    RETURN_IF_ERROR(forget.status());
    forget.Bind(1, AsInt(std::min(batch.forget_hashes_below, batch.to_block)));
    RETURN_IF_ERROR(forget.Step().status());
    SqliteStatement advance(db_, kOwner, "UPDATE state SET next_block = ? WHERE id = 1");
    RETURN_IF_ERROR(advance.status());
    advance.Bind(1, AsInt(batch.to_block + 1));
    return advance.Step().status();
  });
}

absl::Status EventIndex::Rewind(uint64_t fork) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(IndexCursor cursor, CursorLocked());
    // Something must be dropped: fork below the last indexed block.
    if (fork + 1 >= cursor.next_block || fork < cursor.from_block) {
      return absl::FailedPreconditionError(absl::StrCat("signer index: cannot rewind to block ",
                                                        fork, " (indexed from ", cursor.from_block,
                                                        " to before ", cursor.next_block, ")"));
    }
    RETURN_IF_ERROR(DropFrom(fork + 1));
    SqliteStatement q(db_, kOwner,
                      "UPDATE state SET next_block = ?, reorgs = reorgs + 1 WHERE id = 1");
    RETURN_IF_ERROR(q.status());
    q.Bind(1, AsInt(fork + 1));
    return q.Step().status();
  });
}

absl::Status EventIndex::Reset() {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(DropFrom(0));
    return SqliteExec(db_, kOwner,
                      "UPDATE state SET next_block = from_block, reorgs = reorgs + 1 WHERE id = 1");
  });
}

absl::StatusOr<std::vector<std::pair<int64_t, LicenceChangedEvent>>> EventIndex::LicenceEventsAfter(
    int64_t after_id, uint32_t limit) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    absl::StrCat("SELECT ", kLicenceColumns,
                                 " FROM licence_events WHERE id > ? ORDER BY id LIMIT ?")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows(q, [](SqliteStatement& row) {
    return std::pair<int64_t, LicenceChangedEvent>(row.Int(0), LicenceFrom(row));
  });
}

absl::StatusOr<std::optional<LicenceChangedEvent>> EventIndex::LatestLicence(
    absl::string_view practitioner) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    absl::StrCat("SELECT ", kLicenceColumns,
                                 " FROM licence_events WHERE practitioner = ? "
                                 "ORDER BY block_number DESC, log_index DESC LIMIT 1")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, practitioner);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return std::optional<LicenceChangedEvent>();
  return std::optional<LicenceChangedEvent>(LicenceFrom(q));
}

absl::StatusOr<std::vector<PolicyPublishedEvent>> EventIndex::PolicyPublications(uint32_t limit) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    absl::StrCat("SELECT version, bundle_hash, ", kPositionColumns,
                                 " FROM policy_publications "
                                 "ORDER BY block_number DESC, log_index DESC LIMIT ?")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(limit));
  return ReadRows(q, PolicyFrom);
}

absl::StatusOr<std::vector<AnchoredEvent>> EventIndex::AnchorEvents(absl::string_view log_id,
                                                                    uint32_t limit) {
  absl::MutexLock lock(&mu_);
  // Chain order, newest first: the contract only accepts increasing tree
  // sizes per log, so this is also by tree size (and not confused by sizes
  // above 2^63, which SQLite would compare as negative).
  SqliteStatement q(
      db_, kOwner,
      absl::StrCat("SELECT log_id, tree_size, root_hash, operator, ", kPositionColumns,
                   " FROM anchor_events WHERE log_id = ? "
                   "ORDER BY block_number DESC, log_index DESC LIMIT ?")
          .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, log_id).Bind(2, static_cast<int64_t>(limit));
  return ReadRows(q, AnchorFrom);
}

}  // namespace medvault::signer
