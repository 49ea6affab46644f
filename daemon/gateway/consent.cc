#include "daemon/gateway/consent.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

// A signature may be prepared ahead, but not left lying around for long.
constexpr absl::Duration kMaxConsentLifetime = absl::Hours(24);

// The trailing "uint256 nonce,uint256 expiry" every decision struct has.
eip712::TypedMessage Typed(const std::string& type, std::vector<eip712::Field> fields,
                           std::map<std::string, eip712::Value> values, uint64_t nonce,
                           uint64_t expiry) {
  fields.push_back({"nonce", "uint256"});
  fields.push_back({"expiry", "uint256"});
  values["nonce"] = nonce;
  values["expiry"] = expiry;
  eip712::TypedMessage typed;
  typed.types.push_back({type, std::move(fields)});
  typed.message.type = type;
  typed.message.values = std::move(values);
  return typed;
}

// Unix seconds of an optional timestamp; 0 when unset.
uint64_t Seconds(bool has, const google::protobuf::Timestamp& t) {
  return has && t.seconds() > 0 ? static_cast<uint64_t>(t.seconds()) : 0;
}

absl::StatusOr<std::string> PatientAddress(sqlite3* db, const std::string& patient_id) {
  SqliteStatement q(db, RegistryDb::kOwner, "SELECT address FROM patients WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("patient \"", patient_id, "\" not found"));
  return q.Blob(0);
}

absl::StatusOr<bool> NonceUsed(sqlite3* db, const std::string& patient_id, uint64_t nonce) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT 1 FROM consent_nonces WHERE patient_id = ? AND nonce = ?");
  RETURN_IF_ERROR(q.status());
  // SQLite integers are signed: the nonce is stored as its two's complement.
  q.BindText(1, patient_id).Bind(2, static_cast<int64_t>(nonce));
  return q.Step();
}

absl::Status NonceReplayed() { return absl::FailedPreconditionError("consent nonce already used"); }

// The caller seen as patient `patient_id` acting through its organisation.
Caller AsPatient(const Caller& caller, const std::string& patient_id) {
  Caller actor = caller;
  actor.policy_role = "PATIENT";
  actor.actor_id = patient_id;
  actor.patient_id = patient_id;
  // The patient decides, not whoever relayed it: no practitioner facts.
  actor.practitioner_id.clear();
  actor.specialties.clear();
  actor.licence.reset();
  return actor;
}

absl::Status VerifySignature(sqlite3* db, const v1::PatientSignature& signature,
                             const std::string& patient_id, ConsentMessageFn message,
                             absl::Time now, uint64_t chain_id) {
  // A signature over chainId 0 would verify on no real chain.
  if (chain_id == 0) {
    return absl::UnavailableError("the anchoring chain's id is not known yet; retry later");
  }
  if (!signature.has_expires_at()) {
    return InvalidField("consent.signature.expires_at", "required");
  }
  const absl::Time expiry = absl::FromUnixSeconds(signature.expires_at().seconds());
  if (expiry <= now) {
    return absl::FailedPreconditionError("consent.signature.expires_at: the consent has expired");
  }
  if (expiry > now + kMaxConsentLifetime) {
    return InvalidField("consent.signature.expires_at", "at most 24 hours ahead");
  }
  if (signature.signature().size() != 65) {
    return InvalidField("consent.signature.signature", "must be 65 bytes r || s || v");
  }
  const eip712::TypedMessage typed =
      message(signature.nonce(), static_cast<uint64_t>(signature.expires_at().seconds()));
  ASSIGN_OR_RETURN(std::string digest, eip712::Digest(ConsentDomain(chain_id), typed));
  absl::StatusOr<std::string> signer = eip712::RecoverSigner(digest, signature.signature());
  if (!signer.ok()) return InvalidField("consent.signature.signature", signer.status().message());
  ASSIGN_OR_RETURN(std::string address, PatientAddress(db, patient_id));
  if (*signer != address) {
    return absl::PermissionDeniedError("consent is not signed by the patient's key");
  }
  // Checked again, authoritatively, when the nonce is recorded with the
  // change; this early answer spares the caller a policy round trip.
  ASSIGN_OR_RETURN(bool used, NonceUsed(db, patient_id, signature.nonce()));
  if (used) return NonceReplayed();
  return absl::OkStatus();
}

// A hospital vouches for the patient only on its own connection: the
// hospital itself, or the same patient through its portal.
absl::Status VerifyAttestation(sqlite3* db, const Caller& caller,
                               const v1::HospitalAttestation& attestation,
                               const std::string& patient_id) {
  const size_t length = attestation.statement().size();
  if (length == 0 || length > 500) {
    return InvalidField("consent.attestation.statement", "1 to 500 characters");
  }
  if (caller.organization.role != "hospital" || caller.is_practitioner() ||
      (caller.is_patient() && caller.patient_id != patient_id)) {
    return absl::PermissionDeniedError(
        "a hospital attestation is accepted only from the patient's hospital connection");
  }
  RETURN_IF_ERROR(PatientAddress(db, patient_id).status());  // NOT_FOUND for an unknown patient
  // Only a hospital caring for the patient can have witnessed the decision.
  ASSIGN_OR_RETURN(bool cared_for,
                   PatientInCare(db, patient_id, caller.organization.organization_id));
  if (!cared_for) {
    return absl::PermissionDeniedError(
        absl::StrCat("a hospital attestation is accepted only from a hospital caring for the "
                     "patient; ",
                     caller.organization.organization_id, " is not"));
  }
  return absl::OkStatus();
}

}  // namespace

eip712::Domain ConsentDomain(uint64_t chain_id) {
  return eip712::Domain{"medvault", "1", chain_id};
}

eip712::TypedMessage AccessDecisionMessage(const std::string& patient_id,
                                           const v1::DecideAccessRequestRequest& request,
                                           uint64_t nonce, uint64_t expiry) {
  return Typed(
      "AccessDecision", {{"patient", "string"}, {"request", "string"}, {"approve", "bool"}},
      {{"patient", patient_id}, {"request", request.request_id()}, {"approve", request.approve()}},
      nonce, expiry);
}

eip712::TypedMessage GrantAccessMessage(const v1::GrantAccessRequest& request, uint64_t nonce,
                                        uint64_t expiry) {
  std::vector<std::string> categories;
  for (int c : request.scope().categories()) {
    categories.push_back(v1::RecordCategory_Name(static_cast<v1::RecordCategory>(c)));
  }
  std::vector<std::string> records(request.scope().record_ids().begin(),
                                   request.scope().record_ids().end());
  std::vector<std::string> purposes;
  for (int p : request.purposes()) {
    purposes.push_back(v1::Purpose_Name(static_cast<v1::Purpose>(p)));
  }
  return Typed("GrantAccess",
               {{"patient", "string"},
                {"grantee", "string"},
                {"scope", "string"},
                {"categories", "string[]"},
                {"records", "string[]"},
                {"purposes", "string[]"},
                {"notBefore", "uint256"},
                {"notAfter", "uint256"},
                {"allowDelegation", "bool"},
                {"claim", "string"}},
               {{"patient", request.patient_id()},
                {"grantee", request.grantee_id()},
                {"scope", v1::GrantScope_Name(request.scope().scope())},
                {"categories", std::move(categories)},
                {"records", std::move(records)},
                {"purposes", std::move(purposes)},
                {"notBefore", Seconds(request.has_not_before(), request.not_before())},
                {"notAfter", Seconds(request.has_not_after(), request.not_after())},
                {"allowDelegation", request.allows_delegation()},
                {"claim", request.claim_id()}},
               nonce, expiry);
}

eip712::TypedMessage RevokeAccessMessage(const std::string& patient_id,
                                         const v1::RevokeAccessRequest& request, uint64_t nonce,
                                         uint64_t expiry) {
  return Typed("RevokeAccess", {{"patient", "string"}, {"grant", "string"}},
               {{"patient", patient_id}, {"grant", request.grant_id()}}, nonce, expiry);
}

eip712::TypedMessage FileDisputeMessage(const v1::FileDisputeRequest& request, uint64_t nonce,
                                        uint64_t expiry) {
  return Typed("FileDispute", {{"patient", "string"}, {"record", "string"}, {"evidence", "string"}},
               {{"patient", request.patient_id()},
                {"record", request.record_id()},
                {"evidence", request.evidence()}},
               nonce, expiry);
}

eip712::TypedMessage WithdrawDisputeMessage(const std::string& patient_id,
                                            const v1::TransitionDisputeRequest& request,
                                            uint64_t nonce, uint64_t expiry) {
  return Typed("WithdrawDispute", {{"patient", "string"}, {"dispute", "string"}},
               {{"patient", patient_id}, {"dispute", request.dispute_id()}}, nonce, expiry);
}

absl::Status VerifiedConsent::RecordNonce(sqlite3* db, absl::Time now) const {
  if (!has_nonce) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool used, NonceUsed(db, patient_id, nonce));
  if (used) return NonceReplayed();
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO consent_nonces (patient_id, nonce, used_at) VALUES (?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id).Bind(2, static_cast<int64_t>(nonce));
  q.Bind(3, absl::ToUnixMillis(now));
  return q.Step().status();
}

absl::StatusOr<VerifiedConsent> VerifyConsent(sqlite3* db, const Caller& caller,
                                              const v1::PatientConsent& consent,
                                              const std::string& patient_id,
                                              ConsentMessageFn message, absl::Time now,
                                              uint64_t chain_id) {
  VerifiedConsent verified;
  verified.patient_id = patient_id;
  switch (consent.proof_case()) {
    case v1::PatientConsent::kSignature:
      RETURN_IF_ERROR(VerifySignature(db, consent.signature(), patient_id, message, now, chain_id));
      verified.assurance = kPatientSignature;
      verified.has_nonce = true;
      verified.nonce = consent.signature().nonce();
      break;
    case v1::PatientConsent::kAttestation:
      RETURN_IF_ERROR(VerifyAttestation(db, caller, consent.attestation(), patient_id));
      verified.assurance = kHospitalAttestation;
      break;
    default:
      return InvalidField("consent", "required: the patient's signature or an attestation");
  }
  verified.actor = AsPatient(caller, patient_id);
  return verified;
}

}  // namespace medvault::gateway
