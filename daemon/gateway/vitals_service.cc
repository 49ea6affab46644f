#include "daemon/gateway/vitals_service.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/registry_service.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {
namespace {

constexpr char kService[] = "/medvault.v1.VitalsService/";

absl::StatusOr<v1::Patient> ReadPatient(RegistryDb& db, const std::string& patient_id) {
  v1::Patient patient;
  RETURN_IF_ERROR(db.Read([&](sqlite3* sql) -> absl::Status {
    ASSIGN_OR_RETURN(patient, LoadPatient(sql, patient_id));
    return absl::OkStatus();
  }));
  return patient;
}

Facts DeviceFacts(const v1::Patient& patient, const std::string& device_id) {
  Facts facts;
  facts.String("patient.id", patient.patient_id())
      .Set("patient.care_organizations",
           {patient.care_organizations().begin(), patient.care_organizations().end()})
      .String("device.id", device_id);
  return facts;
}

// Decides `action` on `device_id`, a device of `patient`, for `caller`, and
// returns the audit event that records it (the authorizer logs a refusal).
absl::StatusOr<v1::AuditEvent> DecideDeviceChange(GatewayCore& core, const Caller& caller,
                                                  absl::string_view method,
                                                  absl::string_view action,
                                                  const v1::Patient& patient,
                                                  const std::string& device_id, absl::Time now) {
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, method));
  event.set_patient_id(patient.patient_id());
  event.set_subject_id(device_id);
  ASSIGN_OR_RETURN(auto decision, core.authorizer.Authorize(
                                      caller, action, DeviceFacts(patient, device_id), now, event));
  FillAuditEvent(caller, action, now, decision, event);
  return event;
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

absl::Status VitalsService::DoEnroll(const Caller& caller, const v1::EnrollDeviceRequest& request,
                                     v1::Device& response) {
  RETURN_IF_ERROR(CheckId("device_id", request.device_id()));
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  ASSIGN_OR_RETURN(v1::Patient patient, ReadPatient(core_.db, request.patient_id()));
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(const v1::AuditEvent event,
                   DecideDeviceChange(core_, caller, "EnrollDevice", "device.enroll", patient,
                                      request.device_id(), now));
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
  ASSIGN_OR_RETURN(const v1::AuditEvent event,
                   DecideDeviceChange(core_, caller, "RevokeDevice", "device.revoke", patient,
                                      device.device_id(), now));
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
  EndPublishing(device.device_id(), absl::PermissionDeniedError(absl::StrCat(
                                        "device \"", device.device_id(), "\" was revoked")));
  hub_.CloseDevice(device.device_id(), absl::FailedPreconditionError(absl::StrCat(
                                           "device \"", device.device_id(), "\" was revoked")));
  response = std::move(device);
  return absl::OkStatus();
}

}  // namespace medvault::gateway
