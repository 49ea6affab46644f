#include "daemon/common/health_client.h"

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"

namespace medvault {

HealthReport CheckHealth(const std::string& socket_path, absl::Duration timeout) {
  // A connection of its own: through the global subchannel pool a probe
  // would inherit an earlier probe's failed connection and its reconnect
  // backoff, and a process that has just come back would look down.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel("unix:" + socket_path, grpc::InsecureChannelCredentials(), args);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return {Health::kUnreachable, status.error_message()};
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return {Health::kNotServing,
            grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())};
  }
  return {Health::kServing, ""};
}

const char* HealthName(Health health) {
  switch (health) {
    case Health::kServing:
      return "SERVING";
    case Health::kNotServing:
      return "NOT_SERVING";
    case Health::kUnreachable:
      return "UNREACHABLE";
  }
  return "UNKNOWN";
}

}  // namespace medvault
