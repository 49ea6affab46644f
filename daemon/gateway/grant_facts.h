// A patient's grants as policy sees them: the grant.* facts of a grant, the
// consent.* facts an insurer's claim grant stands for, and the grants a
// grantee holds for a patient. Shared by RecordService (reads) and
// AccessService (delegation).
#ifndef MEDVAULT_DAEMON_GATEWAY_GRANT_FACTS_H_
#define MEDVAULT_DAEMON_GATEWAY_GRANT_FACTS_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/gateway/authorizer.h"
#include "medvault/v1/access.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

// grant.status, grant.patient_id, grant.grantee_id, grant.scope,
// grant.categories, grant.record_ids, grant.purposes, grant.not_before,
// grant.not_after, grant.allows_delegation.
void AddGrantFacts(const v1::Grant& grant, Facts& facts);

// The consent.* facts of an insurer's grant (access.insurer_consented_claim)
// for reading record `record_id` of `category`: consent.insurer_id,
// consent.patient_id, consent.claim_id, consent.not_after, and
// consent.categories: every category for scope ALL, the listed ones for
// CATEGORIES, and for RECORDS the record's category only when the grant
// lists the record (policy compares categories, not ids).
void AddClaimConsentFacts(const v1::Grant& grant, absl::string_view record_id,
                          v1::RecordCategory category, Facts& facts);

// The ACTIVE grants of `grantee_id` for `patient_id`, oldest first. Expired
// ones are included: policy decides on their period.
absl::StatusOr<std::vector<v1::Grant>> ActiveGrants(sqlite3* db, const std::string& patient_id,
                                                    const std::string& grantee_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_GRANT_FACTS_H_
