#include "daemon/gateway/statistics.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

constexpr int kMaxDimensions = 3;
constexpr int kMaxDiagnosisCodes = 20;

// The policy's statistics_dimension names, by StatisticsDimension number.
std::string DimensionName(int dimension) {
  switch (dimension) {
    case v1::DIMENSION_CATEGORY:
      return "CATEGORY";
    case v1::DIMENSION_DIAGNOSIS:
      return "DIAGNOSIS";
    case v1::DIMENSION_AGE_BAND:
      return "AGE_BAND";
    case v1::DIMENSION_REGION:
      return "REGION";
    case v1::DIMENSION_PERIOD:
      return "PERIOD";
    default:
      return "";
  }
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  // 0001-01-01 to 9999-12-31, whole nanoseconds, as the proto defines it.
  return t.seconds() >= -62135596800 && t.seconds() <= 253402300799 && t.nanos() >= 0 &&
         t.nanos() <= 999999999;
}

int64_t Millis(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000 + t.nanos() / 1000000;
}

std::string AgeBand(int64_t birth_year, int record_year) {
  if (birth_year == 0) return "unknown";
  const int64_t age = std::max<int64_t>(0, record_year - birth_year);
  if (age >= 90) return "90+";
  const int64_t low = age / 10 * 10;
  return absl::StrCat(low, "-", low + 9);
}

std::string Period(absl::CivilDay day, v1::PeriodGranularity granularity) {
  switch (granularity) {
    case v1::QUARTER:
      return absl::StrFormat("%04d-Q%d", day.year(), (day.month() - 1) / 3 + 1);
    case v1::MONTH:
      return absl::StrFormat("%04d-%02d", day.year(), day.month());
    default:
      return absl::StrFormat("%04d", day.year());
  }
}

// One row of the query: a record of a patient and one of its diagnosis
// codes (when the query reads them).
struct Row {
  std::string patient_id;
  std::string category;
  int64_t created_at = 0;
  int64_t birth_year = 0;
  std::string region;
  std::string code;
};

std::vector<std::string> KeyOf(const v1::StatisticsQuery& query, const Row& row) {
  const absl::CivilDay day =
      absl::ToCivilDay(absl::FromUnixMillis(row.created_at), absl::UTCTimeZone());
  std::vector<std::string> key;
  for (int dimension : query.group_by()) {
    switch (dimension) {
      case v1::DIMENSION_CATEGORY:
        key.push_back(row.category);
        break;
      case v1::DIMENSION_DIAGNOSIS:
        key.push_back(row.code.substr(0, 3));
        break;
      case v1::DIMENSION_AGE_BAND:
        key.push_back(AgeBand(row.birth_year, static_cast<int>(day.year())));
        break;
      case v1::DIMENSION_REGION:
        key.push_back(row.region.empty() ? "unknown" : row.region);
        break;
      case v1::DIMENSION_PERIOD:
        key.push_back(Period(day, query.period()));
        break;
      default:
        break;  // refused by CheckStatisticsQuery
    }
  }
  return key;
}

}  // namespace

bool IsIcd10Code(absl::string_view code) {
  if (code.size() < 3 || !absl::ascii_isupper(code[0]) || !absl::ascii_isdigit(code[1]) ||
      !(absl::ascii_isdigit(code[2]) || absl::ascii_isupper(code[2]))) {
    return false;
  }
  if (code.size() == 3) return true;
  if (code[3] != '.' || code.size() < 5 || code.size() > 8) return false;
  return std::all_of(code.begin() + 4, code.end(),
                     [](char c) { return absl::ascii_isdigit(c) || absl::ascii_isupper(c); });
}

absl::Status CheckDiagnosisCodes(absl::string_view field,
                                 const google::protobuf::RepeatedPtrField<std::string>& codes) {
  if (codes.size() > kMaxDiagnosisCodes) {
    return InvalidField(field, absl::StrCat("at most ", kMaxDiagnosisCodes, " codes"));
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < codes.size(); ++i) {
    const std::string at = absl::StrCat(field, "[", i, "]");
    if (!IsIcd10Code(codes[i])) {
      return InvalidField(at,
                          "an ICD-10 code: a capital letter, a digit, a digit or capital "
                          "letter, then optionally \".\" and 1 to 4 digits or capital "
                          "letters (e.g. \"E11.9\")");
    }
    if (!seen.insert(codes[i]).second) return InvalidField(at, "repeated");
  }
  return absl::OkStatus();
}

absl::Status CheckStatisticsQuery(absl::string_view field, const v1::StatisticsQuery& query) {
  const auto& group_by = query.group_by();
  if (group_by.empty() || group_by.size() > kMaxDimensions) {
    return InvalidField(absl::StrCat(field, ".group_by"),
                        absl::StrCat("1 to ", kMaxDimensions, " dimensions"));
  }
  for (int i = 0; i < group_by.size(); ++i) {
    const std::string at = absl::StrCat(field, ".group_by[", i, "]");
    if (DimensionName(group_by[i]).empty()) return InvalidField(at, "an unknown dimension");
    if (std::find(group_by.begin(), group_by.begin() + i, group_by[i]) != group_by.begin() + i) {
      return InvalidField(at, "repeated");
    }
  }
  for (int i = 0; i < query.categories_size(); ++i) {
    const int c = query.categories(i);
    if (c == v1::RECORD_CATEGORY_UNSPECIFIED || !v1::RecordCategory_IsValid(c)) {
      return InvalidField(absl::StrCat(field, ".categories[", i, "]"), "an unknown category");
    }
  }
  if (query.diagnosis_prefixes_size() > kMaxDiagnosisCodes) {
    return InvalidField(absl::StrCat(field, ".diagnosis_prefixes"),
                        absl::StrCat("at most ", kMaxDiagnosisCodes));
  }
  for (int i = 0; i < query.diagnosis_prefixes_size(); ++i) {
    if (!IsIcd10Code(query.diagnosis_prefixes(i))) {
      return InvalidField(absl::StrCat(field, ".diagnosis_prefixes[", i, "]"),
                          "an ICD-10 code or its start, at least a letter and two digits "
                          "(e.g. \"E11\")");
    }
  }
  if (query.has_since() && !ValidTimestamp(query.since())) {
    return InvalidField(absl::StrCat(field, ".since"), "not a valid time");
  }
  if (query.has_until() && !ValidTimestamp(query.until())) {
    return InvalidField(absl::StrCat(field, ".until"), "not a valid time");
  }
  if (query.has_since() && query.has_until() && Millis(query.since()) >= Millis(query.until())) {
    return InvalidField(absl::StrCat(field, ".until"), "must be after since");
  }
  if (!v1::PeriodGranularity_IsValid(query.period())) {
    return InvalidField(absl::StrCat(field, ".period"), "an unknown granularity");
  }
  return absl::OkStatus();
}

std::vector<std::string> DimensionNames(const v1::StatisticsQuery& query) {
  std::vector<std::string> names;
  for (int d : query.group_by()) names.push_back(DimensionName(d));
  return names;
}

std::vector<std::string> CountedCategories(const v1::StatisticsQuery& query) {
  std::vector<std::string> names;
  if (query.categories().empty()) {
    for (int c = v1::RecordCategory_MIN; c <= v1::RecordCategory_MAX; ++c) {
      if (c != v1::RECORD_CATEGORY_UNSPECIFIED && v1::RecordCategory_IsValid(c)) {
        names.push_back(v1::RecordCategory_Name(static_cast<v1::RecordCategory>(c)));
      }
    }
    return names;
  }
  for (int c : query.categories()) {
    names.push_back(v1::RecordCategory_Name(static_cast<v1::RecordCategory>(c)));
  }
  return names;
}

absl::StatusOr<std::vector<privacy::Cell>> CountPatientGroups(sqlite3* db,
                                                              const v1::StatisticsQuery& query,
                                                              int64_t max_contributions,
                                                              privacy::RandomSource& random) {
  const bool by_diagnosis = std::find(query.group_by().begin(), query.group_by().end(),
                                      v1::DIMENSION_DIAGNOSIS) != query.group_by().end();
  const bool read_codes = by_diagnosis || !query.diagnosis_prefixes().empty();
  std::string sql = absl::StrCat(
      "SELECT r.patient_id, r.category, r.created_at, p.birth_year, p.region, ",
      read_codes ? "d.code" : "''", " FROM records r JOIN patients p ON p.id = r.patient_id",
      read_codes ? " JOIN record_diagnoses d ON d.record_id = r.id" : "",
      " WHERE r.amends_record_id IS NULL");
  if (!query.categories().empty()) {
    absl::StrAppend(&sql, " AND r.category IN (?");
    for (int i = 1; i < query.categories_size(); ++i) absl::StrAppend(&sql, ", ?");
    absl::StrAppend(&sql, ")");
  }
  if (query.has_since()) absl::StrAppend(&sql, " AND r.created_at >= ?");
  if (query.has_until()) absl::StrAppend(&sql, " AND r.created_at < ?");
  if (!query.diagnosis_prefixes().empty()) {
    absl::StrAppend(&sql, " AND (");
    for (int i = 0; i < query.diagnosis_prefixes_size(); ++i) {
      absl::StrAppend(&sql, i > 0 ? " OR " : "", "substr(d.code, 1, ?) = ?");
    }
    absl::StrAppend(&sql, ")");
  }
  SqliteStatement q(db, RegistryDb::kOwner, sql.c_str());
  RETURN_IF_ERROR(q.status());
  int n = 1;
  for (int c : query.categories()) {
    q.BindText(n++, v1::RecordCategory_Name(static_cast<v1::RecordCategory>(c)));
  }
  if (query.has_since()) q.Bind(n++, Millis(query.since()));
  if (query.has_until()) q.Bind(n++, Millis(query.until()));
  for (const std::string& prefix : query.diagnosis_prefixes()) {
    q.Bind(n, static_cast<int64_t>(prefix.size())).BindText(n + 1, prefix);
    n += 2;
  }

  // Each patient's distinct groups.
  absl::flat_hash_map<std::string, std::set<std::vector<std::string>>> groups;
  while (true) {
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (!found) break;
    Row row{q.Text(0), q.Text(1), q.Int(2), q.Int(3), q.Text(4), q.Text(5)};
    groups[row.patient_id].insert(KeyOf(query, row));
  }

  std::map<std::vector<std::string>, int64_t> counts;
  for (auto& [patient, keys] : groups) {
    std::vector<const std::vector<std::string>*> mine;
    for (const auto& key : keys) mine.push_back(&key);
    if (static_cast<int64_t>(mine.size()) > max_contributions) {
      // The first max_contributions of a uniform random permutation
      // (Fisher–Yates, stopped early).
      for (int64_t i = 0; i < max_contributions; ++i) {
        const uint64_t j = i + privacy::UniformBelow(mine.size() - i, random);
        std::swap(mine[i], mine[j]);
      }
      mine.resize(max_contributions);
    }
    for (const auto* key : mine) ++counts[*key];
  }
  std::vector<privacy::Cell> cells;
  cells.reserve(counts.size());
  for (auto& [key, count] : counts) cells.push_back({key, count});
  return cells;
}

absl::StatusOr<int64_t> ParseFixedPoint(absl::string_view text, int decimals) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a decimal number with at most ", decimals, " decimals"));
  };
  const size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view fraction = dot == absl::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || (dot != absl::string_view::npos && fraction.empty()) ||
      fraction.size() > static_cast<size_t>(decimals)) {
    return bad();
  }
  auto digits = [](absl::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
  };
  if (!digits(whole) || !digits(fraction)) return bad();
  std::string all = absl::StrCat(whole, fraction, std::string(decimals - fraction.size(), '0'));
  all.erase(0, std::min(all.find_first_not_of('0'), all.size()));
  if (all.size() > 18) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is too large"));
  }
  int64_t value = 0;
  for (char c : all) value = value * 10 + (c - '0');
  return value;
}

absl::StatusOr<ReleasePlan> ReleasePlanOf(const policy::v1::Decision& decision) {
  const policy::v1::Obligation* obligation = nullptr;
  for (const auto& o : decision.obligations()) {
    if (o.name() == "release_with_privacy") {
      obligation = &o;
      break;
    }
  }
  const std::string rules = absl::StrJoin(decision.rule_ids(), ", ");
  if (obligation == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy rule ", rules,
                     " allows stats.query without a release_with_privacy obligation; nothing "
                     "is released"));
  }
  auto wrong = [&](absl::string_view name, absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("policy rule ", obligation->rule_id(),
                                                      ": release_with_privacy parameter \"", name,
                                                      "\" ", why, "; nothing is released"));
  };
  const auto& p = obligation->parameters();
  auto integer = [&](const char* name) -> absl::StatusOr<int64_t> {
    auto it = p.find(name);
    if (it == p.end() || it->second.kind_case() != policy::v1::Value::kIntValue) {
      return wrong(name, "must be an INT constant");
    }
    return it->second.int_value();
  };
  auto text = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = p.find(name);
    if (it == p.end() || it->second.kind_case() != policy::v1::Value::kStringValue) {
      return wrong(name, "must be given");
    }
    return it->second.string_value();
  };
  auto fixed = [&](const char* name, int decimals) -> absl::StatusOr<int64_t> {
    ASSIGN_OR_RETURN(std::string t, text(name));
    absl::StatusOr<int64_t> v = ParseFixedPoint(t, decimals);
    if (!v.ok()) return wrong(name, v.status().message());
    return *v;
  };
  ReleasePlan plan;
  ASSIGN_OR_RETURN(plan.k, integer("k"));
  if (plan.k < 1) return wrong("k", "must be at least 1");
  ASSIGN_OR_RETURN(plan.mechanism_name, text("mechanism"));
  if (plan.mechanism_name == "LAPLACE") {
    plan.mechanism.kind = privacy::Mechanism::kLaplace;
  } else if (plan.mechanism_name == "GAUSSIAN") {
    plan.mechanism.kind = privacy::Mechanism::kGaussian;
  } else {
    return wrong("mechanism", "must be LAPLACE or GAUSSIAN");
  }
  ASSIGN_OR_RETURN(plan.mechanism.epsilon_micros, fixed("epsilon", 6));
  ASSIGN_OR_RETURN(plan.mechanism.delta_femtos, fixed("delta", 15));
  ASSIGN_OR_RETURN(plan.mechanism.max_contributions, integer("max_contributions"));
  if (absl::Status valid = plan.mechanism.Validate(); !valid.ok()) {
    return wrong(absl::StrCat(valid.message().substr(0, valid.message().find(' '))),
                 valid.message());
  }
  ASSIGN_OR_RETURN(plan.budget_epsilon_micros, fixed("budget_epsilon", 6));
  ASSIGN_OR_RETURN(plan.budget_delta_femtos, fixed("budget_delta", 15));
  ASSIGN_OR_RETURN(std::string period, text("budget_period"));
  if (!absl::ParseDuration(period, &plan.budget_period) ||
      plan.budget_period <= absl::ZeroDuration()) {
    return wrong("budget_period", "must be a positive duration");
  }
  return plan;
}

}  // namespace medvault::gateway
