// A patient's decision and its proof (proto/medvault/v1/consent.proto):
// the EIP-712 messages a patient's wallet signs, one per kind of decision,
// and the check of a PatientConsent against the registered patient.
//
// A verified signature authenticates the patient: whoever relays it, the
// decision is the patient's, so policy sees the patient as the actor. A
// hospital's attestation is accepted only from a hospital connection, and
// policy decides where that lower assurance is enough.
#ifndef MEDVAULT_DAEMON_GATEWAY_CONSENT_H_
#define MEDVAULT_DAEMON_GATEWAY_CONSENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/gateway/caller.h"
#include "daemon/gateway/eip712.h"
#include "medvault/v1/access.pb.h"
#include "medvault/v1/disputes.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

// consent.assurance values (policies/vocabulary.textproto).
inline constexpr char kPatientSignature[] = "PATIENT_SIGNATURE";
inline constexpr char kHospitalAttestation[] = "HOSPITAL_ATTESTATION";

// EIP712Domain{name "medvault", version "1", chainId}.
eip712::Domain ConsentDomain(uint64_t chain_id);

// The signed structs of consent.proto, filled from a request with its nonce
// and expiry (unix seconds). Enum values are their names; times are unix
// seconds (0 when unset). `patient_id` comes from the stored request,
// grant or dispute where the request does not carry it.
eip712::TypedMessage AccessDecisionMessage(const std::string& patient_id,
                                           const v1::DecideAccessRequestRequest& request,
                                           uint64_t nonce, uint64_t expiry);
eip712::TypedMessage GrantAccessMessage(const v1::GrantAccessRequest& request, uint64_t nonce,
                                        uint64_t expiry);
eip712::TypedMessage RevokeAccessMessage(const std::string& patient_id,
                                         const v1::RevokeAccessRequest& request, uint64_t nonce,
                                         uint64_t expiry);
eip712::TypedMessage FileDisputeMessage(const v1::FileDisputeRequest& request, uint64_t nonce,
                                        uint64_t expiry);
eip712::TypedMessage WithdrawDisputeMessage(const std::string& patient_id,
                                            const v1::TransitionDisputeRequest& request,
                                            uint64_t nonce, uint64_t expiry);

// Builds the message for a given nonce and expiry, e.g.
//   [&](uint64_t n, uint64_t e) { return RevokeAccessMessage(p, request, n, e); }
using ConsentMessageFn = absl::FunctionRef<eip712::TypedMessage(uint64_t, uint64_t)>;

// A consent that verified.
struct VerifiedConsent {
  std::string patient_id;
  // kPatientSignature or kHospitalAttestation: the consent.assurance fact
  // and AuditEvent.consent_assurance.
  std::string assurance;
  // The caller as policy must see it: the patient P acting (policy_role
  // PATIENT, actor_id P, patient_id P), through the calling organisation.
  Caller actor;
  // Set for a signature: the nonce to record with the change.
  bool has_nonce = false;
  uint64_t nonce = 0;

  // Records the nonce (if any) inside the caller's open transaction, the
  // one that also makes the change: FAILED_PRECONDITION "consent nonce
  // already used" for a replay, in which case the change must roll back.
  absl::Status RecordNonce(sqlite3* db, absl::Time now) const;
};

// Checks `consent` for a decision about `patient_id` made through `caller`.
// `db` is used for reads only (the patient's address, the nonce); call it
// inside RegistryDb::Read. Errors:
//   INVALID_ARGUMENT naming "consent" when missing, or the field that is
//     malformed (consent.signature.signature, consent.signature.expires_at
//     more than 24 hours ahead, consent.attestation.statement);
//   FAILED_PRECONDITION when the signature has expired or its nonce was
//     already used;
//   NOT_FOUND when the patient is not registered;
//   UNAVAILABLE for a signature while `chain_id` is 0 (not known yet);
//   PERMISSION_DENIED when the signer is not the patient's registered
//     address, or an attestation does not come from a hospital connection
//     (the hospital itself, or the same patient through it).
absl::StatusOr<VerifiedConsent> VerifyConsent(sqlite3* db, const Caller& caller,
                                              const v1::PatientConsent& consent,
                                              const std::string& patient_id,
                                              ConsentMessageFn message, absl::Time now,
                                              uint64_t chain_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CONSENT_H_
