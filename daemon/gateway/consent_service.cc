#include "daemon/gateway/consent_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/consent.h"
#include "daemon/gateway/eip712.h"
#include "daemon/gateway/ids.h"

namespace medvault::gateway {
namespace {

// Same bound as VerifyConsent applies, so that a prepared document can be
// used.
constexpr absl::Duration kMaxConsentLifetime = absl::Hours(24);

absl::Status CheckExpiry(const v1::PrepareConsentRequest& request, absl::Time now) {
  if (!request.has_expires_at()) return InvalidField("expires_at", "required");
  const absl::Time expiry = absl::FromUnixSeconds(request.expires_at().seconds());
  if (expiry <= now || expiry > now + kMaxConsentLifetime) {
    return InvalidField("expires_at", "in the future, at most 24 hours ahead");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status ConsentService::PrepareConsent(grpc::ServerContext* context,
                                            const v1::PrepareConsentRequest* request,
                                            v1::PrepareConsentResponse* response) {
  // Any authenticated caller; who it is does not change the answer.
  absl::StatusOr<Caller> caller = ResolveCaller(*context, core_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(DoPrepareConsent(*request, *response));
}

absl::StatusOr<std::string> ConsentService::StoredPatient(const char* sql, absl::string_view what,
                                                          const std::string& id) {
  std::string patient_id;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    SqliteStatement q(db, RegistryDb::kOwner, sql);
    RETURN_IF_ERROR(q.status());
    q.BindText(1, id);
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (!found) return absl::NotFoundError(absl::StrCat(what, " \"", id, "\" not found"));
    patient_id = q.Text(0);
    return absl::OkStatus();
  }));
  return patient_id;
}

absl::Status ConsentService::DoPrepareConsent(const v1::PrepareConsentRequest& request,
                                              v1::PrepareConsentResponse& response) {
  if (core_.backends.ChainId() == 0) {
    return absl::UnavailableError("the anchoring chain's id is not known yet; retry later");
  }
  RETURN_IF_ERROR(CheckExpiry(request, absl::Now()));
  const uint64_t nonce = request.nonce();
  const uint64_t expiry = static_cast<uint64_t>(request.expires_at().seconds());
  eip712::TypedMessage typed;
  switch (request.decision_case()) {
    case v1::PrepareConsentRequest::kDecideAccessRequest: {
      const auto& d = request.decide_access_request();
      RETURN_IF_ERROR(CheckObjectId("decide_access_request.request_id", "req", d.request_id()));
      ASSIGN_OR_RETURN(std::string patient,
                       StoredPatient("SELECT patient_id FROM access_requests WHERE id = ?",
                                     "access request", d.request_id()));
      typed = AccessDecisionMessage(patient, d, nonce, expiry);
      break;
    }
    case v1::PrepareConsentRequest::kGrantAccess:
      RETURN_IF_ERROR(CheckId("grant_access.patient_id", request.grant_access().patient_id()));
      typed = GrantAccessMessage(request.grant_access(), nonce, expiry);
      break;
    case v1::PrepareConsentRequest::kRevokeAccess: {
      const auto& r = request.revoke_access();
      RETURN_IF_ERROR(CheckObjectId("revoke_access.grant_id", "grant", r.grant_id()));
      ASSIGN_OR_RETURN(
          std::string patient,
          StoredPatient("SELECT patient_id FROM grants WHERE id = ?", "grant", r.grant_id()));
      typed = RevokeAccessMessage(patient, r, nonce, expiry);
      break;
    }
    case v1::PrepareConsentRequest::kFileDispute:
      RETURN_IF_ERROR(CheckId("file_dispute.patient_id", request.file_dispute().patient_id()));
      typed = FileDisputeMessage(request.file_dispute(), nonce, expiry);
      break;
    case v1::PrepareConsentRequest::kWithdrawDispute: {
      const auto& w = request.withdraw_dispute();
      RETURN_IF_ERROR(CheckObjectId("withdraw_dispute.dispute_id", "dsp", w.dispute_id()));
      if (w.action() != v1::TransitionDisputeRequest::WITHDRAW) {
        return InvalidField("withdraw_dispute.action", "must be WITHDRAW");
      }
      ASSIGN_OR_RETURN(
          std::string patient,
          StoredPatient("SELECT patient_id FROM disputes WHERE id = ?", "dispute", w.dispute_id()));
      typed = WithdrawDisputeMessage(patient, w, nonce, expiry);
      break;
    }
    default:
      return InvalidField("decision", "required: the decision to sign");
  }
  const eip712::Domain domain = ConsentDomain(core_.backends.ChainId());
  ASSIGN_OR_RETURN(*response.mutable_typed_data_json(), eip712::ToTypedDataJson(domain, typed));
  ASSIGN_OR_RETURN(*response.mutable_digest(), eip712::Digest(domain, typed));
  return absl::OkStatus();
}

}  // namespace medvault::gateway
