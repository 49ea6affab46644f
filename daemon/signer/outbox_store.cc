#include "daemon/signer/outbox_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {
namespace {

constexpr char kSchemaV1[] = R"sql(
  CREATE TABLE anchors (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    log_id           BLOB    NOT NULL,
    tree_size        INTEGER NOT NULL,
    root_hash        BLOB    NOT NULL,
    state            INTEGER NOT NULL,
    nonce            INTEGER,
    tx_hash          BLOB,
    block_number     INTEGER NOT NULL DEFAULT 0,
    already_anchored INTEGER NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    UNIQUE (log_id, tree_size)
  );
  CREATE INDEX anchors_unfinished ON anchors (state, id);
  CREATE TABLE transactions (
    hash             BLOB    PRIMARY KEY,
    anchor_id        INTEGER NOT NULL REFERENCES anchors (id),
    nonce            INTEGER NOT NULL,
    raw              BLOB    NOT NULL,
    gas_limit        INTEGER NOT NULL,
    max_fee          INTEGER NOT NULL,
    max_priority_fee INTEGER NOT NULL,
    sent_ms          INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX transactions_by_anchor ON transactions (anchor_id);
)sql";

constexpr char kEntryColumns[] =
    "id, log_id, tree_size, root_hash, state, nonce, tx_hash, block_number, already_anchored, "
    "error, attempts, created_ms, updated_ms";

constexpr char kOwner[] = "signer outbox";

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

OutboxEntry EntryFromRow(SqliteStatement& row) {
  OutboxEntry e;
  e.id = row.Int(0);
  e.log_id = row.Blob(1);
  e.tree_size = static_cast<uint64_t>(row.Int(2));
  e.root_hash = row.Blob(3);
  e.state = static_cast<AnchorState>(row.Int(4));
  if (!row.IsNull(5)) e.nonce = static_cast<uint64_t>(row.Int(5));
  e.transaction_hash = row.Blob(6);
  e.block_number = static_cast<uint64_t>(row.Int(7));
  e.already_anchored = row.Int(8) != 0;
  e.error = row.Text(9);
  e.attempts = static_cast<uint32_t>(row.Int(10));
  e.created_at = absl::FromUnixMillis(row.Int(11));
  e.updated_at = absl::FromUnixMillis(row.Int(12));
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OutboxStore>> OutboxStore::Open(const std::string& path,
                                                               const SecretData& key) {
  ASSIGN_OR_RETURN(sqlite3 * db, SqliteOpenEncrypted(path, key, kOwner));
  std::unique_ptr<OutboxStore> store(new OutboxStore(db));
  absl::MutexLock lock(&store->mu_);
  // Every commit reaches the disk before Anchor is acknowledged.
  RETURN_IF_ERROR(SqliteExec(db, kOwner,
                             "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                             "PRAGMA foreign_keys = ON;"));
  RETURN_IF_ERROR(SqliteMigrate(db, kOwner, {kSchemaV1}).status());
  return store;
}

OutboxStore::~OutboxStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::StatusOr<OutboxEntry> OutboxStore::Load(int64_t id) {
  SqliteStatement q(db_, kOwner,
                    absl::StrCat("SELECT ", kEntryColumns, " FROM anchors WHERE id = ?").c_str());
  RETURN_IF_ERROR(q.status());
  q.Bind(1, id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no outbox entry ", id));
  OutboxEntry entry = EntryFromRow(q);
  SqliteStatement txs(
      db_, kOwner,
      "SELECT hash, raw, nonce, max_fee, max_priority_fee, sent_ms, gas_limit FROM transactions "
      "WHERE anchor_id = ? ORDER BY sent_ms, max_fee");
  RETURN_IF_ERROR(txs.status());
  txs.Bind(1, id);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, txs.Step());
    if (!row) break;
    SentTransaction tx;
    tx.hash = txs.Blob(0);
    tx.raw = txs.Blob(1);
    tx.nonce = static_cast<uint64_t>(txs.Int(2));
    tx.fees.max_fee_per_gas = static_cast<uint64_t>(txs.Int(3));
    tx.fees.max_priority_fee_per_gas = static_cast<uint64_t>(txs.Int(4));
    tx.sent_at = absl::FromUnixMillis(txs.Int(5));
    tx.gas_limit = static_cast<uint64_t>(txs.Int(6));
    entry.transactions.push_back(std::move(tx));
  }
  return entry;
}

absl::StatusOr<uint64_t> OutboxStore::CountUnfinishedLocked() {
  SqliteStatement q(db_, kOwner, "SELECT COUNT(*) FROM anchors WHERE state IN (1, 2)");
  RETURN_IF_ERROR(q.status());
  RETURN_IF_ERROR(q.Step().status());
  return static_cast<uint64_t>(q.Int(0));
}

absl::StatusOr<uint64_t> OutboxStore::CountUnfinished() {
  absl::MutexLock lock(&mu_);
  return CountUnfinishedLocked();
}

absl::StatusOr<OutboxStore::Enqueued> OutboxStore::Enqueue(absl::string_view log_id,
                                                           uint64_t tree_size,
                                                           absl::string_view root_hash,
                                                           uint64_t capacity) {
  absl::MutexLock lock(&mu_);
  int64_t id = 0;
  bool created = false;
  RETURN_IF_ERROR(SqliteTransaction(db_, kOwner, [&]() -> absl::Status {
    SqliteStatement existing(db_, kOwner,
                             "SELECT id, root_hash, state FROM anchors "
                             "WHERE log_id = ? AND tree_size = ?");
    RETURN_IF_ERROR(existing.status());
    existing.BindBlob(1, log_id).Bind(2, static_cast<int64_t>(tree_size));
    ASSIGN_OR_RETURN(bool found, existing.Step());
    if (found) {
      id = existing.Int(0);
      const bool same_root = existing.Blob(1) == root_hash;
      const bool failed = static_cast<AnchorState>(existing.Int(2)) == AnchorState::kFailed;
      if (!same_root && !failed) {
        return absl::FailedPreconditionError(
            absl::StrCat("tree_size: ", tree_size, " of log ", ToHex(log_id),
                         " is already in the outbox (entry ", id, ") with a different root_hash"));
      }
      if (!failed) return absl::OkStatus();
      // A failed entry asked for again: retried (the cause may be fixed,
      // e.g. the key made an operator), with the root now asked for.
      SqliteStatement root(db_, kOwner, "UPDATE anchors SET root_hash = ? WHERE id = ?");
      RETURN_IF_ERROR(root.status());
      root.BindBlob(1, root_hash).Bind(2, id);
      RETURN_IF_ERROR(root.Step().status());
      return RequeueLocked(id, "");
    }
    ASSIGN_OR_RETURN(uint64_t unfinished, CountUnfinishedLocked());
    if (unfinished >= capacity) {
      return absl::UnavailableError(
          absl::StrCat("the signer's outbox is full (", unfinished,
                       " anchors waiting, signer.outbox_capacity); try again later"));
    }
    SqliteStatement insert(db_, kOwner,
                           "INSERT INTO anchors (log_id, tree_size, root_hash, state, created_ms, "
                           "updated_ms) VALUES (?, ?, ?, 1, ?, ?)");
    RETURN_IF_ERROR(insert.status());
    const int64_t now = NowMs();
    insert.BindBlob(1, log_id)
        .Bind(2, static_cast<int64_t>(tree_size))
        .BindBlob(3, root_hash)
        .Bind(4, now)
        .Bind(5, now);
    RETURN_IF_ERROR(insert.Step().status());
    id = sqlite3_last_insert_rowid(db_);
    created = true;
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(OutboxEntry entry, Load(id));
  return Enqueued{std::move(entry), created};
}

absl::StatusOr<std::optional<OutboxEntry>> OutboxStore::NextUnfinished() {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    "SELECT id FROM anchors WHERE state IN (1, 2) ORDER BY id LIMIT 1");
  RETURN_IF_ERROR(q.status());
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return std::optional<OutboxEntry>();
  ASSIGN_OR_RETURN(OutboxEntry entry, Load(q.Int(0)));
  return std::optional<OutboxEntry>(std::move(entry));
}

absl::StatusOr<OutboxEntry> OutboxStore::Get(int64_t id) {
  absl::MutexLock lock(&mu_);
  return Load(id);
}

absl::StatusOr<std::vector<OutboxEntry>> OutboxStore::ListByLog(absl::string_view log_id,
                                                                uint32_t limit) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    "SELECT id FROM anchors WHERE log_id = ? ORDER BY tree_size DESC LIMIT ?");
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, log_id).Bind(2, static_cast<int64_t>(limit));
  std::vector<OutboxEntry> entries;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(OutboxEntry entry, Load(q.Int(0)));
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::Status OutboxStore::RecordTransaction(int64_t id, const SentTransaction& tx) {
  absl::MutexLock lock(&mu_);
  return SqliteTransaction(db_, kOwner, [&]() -> absl::Status {
    SqliteStatement insert(
        db_, kOwner,
        "INSERT OR REPLACE INTO transactions (hash, anchor_id, nonce, raw, max_fee, "
        "max_priority_fee, sent_ms, gas_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(insert.status());
    insert.BindBlob(1, tx.hash)
        .Bind(2, id)
        .Bind(3, static_cast<int64_t>(tx.nonce))
        .BindBlob(4, tx.raw)
        .Bind(5, static_cast<int64_t>(tx.fees.max_fee_per_gas))
        .Bind(6, static_cast<int64_t>(tx.fees.max_priority_fee_per_gas))
        .Bind(7, absl::ToUnixMillis(tx.sent_at))
        .Bind(8, static_cast<int64_t>(tx.gas_limit));
    RETURN_IF_ERROR(insert.Step().status());
    SqliteStatement update(db_, kOwner,
                           "UPDATE anchors SET state = 2, nonce = ?, updated_ms = ? WHERE id = ?");
    RETURN_IF_ERROR(update.status());
    update.Bind(1, static_cast<int64_t>(tx.nonce)).Bind(2, NowMs()).Bind(3, id);
    RETURN_IF_ERROR(update.Step().status());
    if (sqlite3_changes(db_) != 1) return absl::NotFoundError(absl::StrCat("no outbox entry ", id));
    return absl::OkStatus();
  });
}

absl::Status OutboxStore::ForgetTransaction(absl::string_view hash) {
  absl::MutexLock lock(&mu_);
  SqliteStatement del(db_, kOwner, "DELETE FROM transactions WHERE hash = ?");
  RETURN_IF_ERROR(del.status());
  del.BindBlob(1, hash);
  return del.Step().status();
}

absl::Status OutboxStore::Requeue(int64_t id, absl::string_view error) {
  absl::MutexLock lock(&mu_);
  return RequeueLocked(id, error);
}

absl::Status OutboxStore::RequeueLocked(int64_t id, absl::string_view error) {
  SqliteStatement q(
      db_, kOwner,
      "UPDATE anchors SET state = 1, nonce = NULL, error = ?, attempts = attempts + 1, "
      "updated_ms = ? WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, error).Bind(2, NowMs()).Bind(3, id);
  return q.Step().status();
}

absl::Status OutboxStore::MarkConfirmed(int64_t id, absl::string_view transaction_hash,
                                        uint64_t block_number, bool already_anchored) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(
      db_, kOwner,
      "UPDATE anchors SET state = 3, tx_hash = ?, block_number = ?, already_anchored = ?, "
      "error = '', updated_ms = ? WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, transaction_hash)
      .Bind(2, static_cast<int64_t>(block_number))
      .Bind(3, already_anchored ? 1 : 0)
      .Bind(4, NowMs())
      .Bind(5, id);
  return q.Step().status();
}

absl::Status OutboxStore::MarkFailed(int64_t id, absl::string_view error) {
  absl::MutexLock lock(&mu_);
  SqliteStatement q(db_, kOwner,
                    "UPDATE anchors SET state = 4, error = ?, updated_ms = ? WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, error).Bind(2, NowMs()).Bind(3, id);
  return q.Step().status();
}

}  // namespace medvault::signer
