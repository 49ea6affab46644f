#include "daemon/gateway/ids.h"

#include "absl/strings/ascii.h"
#include "daemon/common/field_error.h"

namespace medvault::gateway {

bool IsPseudonymousId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

absl::Status CheckId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return InvalidField(field, "required");
  if (!IsPseudonymousId(id)) {
    return InvalidField(field, "1 to 64 characters of a-z, 0-9, '.', '_' and '-'");
  }
  return absl::OkStatus();
}

}  // namespace medvault::gateway
