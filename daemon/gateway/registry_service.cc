#include "daemon/gateway/registry_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/licence.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::gateway {
namespace {

constexpr const char* kSpecialties[] = {
    "GENERAL_PRACTICE", "EMERGENCY_MEDICINE", "CARDIOLOGY", "ONCOLOGY",
    "PSYCHIATRY",       "CLINICAL_GENETICS",  "RADIOLOGY",  "OBSTETRICS"};

absl::Status CheckLicenceNumber(absl::string_view number) {
  if (number.empty() || number.size() > 64) {
    return InvalidField("licence_number", "1 to 64 characters");
  }
  for (char c : number) {
    if (!absl::ascii_isalnum(c) && c != '-') {
      return InvalidField("licence_number", "only A-Z, a-z, 0-9 and '-' are allowed");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSpecialties(const google::protobuf::RepeatedPtrField<std::string>& list) {
  if (list.empty()) return InvalidField("specialties", "at least one");
  for (int i = 0; i < list.size(); ++i) {
    if (std::find(std::begin(kSpecialties), std::end(kSpecialties), list[i]) ==
        std::end(kSpecialties)) {
      return InvalidField(absl::StrCat("specialties[", i, "]"),
                          absl::StrCat("unknown specialty \"", list[i], "\"; one of ",
                                       absl::StrJoin(kSpecialties, ", ")));
    }
  }
  return absl::OkStatus();
}

// The optional year of birth and region (see RegisterPatientRequest).
absl::Status CheckDemographics(const v1::RegisterPatientRequest& request, absl::Time now) {
  const int this_year = absl::ToCivilYear(now, absl::UTCTimeZone()).year();
  if (request.birth_year() != 0 &&
      (request.birth_year() < 1900 || request.birth_year() > static_cast<uint32_t>(this_year))) {
    return InvalidField("birth_year", absl::StrCat("1900 to ", this_year, ", or 0 when not given"));
  }
  const std::string& region = request.region();
  if (region.empty()) return absl::OkStatus();
  bool ok = region.size() >= 2 && absl::ascii_isupper(region[0]) && absl::ascii_isupper(region[1]);
  if (ok && region.size() > 2) {
    ok = region[2] == '-' && region.size() >= 4 && region.size() <= 6 &&
         std::all_of(region.begin() + 3, region.end(),
                     [](char ch) { return absl::ascii_isupper(ch) || absl::ascii_isdigit(ch); });
  }
  if (!ok) {
    return InvalidField("region",
                        "an ISO 3166-2 code: two capital letters, optionally \"-\" and "
                        "1 to 3 capital letters or digits (e.g. \"DE-BY\")");
  }
  return absl::OkStatus();
}

absl::Status AlreadyExists(absl::string_view what) {
  return absl::AlreadyExistsError(absl::StrCat(what, " is already registered"));
}

}  // namespace

absl::StatusOr<v1::Patient> LoadPatient(sqlite3* db, const std::string& patient_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT address, registered_at FROM patients WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("patient \"", patient_id, "\" not found"));
  v1::Patient patient;
  patient.set_patient_id(patient_id);
  ASSIGN_OR_RETURN(*patient.mutable_address(), FormatEthAddress(q.Blob(0)));
  *patient.mutable_registered_at() = DbTimestamp(q.Int(1));
  SqliteStatement care(db, RegistryDb::kOwner,
                       "SELECT organization_id FROM patient_care WHERE patient_id = ? "
                       "ORDER BY since");
  RETURN_IF_ERROR(care.status());
  care.BindText(1, patient_id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, care.Step());
    if (!row) break;
    patient.add_care_organizations(care.Text(0));
  }
  return patient;
}

grpc::Status RegistryService::RegisterHospital(grpc::ServerContext* context,
                                               const v1::RegisterHospitalRequest* request,
                                               v1::Hospital* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRegisterHospital(c, *request, *response); });
}
grpc::Status RegistryService::RegisterOrganization(grpc::ServerContext* context,
                                                   const v1::RegisterOrganizationRequest* request,
                                                   v1::Organization* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRegisterOrganization(c, *request, *response); });
}
grpc::Status RegistryService::RegisterPractitioner(grpc::ServerContext* context,
                                                   const v1::RegisterPractitionerRequest* request,
                                                   v1::Practitioner* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRegisterPractitioner(c, *request, *response); });
}
grpc::Status RegistryService::RegisterPatient(grpc::ServerContext* context,
                                              const v1::RegisterPatientRequest* request,
                                              v1::Patient* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoRegisterPatient(c, *request, *response); });
}
grpc::Status RegistryService::GetPractitioner(grpc::ServerContext* context,
                                              const v1::GetPractitionerRequest* request,
                                              v1::Practitioner* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoGetPractitioner(c, *request, *response); });
}

absl::StatusOr<absl::Time> RegistryService::InsertOrganization(
    const Caller& caller, absl::string_view method, absl::string_view action, const std::string& id,
    const std::string& display_name, absl::string_view role) {
  RETURN_IF_ERROR(CheckId("organization_id", id));
  if (display_name.empty() || display_name.size() > 200) {
    return InvalidField("display_name", "1 to 200 characters");
  }
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method(std::string(method));
  event.set_subject_id(id);
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(caller, std::string(action), Facts(), now, event));
  FillAuditEvent(caller, std::string(action), now, decision, event);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(bool exists, RowExists(db, "SELECT 1 FROM organizations WHERE id = ?", id));
    if (exists) return AlreadyExists(absl::StrCat("organisation \"", id, "\""));
    SqliteStatement q(db, RegistryDb::kOwner,
                      "INSERT INTO organizations (id, role, display_name, registered_at) "
                      "VALUES (?, ?, ?, ?)");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, id).BindText(2, std::string(role)).BindText(3, display_name);
    q.Bind(4, DbTime(now));
    return q.Step().status();
  }));
  return now;
}

absl::Status RegistryService::DoRegisterHospital(const Caller& caller,
                                                 const v1::RegisterHospitalRequest& request,
                                                 v1::Hospital& response) {
  ASSIGN_OR_RETURN(absl::Time registered,
                   InsertOrganization(caller, "/medvault.v1.RegistryService/RegisterHospital",
                                      "registry.register_hospital", request.organization_id(),
                                      request.display_name(), "hospital"));
  response.set_organization_id(request.organization_id());
  response.set_display_name(request.display_name());
  *response.mutable_registered_at() = ToTimestamp(registered);
  return absl::OkStatus();
}

absl::Status RegistryService::DoRegisterOrganization(const Caller& caller,
                                                     const v1::RegisterOrganizationRequest& request,
                                                     v1::Organization& response) {
  // The role names of the client certificates' OU (client_identity.h).
  absl::string_view role;
  switch (request.role()) {
    case v1::ORGANIZATION_ROLE_INSURER:
      role = "insurer";
      break;
    case v1::ORGANIZATION_ROLE_RESEARCH:
      role = "research";
      break;
    default:
      return InvalidField("role", "ORGANIZATION_ROLE_INSURER or ORGANIZATION_ROLE_RESEARCH");
  }
  ASSIGN_OR_RETURN(absl::Time registered,
                   InsertOrganization(caller, "/medvault.v1.RegistryService/RegisterOrganization",
                                      "registry.register_organization", request.organization_id(),
                                      request.display_name(), role));
  response.set_organization_id(request.organization_id());
  response.set_display_name(request.display_name());
  response.set_role(request.role());
  *response.mutable_registered_at() = ToTimestamp(registered);
  return absl::OkStatus();
}

absl::Status RegistryService::DoRegisterPractitioner(const Caller& caller,
                                                     const v1::RegisterPractitionerRequest& request,
                                                     v1::Practitioner& response) {
  RETURN_IF_ERROR(CheckId("practitioner_id", request.practitioner_id()));
  RETURN_IF_ERROR(CheckLicenceNumber(request.licence_number()));
  RETURN_IF_ERROR(CheckSpecialties(request.specialties()));
  const absl::Time now = absl::Now();
  const std::string& hospital = caller.organization.organization_id;
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RegistryService/RegisterPractitioner");
  event.set_subject_id(request.practitioner_id());
  ASSIGN_OR_RETURN(
      auto decision,
      core_.authorizer.Authorize(caller, "registry.register_practitioner", Facts(), now, event));
  FillAuditEvent(caller, "registry.register_practitioner", now, decision, event);
  const std::string licence_key = LicenceKey(request.licence_number());
  const std::string specialties = absl::StrJoin(request.specialties(), ",");
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(bool id_taken, RowExists(db, "SELECT 1 FROM practitioners WHERE id = ?",
                                              request.practitioner_id()));
    if (id_taken) {
      return AlreadyExists(absl::StrCat("practitioner \"", request.practitioner_id(), "\""));
    }
    ASSIGN_OR_RETURN(bool number_taken,
                     RowExists(db, "SELECT 1 FROM practitioners WHERE licence_number = ?",
                               request.licence_number()));
    if (number_taken) return AlreadyExists("licence_number");
    SqliteStatement q(db, RegistryDb::kOwner,
                      "INSERT INTO practitioners (id, hospital_id, licence_number, licence_key, "
                      "specialties, registered_at) VALUES (?, ?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, request.practitioner_id()).BindText(2, hospital);
    q.BindText(3, request.licence_number()).BindBlob(4, licence_key).BindText(5, specialties);
    q.Bind(6, DbTime(now));
    return q.Step().status();
  }));
  response.set_practitioner_id(request.practitioner_id());
  response.set_hospital_id(hospital);
  response.set_licence_number(request.licence_number());
  response.set_licence_key(licence_key);
  *response.mutable_specialties() = request.specialties();
  *response.mutable_registered_at() = ToTimestamp(now);
  return absl::OkStatus();
}

absl::Status RegistryService::DoRegisterPatient(const Caller& caller,
                                                const v1::RegisterPatientRequest& request,
                                                v1::Patient& response) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  absl::StatusOr<std::string> address = ParseEthAddress(request.address());
  if (!address.ok()) return InvalidField("address", address.status().message());
  const absl::Time now = absl::Now();
  RETURN_IF_ERROR(CheckDemographics(request, now));
  const std::string& hospital = caller.organization.organization_id;
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RegistryService/RegisterPatient");
  event.set_patient_id(request.patient_id());
  event.set_subject_id(request.patient_id());
  Facts facts;
  facts.String("patient.id", request.patient_id());
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "registry.register_patient",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "registry.register_patient", now, decision, event);
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    SqliteStatement find(db, RegistryDb::kOwner, "SELECT address FROM patients WHERE id = ?");
    RETURN_IF_ERROR(find.status());
    find.BindText(1, request.patient_id());
    ASSIGN_OR_RETURN(bool exists, find.Step());
    if (exists && find.Blob(0) != *address) {
      return AlreadyExists(
          absl::StrCat("patient \"", request.patient_id(), "\" (with another address)"));
    }
    if (!exists) {
      SqliteStatement q(db, RegistryDb::kOwner,
                        "INSERT INTO patients (id, address, registered_at) VALUES (?, ?, ?)");
      RETURN_IF_ERROR(q.status());
      q.BindText(1, request.patient_id()).BindBlob(2, *address).Bind(3, DbTime(now));
      RETURN_IF_ERROR(q.Step().status());
    }
    // What this hospital knows of the patient's year of birth and region
    // replaces what an earlier one said (a patient moves).
    if (request.birth_year() != 0) {
      SqliteStatement q(db, RegistryDb::kOwner, "UPDATE patients SET birth_year = ? WHERE id = ?");
      RETURN_IF_ERROR(q.status());
      q.Bind(1, request.birth_year()).BindText(2, request.patient_id());
      RETURN_IF_ERROR(q.Step().status());
    }
    if (!request.region().empty()) {
      SqliteStatement q(db, RegistryDb::kOwner, "UPDATE patients SET region = ? WHERE id = ?");
      RETURN_IF_ERROR(q.status());
      q.BindText(1, request.region()).BindText(2, request.patient_id());
      RETURN_IF_ERROR(q.Step().status());
    }
    SqliteStatement care(db, RegistryDb::kOwner,
                         "INSERT OR IGNORE INTO patient_care (patient_id, organization_id, since) "
                         "VALUES (?, ?, ?)");
    RETURN_IF_ERROR(care.status());
    care.BindText(1, request.patient_id()).BindText(2, hospital).Bind(3, DbTime(now));
    RETURN_IF_ERROR(care.Step().status());
    ASSIGN_OR_RETURN(response, LoadPatient(db, request.patient_id()));
    return absl::OkStatus();
  }));
  return absl::OkStatus();
}

absl::Status RegistryService::DoGetPractitioner(const Caller& caller,
                                                const v1::GetPractitionerRequest& request,
                                                v1::Practitioner& response) {
  RETURN_IF_ERROR(CheckId("practitioner_id", request.practitioner_id()));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RegistryService/GetPractitioner");
  event.set_subject_id(request.practitioner_id());
  RETURN_IF_ERROR(
      core_.authorizer.Authorize(caller, "registry.read", Facts(), now, event).status());
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    SqliteStatement q(db, RegistryDb::kOwner,
                      "SELECT hospital_id, licence_number, licence_key, specialties, "
                      "registered_at FROM practitioners WHERE id = ?");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, request.practitioner_id());
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("practitioner \"", request.practitioner_id(), "\" not found"));
    }
    response.set_practitioner_id(request.practitioner_id());
    response.set_hospital_id(q.Text(0));
    response.set_licence_number(q.Text(1));
    response.set_licence_key(q.Blob(2));
    for (absl::string_view s : absl::StrSplit(q.Text(3), ',', absl::SkipEmpty())) {
      response.add_specialties(std::string(s));
    }
    *response.mutable_registered_at() = DbTimestamp(q.Int(4));
    return absl::OkStatus();
  }));
  ASSIGN_OR_RETURN(Licence licence, ReadLicence(core_.backends, response.licence_key()));
  response.set_licence_status(PublicLicenceStatus(licence.status));
  if (licence.valid_until != 0) {
    *response.mutable_licence_valid_until() =
        ToTimestamp(absl::FromUnixSeconds(static_cast<int64_t>(licence.valid_until)));
  }
  return absl::OkStatus();
}

}  // namespace medvault::gateway
