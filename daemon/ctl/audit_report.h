// The compliance officer's view of the audit log, for `medvaultctl audit`:
// filtering events, the export format a verifier re-reads, FHIR R4
// AuditEvent resources, and the compliance report (plain text or HTML).
//
// Pure functions: no I/O, no clock (the report's "now" is
// AuditReportInput::generated_at), no gRPC. Thread-compatible.
//
// Export format: one JSON object per line (JSON Lines), no trailing
// whitespace, either an entry
//   {"leaf_index":N,"leaf":"<base64 of the leaf>","event":{...}}
// where "event" is the leaf decoded (proto3 JSON, proto field names) for
// people and jq, or a signed tree head
//   {"tree_head":{"log_id":"<hex>","tree_size":N,"root_hash":"<hex>",
//                 "timestamp_ms":N,"signature":"<base64>"}}
// A verifier trusts only "leaf" (the bytes the Merkle tree hashes), never
// "event": the parsers below do not even read it.
//
// Everything in an event (ids especially) may have been chosen by a
// caller: the HTML report escapes every value, and the text report
// replaces control characters so that nothing reaches the terminal raw.
#ifndef MEDVAULT_DAEMON_CTL_AUDIT_REPORT_H_
#define MEDVAULT_DAEMON_CTL_AUDIT_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::ctl {

// --- Filtering ---------------------------------------------------------------

// Which events to show. Empty strings and unset times match anything.
struct AuditFilter {
  std::optional<absl::Time> since;  // inclusive
  std::optional<absl::Time> until;  // exclusive
  std::string patient_id;           // event.patient_id
  std::string practitioner_id;      // event.actor.practitioner_id
  std::string organization_id;      // event.actor.organization_id
  std::string action;               // event.action, exactly
};

bool Matches(const AuditFilter& filter, const v1::AuditEvent& event);

// --- Export lines --------------------------------------------------------------

// One entry line (see the file comment). `leaf` is the event's
// deterministic serialisation as the log holds it; `event` is only shown.
std::string EventJsonLine(uint64_t leaf_index, const v1::AuditEvent& event, absl::string_view leaf);

// One signed tree head line: ids and hashes in lower-case hex, the
// signature (DER) in base64.
std::string TreeHeadJsonLine(const v1::SignedTreeHead& head);

struct ExportedEntry {
  uint64_t leaf_index = 0;
  std::string leaf;  // raw bytes
};

// An entry line back: "leaf_index" (a JSON number or decimal string) and
// "leaf" (base64) must both be there; "event" is ignored. INVALID_ARGUMENT
// naming what is wrong otherwise (not JSON, not an object, a field missing
// or of the wrong type, bad base64, a tree head line).
absl::StatusOr<ExportedEntry> ParseEventJsonLine(absl::string_view line);

// A tree head line back; every field must be present. tree_size and
// timestamp_ms must be integers no larger than 2^53 (JSON numbers are
// doubles); INVALID_ARGUMENT naming the field otherwise.
absl::StatusOr<v1::SignedTreeHead> ParseTreeHeadJsonLine(absl::string_view line);

// Either kind of line, told apart by its "tree_head" member.
using ExportLine = std::variant<ExportedEntry, v1::SignedTreeHead>;
absl::StatusOr<ExportLine> ParseExportLine(absl::string_view line);

// --- FHIR -------------------------------------------------------------------

// The event as a FHIR R4 AuditEvent resource, one line of JSON, id
// "medvault-<leaf_index>". Codes follow IHE's Basic Audit Log Patterns
// where one fits; audit_report_fhir.cc lists them with their sources.
std::string FhirAuditEvent(uint64_t leaf_index, const v1::AuditEvent& event);

// --- The compliance report ---------------------------------------------------

// A practitioner's licence as the regulator's registry changed it (the
// signer's event index).
struct LicenceChange {
  std::string practitioner_key_hex;
  std::string status;  // ACTIVE, SUSPENDED, REVOKED, ...
  absl::Time valid_until;
  absl::Time changed_at;
  uint64_t block_number = 0;
};

// A policy bundle the regulator published on chain.
struct PolicyPublication {
  uint64_t version = 0;
  std::string bundle_hash_hex;
  absl::Time published_at;
};

struct AuditReportInput {
  // (leaf index, event), oldest first.
  std::vector<std::pair<uint64_t, v1::AuditEvent>> events;
  std::vector<LicenceChange> licence_changes;  // shown in the order given
  std::vector<PolicyPublication> policy_publications;
  // "Now" for the report: deadlines before it are OVERDUE.
  absl::Time generated_at;
  // One line about the log, shown under the title, e.g.
  // "1,234 events; latest signed tree head: size 1,230 at ...".
  std::string log_summary;
};

// Five sections, in this order (the HTML ids in brackets):
//  (emergency) emergency accesses awaiting the regulator's review: the
//     SUCCEEDED record.read_emergency events that opened an access (they
//     carry a regulator_review obligation), unless a later
//     "emergency.review" event names the same emergency_access_id; OVERDUE
//     when the review is due before generated_at. The practitioner's
//     stated reason is free text and never in the log: the row shows the
//     rules that allowed the access instead;
//  (denials) DENIED events grouped by rule id (an event counts under each
//     of its rules; none: "(no rule matched: default deny)"), with count,
//     most recent time and actions;
//  (disputes) every SUCCEEDED step of every dispute (an event naming a
//     dispute_id, dispute.read aside), grouped by dispute in order of
//     filing, steps in log order;
//  (licences) the licence changes given;
//  (policies) each policy version: when published (from the input) and
//     first / last seen in the events with their count.
std::string RenderTextReport(const AuditReportInput& input);

// The same as a self-contained HTML5 page: inline CSS, no script, no
// external resource (a Content-Security-Policy forbids both), every value
// escaped. Each section is a <section id="..."> whose <h2> ends with its
// row count in brackets and which holds one <table> (a <thead> row of
// <th>, one <tr> per row) or, when empty, <p>None.</p>.
std::string RenderHtmlReport(const AuditReportInput& input);

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_AUDIT_REPORT_H_
