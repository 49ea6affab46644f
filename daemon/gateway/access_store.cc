#include "daemon/gateway/access_store.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

constexpr char kRequestColumns[] =
    "SELECT id, patient_id, practitioner_id, organization_id, scope, purpose, not_after, "
    "reason, state, created_at, decided_at, grant_id FROM access_requests ";

absl::StatusOr<v1::AccessRequest> RequestOfRow(SqliteStatement& q) {
  v1::AccessRequest r;
  r.set_request_id(q.Text(0));
  r.set_patient_id(q.Text(1));
  r.set_practitioner_id(q.Text(2));
  r.set_organization_id(q.Text(3));
  if (!r.mutable_scope()->ParseFromString(q.Blob(4))) {
    return absl::DataLossError("registry database: an access request's scope does not parse");
  }
  v1::Purpose purpose;
  v1::AccessRequest::State state;
  if (!v1::Purpose_Parse(q.Text(5), &purpose) ||
      !v1::AccessRequest::State_Parse(q.Text(8), &state)) {
    return absl::DataLossError("registry database: an access request has a bad purpose or state");
  }
  r.set_purpose(purpose);
  *r.mutable_not_after() = DbTimestamp(q.Int(6));
  r.set_reason(q.Text(7));
  r.set_state(state);
  *r.mutable_created_at() = DbTimestamp(q.Int(9));
  if (q.Int(10) != 0) *r.mutable_decided_at() = DbTimestamp(q.Int(10));
  r.set_grant_id(q.Text(11));
  return r;
}

absl::StatusOr<std::vector<v1::AccessRequest>> Requests(sqlite3* db, const std::string& sql,
                                                        const std::string& id) {
  SqliteStatement q(db, RegistryDb::kOwner, sql.c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, id);
  std::vector<v1::AccessRequest> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    ASSIGN_OR_RETURN(out.emplace_back(), RequestOfRow(q));
  }
}

// The row's status column wins over the proto's copy.
absl::StatusOr<v1::Grant> GrantOfRow(SqliteStatement& q) {
  v1::Grant grant;
  v1::Grant::Status status;
  if (!grant.ParseFromString(q.Blob(0)) || !v1::Grant::Status_Parse(q.Text(1), &status)) {
    return absl::DataLossError("registry database: a grant does not parse");
  }
  grant.set_status(status);
  return grant;
}

absl::StatusOr<std::vector<v1::Grant>> Grants(sqlite3* db, const char* sql, const std::string& id) {
  SqliteStatement q(db, RegistryDb::kOwner, sql);
  RETURN_IF_ERROR(q.status());
  q.BindText(1, id);
  std::vector<v1::Grant> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return out;
    ASSIGN_OR_RETURN(out.emplace_back(), GrantOfRow(q));
  }
}

}  // namespace

absl::Status CheckScope(absl::string_view field, const v1::AccessScope& scope) {
  switch (scope.scope()) {
    case v1::ALL:
      return absl::OkStatus();
    case v1::CATEGORIES:
      if (scope.categories().empty()) {
        return InvalidField(absl::StrCat(field, ".categories"), "at least one with CATEGORIES");
      }
      for (int i = 0; i < scope.categories().size(); ++i) {
        const int c = scope.categories(i);
        if (c == v1::RECORD_CATEGORY_UNSPECIFIED || !v1::RecordCategory_IsValid(c)) {
          return InvalidField(absl::StrCat(field, ".categories[", i, "]"), "unknown category");
        }
      }
      return absl::OkStatus();
    case v1::RECORDS:
      if (scope.record_ids().empty()) {
        return InvalidField(absl::StrCat(field, ".record_ids"), "at least one with RECORDS");
      }
      for (int i = 0; i < scope.record_ids().size(); ++i) {
        RETURN_IF_ERROR(
            CheckObjectId(absl::StrCat(field, ".record_ids[", i, "]"), "rec", scope.record_ids(i)));
      }
      return absl::OkStatus();
    default:
      return InvalidField(absl::StrCat(field, ".scope"), "ALL, CATEGORIES or RECORDS");
  }
}

absl::Status CheckPurpose(absl::string_view field, int purpose) {
  if (purpose == v1::PURPOSE_UNSPECIFIED || !v1::Purpose_IsValid(purpose)) {
    return InvalidField(field, "required: TREATMENT, EMERGENCY, CLAIM, RESEARCH or PATIENT_ACCESS");
  }
  return absl::OkStatus();
}

absl::Status CheckScopeRecords(sqlite3* db, const std::string& patient_id,
                               const v1::AccessScope& scope) {
  if (scope.scope() != v1::RECORDS) return absl::OkStatus();
  for (const std::string& id : scope.record_ids()) {
    SqliteStatement one(db, RegistryDb::kOwner,
                        "SELECT 1 FROM records WHERE id = ? AND patient_id = ?");
    RETURN_IF_ERROR(one.status());
    one.BindText(1, id).BindText(2, patient_id);
    ASSIGN_OR_RETURN(bool found, one.Step());
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("record \"", id, "\" of patient \"", patient_id, "\" not found"));
    }
  }
  return absl::OkStatus();
}

v1::AccessRequest::State EffectiveState(const v1::AccessRequest& request, absl::Time now) {
  if (request.state() == v1::AccessRequest::PENDING &&
      FromTimestamp(request.created_at()) + kAccessRequestExpiry <= now) {
    return v1::AccessRequest::EXPIRED;
  }
  return request.state();
}

absl::StatusOr<v1::AccessRequest> LoadAccessRequest(sqlite3* db, const std::string& request_id) {
  ASSIGN_OR_RETURN(std::vector<v1::AccessRequest> found,
                   Requests(db, absl::StrCat(kRequestColumns, "WHERE id = ?"), request_id));
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("access request \"", request_id, "\" not found"));
  }
  return std::move(found.front());
}

absl::Status InsertAccessRequest(sqlite3* db, const v1::AccessRequest& r) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO access_requests (id, patient_id, practitioner_id, "
                    "organization_id, scope, purpose, not_after, reason, state, created_at, "
                    "decided_at, grant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, r.request_id()).BindText(2, r.patient_id()).BindText(3, r.practitioner_id());
  q.BindText(4, r.organization_id()).BindBlob(5, r.scope().SerializeAsString());
  q.BindText(6, v1::Purpose_Name(r.purpose()));
  q.Bind(7, DbTime(FromTimestamp(r.not_after()))).BindText(8, r.reason());
  q.BindText(9, v1::AccessRequest::State_Name(r.state()));
  q.Bind(10, DbTime(FromTimestamp(r.created_at())));
  return q.Step().status();
}

absl::Status UpdateAccessRequest(sqlite3* db, const v1::AccessRequest& r) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "UPDATE access_requests SET state = ?, decided_at = ?, grant_id = ? "
                    "WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, v1::AccessRequest::State_Name(r.state()));
  q.Bind(2, DbTime(FromTimestamp(r.decided_at())));
  q.BindText(3, r.grant_id()).BindText(4, r.request_id());
  return q.Step().status();
}

absl::StatusOr<std::vector<v1::AccessRequest>> AccessRequestsOfPatient(sqlite3* db,
                                                                       const std::string& id) {
  return Requests(
      db, absl::StrCat(kRequestColumns, "WHERE patient_id = ? ORDER BY created_at DESC"), id);
}

absl::StatusOr<std::vector<v1::AccessRequest>> AccessRequestsOfPractitioner(sqlite3* db,
                                                                            const std::string& id) {
  return Requests(
      db, absl::StrCat(kRequestColumns, "WHERE practitioner_id = ? ORDER BY created_at DESC"), id);
}

absl::StatusOr<v1::Grant> LoadGrant(sqlite3* db, const std::string& grant_id) {
  ASSIGN_OR_RETURN(std::vector<v1::Grant> found,
                   Grants(db, "SELECT grant_proto, status FROM grants WHERE id = ?", grant_id));
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("grant \"", grant_id, "\" not found"));
  }
  return std::move(found.front());
}

absl::Status InsertGrant(sqlite3* db, const v1::Grant& grant) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO grants (id, patient_id, grantee_id, grant_proto, status, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, grant.grant_id()).BindText(2, grant.patient_id()).BindText(3, grant.grantee_id());
  q.BindBlob(4, grant.SerializeAsString()).BindText(5, v1::Grant::Status_Name(grant.status()));
  q.Bind(6, DbTime(FromTimestamp(grant.created_at())));
  return q.Step().status();
}

absl::Status UpdateGrant(sqlite3* db, const v1::Grant& grant) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "UPDATE grants SET grant_proto = ?, status = ? WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindBlob(1, grant.SerializeAsString()).BindText(2, v1::Grant::Status_Name(grant.status()));
  q.BindText(3, grant.grant_id());
  return q.Step().status();
}

absl::StatusOr<std::vector<v1::Grant>> GrantsOfPatient(sqlite3* db, const std::string& id) {
  return Grants(db,
                "SELECT grant_proto, status FROM grants WHERE patient_id = ? "
                "ORDER BY created_at DESC",
                id);
}

absl::StatusOr<std::vector<v1::Grant>> GrantsOfGrantee(sqlite3* db, const std::string& id) {
  return Grants(db,
                "SELECT grant_proto, status FROM grants WHERE grantee_id = ? "
                "ORDER BY created_at DESC",
                id);
}

}  // namespace medvault::gateway
