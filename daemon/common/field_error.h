// Errors that name the bad fields of a request.
//
// The rule for bad input: INVALID_ARGUMENT whose message reads
// "<field>: <description>" and which carries the same as a
// google.rpc.BadRequest (proto/google/rpc/error_details.proto), so that a
// client can tell which field to fix without parsing English. Inside a
// process the BadRequest travels as an absl::Status payload under
// kBadRequestTypeUrl (the serialized message); ToGrpcStatus
// (grpc_status.h) sends it on as the gRPC status details.
//
// Errors written before this helper existed, such as
//   absl::InvalidArgumentError("log_id: must be 32 bytes")
// get their BadRequest from the message instead (BadRequestOf): an
// INVALID_ARGUMENT message that starts with a field path and ": " names
// that field. Prefer InvalidField in new code: it also names fields the
// derivation cannot, like map keys (facts["patient.id"]).
#ifndef MEDVAULT_DAEMON_COMMON_FIELD_ERROR_H_
#define MEDVAULT_DAEMON_COMMON_FIELD_ERROR_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/error_details.pb.h"

namespace medvault {

// The payload key of a BadRequest, the type URL google.protobuf.Any gives
// it.
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

struct FieldViolation {
  // Path to the field in the request: "log_id", "request.action",
  // "facts[\"patient.id\"]".
  std::string field;
  std::string description;
};

// INVALID_ARGUMENT "<field>: <description>" carrying a BadRequest with that
// one violation.
absl::Status InvalidField(absl::string_view field, absl::string_view description);

// INVALID_ARGUMENT for several bad fields at once: one "<field>:
// <description>" line per violation, and all of them in the BadRequest.
// `violations` must not be empty.
absl::Status InvalidFields(const std::vector<FieldViolation>& violations);

// The BadRequest `status` carries: its payload when it has one (nullopt
// when that names no field, see WithoutFieldViolations); else, for
// INVALID_ARGUMENT whose message starts with a field path
// ([a-z_][a-z0-9_.\[\]]*) followed by ": ", one violation of that field
// with the rest of the message as description; else nullopt.
std::optional<google::rpc::BadRequest> BadRequestOf(const absl::Status& status);

// `status` marked as naming no field of the request, so that no
// BadRequest is derived from its message: for an INVALID_ARGUMENT about
// something the caller did not send, such as "bundle: no rules" when a
// reload finds a bad policy bundle on disk.
absl::Status WithoutFieldViolations(absl::Status status);

// `status` with every field path of its BadRequest (payload or derived)
// under `prefix`: "action" becomes "request.action" for a service whose
// request nests the message that was checked. The message is unchanged.
// A status without a BadRequest is returned as is.
absl::Status WithFieldPrefix(absl::Status status, absl::string_view prefix);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_FIELD_ERROR_H_
