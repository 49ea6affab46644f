// OutboxStore: the signer's durable outbox of anchoring requests, in its own
// SQLCipher database (one file under signer.state_dir, encrypted with the
// 32-byte key the keyvault unwraps for the signer; raw key, no KDF).
//
// An entry is written (and synced: WAL, synchronous = FULL) before Anchor is
// acknowledged, and every transaction the worker signs is written before it
// is broadcast, so after a crash the worker knows each nonce it used and
// every hash that may land (outbox_worker.h).
//
// On-disk format, schema version 1 (PRAGMA user_version):
//   anchors(id INTEGER PRIMARY KEY AUTOINCREMENT, log_id BLOB(32),
//           tree_size INTEGER, root_hash BLOB(32), state INTEGER
//           (AnchorState), nonce INTEGER NULL, tx_hash BLOB NULL (the mined
//           one), block_number INTEGER, already_anchored INTEGER, error TEXT,
//           attempts INTEGER, created_ms INTEGER, updated_ms INTEGER,
//           UNIQUE(log_id, tree_size))
//   transactions(hash BLOB(32) PRIMARY KEY, anchor_id INTEGER REFERENCES
//           anchors, nonce INTEGER, raw BLOB (the signed transaction, public
//           once sent), gas_limit INTEGER, max_fee INTEGER,
//           max_priority_fee INTEGER, sent_ms INTEGER)
// A database with a newer user_version is refused, never downgraded.
//
// Thread-safe (one connection, serialised by a mutex).
#ifndef MEDVAULT_DAEMON_SIGNER_OUTBOX_STORE_H_
#define MEDVAULT_DAEMON_SIGNER_OUTBOX_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/common/secret.h"
#include "daemon/signer/fee_policy.h"

struct sqlite3;

namespace medvault::signer {

// Values are stored; do not renumber. Same numbers as signer.proto's AnchorState.
enum class AnchorState {
  kQueued = 1,     // durable, no transaction in flight
  kSent = 2,       // a transaction with `nonce` was signed and (maybe) broadcast
  kConfirmed = 3,  // final: on chain, `confirmations` deep (or already the latest)
  kFailed = 4,     // final: refused by the contract; `error` says why
};

// A signed transaction of an entry, recorded before it was broadcast.
struct SentTransaction {
  std::string hash;  // 32 bytes
  std::string raw;   // what eth_sendRawTransaction takes
  uint64_t nonce = 0;
  uint64_t gas_limit = 0;  // kept for a replacement: the node may estimate
                           // against its pending state, where this one landed
  Fees fees;
  absl::Time sent_at;
};

struct OutboxEntry {
  int64_t id = 0;
  std::string log_id;  // 32 bytes
  uint64_t tree_size = 0;
  std::string root_hash;  // 32 bytes
  AnchorState state = AnchorState::kQueued;
  std::optional<uint64_t> nonce;  // while kSent, and kept once confirmed
  // Every transaction signed for the entry, oldest first, also those of an
  // earlier nonce before it was queued again; the last one is the current
  // (highest-fee) one.
  std::vector<SentTransaction> transactions;
  std::string transaction_hash;   // kConfirmed: the one that was mined (empty if none was needed)
  uint64_t block_number = 0;      // kConfirmed
  bool already_anchored = false;  // kConfirmed without a transaction of this entry
  std::string error;              // kFailed; or the last transient error
  uint32_t attempts = 0;          // times the entry went back to kQueued
  absl::Time created_at;
  absl::Time updated_at;
};

class OutboxStore {
 public:
  // Opens (creating if needed) the database at `path` with `key` (32
  // bytes). FAILED_PRECONDITION when the file cannot be opened, the key does
  // not decrypt it (the message never contains the key), or its schema is
  // newer than this binary's.
  static absl::StatusOr<std::unique_ptr<OutboxStore>> Open(const std::string& path,
                                                           const SecretData& key);
  ~OutboxStore();

  struct Enqueued {
    OutboxEntry entry;
    bool created = false;  // false: an identical request was already there
  };
  // Stores a request. The same (log_id, tree_size, root_hash) again returns
  // the existing entry (a failed one is queued again). The same tree size
  // with another root is FAILED_PRECONDITION unless the existing entry
  // failed (then it is replaced). UNAVAILABLE when `capacity` entries are
  // unfinished already (the outbox is full).
  absl::StatusOr<Enqueued> Enqueue(absl::string_view log_id, uint64_t tree_size,
                                   absl::string_view root_hash, uint64_t capacity);

  // The unfinished (queued or sent) entry with the lowest id, if any.
  absl::StatusOr<std::optional<OutboxEntry>> NextUnfinished();
  // NOT_FOUND when there is no such entry.
  absl::StatusOr<OutboxEntry> Get(int64_t id);
  // Entries of a log, newest tree size first, at most `limit`.
  absl::StatusOr<std::vector<OutboxEntry>> ListByLog(absl::string_view log_id, uint32_t limit);

  // Writes a signed transaction and moves the entry to kSent with its nonce.
  absl::Status RecordTransaction(int64_t id, const SentTransaction& tx);
  // Removes a transaction the node refused (an underpriced replacement).
  absl::Status ForgetTransaction(absl::string_view hash);
  // Back to kQueued with no nonce, remembering `error`; attempts + 1. The
  // entry's transactions stay recorded until it is final.
  absl::Status Requeue(int64_t id, absl::string_view error);
  // Final states.
  absl::Status MarkConfirmed(int64_t id, absl::string_view transaction_hash, uint64_t block_number,
                             bool already_anchored);
  absl::Status MarkFailed(int64_t id, absl::string_view error);

  // Unfinished entries (queued or sent).
  absl::StatusOr<uint64_t> CountUnfinished();

 private:
  explicit OutboxStore(sqlite3* db) : db_(db) {}
  absl::StatusOr<OutboxEntry> Load(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint64_t> CountUnfinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RequeueLocked(int64_t id, absl::string_view error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_OUTBOX_STORE_H_
