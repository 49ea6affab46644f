// VitalsService.Watch: a practitioner (or the patient) watches a device's
// samples live, decided like a read of a VITALS record, and decided again
// whenever one of the patient's grants is revoked and every
// gateway.vitals.watch_recheck_ms.
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
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
      if (candidates[i] != nullptr) result.grant_id = candidates[i]->grant_id();
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

}  // namespace

grpc::Status VitalsService::Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                                  grpc::ServerWriter<v1::WatchResponse>* writer) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoWatch(*context, c, *request, *writer); });
}

absl::Status VitalsService::DoWatch(grpc::ServerContext& context, const Caller& caller,
                                    const v1::WatchRequest& request,
                                    grpc::ServerWriter<v1::WatchResponse>& writer) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  RETURN_IF_ERROR(CheckId("device_id", request.device_id()));
  v1::Device device;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    absl::StatusOr<v1::Device> found = LoadDevice(db, request.device_id());
    if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
    // One answer for "unknown" and "another patient's".
    if (!found.ok() || found->patient_id() != request.patient_id()) {
      return absl::NotFoundError(absl::StrCat("device \"", request.device_id(),
                                              "\" not found for patient \"", request.patient_id(),
                                              "\""));
    }
    device = *std::move(found);
    return absl::OkStatus();
  }));
  if (device.status() != v1::Device::ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("device \"", device.device_id(), "\" was revoked"));
  }
  const absl::Time started_at = absl::Now();
  v1::AuditEvent event;
  event.set_method(kMethod);
  event.set_patient_id(device.patient_id());
  event.set_subject_id(device.device_id());
  event.mutable_vitals_watch()->set_session_id(NewObjectId("watch"));
  ASSIGN_OR_RETURN(WatchDecision allowed, DecideWatch(core_, caller, device, started_at, event));
  event.set_grant_id(allowed.grant_id);
  FillAuditEvent(caller, "vitals.watch", started_at, allowed.decision, event);
  // Fail closed: the session is in the log before any sample leaves.
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [](sqlite3*) { return absl::OkStatus(); }));

  std::shared_ptr<VitalsWatcher> watcher = hub_.AddWatcher(device.device_id(), device.patient_id());
  absl::Cleanup remove = [&] { hub_.RemoveWatcher(watcher); };
  WatchTally tally;
  std::string end_reason = "client_ended";
  absl::Status result;
  v1::WatchResponse first;
  first.mutable_started()->set_session_id(event.vitals_watch().session_id());
  *first.mutable_started()->mutable_decision() = PublicDecision(allowed.decision);
  bool open = writer.Write(first);

  // Rechecks resolve the caller again (certificate, registration, licence)
  // without counting against the organisation's call rate.
  GatewayCore recheck_core = core_;
  recheck_core.rate_limiter = nullptr;
  const absl::Duration every = absl::Milliseconds(core_.config.vitals().watch_recheck_ms());
  absl::Time next_check = absl::Now() + every;
  while (open) {
    VitalsWatcher::Wake wake = watcher->Wait(next_check);
    if (wake.closed.has_value()) {
      end_reason = absl::IsUnavailable(*wake.closed) ? "shutdown" : "device_revoked";
      result = *wake.closed;
      break;
    }
    if (wake.recheck || absl::Now() >= next_check) {
      const absl::Time now = absl::Now();
      absl::StatusOr<Caller> again = ResolveCaller(context, recheck_core);
      absl::StatusOr<WatchDecision> decided =
          again.ok() ? DecideWatch(core_, *again, device, now, event) : again.status();
      if (!decided.ok()) {
        end_reason = absl::IsUnavailable(decided.status()) ? "error" : "access_revoked";
        result = decided.status();
        break;
      }
      next_check = now + every;
    }
    if (context.IsCancelled()) break;
    uint64_t dropped = wake.dropped_samples;
    tally.dropped += dropped;
    for (const VitalsBatchPtr& batch : wake.batches) {
      v1::WatchResponse message;
      message.set_dropped_samples(dropped);
      dropped = 0;
      for (const v1::VitalSample& s : batch->samples) {
        *message.add_samples() = s;
        tally.bytes += s.ByteSizeLong();
      }
      tally.samples += batch->samples.size();
      if (!(open = writer.Write(message))) break;
    }
    if (open && dropped > 0) {
      v1::WatchResponse message;
      message.set_dropped_samples(dropped);
      open = writer.Write(message);
    }
  }
  v1::AuditEvent end;
  FillAuditEvent(caller, "vitals.watch_end", absl::Now(), allowed.decision, end);
  end.set_method(kMethod);
  end.set_patient_id(device.patient_id());
  end.set_subject_id(device.device_id());
  end.set_grant_id(allowed.grant_id);
  v1::VitalsWatchSession* session = end.mutable_vitals_watch();
  session->set_session_id(event.vitals_watch().session_id());
  session->set_samples(tally.samples);
  session->set_bytes(tally.bytes);
  session->set_dropped_samples(tally.dropped);
  session->set_duration_ms(
      static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Now() - started_at)));
  session->set_end_reason(end_reason);
  absl::Status logged = CommitWithAudit(core_.db, end, [](sqlite3*) { return absl::OkStatus(); });
  if (result.ok()) result = logged;
  return result;
}

}  // namespace medvault::gateway
