// The AccessService's rows in the registry database (access_requests,
// grants) and the checks of what a request or grant may cover.
//
// Formats: access_requests.scope is a serialized v1::AccessScope;
// grants.grant_proto a serialized v1::Grant, whose status and revoked_at
// are kept in step with grants.status (the column the lookups use). Every
// function runs on the connection it is given, inside the caller's
// transaction or read.
#ifndef MEDVAULT_DAEMON_GATEWAY_ACCESS_STORE_H_
#define MEDVAULT_DAEMON_GATEWAY_ACCESS_STORE_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "medvault/v1/access.pb.h"

namespace medvault::gateway {

// A request not decided within this long has expired (policy's
// access_request.expiry).
inline constexpr absl::Duration kAccessRequestExpiry = absl::Hours(72);

// INVALID_ARGUMENT naming `field` (and its sub-fields) for a scope that is
// unset, lists nothing, or names an unknown category or a malformed id.
absl::Status CheckScope(absl::string_view field, const v1::AccessScope& scope);
// INVALID_ARGUMENT naming `field` for PURPOSE_UNSPECIFIED or an unknown value.
absl::Status CheckPurpose(absl::string_view field, int purpose);
// With scope RECORDS: NOT_FOUND naming the first listed record that is not
// a record of `patient_id`.
absl::Status CheckScopeRecords(sqlite3* db, const std::string& patient_id,
                               const v1::AccessScope& scope);

// The state a reader sees: a PENDING request past its expiry is EXPIRED.
v1::AccessRequest::State EffectiveState(const v1::AccessRequest& request, absl::Time now);

// NOT_FOUND when there is no such request.
absl::StatusOr<v1::AccessRequest> LoadAccessRequest(sqlite3* db, const std::string& request_id);
absl::Status InsertAccessRequest(sqlite3* db, const v1::AccessRequest& request);
// Sets state, decided_at and grant_id.
absl::Status UpdateAccessRequest(sqlite3* db, const v1::AccessRequest& request);
// Requests of a patient, or made by a practitioner, newest first.
absl::StatusOr<std::vector<v1::AccessRequest>> AccessRequestsOfPatient(sqlite3* db,
                                                                       const std::string& id);
absl::StatusOr<std::vector<v1::AccessRequest>> AccessRequestsOfPractitioner(sqlite3* db,
                                                                            const std::string& id);

// NOT_FOUND when there is no such grant.
absl::StatusOr<v1::Grant> LoadGrant(sqlite3* db, const std::string& grant_id);
absl::Status InsertGrant(sqlite3* db, const v1::Grant& grant);
// Rewrites status and grant_proto.
absl::Status UpdateGrant(sqlite3* db, const v1::Grant& grant);
// Grants of a patient, or held by a grantee, newest first.
absl::StatusOr<std::vector<v1::Grant>> GrantsOfPatient(sqlite3* db, const std::string& id);
absl::StatusOr<std::vector<v1::Grant>> GrantsOfGrantee(sqlite3* db, const std::string& id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_ACCESS_STORE_H_
