#include "daemon/gateway/caller.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/ids.h"

namespace medvault::gateway {
namespace {

// Certificate role (OU) to policy role.
absl::StatusOr<std::string> PolicyRole(absl::string_view role) {
  if (role == "hospital") return std::string("HOSPITAL");
  if (role == "regulator") return std::string("REGULATOR");
  if (role == "insurer") return std::string("INSURER");
  if (role == "research") return std::string("RESEARCHER");
  if (role == "compliance") return std::string("COMPLIANCE");
  return absl::UnauthenticatedError(
      absl::StrCat("a \"", role, "\" certificate cannot call the records API"));
}

// The single value of metadata `key`, empty when absent.
absl::StatusOr<std::string> Header(const grpc::ServerContextBase& context, const char* key) {
  auto [first, last] = context.client_metadata().equal_range(key);
  if (first == last) return std::string();
  if (std::next(first) != last) return InvalidField(key, "given more than once");
  return std::string(first->second.data(), first->second.size());
}

// Loads the acting practitioner's specialties; returns their licence key.
absl::StatusOr<std::string> LoadPractitioner(sqlite3* db, const std::string& hospital,
                                             Caller& caller) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT hospital_id, specialties, licence_key FROM practitioners WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, caller.practitioner_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  // One answer for "unknown" and "of another hospital": a hospital must not
  // learn who works elsewhere by probing.
  if (!found || q.Text(0) != hospital) {
    return absl::UnauthenticatedError(absl::StrCat("practitioner \"", caller.practitioner_id,
                                                   "\" is not registered with ", hospital));
  }
  caller.specialties = absl::StrSplit(q.Text(1), ',', absl::SkipEmpty());
  return q.Blob(2);
}

}  // namespace

v1::AuditActor Caller::AuditActor() const {
  v1::AuditActor actor;
  actor.set_organization_id(organization.organization_id);
  actor.set_organization_role(organization.role);
  actor.set_practitioner_id(practitioner_id);
  actor.set_patient_id(patient_id);
  actor.set_policy_role(policy_role);
  actor.set_certificate_serial(organization.serial_hex);
  return actor;
}

absl::StatusOr<Caller> ResolveCaller(const grpc::ServerContextBase& context, GatewayCore& core) {
  Caller caller;
  ASSIGN_OR_RETURN(caller.organization, CallerIdentity(context, core.revocations));
  if (core.rate_limiter != nullptr) {
    RETURN_IF_ERROR(core.rate_limiter->Acquire(caller.organization.organization_id));
  }
  ASSIGN_OR_RETURN(caller.policy_role, PolicyRole(caller.organization.role));
  caller.actor_id = caller.organization.organization_id;
  ASSIGN_OR_RETURN(caller.practitioner_id, Header(context, kPractitionerHeader));
  ASSIGN_OR_RETURN(caller.patient_id, Header(context, kPatientHeader));
  if (caller.is_practitioner() && caller.is_patient()) {
    return InvalidField(kPatientHeader, absl::StrCat("not together with ", kPractitionerHeader));
  }
  if ((caller.is_practitioner() || caller.is_patient()) && caller.organization.role != "hospital") {
    return absl::UnauthenticatedError("only a hospital's connection may name a person");
  }
  if (caller.is_practitioner()) {
    RETURN_IF_ERROR(CheckId(kPractitionerHeader, caller.practitioner_id));
    caller.policy_role = "PRACTITIONER";
    caller.actor_id = caller.practitioner_id;
  } else if (caller.is_patient()) {
    RETURN_IF_ERROR(CheckId(kPatientHeader, caller.patient_id));
    caller.policy_role = "PATIENT";
    caller.actor_id = caller.patient_id;
  }
  std::string licence_key;
  RETURN_IF_ERROR(core.db.Read([&](sqlite3* sql) -> absl::Status {
    // Registered as what its certificate says it is: an insurer's id on a
    // hospital certificate is not a registered hospital.
    ASSIGN_OR_RETURN(caller.organization_registered,
                     RowExists(sql, "SELECT 1 FROM organizations WHERE id = ? AND role = ?",
                               caller.organization.organization_id, caller.organization.role));
    if (caller.is_practitioner()) {
      ASSIGN_OR_RETURN(licence_key,
                       LoadPractitioner(sql, caller.organization.organization_id, caller));
    }
    if (caller.is_patient()) {
      // A hospital speaks for its own patients only. One answer for
      // "unknown" and "cared for elsewhere", as for practitioners.
      ASSIGN_OR_RETURN(bool cared_for,
                       PatientInCare(sql, caller.patient_id, caller.organization.organization_id));
      if (!cared_for) {
        return absl::UnauthenticatedError(absl::StrCat("patient \"", caller.patient_id,
                                                       "\" is not under the care of ",
                                                       caller.organization.organization_id));
      }
    }
    return absl::OkStatus();
  }));
  if (caller.is_practitioner()) {
    ASSIGN_OR_RETURN(caller.licence, ReadLicence(core.backends, licence_key));
  }
  return caller;
}

}  // namespace medvault::gateway
