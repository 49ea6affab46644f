// medvault.v1.DisputeService: a patient contests a record; the regulator
// reviews the dispute and decides. Policy (policies/disputes.textproto)
// holds the state machine; this service keeps the rows and the history
// (dispute_store.h).
#ifndef MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/gateway/core.h"
#include "medvault/v1/disputes.grpc.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

class DisputeService final : public v1::DisputeService::Service {
 public:
  explicit DisputeService(GatewayCore& core) : core_(core) {}

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
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_DISPUTE_SERVICE_H_
