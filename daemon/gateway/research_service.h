// medvault.v1.ResearchService: counts of patients for research institutes
// and the health authority (policy action stats.query), released with the
// k-anonymity, noise and privacy budget the allowing rule's
// release_with_privacy obligation names (see research.proto).
#ifndef MEDVAULT_DAEMON_GATEWAY_RESEARCH_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_RESEARCH_SERVICE_H_

#include "daemon/gateway/core.h"
#include "medvault/v1/research.grpc.pb.h"

namespace medvault::gateway {

class ResearchService final : public v1::ResearchService::Service {
 public:
  explicit ResearchService(GatewayCore& core) : core_(core) {}

  grpc::Status CountPatients(grpc::ServerContext* context, const v1::CountPatientsRequest* request,
                             v1::CountPatientsResponse* response) override;

 private:
  absl::Status DoCountPatients(const Caller& caller, const v1::CountPatientsRequest& request,
                               v1::CountPatientsResponse& response);

  GatewayCore& core_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_RESEARCH_SERVICE_H_
