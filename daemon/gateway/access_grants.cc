// AccessService: the patient's decisions (deciding a request, granting,
// revoking) and the grant lists. See access_service.h.
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/access_service.h"
#include "daemon/gateway/access_store.h"
#include "daemon/gateway/consent.h"
#include "daemon/gateway/ids.h"

namespace medvault::gateway {
namespace {

constexpr char kService[] = "/medvault.v1.AccessService/";

// A decided request is final; an undecided one past 72 hours has expired
// (policy would deny the approval; the caller should hear why).
absl::Status CheckPending(const v1::AccessRequest& request, absl::Time now) {
  if (request.state() != v1::AccessRequest::PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat("access request \"", request.request_id(), "\" is already ",
                     v1::AccessRequest::State_Name(request.state())));
  }
  if (EffectiveState(request, now) == v1::AccessRequest::EXPIRED) {
    return absl::FailedPreconditionError(
        absl::StrCat("access request \"", request.request_id(), "\" has expired"));
  }
  return absl::OkStatus();
}

absl::Status CheckActive(const v1::Grant& grant) {
  if (grant.status() != v1::Grant::ACTIVE) {
    return absl::FailedPreconditionError(
        absl::StrCat("grant \"", grant.grant_id(), "\" is not active"));
  }
  return absl::OkStatus();
}

// The grant an approval creates: what was asked, from now until the
// request's end.
v1::Grant GrantOfRequest(const v1::AccessRequest& request, const std::string& assurance,
                         absl::Time now) {
  v1::Grant grant;
  grant.set_grant_id(NewObjectId("grant"));
  grant.set_patient_id(request.patient_id());
  grant.set_grantee_id(request.practitioner_id());
  *grant.mutable_scope() = request.scope();
  grant.add_purposes(request.purpose());
  *grant.mutable_not_before() = ToTimestamp(now);
  *grant.mutable_not_after() = request.not_after();
  grant.set_status(v1::Grant::ACTIVE);
  *grant.mutable_created_at() = ToTimestamp(now);
  grant.set_assurance(assurance);
  grant.set_request_id(request.request_id());
  return grant;
}

absl::Status CheckGrantAccess(const v1::GrantAccessRequest& request, absl::Time now) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  RETURN_IF_ERROR(CheckId("grantee_id", request.grantee_id()));
  if (!request.has_scope()) return InvalidField("scope", "required");
  RETURN_IF_ERROR(CheckScope("scope", request.scope()));
  if (request.purposes().empty()) return InvalidField("purposes", "at least one");
  bool claim = false;
  for (int i = 0; i < request.purposes().size(); ++i) {
    RETURN_IF_ERROR(CheckPurpose(absl::StrCat("purposes[", i, "]"), request.purposes(i)));
    claim = claim || request.purposes(i) == v1::CLAIM;
  }
  const absl::Time not_before =
      request.has_not_before() ? FromTimestamp(request.not_before()) : now;
  if (!request.has_not_after()) return InvalidField("not_after", "required");
  if (FromTimestamp(request.not_after()) <= not_before) {
    return InvalidField("not_after", "must be after not_before");
  }
  if (claim) RETURN_IF_ERROR(CheckId("claim_id", request.claim_id()));
  return absl::OkStatus();
}

// A grantee is a registered practitioner or organisation (an insurer).
absl::Status CheckGrantee(sqlite3* db, const std::string& grantee_id) {
  ASSIGN_OR_RETURN(bool found, RowExists(db,
                                         "SELECT 1 FROM practitioners WHERE id = ?1 "
                                         "UNION ALL SELECT 1 FROM organizations WHERE id = ?1",
                                         grantee_id));
  if (!found) return absl::NotFoundError(absl::StrCat("grantee \"", grantee_id, "\" not found"));
  return absl::OkStatus();
}

Facts ConsentFacts(const VerifiedConsent& consent) {
  Facts facts;
  facts.String("patient.id", consent.patient_id);
  facts.String("consent.assurance", consent.assurance);
  return facts;
}

}  // namespace

absl::Status AccessService::DoDecideAccessRequest(const Caller& caller,
                                                  const v1::DecideAccessRequestRequest& request,
                                                  v1::AccessRequest& response) {
  RETURN_IF_ERROR(CheckObjectId("request_id", "req", request.request_id()));
  const absl::Time now = absl::Now();
  v1::AccessRequest stored;
  VerifiedConsent consent;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(stored, LoadAccessRequest(db, request.request_id()));
    RETURN_IF_ERROR(CheckPending(stored, now));
    auto message = [&](uint64_t nonce, uint64_t expiry) {
      return AccessDecisionMessage(stored.patient_id(), request, nonce, expiry);
    };
    ASSIGN_OR_RETURN(consent, VerifyConsent(db, caller, request.consent(), stored.patient_id(),
                                            message, now, core_.backends.ChainId()));
    return absl::OkStatus();
  }));
  const char* action = request.approve() ? "access_request.approve" : "access_request.deny";
  Facts facts = ConsentFacts(consent);
  facts.String("access_request.state", v1::AccessRequest::State_Name(stored.state()));
  facts.Time("access_request.created_at", FromTimestamp(stored.created_at()));
  std::optional<v1::Grant> grant;
  if (request.approve()) grant = GrantOfRequest(stored, consent.assurance, now);
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "DecideAccessRequest"));
  event.set_patient_id(stored.patient_id());
  event.set_access_request_id(stored.request_id());
  event.set_consent_assurance(consent.assurance);
  if (grant) event.set_grant_id(grant->grant_id());
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(consent.actor, action, std::move(facts), now, event));
  FillAuditEvent(consent.actor, action, now, decision, event);
  stored.set_state(request.approve() ? v1::AccessRequest::APPROVED : v1::AccessRequest::DENIED);
  *stored.mutable_decided_at() = ToTimestamp(now);
  if (grant) stored.set_grant_id(grant->grant_id());
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    // Decided meanwhile by another call?
    ASSIGN_OR_RETURN(v1::AccessRequest current, LoadAccessRequest(db, stored.request_id()));
    RETURN_IF_ERROR(CheckPending(current, now));
    RETURN_IF_ERROR(consent.RecordNonce(db, now));
    if (grant) RETURN_IF_ERROR(InsertGrant(db, *grant));
    return UpdateAccessRequest(db, stored);
  }));
  response = std::move(stored);
  return absl::OkStatus();
}

absl::Status AccessService::DoGrantAccess(const Caller& caller,
                                          const v1::GrantAccessRequest& request,
                                          v1::Grant& response) {
  const absl::Time now = absl::Now();
  RETURN_IF_ERROR(CheckGrantAccess(request, now));
  VerifiedConsent consent;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    auto message = [&](uint64_t nonce, uint64_t expiry) {
      return GrantAccessMessage(request, nonce, expiry);
    };
    ASSIGN_OR_RETURN(consent, VerifyConsent(db, caller, request.consent(), request.patient_id(),
                                            message, now, core_.backends.ChainId()));
    return CheckGrantee(db, request.grantee_id());
  }));
  v1::Grant grant;
  grant.set_grant_id(NewObjectId("grant"));
  grant.set_patient_id(request.patient_id());
  grant.set_grantee_id(request.grantee_id());
  *grant.mutable_scope() = request.scope();
  *grant.mutable_purposes() = request.purposes();
  *grant.mutable_not_before() = request.has_not_before() ? request.not_before() : ToTimestamp(now);
  *grant.mutable_not_after() = request.not_after();
  grant.set_allows_delegation(request.allows_delegation());
  grant.set_claim_id(request.claim_id());
  grant.set_status(v1::Grant::ACTIVE);
  *grant.mutable_created_at() = ToTimestamp(now);
  grant.set_assurance(consent.assurance);
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "GrantAccess"));
  event.set_patient_id(grant.patient_id());
  event.set_grant_id(grant.grant_id());
  event.set_subject_id(grant.grantee_id());
  event.set_consent_assurance(consent.assurance);
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(consent.actor, "grant.create",
                                                             ConsentFacts(consent), now, event));
  FillAuditEvent(consent.actor, "grant.create", now, decision, event);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(CheckScopeRecords(db, grant.patient_id(), grant.scope()));
    RETURN_IF_ERROR(consent.RecordNonce(db, now));
    return InsertGrant(db, grant);
  }));
  response = std::move(grant);
  return absl::OkStatus();
}

absl::Status AccessService::DoRevokeAccess(const Caller& caller,
                                           const v1::RevokeAccessRequest& request,
                                           v1::Grant& response) {
  RETURN_IF_ERROR(CheckObjectId("grant_id", "grant", request.grant_id()));
  const absl::Time now = absl::Now();
  v1::Grant grant;
  VerifiedConsent consent;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(grant, LoadGrant(db, request.grant_id()));
    RETURN_IF_ERROR(CheckActive(grant));
    auto message = [&](uint64_t nonce, uint64_t expiry) {
      return RevokeAccessMessage(grant.patient_id(), request, nonce, expiry);
    };
    ASSIGN_OR_RETURN(consent, VerifyConsent(db, caller, request.consent(), grant.patient_id(),
                                            message, now, core_.backends.ChainId()));
    return absl::OkStatus();
  }));
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kService, "RevokeAccess"));
  event.set_patient_id(grant.patient_id());
  event.set_grant_id(grant.grant_id());
  event.set_consent_assurance(consent.assurance);
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(consent.actor, "grant.revoke",
                                                             ConsentFacts(consent), now, event));
  FillAuditEvent(consent.actor, "grant.revoke", now, decision, event);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(grant, LoadGrant(db, request.grant_id()));  // revoked meanwhile?
    RETURN_IF_ERROR(CheckActive(grant));
    RETURN_IF_ERROR(consent.RecordNonce(db, now));
    grant.set_status(v1::Grant::REVOKED);
    *grant.mutable_revoked_at() = ToTimestamp(now);
    return UpdateGrant(db, grant);
  }));
  if (core_.grant_revoked) core_.grant_revoked(grant.patient_id());
  response = std::move(grant);
  return absl::OkStatus();
}

absl::Status AccessService::DoListGrants(const Caller& caller, const v1::ListGrantsRequest& request,
                                         v1::ListGrantsResponse& response) {
  const absl::Time now = absl::Now();
  const bool own = request.patient_id().empty();
  ASSIGN_OR_RETURN(v1::AuditEvent event,
                   AuthorizeRead(caller, "ListGrants", "grant.list", request.patient_id(), now));
  std::vector<v1::Grant> found;
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    // Without a patient: the grants the caller holds (a practitioner's id,
    // or an insurer's organisation id).
    ASSIGN_OR_RETURN(found, own ? GrantsOfGrantee(db, caller.actor_id)
                                : GrantsOfPatient(db, request.patient_id()));
    return absl::OkStatus();
  }));
  for (v1::Grant& g : found) *response.add_grants() = std::move(g);
  return absl::OkStatus();
}

}  // namespace medvault::gateway
