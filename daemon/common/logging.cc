#include "daemon/common/logging.h"

#include <grpc/support/log.h>

#include <atomic>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace medvault::log {
namespace {

std::atomic<Format> g_format{Format::kLogfmt};

std::shared_ptr<spdlog::logger>& Logger() {
  static auto* logger = new std::shared_ptr<spdlog::logger>(std::make_shared<spdlog::logger>(
      "medvault", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
  return *logger;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarning:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Quotes `v`, escaping quotes, backslashes and control characters (as
// \u00XX in JSON, \xXX in logfmt) so one event always stays one line.
void AppendQuoted(std::string& out, absl::string_view v, Format format) {
  out.push_back('"');
  for (char c : v) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, format == Format::kJson ? "\\u00" : "\\x",
                          absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// logfmt values are bare when they are a plain token, quoted otherwise.
void AppendLogfmtValue(std::string& out, absl::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(v.data(), v.size());
  } else {
    AppendQuoted(out, v, Format::kLogfmt);
  }
}

// gRPC's own diagnostics join the same stream as events named "grpc".
void GrpcLogBridge(gpr_log_func_args* args) {
  Level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? Level::kError
                : args->severity == GPR_LOG_SEVERITY_INFO ? Level::kInfo
                                                          : Level::kDebug;
  Emit(level, "grpc", {{"file", args->file}, {"line", args->line}, {"msg", args->message}});
}

}  // namespace

std::string FormatBody(Format format, absl::string_view event,
                       std::initializer_list<Field> fields) {
  std::string out;
  if (format == Format::kJson) {
    out.append("\"event\":");
    AppendQuoted(out, event, Format::kJson);
    for (const Field& f : fields) {
      out.push_back(',');
      AppendQuoted(out, f.key, Format::kJson);
      out.push_back(':');
      AppendQuoted(out, f.value, Format::kJson);
    }
    out.push_back('}');
    return out;
  }
  out.append("event=");
  AppendLogfmtValue(out, event);
  for (const Field& f : fields) {
    out.push_back(' ');
    out.append(f.key.data(), f.key.size());
    out.push_back('=');
    AppendLogfmtValue(out, f.value);
  }
  return out;
}

void Init(absl::string_view process, Level level, Format format) {
  g_format = format;
  auto& logger = Logger();
  logger->set_level(ToSpd(level));
  logger->flush_on(spdlog::level::debug);
  std::string proc(process);
  if (format == Format::kJson) {
    // The body (from FormatBody) closes the object.
    logger->set_pattern(absl::StrCat(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","proc":")", proc,
                                     R"(","pid":%P,%v)"),
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern(absl::StrCat("ts=%Y-%m-%dT%H:%M:%S.%fZ level=%l proc=", proc, " pid=%P %v"),
                        spdlog::pattern_time_type::utc);
  }
  gpr_set_log_function(GrpcLogBridge);
  gpr_set_log_verbosity(level == Level::kDebug ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
}

void Emit(Level level, absl::string_view event, std::initializer_list<Field> fields) {
  auto& logger = Logger();
  auto spd = ToSpd(level);
  if (!logger->should_log(spd)) return;
  logger->log(spd, "{}", FormatBody(g_format.load(), event, fields));
}

}  // namespace medvault::log
