// medvault.v1.DisputeService: a patient contests a record; the regulator
// reviews the dispute and decides. Policy (policies/disputes.textproto)
// holds the state machine; this service keeps the rows and the history
// (dispute_store.h).
#ifndef MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/gateway/core.h"
#include "medvault/v1/disputes.grpc.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

// A patient's decision about a dispute, as the EIP-712 struct it is signed
// as (proto/medvault/v1/consent.proto). Exactly one of record_id and
// dispute_id is set:
//   record_id (+ evidence): FileDispute(patient, record, evidence, nonce, expiry)
//   dispute_id:             WithdrawDispute(patient, dispute, nonce, expiry)
struct DisputeDecision {
  std::string patient_id;
  std::string record_id;
  std::string evidence;
  std::string dispute_id;
};

// What a verified consent established.
struct VerifiedDisputeConsent {
  // "PATIENT_SIGNATURE" or "HOSPITAL_ATTESTATION": the consent.assurance fact.
  std::string assurance;
  // Spends the signature's nonce (INSERT INTO consent_nonces). Called with
  // the connection inside the transaction that commits the decision, so a
  // replay fails that transaction; FAILED_PRECONDITION when the nonce is
  // already used. Must not lock the RegistryDb. Empty for an attestation.
  std::function<absl::Status(sqlite3*)> record_nonce;
};

// Checks that `consent` proves `decision` is the patient's, as sent by
// `caller` at `now`: a signature by the patient's registered address over
// the struct above, before its expiry; or an attestation whose statement
// is 1 to 500 characters, by a hospital caller. INVALID_ARGUMENT naming
// "consent..." for a bad or missing proof; NOT_FOUND for an unknown
// patient. Called outside any RegistryDb transaction (it may Read).
// The integrator binds it to consent.h's VerifyConsent.
using VerifyDisputeConsent = std::function<absl::StatusOr<VerifiedDisputeConsent>(
    const Caller& caller, const DisputeDecision& decision, const v1::PatientConsent& consent,
    absl::Time now)>;

class DisputeService final : public v1::DisputeService::Service {
 public:
  DisputeService(GatewayCore& core, VerifyDisputeConsent verify_consent)
      : core_(core), verify_consent_(std::move(verify_consent)) {}

  grpc::Status FileDispute(grpc::ServerContext* context, const v1::FileDisputeRequest* request,
                           v1::Dispute* response) override;
  grpc::Status AddDisputeEvidence(grpc::ServerContext* context,
                                  const v1::AddDisputeEvidenceRequest* request,
                                  v1::Dispute* response) override;
  grpc::Status TransitionDispute(grpc::ServerContext* context,
                                 const v1::TransitionDisputeRequest* request,
                                 v1::Dispute* response) override;
  grpc::Status ListDisputes(grpc::ServerContext* context, const v1::ListDisputesRequest* request,
                            v1::ListDisputesResponse* response) override;
  grpc::Status GetDispute(grpc::ServerContext* context, const v1::GetDisputeRequest* request,
                          v1::Dispute* response) override;

 private:
  absl::Status DoFileDispute(const Caller& caller, const v1::FileDisputeRequest& request,
                             v1::Dispute& response);
  absl::Status DoAddDisputeEvidence(const Caller& caller,
                                    const v1::AddDisputeEvidenceRequest& request,
                                    v1::Dispute& response);
  absl::Status DoTransitionDispute(const Caller& caller,
                                   const v1::TransitionDisputeRequest& request,
                                   v1::Dispute& response);
  absl::Status DoListDisputes(const Caller& caller, const v1::ListDisputesRequest& request,
                              v1::ListDisputesResponse& response);
  absl::Status DoGetDispute(const Caller& caller, const v1::GetDisputeRequest& request,
                            v1::Dispute& response);

  GatewayCore& core_;
  const VerifyDisputeConsent verify_consent_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_
