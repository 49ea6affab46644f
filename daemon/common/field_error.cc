#include "daemon/common/field_error.h"

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace medvault {
namespace {

void SetBadRequest(const google::rpc::BadRequest& bad, absl::Status* status) {
  status->SetPayload(kBadRequestTypeUrl, absl::Cord(bad.SerializeAsString()));
}

// The field path `message` starts with ("log_id" of "log_id: must be 32
// bytes"), or empty. Lower case only, so that a sentence ("Key: ...") or
// a file name with a line ("a.textproto:3: ...") is not taken for a field.
absl::string_view LeadingFieldPath(absl::string_view message) {
  size_t end = message.find(": ");
  if (end == absl::string_view::npos || end == 0) return {};
  absl::string_view path = message.substr(0, end);
  if (!absl::ascii_islower(path[0]) && path[0] != '_') return {};
  for (char c : path) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_' && c != '.' && c != '[' &&
        c != ']') {
      return {};
    }
  }
  return path;
}

}  // namespace

absl::Status InvalidField(absl::string_view field, absl::string_view description) {
  return InvalidFields({{std::string(field), std::string(description)}});
}

absl::Status InvalidFields(const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad;
  for (const FieldViolation& v : violations) {
    google::rpc::BadRequest::FieldViolation* out = bad.add_field_violations();
    out->set_field(v.field);
    out->set_description(v.description);
  }
  absl::Status status = absl::InvalidArgumentError(
      absl::StrJoin(violations, "\n", [](std::string* out, const FieldViolation& v) {
        absl::StrAppend(out, v.field, ": ", v.description);
      }));
  SetBadRequest(bad, &status);
  return status;
}

std::optional<google::rpc::BadRequest> BadRequestOf(const absl::Status& status) {
  // absl::optional, which is not std::optional in Debian's abseil.
  if (auto payload = status.GetPayload(kBadRequestTypeUrl)) {
    google::rpc::BadRequest bad;
    if (!bad.ParseFromString(std::string(*payload)) || bad.field_violations().empty()) {
      return std::nullopt;
    }
    return bad;
  }
  if (status.code() != absl::StatusCode::kInvalidArgument) return std::nullopt;
  absl::string_view field = LeadingFieldPath(status.message());
  if (field.empty()) return std::nullopt;
  google::rpc::BadRequest bad;
  google::rpc::BadRequest::FieldViolation* v = bad.add_field_violations();
  v->set_field(std::string(field));
  v->set_description(std::string(status.message().substr(field.size() + 2)));
  return bad;
}

absl::Status WithoutFieldViolations(absl::Status status) {
  SetBadRequest(google::rpc::BadRequest(), &status);
  return status;
}

absl::Status WithFieldPrefix(absl::Status status, absl::string_view prefix) {
  std::optional<google::rpc::BadRequest> bad = BadRequestOf(status);
  if (!bad.has_value()) return status;
  for (google::rpc::BadRequest::FieldViolation& v : *bad->mutable_field_violations()) {
    v.set_field(absl::StrCat(prefix, ".", v.field()));
  }
  SetBadRequest(*bad, &status);
  return status;
}

}  // namespace medvault
