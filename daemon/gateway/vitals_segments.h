// How a device's live samples become stored records. SegmentWriter batches
// the samples of one Publish stream and stores each batch as a segment, on
// a thread of its own, so that the stream keeps reading (and fanning out to
// watchers) while a segment is encrypted and stored. StoreVitalsSegment is
// the store itself: the record write path of RecordService (a fresh data
// key from the keyvault, record_cipher, storage Put, the records row and
// its audit event in one transaction), plus the segment's row and the
// device's new stored_through in that same transaction.
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/gateway/core.h"
#include "medvault/v1/audit.pb.h"
#include "medvault/v1/records.pb.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {

// Stores `samples` (non-empty, in sequence order) of `device` as one VITALS
// record of content type kContentTypeVitalsSegment, authored by the
// hospital that enrolled the device, and appends `event` (completed with
// the record and its CID) in the same transaction. Returns the record.
// UNAVAILABLE when the keyvault or storage fails; nothing is kept then.
absl::StatusOr<v1::Record> StoreVitalsSegment(GatewayCore& core, const v1::Device& device,
                                              v1::AuditEvent event,
                                              const std::vector<v1::VitalSample>& samples);

// Batches samples and stores them, in order, on its own thread: when
// `max_samples` are waiting, when the oldest waiting sample has waited
// `every`, and at Close. After each store, calls `on_stored` (on that
// thread) with the last sequence number stored and the record id. The
// first failed store stops storing: status() returns it, and what waits
// (and whatever is added later) is dropped.
//
// Thread safety: Add, status and Close may be called from any thread;
// `store` and `on_stored` run on the writer's thread only, one at a time,
// and so does `on_tick`, at least every `tick`.
class SegmentWriter {
 public:
  using StoreFn = std::function<absl::StatusOr<std::string>(const std::vector<v1::VitalSample>&)>;
  using StoredFn = std::function<void(uint64_t stored_through, const std::string& record_id)>;
  using TickFn = std::function<void()>;

  SegmentWriter(absl::Duration every, size_t max_samples, absl::Duration tick, StoreFn store,
                StoredFn on_stored, TickFn on_tick);
  // Close()s.
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Queues samples (in sequence order, after those queued before). Never
  // waits for a store.
  void Add(std::vector<v1::VitalSample> samples) ABSL_LOCKS_EXCLUDED(mu_);
  // OK, or the first store's failure.
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);
  // Stores what is waiting, stops the thread, returns status(). Idempotent.
  absl::Status Close() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool Due() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const absl::Duration every_;
  const size_t max_samples_;
  const absl::Duration tick_;
  const StoreFn store_;
  const StoredFn on_stored_;
  const TickFn on_tick_;

  mutable absl::Mutex mu_;
  // Guarded by mu_.
  std::vector<v1::VitalSample> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time oldest_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_
