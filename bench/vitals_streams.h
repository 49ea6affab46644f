// The streams of the vitals load generator (bench/vitals_load.cc), on
// gRPC's asynchronous client API: a few threads, each draining one
// CompletionQueue, serve every device's Publish stream (paced by a
// grpc::Alarm per device) and every watcher's Watch stream, so that
// hundreds of streams need no thread each.
//
// Thread safety: every stream belongs to one Worker and its callbacks run
// on that worker's thread only, so a worker's Stats need no lock; the main
// thread reads them only after every stream of the phase has finished
// (Worker::finished, acquire), and the progress counters are atomics.
// Start and Stop may be called from the main thread.
#ifndef MEDVAULT_BENCH_VITALS_STREAMS_H_
#define MEDVAULT_BENCH_VITALS_STREAMS_H_

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "medvault/v1/vitals.grpc.pb.h"

namespace medvault::bench {

using Clock = std::chrono::steady_clock;

// Milliseconds in buckets of 0.1 ms up to 10 s; beyond, one overflow
// bucket (the maximum is kept exactly).
class Histogram {
 public:
  void Add(double ms);
  void Merge(const Histogram& other);
  // The upper edge of the bucket holding the p-th percentile (p in 0..100];
  // the maximum for p = 100 or in the overflow bucket; 0 when empty.
  double Percentile(double p) const;
  uint64_t count() const { return count_; }
  double max() const { return max_; }

 private:
  static constexpr double kWidthMs = 0.1;
  static constexpr size_t kBuckets = 100000;
  std::vector<uint64_t> buckets_;  // kBuckets + 1 once used
  uint64_t count_ = 0;
  double max_ = 0;
};

// What one worker's streams measured in a phase.
struct Stats {
  Histogram latency_ms;             // watcher receive time - sample time, in the window
  Histogram sender_lag_ms;          // a tick's firing - its schedule (the generator's own delay)
  Histogram baseline_ms;            // health Check round trips, in the window
  uint64_t sent_in_window = 0;      // samples stamped inside the window
  uint64_t received_in_window = 0;  // by all watchers
  uint64_t received_total = 0;
  uint64_t dropped = 0;  // dropped_samples the gateway reported
  uint64_t acks = 0;
  uint64_t messages_sent = 0;
  uint64_t baseline_calls = 0, baseline_skipped = 0;
  // Calls and streams that did not end as asked: how many, and the first
  // few messages.
  uint64_t errors_total = 0;
  std::vector<std::string> errors;
  void Error(std::string what) {
    if (++errors_total <= 5) errors.push_back(std::move(what));
  }
};

// The measurement window, as Unix microseconds of the samples' time
// stamps (and of the baseline calls' start).
struct Window {
  std::atomic<int64_t> start_us{INT64_MAX};
  std::atomic<int64_t> end_us{INT64_MAX};
  bool Contains(int64_t us) const {
    return us >= start_us.load(std::memory_order_relaxed) &&
           us < end_us.load(std::memory_order_relaxed);
  }
};

// A completion queue and the thread that drains it. Each tag is an Op.
class Worker {
 public:
  struct Op {
    std::function<void(bool)> run;
  };

  Worker();
  ~Worker();  // shuts the queue down and joins the thread
  grpc::CompletionQueue* cq() { return &cq_; }

  // Stats of the current phase (worker thread only while it runs).
  Stats stats;
  // Progress, read by the main thread at any time.
  std::atomic<uint64_t> progress_received{0}, progress_late{0}, progress_sent{0};
  // Streams of the phase that have ended, and that have started.
  std::atomic<int> finished{0}, started{0};

  void ResetPhase() {
    stats = Stats();
    progress_received = progress_late = progress_sent = 0;
    finished = started = 0;
  }

 private:
  grpc::CompletionQueue cq_;
  std::thread thread_;
};

// A device's lasting parts: its own TLS connection (its certificate) and
// the next sequence number it sends.
struct DeviceIdentity {
  std::string device_id;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::VitalsService::Stub> vitals;
  std::unique_ptr<grpc::GenericStub> generic;
  uint64_t next_sequence = 1;
};

// One device for one phase: either publishing `samples_per_tick` samples
// every `tick` (channels "ECG lead I/II/III" in turn, each sample's time
// the moment its tick fired), or, for the baseline, one
// grpc.health.v1.Health/Check call per tick on the same connection (a
// tick whose previous call has not returned is skipped and counted).
class DeviceStream {
 public:
  enum class Mode { kPublish, kBaseline };
  DeviceStream(DeviceIdentity& identity, Worker& worker, const Window& window, Mode mode,
               std::chrono::microseconds tick, int samples_per_tick);
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;

  // Starts the stream; the first tick is at `first_tick` (after `started`
  // for Publish).
  void Start(Clock::time_point first_tick);
  // No tick after this; the stream ends (WritesDone, its last segment
  // stored) and the worker's `finished` counts it.
  void Stop() { stopping_.store(true, std::memory_order_relaxed); }
  // Cancels a Publish stream that does not end after Stop (main thread,
  // after Start).
  void Cancel() {
    if (context_ != nullptr) context_->TryCancel();
  }

 private:
  void OnStarted(bool ok);
  void OnRead(bool ok);
  void OnTick(bool ok);
  void OnWritten(bool ok);
  void OnHealth(bool ok);
  void OnFinished(bool ok);
  void Arm();
  void Flush();
  void MaybeFinish();
  void Done();

  DeviceIdentity& id_;
  Worker& worker_;
  const Window& window_;
  const Mode mode_;
  const std::chrono::microseconds tick_;
  const int samples_per_tick_;
  std::atomic<bool> stopping_{false};

  Worker::Op started_op_, read_op_, tick_op_, write_op_, writes_done_op_, health_op_, finish_op_;
  grpc::Alarm alarm_;
  Clock::time_point next_tick_;
  bool armed_ = false, writing_ = false, reads_done_ = false, writes_done_ = false;
  bool finishing_ = false, finished_ = false, done_ = false, ticks_stopped_ = false;
  bool writes_done_pending_ = false;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::PublishRequest, v1::PublishResponse>> stream_;
  v1::PublishRequest pending_, request_;
  v1::PublishResponse response_;
  grpc::Status status_;
  // Baseline.
  std::unique_ptr<grpc::ClientContext> health_context_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> health_;
  grpc::ByteBuffer health_request_, health_response_;
  grpc::Status health_status_;
  Clock::time_point health_sent_;
  int64_t health_sent_us_ = 0;
  bool health_busy_ = false;
};

// One practitioner watching one device (through their hospital's
// connection): every sample's latency is its arrival minus its time.
class WatchStream {
 public:
  WatchStream(v1::VitalsService::Stub& hospital, Worker& worker, const Window& window,
              std::string practitioner_id, std::string patient_id, std::string device_id,
              double late_ms);
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  void Start();
  // Cancels the stream; the worker's `finished` counts it once it ended.
  void Stop() {
    stopped_.store(true);
    context_->TryCancel();
  }

 private:
  void OnStarted(bool ok);
  void OnRead(bool ok);
  void OnFinished(bool ok);

  v1::VitalsService::Stub& hospital_;
  Worker& worker_;
  const Window& window_;
  const std::string practitioner_id_, patient_id_, device_id_;
  const double late_ms_;
  Worker::Op started_op_, read_op_, finish_op_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientAsyncReader<v1::WatchResponse>> reader_;
  v1::WatchResponse response_;
  grpc::Status status_;
  std::atomic<bool> stopped_{false};
};

// Microseconds since the Unix epoch, now.
int64_t UnixMicrosNow();

}  // namespace medvault::bench

#endif  // MEDVAULT_BENCH_VITALS_STREAMS_H_
