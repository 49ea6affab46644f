// Compiling policy files (protobuf text format, schema
// medvault.policy.v1.PolicyFile) into a CompiledPolicy.
//
// Every problem is reported, all at once, one per line of an
// INVALID_ARGUMENT status, each naming the file and line:
//   access.textproto:42: rules[3].roles[0]: unknown role "DOCTOR"
// Nothing is read from disk here: the bundle loader (bundle.h) reads and
// verifies the files first.
#ifndef MEDVAULT_DAEMON_POLICY_POLICY_LOADER_H_
#define MEDVAULT_DAEMON_POLICY_POLICY_LOADER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/policy/compiled_policy.h"

namespace medvault::policy {

struct SourceFile {
  std::string name;  // as listed in the manifest; labels errors
  std::string text;
};

// The built-in attribute every request carries (Request.time).
inline constexpr char kTimeAttribute[] = "request.time";
// Attributes that Rule.purposes and Rule.data_categories test.
inline constexpr char kPurposeAttribute[] = "request.purpose";
inline constexpr char kCategoryAttribute[] = "record.category";

absl::StatusOr<std::unique_ptr<CompiledPolicy>> CompilePolicy(const std::vector<SourceFile>& files);

// Parses `text` as a message of `T`'s type with errors as "file:line:col:
// message". Used for manifests and test suites too.
absl::Status ParseTextProto(absl::string_view text, absl::string_view filename,
                            google::protobuf::Message* message);

// Parses an RFC 3339 time ("2026-12-01T00:00:00Z").
absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text);
std::string FormatRfc3339(absl::Time t);

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_POLICY_LOADER_H_
