// medvault.v1.SystemService: who the caller is and how the fleet is doing.
#ifndef MEDVAULT_DAEMON_GATEWAY_SYSTEM_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_SYSTEM_SERVICE_H_

#include <memory>

#include "medvault/config/v1/config.pb.h"
#include "medvault/internal/v1/signer.grpc.pb.h"
#include "medvault/v1/system.grpc.pb.h"

namespace medvault::gateway {

class SystemService : public v1::SystemService::Service {
 public:
  // `config` must outlive the service.
  explicit SystemService(const config::v1::Config& config);

  grpc::Status GetSystemInfo(grpc::ServerContext* context, const v1::GetSystemInfoRequest* request,
                             v1::GetSystemInfoResponse* response) override;

 private:
  const config::v1::Config& config_;
  std::unique_ptr<internal::v1::Signer::Stub> signer_;
};

// The subject of the TLS client certificate of the call, as gRPC reports it
// ("CN=...,O=..."); the common name when the subject is not available.
std::string CallerSubject(const grpc::ServerContext& context);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_SYSTEM_SERVICE_H_
