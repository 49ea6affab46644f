// medvault.v1.AccessService: access requests, patients' grants, emergency
// (break-glass) access and the access history. The RPCs are split over
// access_service.cc (requests, emergency, history) and access_grants.cc
// (grants); rows live in access_store.h, consent checks in consent.h.
//
// Every RPC asks policy first; every change commits with its audit event,
// and a patient's consent nonce with them, in one transaction.
#ifndef MEDVAULT_DAEMON_GATEWAY_ACCESS_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_ACCESS_SERVICE_H_

#include <string>

#include "daemon/gateway/core.h"
#include "medvault/v1/access.grpc.pb.h"

namespace medvault::gateway {

class AccessService final : public v1::AccessService::Service {
 public:
  explicit AccessService(GatewayCore& core) : core_(core) {}

  grpc::Status RequestAccess(grpc::ServerContext* context, const v1::RequestAccessRequest* request,
                             v1::AccessRequest* response) override;
  grpc::Status ListAccessRequests(grpc::ServerContext* context,
                                  const v1::ListAccessRequestsRequest* request,
                                  v1::ListAccessRequestsResponse* response) override;
  grpc::Status DecideAccessRequest(grpc::ServerContext* context,
                                   const v1::DecideAccessRequestRequest* request,
                                   v1::AccessRequest* response) override;
  grpc::Status GrantAccess(grpc::ServerContext* context, const v1::GrantAccessRequest* request,
                           v1::Grant* response) override;
  grpc::Status RevokeAccess(grpc::ServerContext* context, const v1::RevokeAccessRequest* request,
                            v1::Grant* response) override;
  grpc::Status ListGrants(grpc::ServerContext* context, const v1::ListGrantsRequest* request,
                          v1::ListGrantsResponse* response) override;
  grpc::Status EmergencyAccess(grpc::ServerContext* context,
                               const v1::EmergencyAccessRequest* request,
                               v1::EmergencyAccessSession* response) override;
  grpc::Status GetAccessHistory(grpc::ServerContext* context,
                                const v1::GetAccessHistoryRequest* request,
                                v1::GetAccessHistoryResponse* response) override;

 private:
  absl::Status DoRequestAccess(const Caller& caller, const v1::RequestAccessRequest& request,
                               v1::AccessRequest& response);
  absl::Status DoListAccessRequests(const Caller& caller,
                                    const v1::ListAccessRequestsRequest& request,
                                    v1::ListAccessRequestsResponse& response);
  absl::Status DoDecideAccessRequest(const Caller& caller,
                                     const v1::DecideAccessRequestRequest& request,
                                     v1::AccessRequest& response);
  absl::Status DoGrantAccess(const Caller& caller, const v1::GrantAccessRequest& request,
                             v1::Grant& response);
  absl::Status DoRevokeAccess(const Caller& caller, const v1::RevokeAccessRequest& request,
                              v1::Grant& response);
  absl::Status DoListGrants(const Caller& caller, const v1::ListGrantsRequest& request,
                            v1::ListGrantsResponse& response);
  absl::Status DoEmergencyAccess(const Caller& caller, const v1::EmergencyAccessRequest& request,
                                 v1::EmergencyAccessSession& response);
  absl::Status DoGetAccessHistory(const Caller& caller, const v1::GetAccessHistoryRequest& request,
                                  v1::GetAccessHistoryResponse& response);

  // patient.id and patient.care_organizations of a registered patient;
  // NOT_FOUND otherwise.
  absl::StatusOr<Facts> PatientFacts(const std::string& patient_id);
  // Asks policy for a read of `action` about `patient_id` (empty: the
  // caller's own items, no patient facts) and returns the audit event to
  // commit with the read. PERMISSION_DENIED (logged) on a deny.
  absl::StatusOr<v1::AuditEvent> AuthorizeRead(const Caller& caller, const char* method,
                                               const std::string& action,
                                               const std::string& patient_id, absl::Time now);

  GatewayCore& core_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_ACCESS_SERVICE_H_
