// VitalsService.Watch: a practitioner (or the patient) watches a device's
// samples live, decided like a read of a VITALS record, and decided again
// whenever one of the patient's grants is revoked, when the allowing grant
// expires, and every gateway.vitals.watch_recheck_ms (for licences and
// registrations).
//
// Samples reach the client without this session's thread: the hub hands
// each batch to Deliver on the device's read thread, which starts the
// write; batches that arrive while a write is in flight are combined into
// the next one. The session's worker thread only decides (at the start,
// on each recheck) and logs the session's start and end.
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/grant_facts.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/vitals_service.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {
namespace {

constexpr char kMethod[] = "/medvault.v1.VitalsService/Watch";

struct WatchDecision {
  policy::v1::Decision decision;
  std::string grant_id;
  // When the allowing grant expires (InfiniteFuture: no grant, or none
  // that expires): the watch decides again then.
  absl::Time valid_until = absl::InfiniteFuture();
};

// Asks policy whether `caller` may watch `device`: a practitioner under
// each of their grants for the patient in turn until one allows (as
// RecordService decides a read). A final deny is logged with `denied` and
// returned as PERMISSION_DENIED.
absl::StatusOr<WatchDecision> DecideWatch(GatewayCore& core, const Caller& caller,
                                          const v1::Device& device, absl::Time now,
                                          const v1::AuditEvent& denied) {
  std::vector<v1::Grant> grants;
  if (caller.is_practitioner()) {
    RETURN_IF_ERROR(core.db.Read([&](sqlite3* db) -> absl::Status {
      ASSIGN_OR_RETURN(grants, ActiveGrants(db, device.patient_id(), caller.actor_id));
      return absl::OkStatus();
    }));
  }
  std::vector<const v1::Grant*> candidates;
  for (const v1::Grant& g : grants) candidates.push_back(&g);
  if (candidates.empty()) candidates.push_back(nullptr);
  WatchDecision result;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Facts facts;
    facts.String("patient.id", device.patient_id())
        .String("device.id", device.device_id())
        .String("device.patient_id", device.patient_id())
        .String("device.status", v1::Device::Status_Name(device.status()))
        .String("record.category", v1::RecordCategory_Name(v1::VITALS))
        .String("request.purpose", v1::Purpose_Name(v1::TREATMENT));
    if (candidates[i] != nullptr) AddGrantFacts(*candidates[i], facts);
    if (i + 1 == candidates.size()) {
      v1::AuditEvent event = denied;
      if (candidates[i] != nullptr) event.set_grant_id(candidates[i]->grant_id());
      ASSIGN_OR_RETURN(result.decision, core.authorizer.Authorize(caller, "vitals.watch",
                                                                  std::move(facts), now, event));
    } else {
      ASSIGN_OR_RETURN(result.decision,
                       core.authorizer.Decide(caller, "vitals.watch", std::move(facts), now));
    }
    if (result.decision.effect() == policy::v1::ALLOW) {
      if (candidates[i] != nullptr) {
        result.grant_id = candidates[i]->grant_id();
        if (candidates[i]->has_not_after()) {
          result.valid_until = FromTimestamp(candidates[i]->not_after());
        }
      }
      return result;
    }
  }
  return result;
}

// What a session delivered, for its end event.
struct WatchTally {
  uint64_t samples = 0;
  uint64_t bytes = 0;
  uint64_t dropped = 0;
};

// Why a session ended, for its end event.
std::string EndReason(const absl::Status& closed) {
  switch (closed.code()) {
    case absl::StatusCode::kUnavailable:
      return "shutdown";
    case absl::StatusCode::kCancelled:
      return "client_ended";
    default:
      return "device_revoked";
  }
}

}  // namespace

// One Watch call. gRPC calls the On* reactions, the hub calls Deliver, and
// the worker thread runs Run(). The object deletes itself in OnDone, after
// the worker has ended.
class VitalsService::WatchSession final : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  WatchSession(VitalsService& service, grpc::CallbackServerContext& context,
               const v1::WatchRequest& request)
      : service_(service), core_(service.core_), context_(context), request_(request) {
    worker_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel() override { End(absl::CancelledError("the watcher went away")); }
  void OnDone() override {
    worker_.join();  // it ended with Finish: this does not wait long
    delete this;
  }

 private:
  // The worker: Open, WatchUntilEnd, the end event, the status.
  void Run();
  // Decides, logs the start, joins the hub and sends `started`.
  absl::Status Open() ABSL_LOCKS_EXCLUDED(mu_);
  // Decides again when asked to and when due, until the watcher is
  // closed or a decision refuses; returns why the session ended.
  absl::Status WatchUntilEnd(VitalsWatcher& watcher, std::string& end_reason);
  // Logs the session's end with what it delivered.
  absl::Status LogEnd(const std::string& end_reason) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the session with `status`: the worker wakes and ends it.
  void End(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // The hub's DeliverFn.
  void Deliver(VitalsWatcher::Delivery delivery) ABSL_LOCKS_EXCLUDED(mu_);
  void StartDelivery(const VitalsWatcher::Delivery& delivery) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `status` once no write is in flight.
  void FinishWith(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  VitalsService& service_;
  GatewayCore& core_;
  grpc::CallbackServerContext& context_;
  const v1::WatchRequest request_;

  // Set by Open, constant after; used by the worker only.
  Caller caller_;
  v1::Device device_;
  v1::AuditEvent started_event_;
  WatchDecision allowed_;
  absl::Time started_at_;

  absl::Mutex mu_;
  // Guarded by mu_.
  std::shared_ptr<VitalsWatcher> watcher_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
  // The message being written (one at a time).
  v1::WatchResponse message_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // A delivery that came while `started` was still being written.
  std::optional<VitalsWatcher::Delivery> held_ ABSL_GUARDED_BY(mu_);
  // Set when the session ends: nothing more is written.
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  WatchTally tally_ ABSL_GUARDED_BY(mu_);

  std::thread worker_;
};

grpc::ServerWriteReactor<v1::WatchResponse>* VitalsService::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  return new WatchSession(*this, *context, *request);
}

void VitalsService::WatchSession::Run() {
  absl::Status status = Open();
  std::shared_ptr<VitalsWatcher> watcher;
  {
    absl::MutexLock lock(&mu_);
    watcher = watcher_;
  }
  if (watcher != nullptr) {
    std::string end_reason;
    status = WatchUntilEnd(*watcher, end_reason);
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;  // what is queued or comes now is not written
    }
    // Close returns once no delivery is running: from here on the hub
    // never calls into this session, which OnDone may then delete.
    watcher->Close(status);
    service_.hub_.RemoveWatcher(watcher);
    absl::Status logged = LogEnd(end_reason);
    if (status.ok()) status = logged;
  }
  FinishWith(ToGrpcStatus(status));
}

absl::Status VitalsService::WatchSession::Open() {
  ASSIGN_OR_RETURN(caller_, ResolveCaller(context_, core_));
  RETURN_IF_ERROR(CheckId("patient_id", request_.patient_id()));
  RETURN_IF_ERROR(CheckId("device_id", request_.device_id()));
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    absl::StatusOr<v1::Device> found = LoadDevice(db, request_.device_id());
    if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
    // One answer for "unknown" and "another patient's".
    if (!found.ok() || found->patient_id() != request_.patient_id()) {
      return absl::NotFoundError(absl::StrCat("device \"", request_.device_id(),
                                              "\" not found for patient \"", request_.patient_id(),
                                              "\""));
    }
    device_ = *std::move(found);
    return absl::OkStatus();
  }));
  if (device_.status() != v1::Device::ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("device \"", device_.device_id(), "\" was revoked"));
  }
  started_at_ = absl::Now();
  v1::AuditEvent& event = started_event_;
  event.set_method(kMethod);
  event.set_patient_id(device_.patient_id());
  event.set_subject_id(device_.device_id());
  event.mutable_vitals_watch()->set_session_id(NewObjectId("watch"));
  ASSIGN_OR_RETURN(allowed_, DecideWatch(core_, caller_, device_, started_at_, event));
  event.set_grant_id(allowed_.grant_id);
  FillAuditEvent(caller_, "vitals.watch", started_at_, allowed_.decision, event);
  // Fail closed: the session is in the log before any sample leaves.
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [](sqlite3*) { return absl::OkStatus(); }));

  {
    // `started` goes first: a delivery that comes before its write is
    // done is held until then.
    absl::MutexLock lock(&mu_);
    message_.mutable_started()->set_session_id(event.vitals_watch().session_id());
    *message_.mutable_started()->mutable_decision() = PublicDecision(allowed_.decision);
    writing_ = true;
    StartWrite(&message_);
  }
  std::shared_ptr<VitalsWatcher> watcher =
      service_.hub_.AddWatcher(device_.device_id(), device_.patient_id(),
                               [this](VitalsWatcher::Delivery d) { Deliver(std::move(d)); });
  absl::MutexLock lock(&mu_);
  watcher_ = watcher;
  // Cancelled while opening: the worker's wait sees it at once.
  if (ended_.has_value()) watcher->Close(*ended_);
  return absl::OkStatus();
}

absl::Status VitalsService::WatchSession::WatchUntilEnd(VitalsWatcher& watcher,
                                                        std::string& end_reason) {
  // Rechecks resolve the caller again (certificate, registration, licence)
  // without counting against the organisation's call rate.
  GatewayCore recheck_core = core_;
  recheck_core.rate_limiter = nullptr;
  const absl::Duration every = absl::Milliseconds(core_.config.vitals().watch_recheck_ms());
  absl::Time next_check = absl::Now() + every;
  while (true) {
    VitalsWatcher::Wake wake = watcher.Wait(std::min(next_check, allowed_.valid_until));
    if (wake.closed.has_value()) {
      end_reason = EndReason(*wake.closed);
      return *wake.closed;
    }
    const absl::Time now = absl::Now();
    if (!wake.recheck && now < next_check && now < allowed_.valid_until) continue;
    absl::StatusOr<Caller> again = ResolveCaller(context_, recheck_core);
    absl::StatusOr<WatchDecision> decided =
        again.ok() ? DecideWatch(core_, *again, device_, now, started_event_) : again.status();
    if (!decided.ok()) {
      end_reason = absl::IsUnavailable(decided.status()) ? "error" : "access_revoked";
      return decided.status();
    }
    allowed_.valid_until = decided->valid_until;
    next_check = now + every;
  }
}

absl::Status VitalsService::WatchSession::LogEnd(const std::string& end_reason) {
  WatchTally tally;
  {
    absl::MutexLock lock(&mu_);
    tally = tally_;
  }
  v1::AuditEvent end;
  FillAuditEvent(caller_, "vitals.watch_end", absl::Now(), allowed_.decision, end);
  end.set_method(kMethod);
  end.set_patient_id(device_.patient_id());
  end.set_subject_id(device_.device_id());
  end.set_grant_id(allowed_.grant_id);
  v1::VitalsWatchSession* session = end.mutable_vitals_watch();
  session->set_session_id(started_event_.vitals_watch().session_id());
  session->set_samples(tally.samples);
  session->set_bytes(tally.bytes);
  session->set_dropped_samples(tally.dropped);
  session->set_duration_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Now() - started_at_)));
  session->set_end_reason(end_reason);
  return CommitWithAudit(core_.db, end, [](sqlite3*) { return absl::OkStatus(); });
}

void VitalsService::WatchSession::End(const absl::Status& status) {
  std::shared_ptr<VitalsWatcher> watcher;
  {
    absl::MutexLock lock(&mu_);
    if (!ended_.has_value()) ended_ = status;
    watcher = watcher_;
  }
  if (watcher != nullptr) watcher->Close(status);
}

void VitalsService::WatchSession::Deliver(VitalsWatcher::Delivery delivery) {
  absl::MutexLock lock(&mu_);
  if (closing_) return;
  if (writing_) {
    held_ = std::move(delivery);  // `started` is still being written
    return;
  }
  StartDelivery(delivery);
}

void VitalsService::WatchSession::StartDelivery(const VitalsWatcher::Delivery& delivery) {
  message_.Clear();
  message_.set_dropped_samples(delivery.dropped_samples);
  tally_.dropped += delivery.dropped_samples;
  size_t samples = 0;
  for (const VitalsBatchPtr& batch : delivery.batches) samples += batch->samples.size();
  message_.mutable_samples()->Reserve(static_cast<int>(samples));
  for (const VitalsBatchPtr& batch : delivery.batches) {
    for (const v1::VitalSample& s : batch->samples) *message_.add_samples() = s;
    tally_.bytes += batch->bytes;
  }
  tally_.samples += samples;
  writing_ = true;
  StartWrite(&message_);
}

void VitalsService::WatchSession::OnWriteDone(bool ok) {
  std::shared_ptr<VitalsWatcher> watcher;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (finish_.has_value()) {
      if (!finished_) {
        finished_ = true;
        Finish(*finish_);
      }
      return;
    }
    if (ok && !closing_ && held_.has_value()) {
      VitalsWatcher::Delivery held = *std::move(held_);
      held_.reset();
      StartDelivery(held);
      return;
    }
    watcher = watcher_;
  }
  if (!ok) {
    End(absl::CancelledError("the watcher went away"));
  } else if (watcher != nullptr) {
    watcher->Delivered();  // may start the next write, on this thread
  }
}

void VitalsService::WatchSession::FinishWith(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  finish_ = status;
  if (writing_ || finished_) return;  // OnWriteDone finishes
  finished_ = true;
  Finish(status);
}

}  // namespace medvault::gateway
