// The live side of VitalsService: each device's samples fanned out to the
// sessions watching it, in memory, without gRPC.
//
// Backpressure: every watcher has its own bounded queue of batches (one
// batch per PublishRequest, shared between watchers, never copied). The
// publisher appends to each queue under that queue's own lock and returns;
// it never waits for a watcher to read. A watcher whose queue is full loses
// its oldest batch and is told how many samples it lost with its next
// batches, so a slow watcher slows neither the device nor other watchers.
//
// Thread safety: every method may be called from any thread. Lock order:
// the hub's lock, then a watcher's; a watcher's lock is held only to move
// batches in or out of its queue, never while waiting on gRPC.
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_HUB_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_HUB_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {

// The samples of one PublishRequest, in sequence order, as every watcher
// of the device receives them. Immutable once published.
struct VitalsBatch {
  std::vector<v1::VitalSample> samples;
};
using VitalsBatchPtr = std::shared_ptr<const VitalsBatch>;

// One watch session's end of the hub: its queue, and why it should decide
// its access again or stop. Made by VitalsHub::AddWatcher; the session
// removes it with VitalsHub::RemoveWatcher when it ends.
class VitalsWatcher {
 public:
  // What Wait found. Any combination may be set at once.
  struct Wake {
    // Oldest first.
    std::vector<VitalsBatchPtr> batches;
    // Samples dropped (queue overflow) since the previous Wait.
    uint64_t dropped_samples = 0;
    // RequestRecheck was called since the previous Wait.
    bool recheck = false;
    // Set once the hub closed this watcher (the device was revoked); the
    // session should end with it. Batches queued before are still given.
    std::optional<absl::Status> closed;
  };

  VitalsWatcher(std::string device_id, std::string patient_id, size_t max_queue)
      : device_id_(std::move(device_id)),
        patient_id_(std::move(patient_id)),
        max_queue_(max_queue) {}
  VitalsWatcher(const VitalsWatcher&) = delete;
  VitalsWatcher& operator=(const VitalsWatcher&) = delete;

  // Takes everything queued, waiting until something is there (a batch, a
  // recheck request, the close) or `deadline` passes.
  Wake Wait(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& device_id() const { return device_id_; }
  const std::string& patient_id() const { return patient_id_; }

 private:
  friend class VitalsHub;
  // Appends, dropping the oldest batch beyond max_queue_.
  void Push(const VitalsBatchPtr& batch) ABSL_LOCKS_EXCLUDED(mu_);
  void RequestRecheck() ABSL_LOCKS_EXCLUDED(mu_);
  void Close(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const std::string device_id_;
  const std::string patient_id_;
  const size_t max_queue_;

  absl::Mutex mu_;
  // Guarded by mu_.
  std::deque<VitalsBatchPtr> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;
  bool recheck_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
};

class VitalsHub {
 public:
  // Each watcher queues at most `max_queue` batches (at least 1).
  explicit VitalsHub(size_t max_queue) : max_queue_(max_queue < 1 ? 1 : max_queue) {}
  VitalsHub(const VitalsHub&) = delete;
  VitalsHub& operator=(const VitalsHub&) = delete;

  // A new watcher of `device_id` (a device of `patient_id`): it receives
  // every batch published from now on.
  std::shared_ptr<VitalsWatcher> AddWatcher(const std::string& device_id,
                                            const std::string& patient_id) ABSL_LOCKS_EXCLUDED(mu_);
  // It receives nothing more. Harmless if already removed.
  void RemoveWatcher(const std::shared_ptr<VitalsWatcher>& watcher) ABSL_LOCKS_EXCLUDED(mu_);

  // Fans `samples` (in strictly increasing sequence order) out to the
  // device's watchers. Samples at or below the highest sequence number
  // already published for the device are left out: a device resending
  // after a reconnect is not shown twice. Returns how many were published.
  // Never waits for a watcher.
  size_t Publish(const std::string& device_id, std::vector<v1::VitalSample> samples)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every watcher of the patient's devices decides its access again at
  // once (a grant of the patient was revoked).
  void RecheckPatient(const std::string& patient_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every watch of the device with `status` (it was revoked).
  void CloseDevice(const std::string& device_id, const absl::Status& status)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every watch, and every watch added later, with `status` (the
  // gateway is stopping).
  void CloseAll(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  size_t watcher_count(const std::string& device_id) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Channel {
    std::vector<std::shared_ptr<VitalsWatcher>> watchers;
    // The highest sequence number published (0: none).
    uint64_t published_through = 0;
  };

  // Constant after construction.
  const size_t max_queue_;

  mutable absl::Mutex mu_;
  // Guarded by mu_. A channel stays once made: it remembers
  // published_through across reconnects (one small entry per device).
  absl::flat_hash_map<std::string, Channel> channels_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> closed_all_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_HUB_H_
