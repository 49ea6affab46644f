// Loading and validating the fleet's configuration file (protobuf text
// format, schema medvault.config.v1.Config in proto/).
//
// Every error names the file, the line and the field, e.g.
//   /etc/medvault/medvault.textproto:12: keyvault.pkcs11.module_path: must be an absolute path
// All problems in a file are reported at once, one per line of the status
// message. Defaults documented in the schema are filled in on success.
#ifndef MEDVAULT_DAEMON_COMMON_CONFIG_H_
#define MEDVAULT_DAEMON_COMMON_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault {

// Reads and validates `path`. NOT_FOUND if the file cannot be read,
// INVALID_ARGUMENT for a syntax error, an unknown field or a bad value.
absl::StatusOr<config::v1::Config> LoadConfig(const std::string& path);

// Same, from text; `filename` only labels the errors.
absl::StatusOr<config::v1::Config> ParseConfig(absl::string_view text, absl::string_view filename);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_CONFIG_H_
