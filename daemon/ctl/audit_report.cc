// Filtering and the export lines; the format is documented in
// audit_report.h. JSON is read with protobuf's parser (into
// google.protobuf.Struct) and written by protobuf's printer, or by hand
// where every character written is known to need no escaping (numbers,
// hex, base64).
#include "daemon/ctl/audit_report.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::ctl {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// The largest integer a JSON number (an IEEE double) holds exactly.
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

absl::Time EventTime(const v1::AuditEvent& event) {
  return absl::FromUnixSeconds(event.time().seconds()) + absl::Nanoseconds(event.time().nanos());
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("export line: ", what));
}

absl::StatusOr<Struct> ParseObject(absl::string_view line) {
  Struct object;
  if (auto s = google::protobuf::util::JsonStringToMessage(std::string(line), &object); !s.ok()) {
    return Invalid(absl::StrCat("not a JSON object (", s.message().ToString(), ")"));
  }
  return object;
}

absl::StatusOr<const Value*> Member(const Struct& object, const std::string& name,
                                    absl::string_view where) {
  auto it = object.fields().find(name);
  if (it == object.fields().end()) {
    return Invalid(absl::StrCat(where, "\"", name, "\" is missing"));
  }
  return &it->second;
}

// A non-negative integer: a JSON number (exact, so at most 2^53) or a
// string of decimal digits.
absl::StatusOr<uint64_t> UnsignedMember(const Struct& object, const std::string& name,
                                        absl::string_view where) {
  ASSIGN_OR_RETURN(const Value* v, Member(object, name, where));
  if (v->kind_case() == Value::kNumberValue) {
    const double d = v->number_value();
    if (d >= 0 && d <= kMaxExactInteger && std::floor(d) == d) return static_cast<uint64_t>(d);
  } else if (v->kind_case() == Value::kStringValue) {
    const std::string& s = v->string_value();
    uint64_t n = 0;
    if (!s.empty() && std::all_of(s.begin(), s.end(), absl::ascii_isdigit) &&
        absl::SimpleAtoi(s, &n)) {
      return n;
    }
  }
  return Invalid(
      absl::StrCat(where, "\"", name, "\" is not a non-negative integer (at most 2^53)"));
}

absl::StatusOr<std::string> StringMember(const Struct& object, const std::string& name,
                                         absl::string_view where) {
  ASSIGN_OR_RETURN(const Value* v, Member(object, name, where));
  if (v->kind_case() != Value::kStringValue) {
    return Invalid(absl::StrCat(where, "\"", name, "\" is not a string"));
  }
  return v->string_value();
}

absl::StatusOr<std::string> Base64Member(const Struct& object, const std::string& name,
                                         absl::string_view where) {
  ASSIGN_OR_RETURN(std::string text, StringMember(object, name, where));
  std::string bytes;
  if (!absl::Base64Unescape(text, &bytes)) {
    return Invalid(absl::StrCat(where, "\"", name, "\" is not base64"));
  }
  return bytes;
}

// Lower- or upper-case hex of exactly `size` bytes.
absl::StatusOr<std::string> HexMember(const Struct& object, const std::string& name, size_t size,
                                      absl::string_view where) {
  ASSIGN_OR_RETURN(std::string text, StringMember(object, name, where));
  if (text.size() != 2 * size || !std::all_of(text.begin(), text.end(), absl::ascii_isxdigit)) {
    return Invalid(absl::StrCat(where, "\"", name, "\" is not ", size, " bytes of hex"));
  }
  return absl::HexStringToBytes(text);
}

absl::StatusOr<ExportedEntry> EntryFromObject(const Struct& object) {
  if (object.fields().contains("tree_head")) {
    return Invalid("a signed tree head, not an entry");
  }
  ExportedEntry entry;
  ASSIGN_OR_RETURN(entry.leaf_index, UnsignedMember(object, "leaf_index", ""));
  ASSIGN_OR_RETURN(entry.leaf, Base64Member(object, "leaf", ""));
  return entry;
}

absl::StatusOr<v1::SignedTreeHead> TreeHeadFromObject(const Struct& object) {
  ASSIGN_OR_RETURN(const Value* v, Member(object, "tree_head", ""));
  if (v->kind_case() != Value::kStructValue) return Invalid("\"tree_head\" is not an object");
  const Struct& fields = v->struct_value();
  constexpr absl::string_view kWhere = "tree_head.";
  v1::SignedTreeHead head;
  ASSIGN_OR_RETURN(*head.mutable_log_id(), HexMember(fields, "log_id", 32, kWhere));
  ASSIGN_OR_RETURN(uint64_t tree_size, UnsignedMember(fields, "tree_size", kWhere));
  head.set_tree_size(tree_size);
  ASSIGN_OR_RETURN(*head.mutable_root_hash(), HexMember(fields, "root_hash", 32, kWhere));
  ASSIGN_OR_RETURN(uint64_t timestamp_ms, UnsignedMember(fields, "timestamp_ms", kWhere));
  head.set_timestamp_ms(timestamp_ms);
  ASSIGN_OR_RETURN(*head.mutable_signature(), Base64Member(fields, "signature", kWhere));
  return head;
}

}  // namespace

bool Matches(const AuditFilter& filter, const v1::AuditEvent& event) {
  const absl::Time t = EventTime(event);
  if (filter.since && t < *filter.since) return false;
  if (filter.until && t >= *filter.until) return false;
  auto same = [](const std::string& want, const std::string& got) {
    return want.empty() || want == got;
  };
  return same(filter.patient_id, event.patient_id()) &&
         same(filter.practitioner_id, event.actor().practitioner_id()) &&
         same(filter.organization_id, event.actor().organization_id()) &&
         same(filter.action, event.action());
}

std::string EventJsonLine(uint64_t leaf_index, const v1::AuditEvent& event,
                          absl::string_view leaf) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string event_json;
  // Printing a generated message whose strings are valid UTF-8 (proto3
  // enforces that on parse) does not fail; should it, "event" is null and
  // the line still carries the leaf, which is what a verifier reads.
  if (!google::protobuf::util::MessageToJsonString(event, &event_json, options).ok()) {
    event_json = "null";
  }
  // Digits and base64 need no JSON escaping.
  return absl::StrCat("{\"leaf_index\":", leaf_index, ",\"leaf\":\"", absl::Base64Escape(leaf),
                      "\",\"event\":", event_json, "}");
}

std::string TreeHeadJsonLine(const v1::SignedTreeHead& head) {
  return absl::StrCat("{\"tree_head\":{\"log_id\":\"", absl::BytesToHexString(head.log_id()),
                      "\",\"tree_size\":", head.tree_size(), ",\"root_hash\":\"",
                      absl::BytesToHexString(head.root_hash()),
                      "\",\"timestamp_ms\":", head.timestamp_ms(), ",\"signature\":\"",
                      absl::Base64Escape(head.signature()), "\"}}");
}

absl::StatusOr<ExportedEntry> ParseEventJsonLine(absl::string_view line) {
  ASSIGN_OR_RETURN(Struct object, ParseObject(line));
  return EntryFromObject(object);
}

absl::StatusOr<v1::SignedTreeHead> ParseTreeHeadJsonLine(absl::string_view line) {
  ASSIGN_OR_RETURN(Struct object, ParseObject(line));
  return TreeHeadFromObject(object);
}

absl::StatusOr<ExportLine> ParseExportLine(absl::string_view line) {
  ASSIGN_OR_RETURN(Struct object, ParseObject(line));
  if (object.fields().contains("tree_head")) {
    ASSIGN_OR_RETURN(v1::SignedTreeHead head, TreeHeadFromObject(object));
    return ExportLine(std::move(head));
  }
  ASSIGN_OR_RETURN(ExportedEntry entry, EntryFromObject(object));
  return ExportLine(std::move(entry));
}

}  // namespace medvault::ctl
