#include "daemon/policy/policy_loader.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/status_macros.h"
#include "daemon/policy/catalogue.h"
#include "daemon/policy/condition_compiler.h"
#include "daemon/policy/loader_errors.h"
#include "daemon/policy/rule_compiler.h"
#include "google/protobuf/text_format.h"

namespace medvault::policy {
namespace {

using google::protobuf::TextFormat;

struct ParsedFile {
  const SourceFile* source;
  v1::PolicyFile proto;
  TextFormat::ParseInfoTree tree;
};

// Parses every file with its location tree (for file:line errors); the
// parser's errors of all files at once when any does not parse.
absl::Status ParseFiles(const std::vector<SourceFile>& files,
                        std::vector<std::unique_ptr<ParsedFile>>* parsed) {
  std::vector<std::string> errors;
  parsed->reserve(files.size());
  for (const SourceFile& f : files) {
    auto& p = *parsed->emplace_back(std::make_unique<ParsedFile>());
    p.source = &f;
    ParseErrors collector(f.name);
    TextFormat::Parser parser;
    parser.RecordErrorsTo(&collector);
    parser.WriteLocationsTo(&p.tree);
    if (!parser.ParseFromString(f.text, &p.proto)) {
      errors.insert(errors.end(), collector.errors().begin(), collector.errors().end());
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return absl::OkStatus();
}

}  // namespace

// Compilation runs in passes over every file, each finishing before the
// next, so that a name may be used in a file before the one declaring it:
// the vocabulary (catalogue.h), then named conditions
// (condition_compiler.h), then rules and state machines (rule_compiler.h).
// Every pass goes on after an error, so all of them are reported at once.
absl::StatusOr<std::unique_ptr<CompiledPolicy>> CompilePolicy(
    const std::vector<SourceFile>& files) {
  std::vector<std::unique_ptr<ParsedFile>> parsed;
  RETURN_IF_ERROR(ParseFiles(files, &parsed));
  std::vector<std::string> errors;
  auto for_each_file = [&](auto pass) {
    for (const auto& p : parsed) {
      pass(p->proto, Where(&p->source->name, &p->tree, v1::PolicyFile::descriptor(), &errors));
    }
  };
  auto out = std::make_unique<CompiledPolicy>();
  Catalogue catalogue(out.get());
  ConditionCompiler conditions(catalogue, out.get());
  RuleCompiler rules(catalogue, conditions, out.get());
  for_each_file([&](const v1::PolicyFile& f, const Where& w) {
    catalogue.DeclareNames(f, w);
    conditions.DeclareDefinitions(f, w);
    catalogue.DeclareStateMachines(f, w);
  });
  for_each_file(
      [&](const v1::PolicyFile& f, const Where& w) { catalogue.DeclareAttributes(f, w); });
  for_each_file([&](const v1::PolicyFile& f, const Where& w) { catalogue.DeclareActions(f, w); });
  conditions.CompileDefinitions();
  for_each_file([&](const v1::PolicyFile& f, const Where& w) { rules.CompileRules(f, w); });
  if (out->rules.empty() && errors.empty()) {
    errors.push_back("bundle: no rules (everything would be denied)");
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  rules.BuildIndexes();
  return out;
}

absl::Status ParseTextProto(absl::string_view text, absl::string_view filename,
                            google::protobuf::Message* message) {
  ParseErrors collector(filename);
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(std::string(text), message)) {
    return absl::InvalidArgumentError(absl::StrJoin(collector.errors(), "\n"));
  }
  return absl::OkStatus();
}

namespace {

// The common form "YYYY-MM-DDTHH:MM:SSZ" without absl::ParseTime's general
// machinery: a request carries several times, and parsing them is most of
// an evaluation's cost otherwise. Anything else takes the general path.
bool ParseUtcSeconds(absl::string_view s, absl::Time* t) {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return false;
  }
  auto num = [&](size_t at, size_t n, int* v) {
    *v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &sec)) {
    return false;
  }
  absl::CivilSecond c(y, mo, d, h, mi, sec);
  // CivilSecond normalizes (Feb 30 becomes Mar 2): a changed field means
  // the text was not a real time. Leap seconds (:60) take the general path.
  if (c.year() != y || c.month() != mo || c.day() != d || c.hour() != h || c.minute() != mi ||
      c.second() != sec) {
    return false;
  }
  *t = absl::FromCivil(c, absl::UTCTimeZone());
  return true;
}

}  // namespace

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  if (ParseUtcSeconds(text, &t)) return t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)"));
  }
  return t;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace medvault::policy
