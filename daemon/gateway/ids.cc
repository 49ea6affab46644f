#include "daemon/gateway/ids.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

std::string NewObjectId(absl::string_view prefix) {
  unsigned char bytes[16];
  // RAND_bytes only fails when the DRBG cannot be seeded: nothing sane to
  // do but stop (a predictable id would be worse).
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::abort();
  return absl::StrCat(prefix, "-",
                      absl::BytesToHexString(
                          absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

absl::Status CheckObjectId(absl::string_view field, absl::string_view prefix,
                           absl::string_view id) {
  if (id.empty()) return InvalidField(field, "required");
  const std::string want = absl::StrCat(prefix, "-");
  bool ok = absl::StartsWith(id, want) && id.size() == want.size() + 32;
  for (size_t i = want.size(); ok && i < id.size(); ++i) {
    ok = absl::ascii_isxdigit(id[i]) && !absl::ascii_isupper(id[i]);
  }
  if (!ok) return InvalidField(field, absl::StrCat("must be \"", want, "\" and 32 hex digits"));
  return absl::OkStatus();
}

}  // namespace medvault::gateway
