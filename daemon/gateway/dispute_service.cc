#include "daemon/gateway/dispute_service.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/consent.h"
#include "daemon/gateway/dispute_store.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/registry_service.h"

namespace medvault::gateway {
namespace {

using Action = v1::TransitionDisputeRequest::Action;

constexpr size_t kMaxText = 5000;
constexpr char kMethodPrefix[] = "/medvault.v1.DisputeService/";

// A transition's policy action and the states it leaves. The policy has
// the same table and decides; we keep the "from" states here only to tell
// "not from this state" (FAILED_PRECONDITION, the API's contract) from
// "not you" (PERMISSION_DENIED). Asking Policy.Explain and reading the
// trace would need a second round trip and a parse of trace reasons; this
// table is five lines and cannot wrongly allow anything: policy still
// decides every transition it lets through.
struct Transition {
  Action action;
  const char* policy_action;
  std::vector<std::string> from;
};
const std::vector<Transition>& Transitions() {
  static const auto* table = new std::vector<Transition>{
      {v1::TransitionDisputeRequest::START_REVIEW, "dispute.start_review", {"FILED"}},
      {v1::TransitionDisputeRequest::UPHOLD, "dispute.uphold", {"UNDER_REVIEW", "ESCALATED"}},
      {v1::TransitionDisputeRequest::REJECT, "dispute.reject", {"UNDER_REVIEW", "ESCALATED"}},
      {v1::TransitionDisputeRequest::CLOSE, "dispute.close", {"UPHELD", "REJECTED"}},
      {v1::TransitionDisputeRequest::WITHDRAW,
       "dispute.withdraw",
       {"FILED", "UNDER_REVIEW", "ESCALATED"}},
  };
  return *table;
}

bool IsFinal(absl::string_view state) { return state == "WITHDRAWN" || state == "CLOSED"; }

absl::Status CheckText(absl::string_view field, absl::string_view text) {
  if (text.empty() || text.size() > kMaxText) return InvalidField(field, "1 to 5,000 characters");
  return absl::OkStatus();
}

// Validates a TransitionDisputeRequest; returns its transition.
absl::StatusOr<const Transition*> CheckTransitionRequest(
    const v1::TransitionDisputeRequest& request) {
  RETURN_IF_ERROR(CheckObjectId("dispute_id", "dsp", request.dispute_id()));
  const auto& table = Transitions();
  auto rule = std::find_if(table.begin(), table.end(),
                           [&](const Transition& t) { return t.action == request.action(); });
  if (rule == table.end()) {
    return InvalidField("action", "one of START_REVIEW, UPHOLD, REJECT, CLOSE, WITHDRAW");
  }
  const bool withdraw = rule->action == v1::TransitionDisputeRequest::WITHDRAW;
  const bool decides = rule->action == v1::TransitionDisputeRequest::UPHOLD ||
                       rule->action == v1::TransitionDisputeRequest::REJECT;
  if (decides || !request.rationale().empty()) {
    RETURN_IF_ERROR(CheckText("rationale", request.rationale()));
  }
  const bool has_consent = request.consent().proof_case() != v1::PatientConsent::PROOF_NOT_SET;
  if (withdraw && !has_consent) {
    return InvalidField("consent", "the patient's signature or a hospital's attestation");
  }
  if (!withdraw && has_consent) return InvalidField("consent", "only for WITHDRAW");
  return &*rule;
}

// Checks the patient's consent to a dispute decision (consent.h): the
// signature over `message`, or a caring hospital's attestation.
absl::StatusOr<VerifiedConsent> VerifyDisputeConsent(GatewayCore& core, const Caller& caller,
                                                     const v1::PatientConsent& consent,
                                                     const std::string& patient_id,
                                                     ConsentMessageFn message, absl::Time now) {
  const uint64_t chain_id = core.backends.ChainId();
  absl::StatusOr<VerifiedConsent> verified = absl::InternalError("consent not checked");
  RETURN_IF_ERROR(core.db.Read([&](sqlite3* db) -> absl::Status {
    verified = VerifyConsent(db, caller, consent, patient_id, message, now, chain_id);
    return verified.status();
  }));
  return verified;
}

v1::DisputeEvent NewEvent(const Caller& caller, absl::string_view action, absl::Time now,
                          absl::string_view from, absl::string_view to, absl::string_view text,
                          const policy::v1::Decision& decision) {
  v1::DisputeEvent event;
  *event.mutable_time() = ToTimestamp(now);
  event.set_action(std::string(action));
  event.set_actor_organization_id(caller.organization.organization_id);
  event.set_actor_patient_id(caller.patient_id);
  event.set_from_state(std::string(from));
  event.set_to_state(std::string(to));
  event.set_text(std::string(text));
  event.set_decision_id(decision.decision_id());
  return event;
}

absl::StatusOr<std::string> NextState(const policy::v1::Decision& decision,
                                      absl::string_view action) {
  // Fail closed: an allowed transition always names where it leads.
  if (decision.next_state().empty()) {
    return absl::InternalError(absl::StrCat("policy allowed ", action, " without a next state"));
  }
  return decision.next_state();
}

v1::AuditEvent NewAuditEvent(absl::string_view method, const v1::Dispute& dispute) {
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kMethodPrefix, method));
  event.set_dispute_id(dispute.dispute_id());
  event.set_patient_id(dispute.patient_id());
  event.set_record_id(dispute.record_id());
  return event;
}

// dispute.read facts for one patient (its care organisations included).
absl::StatusOr<Facts> ReadFacts(RegistryDb& registry, const std::string& patient_id) {
  Facts facts;
  if (patient_id.empty()) return facts;
  absl::StatusOr<v1::Patient> patient;
  RETURN_IF_ERROR(registry.Read([&](sqlite3* db) -> absl::Status {
    patient = LoadPatient(db, patient_id);
    return patient.status();
  }));
  facts.String("patient.id", patient_id);
  facts.Set("patient.care_organizations",
            {patient->care_organizations().begin(), patient->care_organizations().end()});
  return facts;
}

absl::StatusOr<v1::Dispute> ReadDispute(RegistryDb& registry, const std::string& id) {
  absl::StatusOr<v1::Dispute> dispute;
  RETURN_IF_ERROR(registry.Read([&](sqlite3* db) -> absl::Status {
    dispute = LoadDispute(db, id, /*with_events=*/false);
    return dispute.status();
  }));
  return dispute;
}

}  // namespace

grpc::Status DisputeService::FileDispute(grpc::ServerContext* context,
                                         const v1::FileDisputeRequest* request,
                                         v1::Dispute* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoFileDispute(c, *request, *response); });
}
grpc::Status DisputeService::AddDisputeEvidence(grpc::ServerContext* context,
                                                const v1::AddDisputeEvidenceRequest* request,
                                                v1::Dispute* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoAddDisputeEvidence(c, *request, *response); });
}
grpc::Status DisputeService::TransitionDispute(grpc::ServerContext* context,
                                               const v1::TransitionDisputeRequest* request,
                                               v1::Dispute* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoTransitionDispute(c, *request, *response); });
}
grpc::Status DisputeService::ListDisputes(grpc::ServerContext* context,
                                          const v1::ListDisputesRequest* request,
                                          v1::ListDisputesResponse* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoListDisputes(c, *request, *response); });
}
grpc::Status DisputeService::GetDispute(grpc::ServerContext* context,
                                        const v1::GetDisputeRequest* request,
                                        v1::Dispute* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoGetDispute(c, *request, *response); });
}

absl::Status DisputeService::DoFileDispute(const Caller& caller,
                                           const v1::FileDisputeRequest& request,
                                           v1::Dispute& response) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  RETURN_IF_ERROR(CheckObjectId("record_id", "rec", request.record_id()));
  RETURN_IF_ERROR(CheckText("evidence", request.evidence()));
  if (request.consent().proof_case() == v1::PatientConsent::PROOF_NOT_SET) {
    return InvalidField("consent", "the patient's signature or a hospital's attestation");
  }
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(VerifiedConsent consent,
                   VerifyDisputeConsent(
                       core_, caller, request.consent(), request.patient_id(),
                       [&](uint64_t nonce, uint64_t expiry) {
                         return FileDisputeMessage(request, nonce, expiry);
                       },
                       now));
  // After the consent: only the patient's decision learns whether the record is theirs.
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    SqliteStatement q(db, RegistryDb::kOwner, "SELECT patient_id FROM records WHERE id = ?");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, request.record_id());
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (found && q.Text(0) == request.patient_id()) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("record \"", request.record_id(), "\" of patient \"",
                                            request.patient_id(), "\" not found"));
  }));
  const Caller& patient = consent.actor;
  v1::Dispute dispute;
  dispute.set_dispute_id(NewObjectId("dsp"));
  dispute.set_patient_id(request.patient_id());
  dispute.set_record_id(request.record_id());
  // Never the evidence: the audit log is read more widely than the dispute.
  v1::AuditEvent event = NewAuditEvent("FileDispute", dispute);
  event.set_consent_assurance(consent.assurance);
  Facts facts;
  facts.String("patient.id", request.patient_id())
      .String("record.id", request.record_id())
      .String("dispute.evidence", request.evidence())
      .String("consent.assurance", consent.assurance);
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(patient, "dispute.file",
                                                             std::move(facts), now, event));
  ASSIGN_OR_RETURN(std::string state, NextState(decision, "dispute.file"));
  FillAuditEvent(patient, "dispute.file", now, decision, event);
  event.set_dispute_to_state(state);
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(consent.RecordNonce(db, now));
    SqliteStatement q(
        db, RegistryDb::kOwner,
        "INSERT INTO disputes (id, patient_id, record_id, state, created_at, "
        "state_entered_at, amendment_id, obligations) VALUES (?, ?, ?, ?, ?, ?, '', ?)");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, dispute.dispute_id()).BindText(2, dispute.patient_id());
    q.BindText(3, dispute.record_id()).BindText(4, state).Bind(5, DbTime(now)).Bind(6, DbTime(now));
    q.BindBlob(7, ObligationsBlob(decision));
    RETURN_IF_ERROR(q.Step().status());
    RETURN_IF_ERROR(AppendDisputeEvent(
        db, dispute.dispute_id(),
        NewEvent(patient, "dispute.file", now, "", state, request.evidence(), decision)));
    ASSIGN_OR_RETURN(response, LoadDispute(db, dispute.dispute_id(), /*with_events=*/true));
    return absl::OkStatus();
  });
}

absl::Status DisputeService::DoAddDisputeEvidence(const Caller& caller,
                                                  const v1::AddDisputeEvidenceRequest& request,
                                                  v1::Dispute& response) {
  RETURN_IF_ERROR(CheckObjectId("dispute_id", "dsp", request.dispute_id()));
  RETURN_IF_ERROR(CheckText("evidence", request.evidence()));
  ASSIGN_OR_RETURN(v1::Dispute dispute, ReadDispute(core_.db, request.dispute_id()));
  const absl::Time now = absl::Now();
  v1::AuditEvent event = NewAuditEvent("AddDisputeEvidence", dispute);
  Facts facts;
  facts.String("patient.id", dispute.patient_id()).String("dispute.evidence", request.evidence());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "dispute.add_evidence",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "dispute.add_evidence", now, decision, event);
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    // Read again inside the transaction: the dispute may have closed since.
    ASSIGN_OR_RETURN(v1::Dispute current, LoadDispute(db, dispute.dispute_id(), false));
    if (IsFinal(current.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dispute \"", dispute.dispute_id(), "\" is ", current.state(), ": no more evidence"));
    }
    RETURN_IF_ERROR(
        AppendDisputeEvent(db, dispute.dispute_id(),
                           NewEvent(caller, "dispute.add_evidence", now, current.state(),
                                    current.state(), request.evidence(), decision)));
    ASSIGN_OR_RETURN(response, LoadDispute(db, dispute.dispute_id(), /*with_events=*/true));
    return absl::OkStatus();
  });
}

absl::Status DisputeService::DoTransitionDispute(const Caller& caller,
                                                 const v1::TransitionDisputeRequest& request,
                                                 v1::Dispute& response) {
  ASSIGN_OR_RETURN(const Transition* rule, CheckTransitionRequest(request));
  const bool withdraw = rule->action == v1::TransitionDisputeRequest::WITHDRAW;
  ASSIGN_OR_RETURN(v1::Dispute dispute, ReadDispute(core_.db, request.dispute_id()));
  const std::string from = dispute.state();
  if (std::find(rule->from.begin(), rule->from.end(), from) == rule->from.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("dispute \"", dispute.dispute_id(), "\" is ", from, "; ", rule->policy_action,
                     " is allowed from ", absl::StrJoin(rule->from, ", ")));
  }
  const absl::Time now = absl::Now();
  v1::AuditEvent event = NewAuditEvent("TransitionDispute", dispute);
  Caller actor = caller;
  Facts facts;
  VerifiedConsent consent;  // no nonce unless the patient withdraws
  if (withdraw) {
    ASSIGN_OR_RETURN(consent, VerifyDisputeConsent(
                                  core_, caller, request.consent(), dispute.patient_id(),
                                  [&](uint64_t nonce, uint64_t expiry) {
                                    return WithdrawDisputeMessage(dispute.patient_id(), request,
                                                                  nonce, expiry);
                                  },
                                  now));
    actor = consent.actor;
    facts.String("consent.assurance", consent.assurance);
    event.set_consent_assurance(consent.assurance);
  }
  facts.String("dispute.state", from)
      .Time("dispute.state_entered_at", FromTimestamp(dispute.state_entered_at()))
      .String("patient.id", dispute.patient_id());
  if (!request.rationale().empty()) facts.String("dispute.rationale", request.rationale());
  if (!dispute.amendment_id().empty()) facts.String("dispute.amendment_id", dispute.amendment_id());
  const std::string action = rule->policy_action;
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(actor, action, std::move(facts), now, event));
  ASSIGN_OR_RETURN(std::string to, NextState(decision, action));
  FillAuditEvent(actor, action, now, decision, event);
  event.set_dispute_from_state(from);
  event.set_dispute_to_state(to);
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(consent.RecordNonce(db, now));
    // Only from the state policy decided on: a concurrent move wins.
    SqliteStatement q(db, RegistryDb::kOwner,
                      "UPDATE disputes SET state = ?, state_entered_at = ?, amendment_id = ?, "
                      "obligations = ? WHERE id = ? AND state = ?");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, to).Bind(2, DbTime(now)).BindText(3, dispute.amendment_id());
    q.BindBlob(4, ObligationsBlob(decision)).BindText(5, dispute.dispute_id()).BindText(6, from);
    RETURN_IF_ERROR(q.Step().status());
    if (sqlite3_changes(db) != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dispute \"", dispute.dispute_id(), "\" left ", from, " meanwhile; read it again"));
    }
    RETURN_IF_ERROR(
        AppendDisputeEvent(db, dispute.dispute_id(),
                           NewEvent(actor, action, now, from, to, request.rationale(), decision)));
    ASSIGN_OR_RETURN(response, LoadDispute(db, dispute.dispute_id(), /*with_events=*/true));
    return absl::OkStatus();
  });
}

absl::Status DisputeService::DoListDisputes(const Caller& caller,
                                            const v1::ListDisputesRequest& request,
                                            v1::ListDisputesResponse& response) {
  const std::string& patient_id = request.patient_id();
  if (!patient_id.empty()) RETURN_IF_ERROR(CheckId("patient_id", patient_id));
  ASSIGN_OR_RETURN(Facts facts, ReadFacts(core_.db, patient_id));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kMethodPrefix, "ListDisputes"));
  event.set_patient_id(patient_id);
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "dispute.read",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "dispute.read", now, decision, event);
  // Without a patient: every dispute still open (policy lets only the
  // regulator ask for that).
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Dispute> disputes, ListDisputeRows(db, patient_id));
    response.clear_disputes();
    for (v1::Dispute& d : disputes) *response.add_disputes() = std::move(d);
    return absl::OkStatus();
  });
}

absl::Status DisputeService::DoGetDispute(const Caller& caller,
                                          const v1::GetDisputeRequest& request,
                                          v1::Dispute& response) {
  RETURN_IF_ERROR(CheckObjectId("dispute_id", "dsp", request.dispute_id()));
  ASSIGN_OR_RETURN(v1::Dispute dispute, ReadDispute(core_.db, request.dispute_id()));
  ASSIGN_OR_RETURN(Facts facts, ReadFacts(core_.db, dispute.patient_id()));
  const absl::Time now = absl::Now();
  v1::AuditEvent event = NewAuditEvent("GetDispute", dispute);
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "dispute.read",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "dispute.read", now, decision, event);
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(response, LoadDispute(db, dispute.dispute_id(), /*with_events=*/true));
    return absl::OkStatus();
  });
}

}  // namespace medvault::gateway
