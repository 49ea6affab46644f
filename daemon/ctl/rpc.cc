#include "daemon/ctl/rpc.h"

#include <iostream>

namespace medvault::ctl {

std::shared_ptr<grpc::Channel> ProcessChannel(const config::v1::Config& config, Role role) {
  return grpc::CreateChannel("unix:" + SocketPath(config, role),
                             grpc::InsecureChannelCredentials());
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

int Report(const grpc::Status& status, absl::string_view what) {
  std::cerr << "medvaultctl: " << what << ": " << status.error_message() << " (gRPC code "
            << static_cast<int>(status.error_code()) << ")\n";
  return 1;
}

}  // namespace medvault::ctl
