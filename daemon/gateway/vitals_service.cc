#include "daemon/gateway/vitals_service.h"

#include <cmath>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/registry_service.h"
#include "daemon/gateway/vitals_segments.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {
namespace {

constexpr char kService[] = "/medvault.v1.VitalsService/";
constexpr int kMaxSamplesPerMessage = 1000;
// How often a Publish stream's writer looks at whether the device was
// revoked while it sends nothing, and how long a revoked device's stream
// may stay open before it is cancelled.
constexpr absl::Duration kPublishTick = absl::Milliseconds(200);
constexpr absl::Duration kRevokedGrace = absl::Seconds(1);
constexpr absl::Duration kSlotWait = absl::Seconds(30);

bool Printable(const std::string& text, size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

absl::Status CheckSample(const v1::VitalSample& s, const std::string& field) {
  if (s.sequence() == 0 || s.sequence() > uint64_t{std::numeric_limits<int64_t>::max()}) {
    return InvalidField(field + ".sequence", "must be from 1 to 2^63 - 1");
  }
  if (!s.has_time() || s.time().seconds() <= 0 || s.time().seconds() > 253402300799 ||
      s.time().nanos() < 0 || s.time().nanos() > 999999999) {
    return InvalidField(field + ".time", "a time after 1970 and before 10000 is required");
  }
  if (!Printable(s.channel(), 64)) {
    return InvalidField(field + ".channel", "1 to 64 printable ASCII characters");
  }
  if (!std::isfinite(s.value())) return InvalidField(field + ".value", "must be a finite number");
  if (!Printable(s.unit(), 32)) {
    return InvalidField(field + ".unit", "1 to 32 printable ASCII characters");
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
    const std::string field = absl::StrCat("samples[", i, "]");
    RETURN_IF_ERROR(CheckSample(s, field));
    if (s.sequence() <= stored_through) continue;
    if (s.sequence() <= *last) {
      return InvalidField(field + ".sequence",
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
absl::StatusOr<Caller> ResolvePublisher(const grpc::ServerContext& context, GatewayCore& core) {
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

absl::StatusOr<v1::Patient> ReadPatient(RegistryDb& db, const std::string& patient_id) {
  v1::Patient patient;
  RETURN_IF_ERROR(db.Read([&](sqlite3* sql) -> absl::Status {
    ASSIGN_OR_RETURN(patient, LoadPatient(sql, patient_id));
    return absl::OkStatus();
  }));
  return patient;
}

absl::StatusOr<v1::Device> ReadDevice(RegistryDb& db, const std::string& device_id) {
  v1::Device device;
  RETURN_IF_ERROR(db.Read([&](sqlite3* sql) -> absl::Status {
    ASSIGN_OR_RETURN(device, LoadDevice(sql, device_id));
    return absl::OkStatus();
  }));
  return device;
}

Facts DeviceFacts(const v1::Patient& patient, const std::string& device_id) {
  Facts facts;
  facts.String("patient.id", patient.patient_id())
      .Set("patient.care_organizations",
           {patient.care_organizations().begin(), patient.care_organizations().end()})
      .String("device.id", device_id);
  return facts;
}

}  // namespace

grpc::Status VitalsService::EnrollDevice(grpc::ServerContext* context,
                                         const v1::EnrollDeviceRequest* request,
                                         v1::Device* response) {
  return Serve(core_, context, [&](const Caller& c) { return DoEnroll(c, *request, *response); });
}

grpc::Status VitalsService::RevokeDevice(grpc::ServerContext* context,
                                         const v1::RevokeDeviceRequest* request,
                                         v1::Device* response) {
  return Serve(core_, context, [&](const Caller& c) { return DoRevoke(c, *request, *response); });
}

grpc::Status VitalsService::Publish(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::PublishResponse, v1::PublishRequest>* stream) {
  absl::StatusOr<Caller> caller = ResolvePublisher(*context, core_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(DoPublish(*context, *caller, *stream));
}

absl::Status VitalsService::DoEnroll(const Caller& caller, const v1::EnrollDeviceRequest& request,
                                     v1::Device& response) {
  RETURN_IF_ERROR(CheckId("device_id", request.device_id()));
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  ASSIGN_OR_RETURN(v1::Patient patient, ReadPatient(core_.db, request.patient_id()));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "EnrollDevice"));
  event.set_patient_id(request.patient_id());
  event.set_subject_id(request.device_id());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(
                                      caller, "device.enroll",
                                      DeviceFacts(patient, request.device_id()), now, event));
  FillAuditEvent(caller, "device.enroll", now, decision, event);
  v1::Device device;
  device.set_device_id(request.device_id());
  device.set_patient_id(request.patient_id());
  device.set_status(v1::Device::ACTIVE);
  device.set_enrolled_by_organization_id(caller.organization.organization_id);
  device.set_enrolled_by_practitioner_id(caller.practitioner_id);
  *device.mutable_enrolled_at() = ToTimestamp(now);
  RETURN_IF_ERROR(
      CommitWithAudit(core_.db, event, [&](sqlite3* db) { return InsertDevice(db, device); }));
  response = std::move(device);
  return absl::OkStatus();
}

absl::Status VitalsService::DoRevoke(const Caller& caller, const v1::RevokeDeviceRequest& request,
                                     v1::Device& response) {
  RETURN_IF_ERROR(CheckId("device_id", request.device_id()));
  ASSIGN_OR_RETURN(v1::Device device, ReadDevice(core_.db, request.device_id()));
  ASSIGN_OR_RETURN(v1::Patient patient, ReadPatient(core_.db, device.patient_id()));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "RevokeDevice"));
  event.set_patient_id(device.patient_id());
  event.set_subject_id(device.device_id());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(
                                      caller, "device.revoke",
                                      DeviceFacts(patient, device.device_id()), now, event));
  FillAuditEvent(caller, "device.revoke", now, decision, event);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(device, LoadDevice(db, request.device_id()));  // revoked meanwhile?
    if (device.status() != v1::Device::ACTIVE) {
      return absl::FailedPreconditionError(
          absl::StrCat("device \"", device.device_id(), "\" is already revoked"));
    }
    device.set_status(v1::Device::REVOKED);
    *device.mutable_revoked_at() = ToTimestamp(now);
    return UpdateDeviceStatus(db, device);
  }));
  {
    absl::MutexLock lock(&mu_);
    if (auto it = publishing_.find(device.device_id()); it != publishing_.end()) {
      it->second->revoked_at_ms = absl::ToUnixMillis(now);
      it->second->revoked = true;
    }
  }
  hub_.CloseDevice(device.device_id(), absl::FailedPreconditionError(absl::StrCat(
                                           "device \"", device.device_id(), "\" was revoked")));
  response = std::move(device);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<VitalsService::PublishSlot>> VitalsService::TakePublishSlot(
    const std::string& device_id, grpc::ServerContext* context) {
  absl::MutexLock lock(&mu_);
  auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !publishing_.contains(device_id); };
  if (!free()) publishing_[device_id]->context->TryCancel();
  if (!mu_.AwaitWithTimeout(absl::Condition(&free), kSlotWait)) {
    return absl::UnavailableError(absl::StrCat(
        "device \"", device_id, "\": the previous stream is still storing its samples; retry"));
  }
  auto slot = std::make_shared<PublishSlot>();
  slot->context = context;
  publishing_[device_id] = slot;
  return slot;
}

void VitalsService::CancelPublishing() {
  absl::MutexLock lock(&mu_);
  for (auto& [device, slot] : publishing_) slot->context->TryCancel();
}

void VitalsService::ReleasePublishSlot(const std::string& device_id,
                                       const std::shared_ptr<PublishSlot>& slot) {
  absl::MutexLock lock(&mu_);
  if (auto it = publishing_.find(device_id); it != publishing_.end() && it->second == slot) {
    publishing_.erase(it);
  }
}

absl::Status VitalsService::DoPublish(
    grpc::ServerContext& context, const Caller& caller,
    grpc::ServerReaderWriter<v1::PublishResponse, v1::PublishRequest>& stream) {
  const std::string& device_id = caller.actor_id;
  const absl::Time now = absl::Now();
  absl::StatusOr<v1::Device> found = ReadDevice(core_.db, device_id);
  if (!found.ok() && !absl::IsNotFound(found.status())) return found.status();
  // A device never enrolled has no device.* facts: policy denies it.
  Facts facts;
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "Publish"));
  event.set_subject_id(device_id);
  if (found.ok()) {
    facts.String("device.id", found->device_id())
        .String("device.patient_id", found->patient_id())
        .String("device.status", v1::Device::Status_Name(found->status()))
        .String("patient.id", found->patient_id());
    event.set_patient_id(found->patient_id());
  }
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "vitals.publish",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "vitals.publish", now, decision, event);

  ASSIGN_OR_RETURN(std::shared_ptr<PublishSlot> slot, TakePublishSlot(device_id, &context));
  absl::Cleanup release = [&] { ReleasePublishSlot(device_id, slot); };
  // Read again now that no other stream of the device is storing.
  ASSIGN_OR_RETURN(const v1::Device device, ReadDevice(core_.db, device_id));
  if (device.status() != v1::Device::ACTIVE) {
    return absl::PermissionDeniedError(absl::StrCat("device \"", device_id, "\" was revoked"));
  }
  v1::PublishResponse started;
  started.mutable_started()->set_stored_through(device.stored_through());
  if (!stream.Write(started)) return absl::CancelledError("the device went away");

  const auto& config = core_.config.vitals();
  SegmentWriter writer(
      absl::Milliseconds(config.segment_ms()), config.segment_samples(), kPublishTick,
      [&](const std::vector<v1::VitalSample>& samples) -> absl::StatusOr<std::string> {
        v1::AuditEvent stored = event;
        *stored.mutable_time() = ToTimestamp(absl::Now());
        ASSIGN_OR_RETURN(v1::Record record, StoreVitalsSegment(core_, device, stored, samples));
        return record.record_id();
      },
      [&](uint64_t stored_through, const std::string& record_id) {
        v1::PublishResponse ack;
        ack.mutable_ack()->set_acked_through(stored_through);
        ack.mutable_ack()->set_record_id(record_id);
        stream.Write(ack);  // a device gone is found by the reader
      },
      [&] {
        if (slot->revoked &&
            absl::Now() - absl::FromUnixMillis(slot->revoked_at_ms) >= kRevokedGrace) {
          context.TryCancel();
        }
      });
  uint64_t last = device.stored_through();
  absl::Status result;
  v1::PublishRequest request;
  while (stream.Read(&request)) {
    if (slot->revoked) break;
    if (result = writer.status(); !result.ok()) break;
    absl::StatusOr<std::vector<v1::VitalSample>> samples =
        TakeSamples(request, device.stored_through(), &last);
    if (!samples.ok()) {
      result = samples.status();
      break;
    }
    if (samples->empty()) continue;
    hub_.Publish(device_id, *samples);
    writer.Add(std::move(*samples));
  }
  // What was received is stored before the call ends, whatever ended it.
  absl::Status closed = writer.Close();
  if (!closed.ok()) {
    log::Warn("vitals.segment_failed", {{"device", device_id}, {"error", closed}});
  }
  if (slot->revoked) {
    return absl::PermissionDeniedError(absl::StrCat("device \"", device_id, "\" was revoked"));
  }
  if (!result.ok()) return result;
  if (!closed.ok()) return closed;
  if (context.IsCancelled()) return absl::CancelledError("the stream was cancelled");
  return absl::OkStatus();
}

}  // namespace medvault::gateway
