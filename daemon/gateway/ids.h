// Identifiers of the public API: pseudonymous ids chosen by callers for
// organisations, practitioners and patients. One rule for all of them, and
// for the organisation id (CN) of a client certificate.
#ifndef MEDVAULT_DAEMON_GATEWAY_IDS_H_
#define MEDVAULT_DAEMON_GATEWAY_IDS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace medvault::gateway {

// 1 to 64 characters [a-z0-9._-] (lower case, so an id is never two ids).
bool IsPseudonymousId(absl::string_view id);
// INVALID_ARGUMENT naming `field` unless IsPseudonymousId(id).
absl::Status CheckId(absl::string_view field, absl::string_view id);

// The gateway's own object ids: `prefix` + "-" + 32 random hex digits.
std::string NewObjectId(absl::string_view prefix);
// An id NewObjectId made with `prefix`; INVALID_ARGUMENT naming `field`.
absl::Status CheckObjectId(absl::string_view field, absl::string_view prefix, absl::string_view id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_IDS_H_
