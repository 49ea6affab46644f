// The report's five sections, computed from the events and the chain's
// licence and policy records (audit_report.h says what each holds).
#include "daemon/ctl/audit_report_sections.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace medvault::ctl::report_internal {
namespace {

constexpr char kNone[] = "—";
constexpr char kDefaultDeny[] = "(no rule matched: default deny)";

absl::Time EventTime(const v1::AuditEvent& event) {
  return absl::FromUnixSeconds(event.time().seconds()) + absl::Nanoseconds(event.time().nanos());
}

bool Succeeded(const v1::AuditEvent& event) { return event.outcome() == v1::AuditEvent::SUCCEEDED; }

std::string OrNone(const std::string& s) { return s.empty() ? kNone : s; }

// "1 step", "2 steps".
std::string Count(size_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

// An obligation's due time: parsed when it is RFC 3339, else as written.
struct Due {
  std::string text;
  std::optional<absl::Time> time;
};

Due ParseDue(const std::string& due) {
  absl::Time t;
  if (absl::ParseTime(absl::RFC3339_full, due, &t, nullptr)) return {FormatReportTime(t), t};
  return {due, std::nullopt};
}

const v1::Obligation* FindObligation(const v1::AuditEvent& event, absl::string_view name) {
  for (const v1::Obligation& o : event.obligation_details()) {
    if (o.name() == name) return &o;
  }
  return nullptr;
}

bool HasObligation(const v1::AuditEvent& event, absl::string_view name) {
  return FindObligation(event, name) != nullptr ||
         std::find(event.obligations().begin(), event.obligations().end(), name) !=
             event.obligations().end();
}

// Who acted: the organisation, then the practitioner or patient through it.
std::string Actor(const v1::AuditActor& actor) {
  std::vector<std::string> parts;
  if (!actor.organization_id().empty()) parts.push_back(actor.organization_id());
  if (!actor.practitioner_id().empty()) {
    parts.push_back(absl::StrCat("practitioner ", actor.practitioner_id()));
  }
  if (!actor.patient_id().empty()) parts.push_back(absl::StrCat("patient ", actor.patient_id()));
  if (parts.empty()) return actor.policy_role().empty() ? kNone : actor.policy_role();
  return absl::StrJoin(parts, " / ");
}

std::string Rules(const v1::AuditEvent& event) {
  if (!event.rule_ids().empty()) return absl::StrJoin(event.rule_ids(), ", ");
  return event.decision_id().empty() ? kNone : absl::StrCat("decision ", event.decision_id());
}

// --- (a) Emergency accesses awaiting review ----------------------------------

ReportSection EmergencySection(const AuditReportInput& input) {
  ReportSection s{"emergency",
                  "Emergency accesses awaiting review",
                  "",
                  {"Opened", "Emergency access", "Practitioner", "Organisation", "Patient",
                   "Allowed by", "Review due", "Status"},
                  {}};
  // Walk backwards so that "reviewed" holds the reviews later than the
  // event at hand.
  std::set<std::string> reviewed;
  std::vector<ReportRow> rows;
  for (auto it = input.events.rbegin(); it != input.events.rend(); ++it) {
    const v1::AuditEvent& e = it->second;
    if (e.action() == "emergency.review" && Succeeded(e) && !e.emergency_access_id().empty()) {
      reviewed.insert(e.emergency_access_id());
      continue;
    }
    if (e.action() != "record.read_emergency" || !Succeeded(e) ||
        !HasObligation(e, "regulator_review") || reviewed.contains(e.emergency_access_id())) {
      continue;
    }
    const v1::Obligation* review = FindObligation(e, "regulator_review");
    const Due due = ParseDue(review != nullptr ? review->due() : "");
    const bool overdue = due.time.has_value() && *due.time < input.generated_at;
    rows.push_back({{FormatReportTime(EventTime(e)), OrNone(e.emergency_access_id()),
                     OrNone(e.actor().practitioner_id()), OrNone(e.actor().organization_id()),
                     OrNone(e.patient_id()), Rules(e), OrNone(due.text),
                     overdue ? "OVERDUE" : "awaiting review"},
                    overdue});
  }
  s.rows.assign(rows.rbegin(), rows.rend());  // oldest first
  s.count = absl::StrCat(s.rows.size());
  return s;
}

// --- (b) Denials by rule ------------------------------------------------------

ReportSection DenialsSection(const AuditReportInput& input) {
  struct Group {
    int count = 0;
    absl::Time latest = absl::InfinitePast();
    std::map<std::string, int> actions;
  };
  std::map<std::string, Group> groups;
  size_t denials = 0;
  for (const auto& [index, e] : input.events) {
    if (e.outcome() != v1::AuditEvent::DENIED) continue;
    ++denials;
    std::vector<std::string> rules(e.rule_ids().begin(), e.rule_ids().end());
    if (rules.empty()) rules.push_back(kDefaultDeny);
    for (const std::string& rule : rules) {
      Group& g = groups[rule];
      ++g.count;
      g.latest = std::max(g.latest, EventTime(e));
      ++g.actions[e.action()];
    }
  }
  std::vector<std::pair<std::string, Group>> sorted(groups.begin(), groups.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
  ReportSection s{"denials",
                  "Denials by rule",
                  absl::StrCat(Count(sorted.size(), "rule"), ", ", Count(denials, "denial")),
                  {"Rule", "Denials", "Most recent", "Actions"},
                  {}};
  for (const auto& [rule, g] : sorted) {
    std::vector<std::pair<std::string, int>> actions(g.actions.begin(), g.actions.end());
    std::stable_sort(actions.begin(), actions.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::string> shown;
    for (const auto& [action, n] : actions) shown.push_back(absl::StrCat(action, " ×", n));
    s.rows.push_back(
        {{rule, absl::StrCat(g.count), FormatReportTime(g.latest), absl::StrJoin(shown, ", ")}});
  }
  return s;
}

// --- (c) Dispute log ---------------------------------------------------------

std::string Transition(const v1::AuditEvent& e) {
  if (e.dispute_from_state().empty() && e.dispute_to_state().empty()) return kNone;
  return absl::StrCat(OrNone(e.dispute_from_state()), " → ", OrNone(e.dispute_to_state()));
}

std::string Deadlines(const v1::AuditEvent& e) {
  std::vector<std::string> out;
  for (const v1::Obligation& o : e.obligation_details()) {
    if (!o.due().empty()) out.push_back(absl::StrCat(o.name(), " by ", ParseDue(o.due()).text));
  }
  return out.empty() ? kNone : absl::StrJoin(out, "; ");
}

ReportSection DisputesSection(const AuditReportInput& input) {
  std::vector<std::string> order;  // dispute ids in order of first appearance
  std::map<std::string, std::vector<ReportRow>> steps;
  for (const auto& [index, e] : input.events) {
    if (e.dispute_id().empty() || e.action() == "dispute.read" || !Succeeded(e)) continue;
    auto [it, inserted] = steps.try_emplace(e.dispute_id());
    if (inserted) order.push_back(e.dispute_id());
    it->second.push_back(
        {{e.dispute_id(), FormatReportTime(EventTime(e)), e.action(), Transition(e),
          Actor(e.actor()), OrNone(e.decision_id()), Deadlines(e)}});
  }
  ReportSection s{"disputes",
                  "Dispute log",
                  "",
                  {"Dispute", "Time", "Action", "State", "Actor", "Decision", "Deadline"},
                  {}};
  for (const std::string& id : order) {
    for (ReportRow& row : steps[id]) s.rows.push_back(std::move(row));
  }
  s.count = absl::StrCat(Count(s.rows.size(), "step"), ", ", Count(order.size(), "dispute"));
  return s;
}

// --- (d) Licence changes -----------------------------------------------------

ReportSection LicencesSection(const AuditReportInput& input) {
  ReportSection s{"licences",
                  "Licence changes",
                  absl::StrCat(input.licence_changes.size()),
                  {"Practitioner key", "Status", "Valid until", "Changed at", "Block"},
                  {}};
  for (const LicenceChange& c : input.licence_changes) {
    s.rows.push_back(
        {{OrNone(c.practitioner_key_hex), OrNone(c.status), FormatReportTime(c.valid_until),
          FormatReportTime(c.changed_at), absl::StrCat(c.block_number)}});
  }
  return s;
}

// --- (e) Policy versions -----------------------------------------------------

ReportSection PoliciesSection(const AuditReportInput& input) {
  struct Version {
    const PolicyPublication* published = nullptr;
    absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
    int events = 0;
  };
  std::map<uint64_t, Version> versions;
  for (const PolicyPublication& p : input.policy_publications) {
    Version& v = versions[p.version];
    if (v.published == nullptr) v.published = &p;
  }
  // Version 0 is no decision at all (e.g. a listing the gateway logs
  // without asking policy).
  for (const auto& [index, e] : input.events) {
    if (e.policy_version() == 0) continue;
    Version& v = versions[e.policy_version()];
    v.first = std::min(v.first, EventTime(e));
    v.last = std::max(v.last, EventTime(e));
    ++v.events;
  }
  ReportSection s{"policies",
                  "Policy versions",
                  absl::StrCat(versions.size()),
                  {"Version", "Published", "Bundle hash", "First seen", "Last seen", "Events"},
                  {}};
  for (const auto& [number, v] : versions) {
    s.rows.push_back({{absl::StrCat(number),
                       v.published ? FormatReportTime(v.published->published_at) : "not on chain",
                       v.published ? OrNone(v.published->bundle_hash_hex) : kNone,
                       v.events ? FormatReportTime(v.first) : kNone,
                       v.events ? FormatReportTime(v.last) : kNone, absl::StrCat(v.events)}});
  }
  return s;
}

}  // namespace

std::string FormatReportTime(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return kNone;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::vector<ReportSection> BuildReportSections(const AuditReportInput& input) {
  std::vector<ReportSection> sections;
  sections.push_back(EmergencySection(input));
  sections.push_back(DenialsSection(input));
  sections.push_back(DisputesSection(input));
  sections.push_back(LicencesSection(input));
  sections.push_back(PoliciesSection(input));
  return sections;
}

}  // namespace medvault::ctl::report_internal
