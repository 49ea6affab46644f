// Runs `cast` (Foundry, from contracts/node_modules) so tests can compare
// the signer's encodings with an independent implementation in the same
// run. The platform binary is used, not node_modules/.bin/cast: the npm
// wrapper exits 0 whatever cast returns (foundry-rs/foundry#14781).
#ifndef MEDVAULT_TESTS_SIGNER_CAST_TOOL_H_
#define MEDVAULT_TESTS_SIGNER_CAST_TOOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medvault::signer::testing {

// The cast binary under $MEDVAULT_SOURCE_DIR/contracts/node_modules;
// FAILED_PRECONDITION when it is not there.
absl::StatusOr<std::string> CastBinary();

// Runs cast with `args` (no shell) and returns its stdout without the
// trailing newline; INTERNAL with its output when it exits non-zero.
absl::StatusOr<std::string> RunCast(const std::vector<std::string>& args);

}  // namespace medvault::signer::testing

#endif  // MEDVAULT_TESTS_SIGNER_CAST_TOOL_H_
