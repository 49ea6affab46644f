// VitalsService.Publish: a device streams samples; each batch goes to the
// device's watchers (VitalsHub) on the thread that read it, and into the
// next segment, which the stream's worker thread stores every
// gateway.vitals.segment_ms or segment_samples, and when the stream ends.
//
// A stream ends for one reason, the first given to End():
//   - the device half-closes (OK) or goes away (CANCELLED);
//   - a request is malformed (INVALID_ARGUMENT naming the field);
//   - a segment cannot be stored (the backend's error);
//   - the device is revoked (PERMISSION_DENIED);
//   - a newer stream of the device takes over (ABORTED);
//   - the gateway stops (UNAVAILABLE).
// Whatever the reason, what was received before it is stored (and
// acknowledged) before the status is sent, except after a failed store.
#include <openssl/rand.h>

#include <cmath>
#include <deque>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/vitals_segments.h"
#include "daemon/gateway/vitals_service.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {
namespace {

constexpr char kMethod[] = "/medvault.v1.VitalsService/Publish";
constexpr int kMaxSamplesPerMessage = 1000;
constexpr absl::Duration kSlotWait = absl::Seconds(30);

bool Printable(const std::string& text, size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The field of sample `index` ("samples[3].value"). Built only for an
// error: this is checked for every sample a device sends.
std::string SampleField(int index, absl::string_view part) {
  return absl::StrCat("samples[", index, "].", part);
}

absl::Status CheckSample(const v1::VitalSample& s, int index) {
  if (s.sequence() == 0 || s.sequence() > uint64_t{std::numeric_limits<int64_t>::max()}) {
    return InvalidField(SampleField(index, "sequence"), "must be from 1 to 2^63 - 1");
  }
  if (!s.has_time() || s.time().seconds() <= 0 || s.time().seconds() > 253402300799 ||
      s.time().nanos() < 0 || s.time().nanos() > 999999999) {
    return InvalidField(SampleField(index, "time"),
                        "a time after 1970 and before 10000 is required");
  }
  if (!Printable(s.channel(), 64)) {
    return InvalidField(SampleField(index, "channel"), "1 to 64 printable ASCII characters");
  }
  if (!std::isfinite(s.value())) {
    return InvalidField(SampleField(index, "value"), "must be a finite number");
  }
  if (!Printable(s.unit(), 32)) {
    return InvalidField(SampleField(index, "unit"), "1 to 32 printable ASCII characters");
  }
  return absl::OkStatus();
}

// The samples of `request` to keep: each checked, those at or below
// `stored_through` (a resend) left out, the others strictly increasing
// after *last, which moves to the last one kept.
absl::StatusOr<std::vector<v1::VitalSample>> TakeSamples(v1::PublishRequest& request,
                                                         uint64_t stored_through, uint64_t* last) {
  if (request.samples_size() < 1 || request.samples_size() > kMaxSamplesPerMessage) {
    return InvalidField("samples", absl::StrCat("1 to ", kMaxSamplesPerMessage, " per message"));
  }
  std::vector<v1::VitalSample> kept;
  kept.reserve(request.samples_size());
  for (int i = 0; i < request.samples_size(); ++i) {
    v1::VitalSample& s = *request.mutable_samples(i);
    RETURN_IF_ERROR(CheckSample(s, i));
    if (s.sequence() <= stored_through) continue;
    if (s.sequence() <= *last) {
      return InvalidField(SampleField(i, "sequence"),
                          absl::StrCat("must be greater than the previous sample's (", *last, ")"));
    }
    *last = s.sequence();
    kept.push_back(std::move(s));
  }
  return kept;
}

// Who publishes: a device's certificate is a DEVICE to policy, acting as
// itself (devices call nothing but Publish, so ResolveCaller, which serves
// every other RPC, refuses them). Any other caller is resolved as usual,
// and policy refuses it.
absl::StatusOr<Caller> ResolvePublisher(const grpc::ServerContextBase& context, GatewayCore& core) {
  ASSIGN_OR_RETURN(ClientIdentity identity, CallerIdentity(context, core.revocations));
  if (identity.role != "device") return ResolveCaller(context, core);
  if (core.rate_limiter != nullptr) {
    RETURN_IF_ERROR(core.rate_limiter->Acquire(identity.organization_id));
  }
  Caller caller;
  caller.organization = std::move(identity);
  caller.policy_role = "DEVICE";
  caller.actor_id = caller.organization.organization_id;
  return caller;
}

}  // namespace

// One Publish call. gRPC calls the On* reactions; the worker thread runs
// Run(). The object deletes itself in OnDone, after the worker has ended.
class VitalsService::PublishStream final
    : public grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse> {
 public:
  PublishStream(VitalsService& service, grpc::CallbackServerContext& context)
      : service_(service), core_(service.core_), context_(context) {
    worker_ = std::thread([this] { Run(); });
  }

  // Ends the stream with `status` once what it received is stored. The
  // first status given wins. Never waits.
  void End(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!end_.has_value()) end_ = std::move(status);
  }

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel() override { End(absl::CancelledError("the device went away")); }
  void OnDone() override {
    worker_.join();  // it ended with Finish: this does not wait long
    delete this;
  }

 private:
  // The worker: Open, then StoreUntilEnd, then the status.
  void Run();
  // Decides the call, takes the device's slot, sends `started` and starts
  // reading.
  absl::Status Open() ABSL_LOCKS_EXCLUDED(mu_);
  // Stores segments until the stream ends; returns why it ended.
  absl::Status StoreUntilEnd() ABSL_LOCKS_EXCLUDED(mu_);
  // Queues `message`; one write is in flight at a time.
  void Send(v1::PublishResponse message) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends `status` once every queued message is written.
  void FinishWith(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void StartNextWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  VitalsService& service_;
  GatewayCore& core_;
  grpc::CallbackServerContext& context_;

  // Set by Open before the first read, constant after.
  std::string device_id_;
  v1::Device device_;
  v1::AuditEvent event_;
  bool slot_taken_ = false;
  // Used by OnReadDone only (one read in flight at a time).
  v1::PublishRequest request_;
  uint64_t last_sequence_ = 0;

  absl::Mutex mu_;
  // Guarded by mu_. Why the stream ends, once known.
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);
  // Received, not yet handed to a store; oldest_ is when the first came.
  std::vector<VitalsBatchPtr> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_samples_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time oldest_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Messages to write; the front one is being written.
  std::deque<v1::PublishResponse> writes_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;

  std::thread worker_;
};

grpc::ServerBidiReactor<v1::PublishRequest, v1::PublishResponse>* VitalsService::Publish(
    grpc::CallbackServerContext* context) {
  return new PublishStream(*this, *context);
}

void VitalsService::PublishStream::Run() {
  absl::Status status = Open();
  if (status.ok()) status = StoreUntilEnd();
  if (slot_taken_) service_.ReleasePublishSlot(device_id_, this);
  FinishWith(ToGrpcStatus(status));
}

absl::Status VitalsService::PublishStream::Open() {
  ASSIGN_OR_RETURN(const Caller caller, ResolvePublisher(context_, core_));
  device_id_ = caller.actor_id;
  const std::string& device_id = device_id_;
  const absl::Time now = absl::Now();
  absl::StatusOr<v1::Device> found = ReadDevice(core_.db, device_id);
  if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
  // A device never enrolled has no device.* facts: policy denies it.
  Facts facts;
  event_.set_method(kMethod);
  event_.set_subject_id(device_id);
  if (found.ok()) {
    facts.String("device.id", found->device_id())
        .String("device.patient_id", found->patient_id())
        .String("device.status", v1::Device::Status_Name(found->status()))
        .String("patient.id", found->patient_id());
    event_.set_patient_id(found->patient_id());
  }
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "vitals.publish",
                                                             std::move(facts), now, event_));
  FillAuditEvent(caller, "vitals.publish", now, decision, event_);

  RETURN_IF_ERROR(service_.TakePublishSlot(device_id, this));
  slot_taken_ = true;
  // Read again now that no other stream of the device is storing.
  ASSIGN_OR_RETURN(device_, ReadDevice(core_.db, device_id));
  if (device_.status() != v1::Device::ACTIVE) {
    return absl::PermissionDeniedError(absl::StrCat("device \"", device_id, "\" was revoked"));
  }
  last_sequence_ = device_.stored_through();
  v1::PublishResponse started;
  started.mutable_started()->set_stored_through(device_.stored_through());
  Send(std::move(started));
  absl::MutexLock lock(&mu_);
  if (!end_.has_value()) StartRead(&request_);
  return absl::OkStatus();
}

void VitalsService::PublishStream::OnReadDone(bool ok) {
  if (!ok) {
    // The device half-closed, or the call broke.
    End(context_.IsCancelled() ? absl::CancelledError("the device went away") : absl::OkStatus());
    return;
  }
  absl::StatusOr<std::vector<v1::VitalSample>> samples =
      TakeSamples(request_, device_.stored_through(), &last_sequence_);
  if (!samples.ok()) {
    End(samples.status());
    return;
  }
  absl::MutexLock lock(&mu_);
  if (end_.has_value()) return;  // revoked or ending: nothing more is taken
  if (!samples->empty()) {
    auto batch = std::make_shared<const VitalsBatch>(*std::move(samples));
    if (pending_.empty()) oldest_ = absl::Now();
    pending_.push_back(batch);
    pending_samples_ += batch->samples.size();
    // Under mu_, so that nothing reaches a watcher once End() returned
    // (lock order: this stream, the hub, a watcher, a watch session).
    service_.hub_.Publish(device_.device_id(), std::move(batch));
  }
  StartRead(&request_);
}

absl::Status VitalsService::PublishStream::StoreUntilEnd() {
  const auto& config = core_.config.vitals();
  const absl::Duration every = absl::Milliseconds(config.segment_ms());
  const size_t max_samples = std::max<size_t>(config.segment_samples(), 1);
  // The first segment closes after a random half to all of `every`, so
  // that streams which start together (a gateway restart, a ward coming
  // online) do not go on storing their segments all at the same moment: in
  // the load benchmark such a burst every 5 s set the latency p99.
  absl::Duration due_after = every;
  if (uint16_t r = 0; RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) == 1) {
    due_after = every / 2 + every / 2 * (r / 65536.0);
  }
  while (true) {
    std::vector<VitalsBatchPtr> batches;
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      // Wakes when the stream ends, a segment is full, or the first
      // sample of a segment arrives (which sets the deadline).
      const bool was_empty = pending_.empty();
      auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return end_.has_value() || pending_samples_ >= max_samples ||
               (was_empty && !pending_.empty());
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), oldest_ + due_after);
      last = end_.has_value();
      if (last || pending_samples_ >= max_samples ||
          (!pending_.empty() && absl::Now() >= oldest_ + due_after)) {
        batches.swap(pending_);
        pending_samples_ = 0;
        oldest_ = absl::InfiniteFuture();
      }
    }
    if (!batches.empty()) {
      v1::AuditEvent stored = event_;
      *stored.mutable_time() = ToTimestamp(absl::Now());
      absl::StatusOr<v1::Record> record = StoreVitalsSegment(core_, device_, stored, batches);
      if (!record.ok()) {
        log::Warn("vitals.segment_failed",
                  {{"device", device_.device_id()}, {"error", record.status()}});
        End(record.status());
        absl::MutexLock lock(&mu_);
        return end_->ok() ? record.status() : *end_;
      }
      v1::PublishResponse ack;
      ack.mutable_ack()->set_acked_through(batches.back()->samples.back().sequence());
      ack.mutable_ack()->set_record_id(record->record_id());
      Send(std::move(ack));
      due_after = every;
    }
    if (last) {
      absl::MutexLock lock(&mu_);
      return *end_;
    }
  }
}

void VitalsService::PublishStream::Send(v1::PublishResponse message) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  writes_.push_back(std::move(message));
  if (writes_.size() == 1) StartWrite(&writes_.front());
}

void VitalsService::PublishStream::OnWriteDone(bool ok) {
  // A failed write means the call is broken: OnCancel or the read says so.
  (void)ok;
  absl::MutexLock lock(&mu_);
  writes_.pop_front();
  StartNextWrite();
}

void VitalsService::PublishStream::FinishWith(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  finish_ = status;
  if (writes_.empty()) StartNextWrite();  // else OnWriteDone finishes
}

void VitalsService::PublishStream::StartNextWrite() {
  if (!writes_.empty()) {
    StartWrite(&writes_.front());
  } else if (finish_.has_value() && !finished_) {
    finished_ = true;
    Finish(*finish_);
  }
}

absl::Status VitalsService::TakePublishSlot(const std::string& device_id, PublishStream* stream) {
  absl::MutexLock lock(&mu_);
  auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !publishing_.contains(device_id);
  };
  if (!free()) {
    publishing_[device_id]->End(absl::AbortedError(
        absl::StrCat("device \"", device_id, "\": a newer stream of the device took over")));
  }
  if (!mu_.AwaitWithTimeout(absl::Condition(&free), kSlotWait)) {
    return absl::UnavailableError(absl::StrCat(
        "device \"", device_id, "\": the previous stream is still storing its samples; retry"));
  }
  if (stopping_) return absl::UnavailableError("the gateway is shutting down");
  publishing_[device_id] = stream;
  return absl::OkStatus();
}

void VitalsService::ReleasePublishSlot(const std::string& device_id, PublishStream* stream) {
  absl::MutexLock lock(&mu_);
  if (auto it = publishing_.find(device_id); it != publishing_.end() && it->second == stream) {
    publishing_.erase(it);
  }
}

void VitalsService::EndPublishing(const std::string& device_id, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (auto it = publishing_.find(device_id); it != publishing_.end()) it->second->End(status);
}

void VitalsService::StopPublishing() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [device, stream] : publishing_) {
    stream->End(absl::UnavailableError("the gateway is shutting down"));
  }
}

}  // namespace medvault::gateway
