#include "bench/vitals_streams.h"

#include <algorithm>
#include <cmath>

#include "tests/integration/gateway_client.h"

namespace medvault::bench {

using integration::StatusText;

namespace {

constexpr char kHealthCheck[] = "/grpc.health.v1.Health/Check";
const char* const kLeads[] = {"ECG lead I", "ECG lead II", "ECG lead III"};
// Streams of a phase live at most this long (a phase is far shorter).
constexpr auto kStreamDeadline = std::chrono::hours(2);
constexpr auto kHealthDeadline = std::chrono::seconds(10);

}  // namespace

int64_t UnixMicrosNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- Histogram --------------------------------------------------------------

void Histogram::Add(double ms) {
  if (buckets_.empty()) buckets_.assign(kBuckets + 1, 0);
  const double b = std::floor(std::max(ms, 0.0) / kWidthMs);
  ++buckets_[b >= kBuckets ? kBuckets : static_cast<size_t>(b)];
  ++count_;
  max_ = std::max(max_, ms);
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  if (buckets_.empty()) buckets_.assign(kBuckets + 1, 0);
  for (size_t i = 0; i <= kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

double Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (p >= 100) return max_;
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p / 100 * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min((i + 1) * kWidthMs, max_);
  }
  return max_;
}

// --- Worker -----------------------------------------------------------------

Worker::Worker()
    : thread_([this] {
        void* tag = nullptr;
        bool ok = false;
        while (cq_.Next(&tag, &ok)) static_cast<Op*>(tag)->run(ok);
      }) {}

Worker::~Worker() {
  cq_.Shutdown();
  thread_.join();
}

// --- DeviceStream -----------------------------------------------------------

DeviceStream::DeviceStream(DeviceIdentity& identity, Worker& worker, const Window& window,
                           Mode mode, std::chrono::microseconds tick, int samples_per_tick)
    : id_(identity),
      worker_(worker),
      window_(window),
      mode_(mode),
      tick_(tick),
      samples_per_tick_(samples_per_tick) {
  started_op_.run = [this](bool ok) { OnStarted(ok); };
  read_op_.run = [this](bool ok) { OnRead(ok); };
  tick_op_.run = [this](bool ok) { OnTick(ok); };
  write_op_.run = [this](bool ok) { OnWritten(ok); };
  writes_done_op_.run = [this](bool) {
    writes_done_pending_ = false;
    MaybeFinish();
  };
  health_op_.run = [this](bool ok) { OnHealth(ok); };
  finish_op_.run = [this](bool ok) { OnFinished(ok); };
  // An empty HealthCheckRequest (service "": the server as a whole).
  grpc::Slice empty(std::string{});
  health_request_ = grpc::ByteBuffer(&empty, 1);
}

void DeviceStream::Start(Clock::time_point first_tick) {
  next_tick_ = first_tick;
  if (mode_ == Mode::kBaseline) {
    worker_.started.fetch_add(1);
    Arm();
    return;
  }
  context_ = std::make_unique<grpc::ClientContext>();
  context_->set_deadline(std::chrono::system_clock::now() + kStreamDeadline);
  stream_ = id_.vitals->PrepareAsyncPublish(context_.get(), worker_.cq());
  stream_->StartCall(&started_op_);
}

void DeviceStream::Arm() {
  armed_ = true;
  // grpc::Alarm takes the system clock only.
  alarm_.Set(worker_.cq(),
             std::chrono::system_clock::now() +
                 std::chrono::duration_cast<std::chrono::system_clock::duration>(next_tick_ -
                                                                                 Clock::now()),
             &tick_op_);
}

void DeviceStream::OnStarted(bool ok) {
  if (!ok) {
    reads_done_ = true;
    MaybeFinish();
    return;
  }
  stream_->Read(&response_, &read_op_);
}

void DeviceStream::OnRead(bool ok) {
  if (!ok) {
    reads_done_ = true;
    MaybeFinish();
    return;
  }
  if (response_.has_started()) {
    // Resume after what is stored (a previous phase's last segment).
    id_.next_sequence =
        std::max(id_.next_sequence, response_.started().stored_through() + uint64_t{1});
    worker_.started.fetch_add(1);
    Arm();
  } else if (response_.has_ack()) {
    ++worker_.stats.acks;
  }
  stream_->Read(&response_, &read_op_);
}

void DeviceStream::OnTick(bool /*ok*/) {
  armed_ = false;
  if (stopping_.load(std::memory_order_relaxed) || reads_done_) {
    ticks_stopped_ = true;
    MaybeFinish();
    return;
  }
  const Clock::time_point now = Clock::now();
  worker_.stats.sender_lag_ms.Add(
      std::chrono::duration<double, std::milli>(now - next_tick_).count());
  const int64_t now_us = UnixMicrosNow();
  if (mode_ == Mode::kPublish) {
    for (int i = 0; i < samples_per_tick_; ++i) {
      v1::VitalSample* s = pending_.add_samples();
      const uint64_t sequence = id_.next_sequence++;
      s->set_sequence(sequence);
      s->mutable_time()->set_seconds(now_us / 1000000);
      s->mutable_time()->set_nanos(static_cast<int32_t>(now_us % 1000000) * 1000);
      s->set_channel(kLeads[sequence % 3]);
      s->set_value(0.05 * static_cast<double>(sequence % 150) / 150.0 - 0.1 * (sequence % 3));
      s->set_unit("mV");
    }
    if (window_.Contains(now_us)) {
      worker_.stats.sent_in_window += samples_per_tick_;
      worker_.progress_sent.fetch_add(samples_per_tick_, std::memory_order_relaxed);
    }
    if (!writing_) Flush();
  } else if (health_busy_) {
    if (window_.Contains(now_us)) ++worker_.stats.baseline_skipped;
  } else {
    health_busy_ = true;
    health_context_ = std::make_unique<grpc::ClientContext>();
    health_context_->set_deadline(std::chrono::system_clock::now() + kHealthDeadline);
    health_ = id_.generic->PrepareUnaryCall(health_context_.get(), kHealthCheck, health_request_,
                                            worker_.cq());
    health_sent_ = now;
    health_sent_us_ = now_us;
    health_->StartCall();
    health_->Finish(&health_response_, &health_status_, &health_op_);
  }
  next_tick_ += tick_;
  Arm();
}

void DeviceStream::Flush() {
  request_.Clear();
  request_.Swap(&pending_);
  writing_ = true;
  ++worker_.stats.messages_sent;
  stream_->Write(request_, &write_op_);
}

void DeviceStream::OnWritten(bool ok) {
  writing_ = false;
  // Not ok: the stream is broken; the reader sees why.
  if (ok && pending_.samples_size() > 0 && !reads_done_) {
    Flush();
    return;
  }
  MaybeFinish();
}

void DeviceStream::OnHealth(bool /*ok*/) {
  health_busy_ = false;
  if (!health_status_.ok()) {
    worker_.stats.Error(id_.device_id + ": Health.Check: " + StatusText(health_status_));
  } else if (window_.Contains(health_sent_us_)) {
    ++worker_.stats.baseline_calls;
    worker_.stats.baseline_ms.Add(
        std::chrono::duration<double, std::milli>(Clock::now() - health_sent_).count());
  }
  MaybeFinish();
}

// Ends the phase's stream once nothing is in flight: for Publish,
// WritesDone after the last write (the gateway then stores the last
// segment and ends the call), Finish once the reads ended.
void DeviceStream::MaybeFinish() {
  if (mode_ == Mode::kBaseline) {
    if (ticks_stopped_ && !armed_ && !health_busy_) Done();
    return;
  }
  if (ticks_stopped_ && !writing_ && !writes_done_ && !reads_done_) {
    writes_done_ = writes_done_pending_ = true;
    stream_->WritesDone(&writes_done_op_);
  }
  if (reads_done_ && !writing_ && !writes_done_pending_ && !finishing_) {
    finishing_ = true;
    stream_->Finish(&status_, &finish_op_);
  }
  if (finished_ && !armed_) Done();
}

void DeviceStream::OnFinished(bool /*ok*/) {
  finished_ = true;
  if (!status_.ok()) worker_.stats.Error(id_.device_id + ": Publish: " + StatusText(status_));
  MaybeFinish();
}

void DeviceStream::Done() {
  if (done_) return;
  done_ = true;
  worker_.finished.fetch_add(1, std::memory_order_release);
}

// --- WatchStream ------------------------------------------------------------

WatchStream::WatchStream(v1::VitalsService::Stub& hospital, Worker& worker, const Window& window,
                         std::string practitioner_id, std::string patient_id, std::string device_id,
                         double late_ms)
    : hospital_(hospital),
      worker_(worker),
      window_(window),
      practitioner_id_(std::move(practitioner_id)),
      patient_id_(std::move(patient_id)),
      device_id_(std::move(device_id)),
      late_ms_(late_ms) {
  started_op_.run = [this](bool ok) { OnStarted(ok); };
  read_op_.run = [this](bool ok) { OnRead(ok); };
  finish_op_.run = [this](bool ok) { OnFinished(ok); };
}

void WatchStream::Start() {
  context_ = std::make_unique<grpc::ClientContext>();
  context_->set_deadline(std::chrono::system_clock::now() + kStreamDeadline);
  context_->AddMetadata("medvault-practitioner", practitioner_id_);
  v1::WatchRequest request;
  request.set_patient_id(patient_id_);
  request.set_device_id(device_id_);
  reader_ = hospital_.PrepareAsyncWatch(context_.get(), request, worker_.cq());
  reader_->StartCall(&started_op_);
}

void WatchStream::OnStarted(bool ok) {
  if (!ok) {
    reader_->Finish(&status_, &finish_op_);
    return;
  }
  reader_->Read(&response_, &read_op_);
}

void WatchStream::OnRead(bool ok) {
  if (!ok) {
    reader_->Finish(&status_, &finish_op_);
    return;
  }
  const int64_t now_us = UnixMicrosNow();
  Stats& stats = worker_.stats;
  if (response_.has_started()) worker_.started.fetch_add(1);
  stats.dropped += response_.dropped_samples();
  for (const v1::VitalSample& s : response_.samples()) {
    const int64_t sent_us = s.time().seconds() * 1000000 + s.time().nanos() / 1000;
    ++stats.received_total;
    if (!window_.Contains(sent_us)) continue;
    const double ms = static_cast<double>(now_us - sent_us) / 1000.0;
    stats.latency_ms.Add(ms);
    ++stats.received_in_window;
    worker_.progress_received.fetch_add(1, std::memory_order_relaxed);
    if (ms > late_ms_) worker_.progress_late.fetch_add(1, std::memory_order_relaxed);
  }
  reader_->Read(&response_, &read_op_);
}

void WatchStream::OnFinished(bool /*ok*/) {
  if (!(status_.error_code() == grpc::StatusCode::CANCELLED && stopped_.load())) {
    worker_.stats.Error(practitioner_id_ + " watching " + device_id_ + ": " + StatusText(status_));
  }
  worker_.finished.fetch_add(1, std::memory_order_release);
}

}  // namespace medvault::bench
