#include "daemon/gateway/grant_facts.h"

#include <algorithm>

#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

std::vector<std::string> CategoryNames(const google::protobuf::RepeatedField<int>& categories) {
  std::vector<std::string> names;
  for (int c : categories) names.push_back(v1::RecordCategory_Name(c));
  return names;
}

std::vector<std::string> AllCategoryNames() {
  std::vector<std::string> names;
  for (int c = v1::RecordCategory_MIN; c <= v1::RecordCategory_MAX; ++c) {
    if (c != v1::RECORD_CATEGORY_UNSPECIFIED && v1::RecordCategory_IsValid(c)) {
      names.push_back(v1::RecordCategory_Name(c));
    }
  }
  return names;
}

}  // namespace

void AddGrantFacts(const v1::Grant& grant, Facts& facts) {
  std::vector<std::string> purposes;
  for (int p : grant.purposes()) purposes.push_back(v1::Purpose_Name(p));
  const v1::AccessScope& scope = grant.scope();
  facts.String("grant.status", v1::Grant::Status_Name(grant.status()))
      .String("grant.patient_id", grant.patient_id())
      .String("grant.grantee_id", grant.grantee_id())
      .String("grant.scope", v1::GrantScope_Name(scope.scope()))
      .Set("grant.categories", CategoryNames(scope.categories()))
      .Set("grant.record_ids", {scope.record_ids().begin(), scope.record_ids().end()})
      .Set("grant.purposes", purposes)
      .Time("grant.not_before", FromTimestamp(grant.not_before()))
      .Time("grant.not_after", FromTimestamp(grant.not_after()))
      .Bool("grant.allows_delegation", grant.allows_delegation());
}

void AddClaimConsentFacts(const v1::Grant& grant, absl::string_view record_id,
                          v1::RecordCategory category, Facts& facts) {
  std::vector<std::string> categories;
  const v1::AccessScope& scope = grant.scope();
  switch (scope.scope()) {
    case v1::ALL:
      categories = AllCategoryNames();
      break;
    case v1::CATEGORIES:
      categories = CategoryNames(scope.categories());
      break;
    case v1::RECORDS:
      if (std::find(scope.record_ids().begin(), scope.record_ids().end(), record_id) !=
          scope.record_ids().end()) {
        categories.push_back(v1::RecordCategory_Name(category));
      }
      break;
    default:
      break;  // no categories: policy denies
  }
  facts.String("consent.insurer_id", grant.grantee_id())
      .String("consent.patient_id", grant.patient_id())
      .String("consent.claim_id", grant.claim_id())
      .Set("consent.categories", categories)
      .Time("consent.not_after", FromTimestamp(grant.not_after()));
}

absl::StatusOr<std::vector<v1::Grant>> ActiveGrants(sqlite3* db, const std::string& patient_id,
                                                    const std::string& grantee_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT grant_proto FROM grants WHERE patient_id = ? AND grantee_id = ? "
                    "AND status = 'ACTIVE' ORDER BY created_at");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id).BindText(2, grantee_id);
  std::vector<v1::Grant> grants;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    v1::Grant grant;
    if (!grant.ParseFromString(q.Blob(0))) {
      return absl::InternalError("registry: a stored grant does not parse");
    }
    // The column and the proto are written together; trust the stricter.
    if (grant.status() == v1::Grant::ACTIVE) grants.push_back(std::move(grant));
  }
  return grants;
}

}  // namespace medvault::gateway
