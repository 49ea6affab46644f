// The live side of VitalsService: each device's samples fanned out to the
// sessions watching it, in memory, without gRPC.
//
// Delivery: a watcher is handed batches through its DeliverFn, one delivery
// at a time. The publisher's own thread hands over a batch to a watcher
// that is not busy (no thread hop); batches published while the watcher's
// previous delivery is still being written wait in its queue and are handed
// over together, as one delivery, when the session calls Delivered().
//
// Backpressure: every watcher's queue is bounded. A watcher whose queue is
// full loses its oldest batch, and the loss is reported with its next
// delivery, so a slow watcher slows neither the device nor other watchers.
// The publisher never waits for a watcher.
//
// Thread safety: every method may be called from any thread. Lock order:
// the hub's lock, then a watcher's. DeliverFn is called with neither held.
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_HUB_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_HUB_H_

#include <cstdint>
#include <deque>
#include <functional>
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

// The samples of one PublishRequest, in sequence order, as the device's
// watchers and its segment store receive them. Immutable once made, so
// shared, never copied.
struct VitalsBatch {
  explicit VitalsBatch(std::vector<v1::VitalSample> s);

  std::vector<v1::VitalSample> samples;
  // Sum of the samples' encoded sizes (what a watch session reports).
  uint64_t bytes = 0;
};
using VitalsBatchPtr = std::shared_ptr<const VitalsBatch>;

// One watch session's end of the hub. Made by VitalsHub::AddWatcher; the
// session removes it with VitalsHub::RemoveWatcher when it ends.
class VitalsWatcher {
 public:
  // What is handed over at once.
  struct Delivery {
    // Oldest first; at least one batch, or dropped_samples > 0.
    std::vector<VitalsBatchPtr> batches;
    // Samples lost (queue overflow) since the previous delivery.
    uint64_t dropped_samples = 0;
  };
  // Starts writing `delivery` to the session's client, without waiting for
  // the write. Nothing more is handed over until Delivered() is called.
  using DeliverFn = std::function<void(Delivery delivery)>;

  // What Wait found. Both may be set at once.
  struct Wake {
    // RequestRecheck was called since the previous Wait.
    bool recheck = false;
    // Set once the watcher was closed (the device was revoked, the gateway
    // is stopping, the session ended); the session should end with it.
    std::optional<absl::Status> closed;
  };

  VitalsWatcher(std::string device_id, std::string patient_id, size_t max_queue, DeliverFn deliver)
      : device_id_(std::move(device_id)),
        patient_id_(std::move(patient_id)),
        max_queue_(max_queue),
        deliver_(std::move(deliver)) {}
  VitalsWatcher(const VitalsWatcher&) = delete;
  VitalsWatcher& operator=(const VitalsWatcher&) = delete;

  // Waits until a recheck is asked for, the watcher is closed, or
  // `deadline` passes. Batches never wake it: they go to DeliverFn.
  Wake Wait(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // The last delivery was written: hands over what queued meanwhile (as
  // one delivery, on this thread), if anything did.
  void Delivered() ABSL_LOCKS_EXCLUDED(mu_);
  // Nothing more is handed over, and Wait returns `status` from now on.
  // The first status given wins. Returns once no DeliverFn call is running,
  // so that the session may go away after it. Must not be called from
  // inside DeliverFn.
  void Close(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& device_id() const { return device_id_; }
  const std::string& patient_id() const { return patient_id_; }

 private:
  friend class VitalsHub;
  // Queues `batch` (dropping the oldest beyond max_queue_), or hands it
  // over at once if no delivery is being written.
  void Push(const VitalsBatchPtr& batch) ABSL_LOCKS_EXCLUDED(mu_);
  void RequestRecheck() ABSL_LOCKS_EXCLUDED(mu_);
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves what is queued into one delivery.
  Delivery TakeQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls deliver_, then counts the call as ended.
  void CallDeliver(Delivery delivery) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const std::string device_id_;
  const std::string patient_id_;
  const size_t max_queue_;
  const DeliverFn deliver_;

  absl::Mutex mu_;
  // Guarded by mu_.
  std::deque<VitalsBatchPtr> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;
  // A delivery was handed over and Delivered() has not been called since.
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  // DeliverFn calls running now.
  int calls_in_progress_ ABSL_GUARDED_BY(mu_) = 0;
  bool recheck_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> closed_ ABSL_GUARDED_BY(mu_);
};

class VitalsHub {
 public:
  // Each watcher queues at most `max_queue` batches (at least 1).
  explicit VitalsHub(size_t max_queue) : max_queue_(max_queue < 1 ? 1 : max_queue) {}
  VitalsHub(const VitalsHub&) = delete;
  VitalsHub& operator=(const VitalsHub&) = delete;

  // A new watcher of `device_id` (a device of `patient_id`): every batch
  // published from now on is handed to `deliver`.
  std::shared_ptr<VitalsWatcher> AddWatcher(const std::string& device_id,
                                            const std::string& patient_id,
                                            VitalsWatcher::DeliverFn deliver)
      ABSL_LOCKS_EXCLUDED(mu_);
  // It receives nothing more. Harmless if already removed.
  void RemoveWatcher(const std::shared_ptr<VitalsWatcher>& watcher) ABSL_LOCKS_EXCLUDED(mu_);

  // Fans `batch` (samples in strictly increasing sequence order) out to the
  // device's watchers. Samples at or below the highest sequence number
  // already published for the device are left out (a device resending
  // after a reconnect is not shown twice); only then is the batch copied.
  // Returns how many samples were published. Never waits for a watcher.
  size_t Publish(const std::string& device_id, VitalsBatchPtr batch) ABSL_LOCKS_EXCLUDED(mu_);

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
