// Identifiers of the public API: pseudonymous ids chosen by callers, and
// the gateway's own random object ids ("rec-", "grant-", ...).
#ifndef MEDVAULT_DAEMON_GATEWAY_IDS_H_
#define MEDVAULT_DAEMON_GATEWAY_IDS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace medvault::gateway {

// 1 to 64 characters [a-z0-9._-]; INVALID_ARGUMENT naming `field` otherwise.
absl::Status CheckId(absl::string_view field, absl::string_view id);
// `prefix` + "-" + 32 random hex digits.
std::string NewObjectId(absl::string_view prefix);
// An id NewObjectId made with `prefix`; INVALID_ARGUMENT naming `field`.
absl::Status CheckObjectId(absl::string_view field, absl::string_view prefix, absl::string_view id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_IDS_H_
