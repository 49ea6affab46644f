// Converting absl::Status to grpc::Status at a service edge. The canonical
// codes are the same numbers in both; the message is kept.
#ifndef MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_
#define MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace medvault {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_
