// Structured logging: one event per line on stderr, as logfmt
// (ts=... level=info proc=keyvault event=started socket=/run/...) or as JSON,
// so journald and log shippers can index the fields. spdlog does the
// formatting of the prefix, the level filter and the locking; this header
// only gives call sites a way to pass named fields.
//
// Never pass a secret as a field: there is deliberately no overload for
// SecretData, and values are printed verbatim.
#ifndef MEDVAULT_DAEMON_COMMON_LOGGING_H_
#define MEDVAULT_DAEMON_COMMON_LOGGING_H_

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace medvault::log {

enum class Level { kDebug, kInfo, kWarning, kError };
enum class Format { kLogfmt, kJson };

// One named value of an event.
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  Field(absl::string_view k, const char* v) : key(k), value(v) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v) {}
  Field(absl::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, long long v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, unsigned long long v) : key(k), value(std::to_string(v)) {}
  Field(absl::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  // Without payloads: a google.rpc.BadRequest (field_error.h) only repeats
  // the message, in binary.
  Field(absl::string_view k, const absl::Status& s)
      : key(k), value(s.ToString(absl::StatusToStringMode::kWithNoExtraData)) {}
  absl::string_view key;
  std::string value;
};

// Sets the process name printed with every line and the output format.
// Safe to call again (for example once the configuration is read).
void Init(absl::string_view process, Level level, Format format);

void Emit(Level level, absl::string_view event, std::initializer_list<Field> fields);

inline void Debug(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Emit(Level::kDebug, event, fields);
}
inline void Info(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Emit(Level::kInfo, event, fields);
}
inline void Warn(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Emit(Level::kWarning, event, fields);
}
inline void Error(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Emit(Level::kError, event, fields);
}

// Formats the body of a line (everything after the prefix); exposed for tests.
std::string FormatBody(Format format, absl::string_view event, std::initializer_list<Field> fields);

}  // namespace medvault::log

#endif  // MEDVAULT_DAEMON_COMMON_LOGGING_H_
