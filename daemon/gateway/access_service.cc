#include "daemon/gateway/access_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/access_store.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/registry_service.h"

namespace medvault::gateway {
namespace {

constexpr char kService[] = "/medvault.v1.AccessService/";
// RequestAccess.not_after: "at most a year ahead".
constexpr absl::Duration kMaxRequestPeriod = absl::Hours(24 * 366);

// The actions whose events make up a patient's access history (a live
// vitals watch is a read too: its start, allowed or denied).
bool IsAccessAction(const std::string& action) {
  return action == "record.read" || action == "record.read_emergency" || action == "record.list" ||
         action == "vitals.watch";
}

v1::AccessHistoryEntry HistoryEntry(const v1::AuditEvent& event) {
  v1::AccessHistoryEntry entry;
  *entry.mutable_time() = event.time();
  entry.set_action(event.action());
  entry.set_organization_id(event.actor().organization_id());
  entry.set_practitioner_id(event.actor().practitioner_id());
  entry.set_record_id(event.record_id());
  entry.set_grant_id(event.grant_id());
  entry.set_emergency_access_id(event.emergency_access_id());
  entry.set_allowed(event.outcome() == v1::AuditEvent::SUCCEEDED);
  entry.set_decision_id(event.decision_id());
  *entry.mutable_rule_ids() = event.rule_ids();
  return entry;
}

absl::Status InsertEmergencyAccess(sqlite3* db, const v1::EmergencyAccessSession& session,
                                   const std::string& organization_id, const std::string& reason) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO emergency_accesses (id, patient_id, practitioner_id, "
                    "organization_id, reason, opened_at, expires_at, decision_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, session.emergency_access_id()).BindText(2, session.patient_id());
  q.BindText(3, session.practitioner_id()).BindText(4, organization_id).BindText(5, reason);
  q.Bind(6, DbTime(FromTimestamp(session.opened_at())));
  q.Bind(7, DbTime(FromTimestamp(session.expires_at())));
  q.BindText(8, session.decision().decision_id());
  return q.Step().status();
}

absl::Status CheckRequestAccess(const v1::RequestAccessRequest& request, absl::Time now) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  if (!request.has_scope()) return InvalidField("scope", "required");
  RETURN_IF_ERROR(CheckScope("scope", request.scope()));
  RETURN_IF_ERROR(CheckPurpose("purpose", request.purpose()));
  if (!request.has_not_after()) return InvalidField("not_after", "required");
  const absl::Time not_after = FromTimestamp(request.not_after());
  if (not_after <= now || not_after > now + kMaxRequestPeriod) {
    return InvalidField("not_after", "in the future, at most a year ahead");
  }
  const size_t reason = Utf8Length(request.reason());
  if (reason < 1 || reason > 500) return InvalidField("reason", "1 to 500 characters");
  return absl::OkStatus();
}

}  // namespace

grpc::Status AccessService::RequestAccess(grpc::ServerContext* context,
                                          const v1::RequestAccessRequest* request,
                                          v1::AccessRequest* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRequestAccess(c, *request, *response); });
}
grpc::Status AccessService::ListAccessRequests(grpc::ServerContext* context,
                                               const v1::ListAccessRequestsRequest* request,
                                               v1::ListAccessRequestsResponse* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoListAccessRequests(c, *request, *response); });
}
grpc::Status AccessService::DecideAccessRequest(grpc::ServerContext* context,
                                                const v1::DecideAccessRequestRequest* request,
                                                v1::AccessRequest* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoDecideAccessRequest(c, *request, *response); });
}
grpc::Status AccessService::GrantAccess(grpc::ServerContext* context,
                                        const v1::GrantAccessRequest* request,
                                        v1::Grant* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoGrantAccess(c, *request, *response); });
}
grpc::Status AccessService::RevokeAccess(grpc::ServerContext* context,
                                         const v1::RevokeAccessRequest* request,
                                         v1::Grant* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRevokeAccess(c, *request, *response); });
}
grpc::Status AccessService::ListGrants(grpc::ServerContext* context,
                                       const v1::ListGrantsRequest* request,
                                       v1::ListGrantsResponse* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoListGrants(c, *request, *response); });
}
grpc::Status AccessService::EmergencyAccess(grpc::ServerContext* context,
                                            const v1::EmergencyAccessRequest* request,
                                            v1::EmergencyAccessSession* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoEmergencyAccess(c, *request, *response); });
}
grpc::Status AccessService::GetAccessHistory(grpc::ServerContext* context,
                                             const v1::GetAccessHistoryRequest* request,
                                             v1::GetAccessHistoryResponse* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoGetAccessHistory(c, *request, *response); });
}

absl::StatusOr<Facts> AccessService::PatientFacts(const std::string& patient_id) {
  v1::Patient patient;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(patient, LoadPatient(db, patient_id));
    return absl::OkStatus();
  }));
  Facts facts;
  facts.String("patient.id", patient_id);
  facts.Set("patient.care_organizations",
            {patient.care_organizations().begin(), patient.care_organizations().end()});
  return facts;
}

absl::StatusOr<v1::AuditEvent> AccessService::AuthorizeRead(const Caller& caller,
                                                            const char* method,
                                                            const std::string& action,
                                                            const std::string& patient_id,
                                                            absl::Time now) {
  Facts facts;
  if (!patient_id.empty()) {
    RETURN_IF_ERROR(CheckId("patient_id", patient_id));
    ASSIGN_OR_RETURN(facts, PatientFacts(patient_id));
  }
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, method));
  event.set_patient_id(patient_id);
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(caller, action, std::move(facts), now, event));
  FillAuditEvent(caller, action, now, decision, event);
  return event;
}

absl::Status AccessService::DoRequestAccess(const Caller& caller,
                                            const v1::RequestAccessRequest& request,
                                            v1::AccessRequest& response) {
  const absl::Time now = absl::Now();
  RETURN_IF_ERROR(CheckRequestAccess(request, now));
  ASSIGN_OR_RETURN(Facts facts, PatientFacts(request.patient_id()));
  facts.String("request.purpose", v1::Purpose_Name(request.purpose()));
  v1::AccessRequest row;
  row.set_request_id(NewObjectId("req"));
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "RequestAccess"));
  event.set_patient_id(request.patient_id());
  event.set_access_request_id(row.request_id());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "access_request.create",
                                                             std::move(facts), now, event));
  // Policy lets only practitioners ask; the row needs one.
  if (!caller.is_practitioner()) {
    return absl::PermissionDeniedError("only a practitioner requests access");
  }
  FillAuditEvent(caller, "access_request.create", now, decision, event);
  row.set_patient_id(request.patient_id());
  row.set_practitioner_id(caller.practitioner_id);
  row.set_organization_id(caller.organization.organization_id);
  *row.mutable_scope() = request.scope();
  row.set_purpose(request.purpose());
  *row.mutable_not_after() = request.not_after();
  row.set_reason(request.reason());
  row.set_state(v1::AccessRequest::PENDING);
  *row.mutable_created_at() = ToTimestamp(now);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(CheckScopeRecords(db, request.patient_id(), request.scope()));
    return InsertAccessRequest(db, row);
  }));
  response = std::move(row);
  return absl::OkStatus();
}

absl::Status AccessService::DoListAccessRequests(const Caller& caller,
                                                 const v1::ListAccessRequestsRequest& request,
                                                 v1::ListAccessRequestsResponse& response) {
  const absl::Time now = absl::Now();
  const bool own = request.patient_id().empty();
  ASSIGN_OR_RETURN(v1::AuditEvent event,
                   AuthorizeRead(caller, "ListAccessRequests", "access_request.list",
                                 request.patient_id(), now));
  std::vector<v1::AccessRequest> found;
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(found, own ? AccessRequestsOfPractitioner(db, caller.actor_id)
                                : AccessRequestsOfPatient(db, request.patient_id()));
    return absl::OkStatus();
  }));
  for (v1::AccessRequest& r : found) {
    r.set_state(EffectiveState(r, now));
    *response.add_requests() = std::move(r);
  }
  return absl::OkStatus();
}

absl::Status AccessService::DoEmergencyAccess(const Caller& caller,
                                              const v1::EmergencyAccessRequest& request,
                                              v1::EmergencyAccessSession& response) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  const size_t reason = Utf8Length(request.reason());
  if (reason < 10 || reason > 1000) return InvalidField("reason", "10 to 1,000 characters");
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(Facts facts, PatientFacts(request.patient_id()));
  facts.String("emergency.reason", request.reason());
  v1::EmergencyAccessSession session;
  session.set_emergency_access_id(NewObjectId("emg"));
  // The reason goes to policy and the emergency_accesses row (for the
  // regulator's review), never into the audit event.
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "EmergencyAccess"));
  event.set_patient_id(request.patient_id());
  event.set_emergency_access_id(session.emergency_access_id());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "record.read_emergency",
                                                             std::move(facts), now, event));
  if (!caller.is_practitioner()) {
    return absl::PermissionDeniedError("only a practitioner opens an emergency access");
  }
  FillAuditEvent(caller, "record.read_emergency", now, decision, event);
  // LoadConfig fills in the default (240).
  const uint32_t minutes = core_.config.emergency_access_minutes();
  session.set_patient_id(request.patient_id());
  session.set_practitioner_id(caller.practitioner_id);
  *session.mutable_opened_at() = ToTimestamp(now);
  *session.mutable_expires_at() = ToTimestamp(now + absl::Minutes(minutes));
  *session.mutable_decision() = PublicDecision(decision);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) {
    return InsertEmergencyAccess(db, session, caller.organization.organization_id,
                                 request.reason());
  }));
  response = std::move(session);
  return absl::OkStatus();
}

absl::Status AccessService::DoGetAccessHistory(const Caller& caller,
                                               const v1::GetAccessHistoryRequest& request,
                                               v1::GetAccessHistoryResponse& response) {
  // The history is always a named patient's.
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(v1::AuditEvent event, AuthorizeRead(caller, "GetAccessHistory", "access.history",
                                                       request.patient_id(), now));
  // Read inside the audited transaction: the history shown is exactly the
  // log as of this (logged) look at it.
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::AuditEvent> events,
                     PatientAuditEvents(db, request.patient_id()));
    for (const v1::AuditEvent& e : events) {
      if (IsAccessAction(e.action())) *response.add_entries() = HistoryEntry(e);
    }
    return absl::OkStatus();
  });
}

}  // namespace medvault::gateway
