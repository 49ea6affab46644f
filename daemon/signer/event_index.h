// EventIndex: what the indexer (indexer.h) has read from the chain, in a
// SQLCipher database of its own, index.db under signer.state_dir, encrypted
// with the same 32-byte key as the outbox (the keyvault's database key
// "signer"; raw key, no KDF).
//
// A file of its own rather than tables in outbox.db because the two hold
// different kinds of state:
//   - the outbox holds what exists nowhere else (acknowledged requests, the
//     nonces and transactions already signed); the index is a cache of the
//     chain that can always be read again. Deleting index.db is a safe way
//     to rebuild it; the outbox must never be touched that way;
//   - the indexer runs without an anchor contract (only the registries
//     configured), when there is no outbox;
//   - a batch of up to signer.index_batch_blocks blocks is one write
//     transaction; on its own file it never delays the synced commit that
//     acknowledges an Anchor request;
//   - each file versions its schema on its own.
// For the same reason the index is synced less strictly (WAL, synchronous =
// NORMAL): a power loss may take back the last batches, never part of one,
// and they are read again from the chain.
//
// Everything one batch of blocks produces (its events, the hashes of its
// blocks, the new cursor) is committed in one transaction, as are the
// rewind after a reorganisation and a reset; after a crash the index is at
// the end of some batch, consistent with its cursor.
//
// On-disk format, schema version 1 (PRAGMA user_version):
//   state(id INTEGER PRIMARY KEY CHECK (id = 1), contracts BLOB (the
//         contract addresses the index follows, see EventIndexScope),
//         from_block INTEGER, next_block INTEGER (the first block not yet
//         indexed: the cursor), reorgs INTEGER)
//   blocks(number INTEGER PRIMARY KEY, hash BLOB(32)): hashes of indexed
//         blocks near the cursor (always the cursor's own), to detect a
//         reorganisation and find the fork point
//   licence_events(id INTEGER PRIMARY KEY AUTOINCREMENT, practitioner
//         BLOB(32), previous_status INTEGER, status INTEGER, valid_until
//         INTEGER, evidence_hash BLOB(32), <position>)
//   policy_publications(id ..., version INTEGER, bundle_hash BLOB(32), <position>)
//   anchor_events(id ..., log_id BLOB(32), tree_size INTEGER, root_hash
//         BLOB(32), operator BLOB(20), <position>)
//   <position> = block_number INTEGER, block_hash BLOB(32), tx_hash
//         BLOB(32), log_index INTEGER, block_timestamp INTEGER,
//         UNIQUE (block_number, log_index)
// uint64 values are stored as the int64 with the same bits (valid_until
// may be 2^64 - 1, "no end"). Rows are inserted in chain order and ids
// are never reused (AUTOINCREMENT), and a rewind only deletes the newest
// rows, so id order is chain order: licence_events.id is the cursor of
// ListLicenceEvents. A database with a newer user_version is refused.
//
// Thread-safe (one connection, serialised by a mutex).
#ifndef MEDVAULT_DAEMON_SIGNER_EVENT_INDEX_H_
#define MEDVAULT_DAEMON_SIGNER_EVENT_INDEX_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"
#include "daemon/signer/contract_events.h"

struct sqlite3;

namespace medvault::signer {

// What an index is of: the contracts it follows and the block it starts
// at. `contracts` identifies the set (the indexer passes the three
// addresses, empty ones included, concatenated).
struct EventIndexScope {
  std::string contracts;
  uint64_t from_block = 0;
};

// Where the index is.
struct IndexCursor {
  uint64_t from_block = 0;  // where it started (the scope's, when created)
  uint64_t next_block = 0;  // the first block not indexed yet
  uint64_t reorgs = 0;      // reorganisations handled (rewinds and resets)
};

// One batch of blocks, from_block to to_block inclusive, as read from the chain.
struct IndexBatch {
  uint64_t from_block = 0;
  uint64_t to_block = 0;
  // Each in chain order (block number, then log index).
  std::vector<AnchoredEvent> anchors;
  std::vector<LicenceChangedEvent> licences;
  std::vector<PolicyPublishedEvent> policies;
  // Hashes of blocks of the batch to remember (to_block's at least).
  std::vector<std::pair<uint64_t, std::string>> block_hashes;
  // Remembered hashes of blocks below this are forgotten.
  uint64_t forget_hashes_below = 0;
};

class EventIndex {
 public:
  // Opens (creating if needed) the database at `path` with `key` (32
  // bytes). An index of another scope (other contracts) is emptied and
  // starts again at `scope.from_block` (dropped_other_scope() then says
  // so); the from_block of an existing index is kept. FAILED_PRECONDITION
  // when the file cannot be opened, the key does not decrypt it (the
  // message never contains the key), or its schema is newer than this
  // binary's.
  static absl::StatusOr<std::unique_ptr<EventIndex>> Open(const std::string& path,
                                                          const SecretData& key,
                                                          const EventIndexScope& scope);
  ~EventIndex();

  // Whether Open emptied an index of other contracts.
  bool dropped_other_scope() const { return dropped_other_scope_; }

  absl::StatusOr<IndexCursor> Cursor();
  // The remembered block hashes, newest first.
  absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> BlockHashes();

  // Stores a batch and moves the cursor to batch.to_block + 1, all or
  // nothing. FAILED_PRECONDITION unless batch.from_block is the cursor and
  // to_block is not below it, or when to_block's hash is missing.
  absl::Status Commit(const IndexBatch& batch);
  // A reorganisation forked after block `fork`: drops the events and hashes
  // of later blocks, moves the cursor to fork + 1 and counts it.
  // FAILED_PRECONDITION unless fork is below the last indexed block and not
  // below from_block.
  absl::Status Rewind(uint64_t fork);
  // A reorganisation deeper than the remembered hashes: drops every event
  // and hash, moves the cursor back to from_block and counts it.
  absl::Status Reset();

  // LicenceChanged events with an id above `after_id` (0: from the first),
  // in chain order, at most `limit`, each with its id.
  absl::StatusOr<std::vector<std::pair<int64_t, LicenceChangedEvent>>> LicenceEventsAfter(
      int64_t after_id, uint32_t limit);
  // The latest LicenceChanged event of `practitioner`, if any.
  absl::StatusOr<std::optional<LicenceChangedEvent>> LatestLicence(absl::string_view practitioner);
  // PolicyPublished events, newest first, at most `limit`.
  absl::StatusOr<std::vector<PolicyPublishedEvent>> PolicyPublications(uint32_t limit);
  // Anchored events of one log, newest (highest tree size) first, at most `limit`.
  absl::StatusOr<std::vector<AnchoredEvent>> AnchorEvents(absl::string_view log_id, uint32_t limit);

 private:
  explicit EventIndex(sqlite3* db) : db_(db) {}
  absl::Status Bind(const EventIndexScope& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<IndexCursor> CursorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DropFrom(uint64_t first) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InTransaction(absl::FunctionRef<absl::Status()> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  bool dropped_other_scope_ = false;  // set by Open only
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_EVENT_INDEX_H_
