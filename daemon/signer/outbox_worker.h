// OutboxWorker: takes anchoring requests into the durable outbox
// (outbox_store.h) and, on a thread of its own, puts them on chain one at a
// time, oldest first.
//
// For the oldest unfinished entry:
//   queued: simulate anchor() at the latest block (AlreadyAnchored: done,
//     nothing sent; another revert: failed, with the reason); take the
//     node's pending nonce; sign; write the signed transaction and its
//     nonce to the outbox; only then broadcast. A node that refuses the
//     transaction puts the entry back in the queue (a fresh nonce next time).
//   sent: first the mined nonce count, then the receipts of every
//     transaction signed for the entry (a fee bump may leave either the
//     original or a replacement mined), newest first. A receipt `confirmations` deep
//     finishes the entry (a revert is replayed for its reason;
//     AlreadyAnchored counts as done). No receipt but the nonce mined: the
//     nonce went to something else, so the tree head is checked on chain
//     (already anchored: done) or the entry is queued again. The node's
//     pool lacks the nonce (a node restarted without its pool, a crash
//     before the broadcast): the newest transaction is broadcast again.
//     Still pending after `bump_after`: replaced, same nonce, fees raised by
//     at least 12.5 % (fee_policy.h BumpFees), recorded before it is sent.
// Because nonces and transactions are in the database before they reach
// the node, a restart after kill -9 resumes exactly there: nothing is sent
// twice with different nonces, and nothing acknowledged is lost.
//
// Errors talking to the node or the keyvault are retried with backoff up to
// `max_backoff`; the outbox keeps accepting requests meanwhile.
//
// Thread-safe. `store`, `anchorer` and `chain` must outlive the worker.
#ifndef MEDVAULT_DAEMON_SIGNER_OUTBOX_WORKER_H_
#define MEDVAULT_DAEMON_SIGNER_OUTBOX_WORKER_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/signer/anchorer.h"
#include "daemon/signer/json_rpc_client.h"
#include "daemon/signer/outbox_store.h"

namespace medvault::signer {

struct OutboxWorkerOptions {
  uint64_t capacity = 10000;                      // unfinished entries at most
  absl::Duration bump_after = absl::Seconds(60);  // pending this long: fee bump
  absl::Duration poll_interval = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(15);
};

class OutboxWorker {
 public:
  OutboxWorker(OutboxStore* store, Anchorer* anchorer, ChainClient* chain,
               OutboxWorkerOptions options)
      : store_(store), anchorer_(anchorer), chain_(chain), options_(options) {}
  ~OutboxWorker() { Stop(); }

  // Starts / stops the thread. Stop() waits for the current step to end.
  void Start();
  void Stop();

  // Validates the request (INVALID_ARGUMENT naming the field), stores it
  // durably (OutboxStore::Enqueue: FAILED_PRECONDITION, UNAVAILABLE when
  // full) and wakes the thread. Never talks to the chain.
  absl::StatusOr<OutboxStore::Enqueued> Submit(absl::string_view log_id, uint64_t tree_size,
                                               absl::string_view root_hash);
  // The entry once it is final (confirmed or failed), or as it is at
  // `deadline`. NOT_FOUND for an unknown id.
  absl::StatusOr<OutboxEntry> WaitFinal(int64_t id, absl::Time deadline);

  // One step on the oldest unfinished entry: true when there may be more to
  // do at once, false when waiting (for a block, or nothing to do). Errors
  // are transient (the node or keyvault unreachable). For tests; the
  // thread calls it in a loop.
  absl::StatusOr<bool> Step();

 private:
  absl::StatusOr<bool> SendFirst(const OutboxEntry& entry);
  absl::StatusOr<bool> Track(const OutboxEntry& entry);
  // The entry reached a receipt at `block` that is deep enough.
  absl::StatusOr<bool> Settle(const OutboxEntry& entry, const CallRequest& call,
                              const TransactionReceipt& receipt);
  absl::Status Broadcast(const SentTransaction& tx);
  absl::StatusOr<bool> BumpFees(const OutboxEntry& entry, const CallRequest& call);
  void Run();
  void Notify();

  // Constant after construction.
  OutboxStore* const store_;
  Anchorer* const anchorer_;
  ChainClient* const chain_;
  const OutboxWorkerOptions options_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // counts finished steps, for WaitFinal
  std::thread thread_;                         // started / joined by Start / Stop only
  std::string last_error_;                     // the worker thread's only: logs a change once
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_OUTBOX_WORKER_H_
