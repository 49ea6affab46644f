// Converting absl::Status to grpc::Status at a service edge. The canonical
// codes are the same numbers in both; the message is kept.
//
// Bad input also gets machine-readable details: when the status has a
// google.rpc.BadRequest (field_error.h: an InvalidField payload, or one
// derived from an INVALID_ARGUMENT message "<field path>: ..."), the
// grpc::Status carries a serialized google.rpc.Status {code, message,
// details: [Any(BadRequest)]} as its error_details, which gRPC sends in
// the grpc-status-details-bin trailer. Clients read it with
// grpc::ExtractErrorDetails (grpcpp/support/error_details.h), grpcurl or
// grpcio-status.
#ifndef MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_
#define MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace medvault {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_GRPC_STATUS_H_
