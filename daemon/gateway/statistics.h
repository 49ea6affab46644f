// Research statistics over the registry database: which patients fall in
// which group of a query (StatisticsQuery in research.proto), bounded so
// that one patient counts in at most a given number of groups. The counts
// are the input of privacy::Release; nothing here adds noise or applies k.
#ifndef MEDVAULT_DAEMON_GATEWAY_STATISTICS_H_
#define MEDVAULT_DAEMON_GATEWAY_STATISTICS_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/gateway/privacy.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "medvault/policy/v1/policy.pb.h"
#include "medvault/v1/research.pb.h"

namespace medvault::gateway {

// An ICD-10 code as records carry it: a capital letter, a digit, a digit or
// capital letter (ICD-10-CM's "C7A"), then optionally "." and 1 to 4
// digits or capital letters ("E11", "E11.9").
bool IsIcd10Code(absl::string_view code);

// At most 20 codes, each IsIcd10Code, no repeats; INVALID_ARGUMENT naming
// "<field>[i]" otherwise.
absl::Status CheckDiagnosisCodes(absl::string_view field,
                                 const google::protobuf::RepeatedPtrField<std::string>& codes);

// INVALID_ARGUMENT naming the field under `field` ("query.group_by[1]")
// for: no dimension, more than 3, an unknown or repeated one; an unknown
// category; a diagnosis prefix that is not the start of an ICD-10 code (at
// least the letter and two digits); since not before until; an unknown
// period granularity.
absl::Status CheckStatisticsQuery(absl::string_view field, const v1::StatisticsQuery& query);

// The policy facts of a query: the dimensions' names as the
// statistics_dimension enum of the policy spells them ("AGE_BAND"), and the
// categories counted (every category when the query names none).
std::vector<std::string> DimensionNames(const v1::StatisticsQuery& query);
std::vector<std::string> CountedCategories(const v1::StatisticsQuery& query);

// The number of distinct patients in each group of `query` (a valid one),
// ordered by key, groups with no patient absent. A patient in more than
// `max_contributions` groups counts only in that many of them, chosen
// uniformly at random with `random`. Original records only: an amendment
// corrects a record, it is not another one.
absl::StatusOr<std::vector<privacy::Cell>> CountPatientGroups(sqlite3* db,
                                                              const v1::StatisticsQuery& query,
                                                              int64_t max_contributions,
                                                              privacy::RandomSource& random);

// How an answer is released: the parameters of the release_with_privacy
// obligation of the rule that allowed the query (see research.proto).
struct ReleasePlan {
  int64_t k = 0;
  std::string mechanism_name;  // "LAPLACE" or "GAUSSIAN"
  privacy::Mechanism mechanism;
  int64_t budget_epsilon_micros = 0;
  int64_t budget_delta_femtos = 0;
  absl::Duration budget_period;
};

// The plan of an allowing decision. FAILED_PRECONDITION naming the rule and
// the parameter when the obligation is missing or a parameter is missing
// or wrong (a policy that allows a query without saying how to release it
// releases nothing).
absl::StatusOr<ReleasePlan> ReleasePlanOf(const policy::v1::Decision& decision);

// Decimal text ("0.1", "2", "0.000001") as an integer count of
// 10^-decimals: INVALID_ARGUMENT for a sign, an exponent, more decimals
// than `decimals`, or a value of 10^18 units or more.
absl::StatusOr<int64_t> ParseFixedPoint(absl::string_view text, int decimals);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_STATISTICS_H_
