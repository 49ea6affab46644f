#include "daemon/common/url.h"

#include "absl/strings/str_cat.h"

namespace medvault {

std::string EndpointForLogs(absl::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos || scheme_end == 0) return "(unparsable URL)";
  absl::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  // user:password@host: the credentials end at the last '@' of the authority.
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) rest = rest.substr(at + 1);
  return absl::StrCat(url.substr(0, scheme_end), "://", rest);
}

}  // namespace medvault
