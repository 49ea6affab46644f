// Indexer: follows the medvault contracts' events (contract_events.h) into
// the event index (event_index.h), on a thread of its own.
//
// Every poll_interval: head = eth_blockNumber; the blocks up to
// head - confirmations + 1 (each `confirmations` deep) are read from the
// cursor on, in ranges of at most batch_blocks, with one eth_getLogs per
// range for every configured contract. A range is committed with its
// events, the new cursor and the hashes of its blocks in one transaction.
//
// Block hashes: the index remembers the hash of the last block of every
// range and of each block within confirmations + reorg_depth of the target
// (where reorganisations happen). Within that window a range's headers must
// chain (each parent hash is the previous block's hash, the first one's the
// cursor's), every log's block hash must be its block's, and the last block
// must have the same hash before and after eth_getLogs; otherwise the chain
// moved while it was read, and the range is read again at the next poll.
//
// Reorganisations: before each range the chain's block at the cursor must
// still have the remembered hash. If not, the remembered hashes are walked
// back, newest first, to the newest block the chain still has with that
// hash (the fork point); the events after it are dropped and the cursor set
// back there (log::Warn "index.reorg"), and those blocks are read again. A
// reorganisation deeper than every remembered hash drops the whole index
// and reads again from the start (log::Error "index.deep_reorg"). Both are
// counted in IndexStatus::reorgs. Logs marked removed are ignored.
//
// Errors (the node unreachable, a malformed answer, a log that does not
// decode as the contract's event) never stop the thread: the poll ends,
// the error is kept in the status (and logged once) and the next poll
// starts again from the cursor. A log that does not decode holds the index
// there rather than being skipped: a missing licence change must not look
// like a fresh index. When eth_getLogs fails, the next attempt covers half
// the range (nodes cap the size of an answer), growing back on success.
//
// Thread-safe. `index` and `chain` must outlive the indexer.
#ifndef MEDVAULT_DAEMON_SIGNER_INDEXER_H_
#define MEDVAULT_DAEMON_SIGNER_INDEXER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/signer/event_index.h"
#include "daemon/signer/json_rpc_client.h"

namespace medvault::signer {

struct IndexerOptions {
  // 20 bytes each; empty: that contract is not followed. At least one.
  std::string audit_anchor;
  std::string licence_registry;
  std::string policy_registry;
  uint64_t from_block = 0;         // where a new index starts
  uint64_t expected_chain_id = 0;  // 0: whatever the node reports
  uint32_t confirmations = 1;      // 1: a block is indexed once it is the head
  uint32_t batch_blocks = 2000;    // blocks per eth_getLogs at most
  // Hashes are remembered this many blocks beyond `confirmations`: the
  // deepest reorganisation followed without reading everything again.
  uint32_t reorg_depth = 128;
  absl::Duration poll_interval = absl::Seconds(2);
  // For synced_at; tests pass a fake.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// IndexStatus of signer.proto.
struct IndexerStatus {
  uint64_t indexed_block = 0;           // every block up to it is indexed; 0: none yet
  uint64_t head_block = 0;              // at the last poll that reached the node
  std::optional<absl::Time> synced_at;  // last poll that reached the target
  std::string error;                    // of the last poll; empty if it succeeded
  uint64_t reorgs = 0;
};

class Indexer {
 public:
  // INVALID_ARGUMENT for options that cannot work (no contract, an address
  // not 20 bytes, zero confirmations or batch size). Reads the cursor.
  static absl::StatusOr<std::unique_ptr<Indexer>> Create(EventIndex* index, ChainClient* chain,
                                                         IndexerOptions options);
  // The scope to open the index with for `options` (its contracts and start).
  static EventIndexScope ScopeOf(const IndexerOptions& options);
  ~Indexer() { Stop(); }

  // Starts / stops the polling thread. Stop() waits for the current range.
  void Start();
  void Stop();

  // One poll: reads every eligible block (several ranges), following a
  // reorganisation first if there was one. The error, if any, is also
  // kept in status(). For tests and the thread; not to be called
  // concurrently with itself.
  absl::Status PollOnce();

  IndexerStatus status() const;
  const IndexerOptions& options() const { return options_; }
  // For the queries (thread-safe).
  EventIndex* index() const { return index_; }

 private:
  Indexer(EventIndex* index, ChainClient* chain, IndexerOptions options)
      : index_(index), chain_(chain), options_(std::move(options)), batch_(options_.batch_blocks) {}

  absl::Status Poll();
  // Checks the cursor's block; rewinds or resets the index after a
  // reorganisation. Returns the hash of the last indexed block (empty when
  // none is).
  absl::StatusOr<std::string> FollowReorg();
  // Reads blocks from..to (target: the newest eligible block; cursor_hash:
  // the hash of block from - 1, if indexed) and commits them.
  absl::Status IndexRange(uint64_t from, uint64_t to, uint64_t target,
                          const std::string& cursor_hash);
  // eth_getLogs of blocks from..to for every followed contract; halves the
  // next range after an error, grows it back after a success.
  absl::StatusOr<std::vector<EventLog>> ReadLogs(uint64_t from, uint64_t to);
  // The headers of blocks window..to, of every block with a log, and of `to`.
  absl::StatusOr<std::map<uint64_t, BlockHeader>> ReadHeaders(uint64_t window, uint64_t to,
                                                              const std::vector<EventLog>& logs);
  // The header of `number`; ABORTED when the node does not have it.
  absl::StatusOr<BlockHeader> Header(uint64_t number);
  // Decodes `logs` into `batch`, with timestamps from `headers`.
  absl::Status Decode(const std::vector<EventLog>& logs,
                      const std::map<uint64_t, BlockHeader>& headers, IndexBatch* batch);
  absl::Status RefreshCursor();
  void Run();
  bool stopping() const;

  // Constant after construction.
  EventIndex* const index_;
  ChainClient* const chain_;
  const IndexerOptions options_;

  mutable absl::Mutex mu_;
  IndexCursor cursor_ ABSL_GUARDED_BY(mu_);
  uint64_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> synced_at_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started / joined by Start / Stop only

  // The polling side's only (PollOnce is not concurrent with itself).
  uint32_t batch_;          // blocks of the next range, halved after an eth_getLogs error
  std::string last_error_;  // logs a change once
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_INDEXER_H_
