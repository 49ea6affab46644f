// medvault.v1.ConsentService: the EIP-712 document a patient's wallet signs
// for a decision (see consent.h for the messages and their verification).
#ifndef MEDVAULT_DAEMON_GATEWAY_CONSENT_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_CONSENT_SERVICE_H_

#include "daemon/gateway/core.h"
#include "medvault/v1/consent.grpc.pb.h"

namespace medvault::gateway {

// Stores nothing and asks no policy: it returns what the caller sent, as a
// document to sign. For decisions on a stored object (a request, a grant,
// a dispute) it looks up that object's patient, so only authenticated
// callers are served. Errors: INVALID_ARGUMENT naming the field, NOT_FOUND
// for an unknown request, grant or dispute, UNAVAILABLE while the chain id
// is unknown.
class ConsentService final : public v1::ConsentService::Service {
 public:
  explicit ConsentService(GatewayCore& core) : core_(core) {}

  grpc::Status PrepareConsent(grpc::ServerContext* context,
                              const v1::PrepareConsentRequest* request,
                              v1::PrepareConsentResponse* response) override;

 private:
  absl::Status DoPrepareConsent(const v1::PrepareConsentRequest& request,
                                v1::PrepareConsentResponse& response);
  // The patient of a stored object: `sql` selects patient_id by id.
  absl::StatusOr<std::string> StoredPatient(const char* sql, absl::string_view what,
                                            const std::string& id);

  GatewayCore& core_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CONSENT_SERVICE_H_
