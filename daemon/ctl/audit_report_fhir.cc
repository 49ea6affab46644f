// An audit event as a FHIR R4 AuditEvent resource
// (http://hl7.org/fhir/R4/auditevent.html), built as a
// google.protobuf.Struct and printed with its members in a fixed order;
// protobuf's JSON printer writes (and escapes) every string.
//
// Codes, and where they come from:
//  - type "rest" (Restful Operation) in
//    http://terminology.hl7.org/CodeSystem/audit-event-type, with subtype
//    read / search / create / update in http://hl7.org/fhir/restful-interaction:
//    IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/)
//    profiles Read, PatientRead, Query, PatientQuery, Create, PatientCreate,
//    Update, PatientUpdate. meta.profile names the profile when the event
//    succeeded (BALP's profiles describe successful operations).
//      record.read, record.read_emergency, registry.read -> read (R)
//      record.list, access.history, grant.list, access_request.list,
//        dispute.read -> search (E), with a query entity
//      record.write, registry.register_*, access_request.create,
//        dispute.file -> create (C)
//      record.amend, dispute.* steps -> update (U)
//  - Consent decisions (grant.create, access_request.approve -> create;
//    grant.revoke, access_request.deny -> update): BALP has no profile for
//    recording a consent itself (its AuthZconsent profile, DICOM 110113
//    Security Alert, records an access decision *taken with* a consent,
//    which is what record.read is here), so these follow PatientCreate /
//    PatientUpdate with the grant as an entity of type Consent
//    (http://hl7.org/fhir/resource-types). They are not labelled as a
//    disclosure (BALP PrivacyDisclosure, DICOM 110106 Export + ISO 21089
//    "disclose"): a grant permits later reads, and each read that
//    discloses is its own record.read event.
//  - Emergency access: purposeOfEvent ETREAT (Emergency Treatment) in
//    http://terminology.hl7.org/CodeSystem/v3-ActReason, as in BALP's
//    examples of purposeOfUse.
//  - audit.read_log: DICOM 110101 Audit Log Used
//    (http://dicom.nema.org/resources/ontology/DCM, FHIR R4 audit-event-type
//    value set), action R. Anything else: DICOM 110100 Application
//    Activity, action E.
//  - entity.type in http://terminology.hl7.org/CodeSystem/audit-entity-type:
//    1 Person (the patient), 2 System Object (everything else);
//    entity.role in http://terminology.hl7.org/CodeSystem/object-role:
//    1 Patient, 4 Domain Resource, 24 Query (BALP PatientRead / Query).
//  - source.type 4 Application Server in
//    http://terminology.hl7.org/CodeSystem/security-source-type.
//  - outcome (http://hl7.org/fhir/audit-event-outcome): "0" Success for
//    SUCCEEDED, "4" Minor failure for DENIED (the request was refused,
//    nothing broke).
// medvault's own ids are identifiers in urn:medvault:<kind> systems.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "daemon/ctl/audit_report.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::ctl {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr char kEventTypeSystem[] = "http://terminology.hl7.org/CodeSystem/audit-event-type";
constexpr char kDicomSystem[] = "http://dicom.nema.org/resources/ontology/DCM";
constexpr char kRestfulSystem[] = "http://hl7.org/fhir/restful-interaction";
constexpr char kEntityTypeSystem[] = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr char kObjectRoleSystem[] = "http://terminology.hl7.org/CodeSystem/object-role";
constexpr char kResourceTypeSystem[] = "http://hl7.org/fhir/resource-types";
constexpr char kActReasonSystem[] = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr char kSourceTypeSystem[] = "http://terminology.hl7.org/CodeSystem/security-source-type";
constexpr char kBalpProfile[] =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

// --- Struct building ---------------------------------------------------------

Value Str(absl::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}

Value Bool(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}

// FHIR JSON has no empty strings, arrays or objects: leave the member out.
bool IsEmpty(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue:
      return v.string_value().empty();
    case Value::kListValue:
      return v.list_value().values().empty();
    case Value::kStructValue:
      return v.struct_value().fields().empty();
    default:
      return false;
  }
}

// An object being filled in; Set returns *this for chaining and leaves
// empty values out.
class Obj {
 public:
  Obj& Set(const std::string& key, Value value) {
    if (!IsEmpty(value)) (*value_.mutable_struct_value()->mutable_fields())[key] = std::move(value);
    return *this;
  }
  Obj& Set(const std::string& key, Obj value) { return Set(key, std::move(value).value()); }
  Value value() const { return value_; }
  const Struct& fields() const { return value_.struct_value(); }

 private:
  Value value_ = [] {
    Value v;
    v.mutable_struct_value();
    return v;
  }();
};

Value List(std::vector<Value> items) {
  Value v;
  ListValue* list = v.mutable_list_value();
  for (Value& item : items) *list->add_values() = std::move(item);
  return v;
}

Value Coding(absl::string_view system, absl::string_view code, absl::string_view display) {
  return Obj()
      .Set("system", Str(system))
      .Set("code", Str(code))
      .Set("display", Str(display))
      .value();
}

Value Identifier(absl::string_view kind, absl::string_view value) {
  return Obj()
      .Set("identifier",
           Obj().Set("system", Str(absl::StrCat("urn:medvault:", kind))).Set("value", Str(value)))
      .value();
}

// --- What kind of event ------------------------------------------------------

struct Kind {
  Value type;
  std::vector<Value> subtypes;
  const char* action = "E";
  std::string profile;  // BALP profile name without the patient prefix
  bool query = false;
};

Kind Rest(const char* interaction, const char* display, const char* action, const char* profile) {
  Kind k;
  k.type = Coding(kEventTypeSystem, "rest", "Restful Operation");
  k.subtypes.push_back(Coding(kRestfulSystem, interaction, display));
  k.action = action;
  k.profile = profile;
  return k;
}

bool IsOneOf(absl::string_view action, std::initializer_list<absl::string_view> names) {
  for (absl::string_view n : names) {
    if (action == n) return true;
  }
  return false;
}

Kind KindOf(absl::string_view action) {
  if (IsOneOf(action, {"record.read", "record.read_emergency", "registry.read"})) {
    return Rest("read", "read", "R", "Read");
  }
  if (IsOneOf(action, {"record.list", "access.history", "grant.list", "access_request.list",
                       "dispute.read", "stats.query"})) {
    Kind k = Rest("search", "search", "E", "Query");
    k.query = true;
    return k;
  }
  if (IsOneOf(action, {"record.write", "access_request.create", "dispute.file", "grant.create",
                       "access_request.approve"}) ||
      absl::StartsWith(action, "registry.register_")) {
    return Rest("create", "create", "C", "Create");
  }
  if (IsOneOf(action, {"record.amend", "grant.revoke", "access_request.deny"}) ||
      absl::StartsWith(action, "dispute.")) {
    return Rest("update", "update", "U", "Update");
  }
  Kind k;
  if (action == "audit.read_log") {
    k.type = Coding(kDicomSystem, "110101", "Audit Log Used");
    k.action = "R";
  } else {
    k.type = Coding(kDicomSystem, "110100", "Application Activity");
  }
  return k;
}

// --- Parts of the resource ---------------------------------------------------

std::string Rfc3339(const google::protobuf::Timestamp& t) {
  const absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

// The policy that decided, as URIs on the requesting agent.
Value Policy(const v1::AuditEvent& event) {
  std::vector<Value> uris;
  if (!event.decision_id().empty()) {
    uris.push_back(Str(absl::StrCat("urn:medvault:decision:", event.decision_id())));
  }
  for (const std::string& rule : event.rule_ids()) {
    uris.push_back(Str(absl::StrCat("urn:medvault:rule:", rule)));
  }
  if (event.policy_version() != 0) {
    uris.push_back(Str(absl::StrCat("urn:medvault:policy-version:", event.policy_version())));
  }
  return List(std::move(uris));
}

// agent.role: the policy role as text, or nothing.
Value Role(absl::string_view text) {
  return text.empty() ? List({}) : List({Obj().Set("text", Str(text)).value()});
}

// The requestor is the practitioner or patient acting, else the
// organisation; the organisation is an agent whenever there is one, and
// medvault's own scheduled work (no organisation) is a named system agent.
Value Agents(const v1::AuditEvent& event) {
  const v1::AuditActor& actor = event.actor();
  std::vector<Value> agents;
  auto requestor = [&](Obj agent, absl::string_view role) {
    agent.Set("requestor", Bool(true)).Set("role", Role(role)).Set("policy", Policy(event));
    return agent.value();
  };
  if (!actor.practitioner_id().empty()) {
    agents.push_back(
        requestor(Obj().Set("who", Identifier("practitioner", actor.practitioner_id())),
                  actor.policy_role()));
  } else if (!actor.patient_id().empty()) {
    agents.push_back(requestor(Obj().Set("who", Identifier("patient", actor.patient_id())),
                               actor.policy_role()));
  }
  if (!actor.organization_id().empty()) {
    Obj org;
    org.Set("who", Identifier("organization", actor.organization_id()))
        .Set("altId", Str(actor.certificate_serial()));
    if (agents.empty()) {
      agents.push_back(requestor(std::move(org), actor.organization_role()));
    } else {
      org.Set("requestor", Bool(false)).Set("role", Role(actor.organization_role()));
      agents.push_back(org.value());
    }
  }
  if (agents.empty()) {
    agents.push_back(
        requestor(Obj().Set("who", Obj().Set("display", Str("medvault"))), actor.policy_role()));
  }
  return List(std::move(agents));
}

Value Entity(absl::string_view kind, absl::string_view id, Value type, const char* role_code,
             const char* role_display) {
  return Obj()
      .Set("what", Identifier(kind, id))
      .Set("type", std::move(type))
      .Set("role", Coding(kObjectRoleSystem, role_code, role_display))
      .value();
}

Value Entities(const v1::AuditEvent& event, const Kind& kind) {
  std::vector<Value> entities;
  if (!event.patient_id().empty()) {
    entities.push_back(Entity("patient", event.patient_id(),
                              Coding(kEntityTypeSystem, "1", "Person"), "1", "Patient"));
  }
  const Value object = Coding(kEntityTypeSystem, "2", "System Object");
  const std::pair<const char*, const std::string*> objects[] = {
      {"record", &event.record_id()},
      {"access-request", &event.access_request_id()},
      {"emergency-access", &event.emergency_access_id()},
      {"dispute", &event.dispute_id()},
      {"subject", &event.subject_id()},
  };
  for (const auto& [name, id] : objects) {
    if (!id->empty()) entities.push_back(Entity(name, *id, object, "4", "Domain Resource"));
  }
  if (!event.grant_id().empty()) {
    entities.push_back(Entity("grant", event.grant_id(),
                              Coding(kResourceTypeSystem, "Consent", "Consent"), "4",
                              "Domain Resource"));
  }
  if (kind.query) {
    Value query = Entity("query", event.action(), object, "24", "Query");
    if (!event.method().empty()) {
      (*query.mutable_struct_value()->mutable_fields())["description"] = Str(event.method());
    }
    entities.push_back(std::move(query));
  }
  return List(std::move(entities));
}

Value Source() {
  return Obj()
      .Set("site", Str("medvault"))
      .Set("observer", Obj().Set("display", Str("medvault-gateway")))
      .Set("type", List({Coding(kSourceTypeSystem, "4", "Application Server")}))
      .value();
}

// JSON of `v` with the members of every object in a fixed order
// ("resourceType" first, as FHIR's examples have it, then by name), so that
// the same event always gives the same line. Protobuf's printer (whose map
// order is unspecified) still writes every scalar, and so does the
// escaping.
void AppendJson(const Value& v, std::string& out) {
  if (v.kind_case() == Value::kListValue) {
    out += '[';
    for (int i = 0; i < v.list_value().values_size(); ++i) {
      if (i > 0) out += ',';
      AppendJson(v.list_value().values(i), out);
    }
    out += ']';
    return;
  }
  if (v.kind_case() == Value::kStructValue) {
    std::vector<std::string> keys;
    for (const auto& [key, unused] : v.struct_value().fields()) keys.push_back(key);
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      return std::make_pair(a != "resourceType", a) < std::make_pair(b != "resourceType", b);
    });
    out += '{';
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0) out += ',';
      AppendJson(Str(keys[i]), out);
      out += ':';
      AppendJson(v.struct_value().fields().at(keys[i]), out);
    }
    out += '}';
    return;
  }
  std::string scalar;
  // A string, bool, number or null Value always prints.
  (void)google::protobuf::util::MessageToJsonString(v, &scalar);
  out += scalar;
}

}  // namespace

std::string FhirAuditEvent(uint64_t leaf_index, const v1::AuditEvent& event) {
  Kind kind = KindOf(event.action());
  const bool ok = event.outcome() == v1::AuditEvent::SUCCEEDED;
  Obj resource;
  resource.Set("resourceType", Str("AuditEvent"))
      .Set("id", Str(absl::StrCat("medvault-", leaf_index)))
      .Set("type", std::move(kind.type))
      .Set("action", Str(kind.action))
      .Set("recorded", Str(Rfc3339(event.time())))
      .Set("outcome", Str(ok ? "0" : "4"))
      .Set("agent", Agents(event))
      .Set("source", Source())
      .Set("entity", Entities(event, kind));
  if (!kind.subtypes.empty()) resource.Set("subtype", List(std::move(kind.subtypes)));
  if (ok && !kind.profile.empty()) {
    const char* patient = event.patient_id().empty() ? "" : "Patient";
    resource.Set("meta", Obj().Set("profile",
                                   List({Str(absl::StrCat(kBalpProfile, patient, kind.profile))})));
  }
  if (!ok) {
    resource.Set(
        "outcomeDesc",
        Str(event.rule_ids().empty()
                ? std::string("denied by policy: no rule matched (default deny)")
                : absl::StrCat("denied by policy: ", absl::StrJoin(event.rule_ids(), ", "))));
  }
  if (event.action() == "record.read_emergency") {
    resource.Set(
        "purposeOfEvent",
        List({Obj()
                  .Set("coding", List({Coding(kActReasonSystem, "ETREAT", "Emergency Treatment")}))
                  .value()}));
  }
  std::string json;
  AppendJson(resource.value(), json);
  return json;
}

}  // namespace medvault::ctl
