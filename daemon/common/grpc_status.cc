#include "daemon/common/grpc_status.h"

#include <optional>
#include <string>

#include "daemon/common/field_error.h"
#include "google/rpc/status.pb.h"

namespace medvault {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  std::optional<google::rpc::BadRequest> bad = BadRequestOf(status);
  if (!bad.has_value()) return grpc::Status(code, std::move(message));
  google::rpc::Status details;
  details.set_code(status.raw_code());
  details.set_message(message);
  details.add_details()->PackFrom(*bad);
  return grpc::Status(code, std::move(message), details.SerializeAsString());
}

}  // namespace medvault
