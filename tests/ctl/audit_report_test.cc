// medvaultctl audit's library: filters, the export lines a verifier
// re-reads, FHIR R4 AuditEvent resources and the compliance report.
#include "daemon/ctl/audit_report.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/ctl/audit_test_events.h"

namespace medvault::ctl {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

MATCHER_P2(StatusIs, code, substring, "") {
  return arg.status().code() == code && absl::StrContains(arg.status().message(), substring);
}

using testing::EmergencyOpen;
using testing::Event;
using testing::T;

Struct ParseJson(const std::string& json) {
  Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
  return s;
}

const Value& Field(const Struct& s, const std::string& name) {
  static const Value kNull;
  auto it = s.fields().find(name);
  return it == s.fields().end() ? kNull : it->second;
}

std::string Str(const Struct& s, const std::string& name) { return Field(s, name).string_value(); }

// The object `s.name[index]`.
const Struct& At(const Struct& s, const std::string& name, int index) {
  return Field(s, name).list_value().values(index).struct_value();
}

const Struct& Obj(const Struct& s, const std::string& name) {
  return Field(s, name).struct_value();
}

// The part of the HTML page in <section id="id">.
std::string Section(const std::string& html, const std::string& id) {
  const size_t start = html.find("<section id=\"" + id + "\">");
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</section>", start) - start);
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// The line of the text report that contains `needle` ("" if none).
std::string LineWith(const std::string& text, absl::string_view needle) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) return std::string(line);
  }
  return "";
}

// --- Filters -----------------------------------------------------------------

// An empty filter matches every event.
TEST(AuditFilterTest, EmptyMatchesAll) {
  EXPECT_TRUE(Matches(AuditFilter(), Event("2025-03-01T00:00:00Z", "record.read")));
}

// since is inclusive, until exclusive.
TEST(AuditFilterTest, SinceInclusiveUntilExclusive) {
  AuditFilter f;
  f.since = T("2025-03-01T00:00:00Z");
  f.until = T("2025-03-02T00:00:00Z");
  EXPECT_TRUE(Matches(f, Event("2025-03-01T00:00:00Z", "record.read")));
  EXPECT_TRUE(Matches(f, Event("2025-03-01T23:59:59Z", "record.read")));
  EXPECT_FALSE(Matches(f, Event("2025-02-28T23:59:59Z", "record.read")));
  EXPECT_FALSE(Matches(f, Event("2025-03-02T00:00:00Z", "record.read")));
}

// Each id filter compares the field it names, exactly.
TEST(AuditFilterTest, IdsAndAction) {
  const v1::AuditEvent e = Event("2025-03-01T00:00:00Z", "record.read");
  auto with = [](auto set) {
    AuditFilter f;
    set(f);
    return f;
  };
  EXPECT_TRUE(Matches(with([](AuditFilter& f) { f.patient_id = "pat-1"; }), e));
  EXPECT_FALSE(Matches(with([](AuditFilter& f) { f.patient_id = "pat-2"; }), e));
  EXPECT_TRUE(Matches(with([](AuditFilter& f) { f.practitioner_id = "pr-1"; }), e));
  EXPECT_FALSE(Matches(with([](AuditFilter& f) { f.practitioner_id = "pat-1"; }), e));
  EXPECT_TRUE(Matches(with([](AuditFilter& f) { f.organization_id = "hosp-1"; }), e));
  EXPECT_FALSE(Matches(with([](AuditFilter& f) { f.organization_id = "hosp"; }), e));
  EXPECT_TRUE(Matches(with([](AuditFilter& f) { f.action = "record.read"; }), e));
  EXPECT_FALSE(Matches(with([](AuditFilter& f) { f.action = "record.read_emergency"; }), e));
}

// --- Export lines ------------------------------------------------------------

// An entry line is one line of JSON that gives back the exact leaf bytes,
// even bytes that are not UTF-8, and shows the event with proto names.
TEST(ExportLineTest, EntryRoundTripWithNonUtf8Leaf) {
  const v1::AuditEvent e = EmergencyOpen("2025-03-01T10:00:00Z", "emg-1", "2025-03-08T10:00:00Z");
  const std::string leaf("\xff\x00\xfe\x80\n\"\\", 7);
  const uint64_t index = (uint64_t{1} << 40) + 7;
  const std::string line = EventJsonLine(index, e, leaf);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_TRUE(absl::StartsWith(line, "{\"leaf_index\":1099511627783,\"leaf\":\"")) << line;

  absl::StatusOr<ExportedEntry> entry = ParseEventJsonLine(line);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->leaf_index, index);
  EXPECT_EQ(entry->leaf, leaf);

  const Struct event = Obj(ParseJson(line), "event");
  EXPECT_EQ(Str(event, "emergency_access_id"), "emg-1");
  EXPECT_EQ(Str(Obj(event, "actor"), "practitioner_id"), "pr-1");
  EXPECT_EQ(Str(At(event, "obligation_details", 0), "due"), "2025-03-08T10:00:00Z");
}

// The verifier reads "leaf" only: a doctored "event" changes nothing.
TEST(ExportLineTest, EventPartIsIgnored) {
  absl::StatusOr<ExportedEntry> entry =
      ParseEventJsonLine(R"({"leaf_index":"5","leaf":"AAE=","event":{"action":"forged"}})");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->leaf_index, 5u);
  EXPECT_EQ(entry->leaf, std::string("\x00\x01", 2));
}

// Bad entry lines are INVALID_ARGUMENT naming what is wrong.
TEST(ExportLineTest, EntryErrorsNameTheProblem) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(ParseEventJsonLine("not json"), StatusIs(kInvalid, "not a JSON object"));
  EXPECT_THAT(ParseEventJsonLine("[1,2]"), StatusIs(kInvalid, "not a JSON object"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf":"AA=="})"),
              StatusIs(kInvalid, "\"leaf_index\" is missing"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":1})"), StatusIs(kInvalid, "\"leaf\" is missing"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":1,"leaf":"%%%"})"),
              StatusIs(kInvalid, "\"leaf\" is not base64"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":1,"leaf":7})"),
              StatusIs(kInvalid, "\"leaf\" is not a string"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":-1,"leaf":"AA=="})"),
              StatusIs(kInvalid, "\"leaf_index\" is not a non-negative integer"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":1.5,"leaf":"AA=="})"),
              StatusIs(kInvalid, "\"leaf_index\" is not a non-negative integer"));
  EXPECT_THAT(ParseEventJsonLine(R"({"leaf_index":"0x10","leaf":"AA=="})"),
              StatusIs(kInvalid, "\"leaf_index\" is not a non-negative integer"));
  EXPECT_THAT(ParseEventJsonLine(TreeHeadJsonLine(v1::SignedTreeHead())),
              StatusIs(kInvalid, "a signed tree head"));
}

v1::SignedTreeHead Head() {
  v1::SignedTreeHead head;
  head.set_log_id(std::string(32, '\xab'));
  head.set_tree_size(1230);
  head.set_root_hash(std::string(31, '\x01') + '\xfe');
  head.set_timestamp_ms(1740830400123);
  head.set_signature(std::string("\x30\x45\x02\x20\xff", 5));
  return head;
}

// A tree head line has hex ids and hashes and comes back field for field.
TEST(ExportLineTest, TreeHeadRoundTrip) {
  const std::string line = TreeHeadJsonLine(Head());
  std::string log_id_hex;
  for (int i = 0; i < 32; ++i) log_id_hex += "ab";
  EXPECT_THAT(line, HasSubstr(absl::StrCat("{\"tree_head\":{\"log_id\":\"", log_id_hex, "\",")));
  EXPECT_THAT(line, HasSubstr("\"tree_size\":1230"));
  EXPECT_THAT(line, HasSubstr("01fe\""));
  EXPECT_THAT(line, HasSubstr("\"timestamp_ms\":1740830400123"));
  absl::StatusOr<v1::SignedTreeHead> back = ParseTreeHeadJsonLine(line);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), Head().SerializeAsString());
}

// Bad tree head fields are named, with their path.
TEST(ExportLineTest, TreeHeadErrorsNameTheField) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  std::string line = TreeHeadJsonLine(Head());
  std::string short_root = line;
  short_root.replace(short_root.find("01fe\""), 4, "");
  EXPECT_THAT(ParseTreeHeadJsonLine(short_root),
              StatusIs(kInvalid, "tree_head.\"root_hash\" is not 32 bytes of hex"));
  std::string bad_hex = line;
  bad_hex.replace(bad_hex.find("abab"), 2, "zz");
  EXPECT_THAT(ParseTreeHeadJsonLine(bad_hex),
              StatusIs(kInvalid, "tree_head.\"log_id\" is not 32 bytes of hex"));
  EXPECT_THAT(ParseTreeHeadJsonLine(R"({"tree_head":{}})"),
              StatusIs(kInvalid, "tree_head.\"log_id\" is missing"));
  EXPECT_THAT(ParseTreeHeadJsonLine(R"({"tree_head":3})"),
              StatusIs(kInvalid, "\"tree_head\" is not an object"));
  EXPECT_THAT(ParseTreeHeadJsonLine(R"({"leaf_index":1,"leaf":""})"),
              StatusIs(kInvalid, "\"tree_head\" is missing"));
}

// ParseExportLine tells the two kinds apart.
TEST(ExportLineTest, ParseExportLineDispatches) {
  absl::StatusOr<ExportLine> head = ParseExportLine(TreeHeadJsonLine(Head()));
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_TRUE(std::holds_alternative<v1::SignedTreeHead>(*head));
  EXPECT_EQ(std::get<v1::SignedTreeHead>(*head).tree_size(), 1230u);

  absl::StatusOr<ExportLine> entry =
      ParseExportLine(EventJsonLine(9, Event("2025-03-01T00:00:00Z", "record.read"), "leaf"));
  ASSERT_TRUE(entry.ok()) << entry.status();
  ASSERT_TRUE(std::holds_alternative<ExportedEntry>(*entry));
  EXPECT_EQ(std::get<ExportedEntry>(*entry).leaf_index, 9u);
  EXPECT_EQ(std::get<ExportedEntry>(*entry).leaf, "leaf");
}

// --- FHIR --------------------------------------------------------------------

// A record read is BALP PatientRead: rest / read, R, the patient entity
// with role 1, the practitioner as requestor, the organisation beside.
TEST(FhirTest, RecordRead) {
  v1::AuditEvent e = Event("2025-03-01T10:20:30Z", "record.read");
  e.set_record_id("rec-9");
  e.add_rule_ids("treating-grant");
  const std::string json = FhirAuditEvent(42, e);
  // One line, the same for the same event, resourceType first.
  EXPECT_TRUE(absl::StartsWith(json, "{\"resourceType\":\"AuditEvent\",\"action\":\"R\",")) << json;
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_EQ(json, FhirAuditEvent(42, e));
  const Struct r = ParseJson(json);
  EXPECT_EQ(Str(r, "resourceType"), "AuditEvent");
  EXPECT_EQ(Str(r, "id"), "medvault-42");
  EXPECT_EQ(Str(Obj(r, "type"), "system"),
            "http://terminology.hl7.org/CodeSystem/audit-event-type");
  EXPECT_EQ(Str(Obj(r, "type"), "code"), "rest");
  EXPECT_EQ(Str(At(r, "subtype", 0), "code"), "read");
  EXPECT_EQ(Str(At(r, "subtype", 0), "system"), "http://hl7.org/fhir/restful-interaction");
  EXPECT_EQ(Str(r, "action"), "R");
  EXPECT_EQ(Str(r, "recorded"), "2025-03-01T10:20:30Z");
  EXPECT_EQ(Str(r, "outcome"), "0");
  EXPECT_EQ(Field(Obj(r, "meta"), "profile").list_value().values(0).string_value(),
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead");
  EXPECT_EQ(Str(Obj(Obj(r, "source"), "observer"), "display"), "medvault-gateway");

  const Struct& patient = At(r, "entity", 0);
  EXPECT_EQ(Str(Obj(Obj(patient, "what"), "identifier"), "value"), "pat-1");
  EXPECT_EQ(Str(Obj(patient, "role"), "code"), "1");
  EXPECT_EQ(Str(Obj(patient, "type"), "code"), "1");
  const Struct& record = At(r, "entity", 1);
  EXPECT_EQ(Str(Obj(Obj(record, "what"), "identifier"), "system"), "urn:medvault:record");
  EXPECT_EQ(Str(Obj(Obj(record, "what"), "identifier"), "value"), "rec-9");

  const Struct& practitioner = At(r, "agent", 0);
  EXPECT_EQ(Str(Obj(Obj(practitioner, "who"), "identifier"), "value"), "pr-1");
  EXPECT_TRUE(Field(practitioner, "requestor").bool_value());
  const auto& policy = Field(practitioner, "policy").list_value();
  ASSERT_GE(policy.values_size(), 2);
  EXPECT_EQ(policy.values(0).string_value(), "urn:medvault:decision:dec-1");
  EXPECT_EQ(policy.values(1).string_value(), "urn:medvault:rule:treating-grant");
  const Struct& org = At(r, "agent", 1);
  EXPECT_EQ(Str(Obj(Obj(org, "who"), "identifier"), "system"), "urn:medvault:organization");
  EXPECT_EQ(Str(Obj(Obj(org, "who"), "identifier"), "value"), "hosp-1");
  EXPECT_FALSE(Field(org, "requestor").bool_value());
}

// An emergency read is a read with purposeOfEvent ETREAT.
TEST(FhirTest, EmergencyRead) {
  const Struct r = ParseJson(
      FhirAuditEvent(1, EmergencyOpen("2025-03-01T10:00:00Z", "emg-1", "2025-03-08T10:00:00Z")));
  EXPECT_EQ(Str(At(r, "subtype", 0), "code"), "read");
  const Struct& coding = At(At(r, "purposeOfEvent", 0), "coding", 0);
  EXPECT_EQ(Str(coding, "system"), "http://terminology.hl7.org/CodeSystem/v3-ActReason");
  EXPECT_EQ(Str(coding, "code"), "ETREAT");
  bool found = false;
  for (const Value& entity : Field(r, "entity").list_value().values()) {
    const Struct& id = Obj(Obj(entity.struct_value(), "what"), "identifier");
    found |= Str(id, "system") == "urn:medvault:emergency-access" && Str(id, "value") == "emg-1";
  }
  EXPECT_TRUE(found);
}

// A denial is outcome 4 with the rules in outcomeDesc, and claims no
// BALP profile (those describe successes).
TEST(FhirTest, Denial) {
  v1::AuditEvent e = Event("2025-03-01T10:00:00Z", "record.read", v1::AuditEvent::DENIED);
  e.add_rule_ids("deny-unlicensed");
  const Struct r = ParseJson(FhirAuditEvent(2, e));
  EXPECT_EQ(Str(r, "outcome"), "4");
  EXPECT_THAT(Str(r, "outcomeDesc"), HasSubstr("deny-unlicensed"));
  EXPECT_FALSE(r.fields().contains("meta"));
  EXPECT_FALSE(r.fields().contains("purposeOfEvent"));
}

// A patient's grant is a create with the grant as a Consent entity; a
// revocation an update; neither is labelled a disclosure.
TEST(FhirTest, ConsentDecisions) {
  v1::AuditEvent grant = Event("2025-03-01T10:00:00Z", "grant.create");
  grant.mutable_actor()->clear_practitioner_id();
  grant.mutable_actor()->set_patient_id("pat-1");
  grant.set_grant_id("grant-7");
  grant.set_consent_assurance("PATIENT_SIGNATURE");
  const Struct r = ParseJson(FhirAuditEvent(3, grant));
  EXPECT_EQ(Str(r, "action"), "C");
  EXPECT_EQ(Str(At(r, "subtype", 0), "code"), "create");
  EXPECT_EQ(Field(Obj(r, "meta"), "profile").list_value().values(0).string_value(),
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientCreate");
  const Struct& patient_agent = At(r, "agent", 0);
  EXPECT_EQ(Str(Obj(Obj(patient_agent, "who"), "identifier"), "system"), "urn:medvault:patient");
  EXPECT_TRUE(Field(patient_agent, "requestor").bool_value());
  const Struct& consent = At(r, "entity", 1);
  EXPECT_EQ(Str(Obj(consent, "type"), "code"), "Consent");
  EXPECT_EQ(Str(Obj(Obj(consent, "what"), "identifier"), "value"), "grant-7");
  EXPECT_THAT(FhirAuditEvent(3, grant), Not(HasSubstr("disclose")));

  grant.set_action("grant.revoke");
  EXPECT_EQ(Str(ParseJson(FhirAuditEvent(4, grant)), "action"), "U");
  grant.set_action("access_request.approve");
  EXPECT_EQ(Str(ParseJson(FhirAuditEvent(5, grant)), "action"), "C");
}

// The access history is a BALP PatientQuery: search, E, a query entity.
TEST(FhirTest, Query) {
  const Struct r = ParseJson(FhirAuditEvent(6, Event("2025-03-01T10:00:00Z", "access.history")));
  EXPECT_EQ(Str(At(r, "subtype", 0), "code"), "search");
  EXPECT_EQ(Str(r, "action"), "E");
  EXPECT_EQ(Field(Obj(r, "meta"), "profile").list_value().values(0).string_value(),
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery");
  const Struct& query = At(r, "entity", 1);
  EXPECT_EQ(Str(Obj(query, "role"), "code"), "24");
}

// Hostile ids stay data in the JSON.
TEST(FhirTest, EscapesIds) {
  v1::AuditEvent e = Event("2025-03-01T10:00:00Z", "record.read");
  e.set_patient_id("\"},{\"evil\":\"<x>");
  const std::string json = FhirAuditEvent(7, e);
  const Struct r = ParseJson(json);
  EXPECT_FALSE(r.fields().contains("evil"));
  EXPECT_EQ(Str(Obj(Obj(At(r, "entity", 0), "what"), "identifier"), "value"),
            "\"},{\"evil\":\"<x>");
}

// --- The report --------------------------------------------------------------

AuditReportInput KnownInput() {
  AuditReportInput in;
  in.generated_at = T("2025-03-10T00:00:00Z");
  in.log_summary = "15 events; latest signed tree head: size 15";
  uint64_t index = 0;
  auto add = [&](v1::AuditEvent e) { in.events.emplace_back(index++, std::move(e)); };
  // Emergency: emg-1 overdue, emg-2 due later, emg-3 reviewed; a read
  // inside emg-1 opens nothing.
  add(EmergencyOpen("2025-03-01T08:00:00Z", "emg-1", "2025-03-08T08:00:00Z"));
  add(EmergencyOpen("2025-03-01T09:00:00Z", "emg-3", "2025-03-08T09:00:00Z"));
  v1::AuditEvent inside = Event("2025-03-01T08:05:00Z", "record.read_emergency");
  inside.set_emergency_access_id("emg-1");
  inside.set_record_id("rec-1");
  add(inside);
  // Denials: two under deny-unlicensed, one under no rule.
  v1::AuditEvent d1 = Event("2025-03-02T10:00:00Z", "record.read", v1::AuditEvent::DENIED);
  d1.add_rule_ids("deny-unlicensed");
  add(d1);
  v1::AuditEvent d2 = Event("2025-03-03T11:00:00Z", "grant.create", v1::AuditEvent::DENIED);
  d2.add_rule_ids("deny-unlicensed");
  d2.set_policy_version(4);
  add(d2);
  add(Event("2025-03-03T12:00:00Z", "registry.read", v1::AuditEvent::DENIED));
  // Disputes: d-1 filed, d-2 filed, d-1 under review, a read of d-1.
  v1::AuditEvent file1 = Event("2025-03-04T09:00:00Z", "dispute.file");
  file1.mutable_actor()->clear_practitioner_id();
  file1.mutable_actor()->set_patient_id("pat-1");
  file1.set_dispute_id("d-1");
  file1.set_dispute_to_state("FILED");
  v1::Obligation* review = file1.add_obligation_details();
  review->set_name("start_review");
  review->set_due("2025-03-18T09:00:00Z");
  add(file1);
  v1::AuditEvent file2 = Event("2025-03-04T10:00:00Z", "dispute.file");
  file2.set_dispute_id("d-2");
  file2.set_dispute_to_state("FILED");
  add(file2);
  v1::AuditEvent start = Event("2025-03-05T09:00:00Z", "dispute.start_review");
  start.mutable_actor()->set_organization_id("regulator");
  start.mutable_actor()->clear_practitioner_id();
  start.set_dispute_id("d-1");
  start.set_decision_id("dec-77");
  start.set_dispute_from_state("FILED");
  start.set_dispute_to_state("UNDER_REVIEW");
  start.set_policy_version(4);
  add(start);
  v1::AuditEvent read = Event("2025-03-05T10:00:00Z", "dispute.read");
  read.set_dispute_id("d-1");
  add(read);
  // Later: emg-2 opened, emg-3 reviewed.
  add(EmergencyOpen("2025-03-09T09:00:00Z", "emg-2", "2025-03-16T09:00:00Z"));
  v1::AuditEvent reviewed = Event("2025-03-09T10:00:00Z", "emergency.review");
  reviewed.set_emergency_access_id("emg-3");
  reviewed.set_policy_version(5);
  add(reviewed);

  in.licence_changes.push_back(
      {"0xaaaa", "ACTIVE", T("2026-01-01T00:00:00Z"), T("2025-02-01T00:00:00Z"), 101});
  in.licence_changes.push_back(
      {"0xbbbb", "SUSPENDED", T("2026-01-01T00:00:00Z"), T("2025-03-02T00:00:00Z"), 150});
  in.policy_publications.push_back({3, "0x3333", T("2025-01-01T00:00:00Z")});
  in.policy_publications.push_back({4, "0x4444", T("2025-03-03T00:00:00Z")});
  return in;
}

// Emergency accesses awaiting review: emg-1 OVERDUE, emg-2 not yet,
// emg-3 reviewed and gone, the read inside emg-1 not an opening.
TEST(AuditReportTest, EmergencySection) {
  const AuditReportInput in = KnownInput();
  const std::string text = RenderTextReport(in);
  EXPECT_THAT(text, HasSubstr("Emergency accesses awaiting review (2)"));
  const std::string emg1 = LineWith(text, "emg-1");
  EXPECT_THAT(emg1, HasSubstr("OVERDUE"));
  EXPECT_THAT(emg1, HasSubstr("2025-03-08T08:00:00Z"));
  EXPECT_THAT(emg1, HasSubstr("emergency-break-glass"));
  EXPECT_THAT(emg1, HasSubstr("pr-1"));
  EXPECT_THAT(emg1, HasSubstr("pat-1"));
  const std::string emg2 = LineWith(text, "emg-2");
  EXPECT_THAT(emg2, HasSubstr("awaiting review"));
  EXPECT_THAT(emg2, Not(HasSubstr("OVERDUE")));
  EXPECT_EQ(LineWith(text, "emg-3"), "");

  const std::string html = Section(RenderHtmlReport(in), "emergency");
  EXPECT_EQ(CountOf(html, "<tr"), 3);  // header + 2
  EXPECT_EQ(CountOf(html, "<tr class=\"alert\">"), 1);
  EXPECT_THAT(html, HasSubstr("<th>Review due</th>"));
}

// Denials grouped by rule, rule-less ones under the default deny.
TEST(AuditReportTest, DenialsSection) {
  const std::string text = RenderTextReport(KnownInput());
  EXPECT_THAT(text, HasSubstr("Denials by rule (2 rules, 3 denials)"));
  const std::string rule = LineWith(text, "deny-unlicensed");
  EXPECT_THAT(rule, HasSubstr("  2  "));
  EXPECT_THAT(rule, HasSubstr("2025-03-03T11:00:00Z"));
  EXPECT_THAT(rule, HasSubstr("record.read ×1"));
  EXPECT_THAT(rule, HasSubstr("grant.create ×1"));
  const std::string none = LineWith(text, "(no rule matched: default deny)");
  EXPECT_THAT(none, HasSubstr("registry.read ×1"));
  EXPECT_EQ(CountOf(Section(RenderHtmlReport(KnownInput()), "denials"), "<tr"), 3);
}

// Every step of each dispute, disputes in filing order, reads left out.
TEST(AuditReportTest, DisputesSection) {
  const std::string text = RenderTextReport(KnownInput());
  EXPECT_THAT(text, HasSubstr("Dispute log (3 steps, 2 disputes)"));
  const std::string filed = LineWith(text, "dispute.file  ");
  EXPECT_THAT(filed, HasSubstr("d-1"));
  EXPECT_THAT(filed, HasSubstr("— → FILED"));
  EXPECT_THAT(filed, HasSubstr("hosp-1 / patient pat-1"));
  EXPECT_THAT(filed, HasSubstr("start_review by 2025-03-18T09:00:00Z"));
  const std::string review = LineWith(text, "dispute.start_review");
  EXPECT_THAT(review, HasSubstr("FILED → UNDER_REVIEW"));
  EXPECT_THAT(review, HasSubstr("dec-77"));
  EXPECT_THAT(review, HasSubstr("regulator"));
  EXPECT_EQ(LineWith(text, "dispute.read"), "");
  // d-1's two steps come before d-2's filing, which was earlier.
  EXPECT_LT(text.find("dispute.start_review"), text.find("d-2"));

  const std::string html = Section(RenderHtmlReport(KnownInput()), "disputes");
  EXPECT_EQ(CountOf(html, "<tr"), 4);
  EXPECT_THAT(html, HasSubstr("<td>FILED → UNDER_REVIEW</td>"));
}

// Licence changes as given.
TEST(AuditReportTest, LicencesSection) {
  const std::string text = RenderTextReport(KnownInput());
  EXPECT_THAT(text, HasSubstr("Licence changes (2)"));
  const std::string b = LineWith(text, "0xbbbb");
  EXPECT_THAT(b, HasSubstr("SUSPENDED"));
  EXPECT_THAT(b, HasSubstr("2026-01-01T00:00:00Z"));
  EXPECT_THAT(b, HasSubstr("2025-03-02T00:00:00Z"));
  EXPECT_THAT(b, HasSubstr("150"));
  EXPECT_EQ(CountOf(Section(RenderHtmlReport(KnownInput()), "licences"), "<tr"), 3);
}

// Policy versions from the chain and from the events, side by side.
TEST(AuditReportTest, PoliciesSection) {
  const std::string text = RenderTextReport(KnownInput());
  EXPECT_THAT(text, HasSubstr("Policy versions (3)"));
  const std::string v3 = LineWith(text, "0x3333");
  EXPECT_THAT(v3, HasSubstr("2025-01-01T00:00:00Z"));  // published
  EXPECT_THAT(v3, HasSubstr("2025-03-01T08:00:00Z"));  // first seen
  EXPECT_THAT(v3, HasSubstr("2025-03-09T09:00:00Z"));  // last seen
  EXPECT_THAT(v3, HasSubstr("  9"));
  const std::string v4 = LineWith(text, "0x4444");
  EXPECT_THAT(v4, HasSubstr("2025-03-03T11:00:00Z"));
  EXPECT_THAT(v4, HasSubstr("2025-03-05T09:00:00Z"));
  EXPECT_THAT(LineWith(text, "not on chain"), HasSubstr("  5  "));
  EXPECT_EQ(CountOf(Section(RenderHtmlReport(KnownInput()), "policies"), "<tr"), 4);
}

// An empty report says "None." in each of its five sections.
TEST(AuditReportTest, EmptySectionsSayNone) {
  AuditReportInput in;
  in.generated_at = T("2025-03-10T00:00:00Z");
  EXPECT_EQ(CountOf(RenderTextReport(in), "None."), 5);
  const std::string html = RenderHtmlReport(in);
  for (const char* id : {"emergency", "denials", "disputes", "licences", "policies"}) {
    EXPECT_THAT(Section(html, id), HasSubstr("<p class=\"none\">None.</p>")) << id;
    EXPECT_THAT(Section(html, id), Not(HasSubstr("<table"))) << id;
  }
}

// Hostile ids are escaped in HTML and defanged in the terminal.
TEST(AuditReportTest, EscapesHostileIds) {
  AuditReportInput in = KnownInput();
  v1::AuditEvent evil =
      EmergencyOpen("2025-03-09T11:00:00Z", "<script>alert('x')</script>", "2025-03-16T11:00:00Z");
  evil.set_patient_id("\"><img src=x onerror=alert(1)>&amp;");
  evil.mutable_actor()->set_practitioner_id(
      "pr-\x1b[2J-\xc2\x9b"
      "31m");
  in.events.emplace_back(99, evil);
  in.log_summary = "<b>bold</b>";

  const std::string html = RenderHtmlReport(in);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<img")));
  EXPECT_THAT(html, Not(HasSubstr("<b>")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;"));
  EXPECT_THAT(html, HasSubstr("Content-Security-Policy"));
  EXPECT_EQ(CountOf(Section(html, "emergency"), "<tr"), 4);

  const std::string text = RenderTextReport(in);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos);
  EXPECT_THAT(text, HasSubstr("pr-?[2J-?31m"));
}

// Columns of the text report line up, multi-byte characters included.
TEST(AuditReportTest, TextColumnsAlign) {
  const std::string text = RenderTextReport(KnownInput());
  const std::string header = LineWith(text, "Dispute  ");
  const std::string step = LineWith(text, "dispute.start_review");
  // "State" starts where the row's transition starts, counted in code points.
  auto column = [](const std::string& line, const std::string& what) {
    const std::string prefix = line.substr(0, line.find(what));
    return std::count_if(prefix.begin(), prefix.end(), [](char c) { return (c & 0xc0) != 0x80; });
  };
  EXPECT_EQ(column(header, "Actor"), column(step, "regulator"));
  EXPECT_EQ(column(header, "State"), column(step, "FILED"));
}

// FHIR JSON allows no empty strings, arrays or objects (every event of the
// report, and one with nothing but a time and an action); an event without
// any actor is medvault's own.
TEST(FhirTest, NoEmptyValues) {
  std::function<void(const Value&, const std::string&)> check = [&](const Value& v,
                                                                    const std::string& path) {
    switch (v.kind_case()) {
      case Value::kStringValue:
        EXPECT_FALSE(v.string_value().empty()) << path;
        break;
      case Value::kListValue:
        EXPECT_GT(v.list_value().values_size(), 0) << path;
        for (int i = 0; i < v.list_value().values_size(); ++i) {
          check(v.list_value().values(i), absl::StrCat(path, "[", i, "]"));
        }
        break;
      case Value::kStructValue:
        EXPECT_GT(v.struct_value().fields_size(), 0) << path;
        for (const auto& [key, field] : v.struct_value().fields()) {
          check(field, absl::StrCat(path, ".", key));
        }
        break;
      default:
        break;
    }
  };
  std::vector<v1::AuditEvent> events;
  for (const auto& [index, e] : KnownInput().events) events.push_back(e);
  v1::AuditEvent bare;
  bare.set_action("dispute.escalate");
  events.push_back(bare);
  for (const v1::AuditEvent& e : events) {
    Value v;
    *v.mutable_struct_value() = ParseJson(FhirAuditEvent(1, e));
    check(v, e.action());
  }
  const Struct r = ParseJson(FhirAuditEvent(1, bare));
  EXPECT_EQ(Str(Obj(At(r, "agent", 0), "who"), "display"), "medvault");
  EXPECT_TRUE(Field(At(r, "agent", 0), "requestor").bool_value());
  EXPECT_EQ(Str(r, "recorded"), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace medvault::ctl
