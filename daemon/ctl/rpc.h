// What every medvaultctl command uses to call a running process: a channel
// to its Unix socket, a deadline, and the report of a failed call.
#ifndef MEDVAULT_DAEMON_CTL_RPC_H_
#define MEDVAULT_DAEMON_CTL_RPC_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

// A channel to `role`'s socket in the configuration's runtime directory.
std::shared_ptr<grpc::Channel> ProcessChannel(const config::v1::Config& config, Role role);

// The call must finish within `timeout` from now.
void SetDeadline(grpc::ClientContext& context, absl::Duration timeout);

// Prints why a call failed ("medvaultctl: <what>: <message> (gRPC code N)")
// and returns exit code 1.
int Report(const grpc::Status& status, absl::string_view what);

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_RPC_H_
