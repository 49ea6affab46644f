// Research statistics over a real (SQLCipher) registry database: which
// patients fall in which group, the bound on one patient's groups, query
// validation, and the release plan read from a policy decision.
#include "daemon/gateway/statistics.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "daemon/common/field_error.h"
#include "daemon/common/secret.h"
#include "daemon/common/sqlite.h"
#include "daemon/gateway/record_store.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

using Groups = std::map<std::vector<std::string>, int64_t>;

class SeededRandom : public privacy::RandomSource {
 public:
  uint64_t Next64() override { return engine_(); }

 private:
  std::mt19937_64 engine_{20261122};
};

int64_t Millis(int year, int month, int day) {
  return absl::ToUnixMillis(absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone()));
}

class StatisticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/medvault-statistics.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto db = RegistryDb::Open(dir_, SecretData(std::string(32, '\x42')));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    Exec("INSERT INTO organizations VALUES ('hospital-1', 'HOSPITAL', 'H', 0)");
    // p1: born 1980 in DE-BY, two lab results with diabetes (one also with
    // hypertension) and an amendment; p2: born 2001, no region, one lab
    // result with diabetes; p3: no year of birth, in FR, one image.
    Patient("p1", 1980, "DE-BY");
    Patient("p2", 2001, "");
    Patient("p3", 0, "FR");
    Record("r1", "p1", v1::LAB_RESULT, Millis(2026, 3, 10), {"E11.9"});
    Record("r2", "p1", v1::LAB_RESULT, Millis(2026, 7, 1), {"E11.2", "I10"});
    Record("r3", "p2", v1::LAB_RESULT, Millis(2025, 12, 31), {"E11.9"});
    Record("r4", "p3", v1::IMAGING, Millis(2026, 1, 5), {});
    Record("r5", "p1", v1::PRESCRIPTION, Millis(2026, 8, 1), {"Z99.9"}, "r1");
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Exec(const char* sql) {
    ASSERT_TRUE(
        db_->Write([&](sqlite3* db) { return SqliteExec(db, RegistryDb::kOwner, sql); }).ok());
  }
  void Patient(const std::string& id, int birth_year, const std::string& region) {
    ASSERT_TRUE(db_->Write([&](sqlite3* db) {
                     SqliteStatement q(db, RegistryDb::kOwner,
                                       "INSERT INTO patients (id, address, registered_at, "
                                       "birth_year, region) VALUES (?, x'00', 0, ?, ?)");
                     q.BindText(1, id).Bind(2, birth_year).BindText(3, region);
                     return q.Step().status();
                   })
                    .ok());
  }
  void Record(const std::string& id, const std::string& patient, v1::RecordCategory category,
              int64_t created_ms, const std::vector<std::string>& codes,
              const std::string& amends = "") {
    StoredRecord row;
    row.record.set_record_id(id);
    row.record.set_patient_id(patient);
    row.record.set_category(category);
    row.record.set_content_type("text/plain");
    row.record.mutable_created_at()->set_seconds(created_ms / 1000);
    row.record.set_author_organization_id("hospital-1");
    row.record.set_amends_record_id(amends);
    for (const auto& c : codes) row.record.add_diagnosis_codes(c);
    absl::Status s = db_->Write([&](sqlite3* db) { return InsertRecord(db, row); });
    ASSERT_TRUE(s.ok()) << s;
  }

  Groups Count(const v1::StatisticsQuery& query, int64_t max_contributions = 100) {
    EXPECT_TRUE(CheckStatisticsQuery("query", query).ok()) << CheckStatisticsQuery("query", query);
    Groups groups;
    absl::Status s = db_->Read([&](sqlite3* db) -> absl::Status {
      auto cells = CountPatientGroups(db, query, max_contributions, random_);
      if (!cells.ok()) return cells.status();
      for (const auto& c : *cells) groups[c.key] = c.count;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return groups;
  }

  static v1::StatisticsQuery By(std::initializer_list<v1::StatisticsDimension> dimensions) {
    v1::StatisticsQuery q;
    for (auto d : dimensions) q.add_group_by(d);
    return q;
  }

  std::string dir_;
  std::unique_ptr<RegistryDb> db_;
  SeededRandom random_;
};

// Distinct patients per group; an amendment is not another record.
TEST_F(StatisticsTest, CountsDistinctPatientsOfOriginalRecords) {
  EXPECT_EQ(Count(By({v1::DIMENSION_CATEGORY})), (Groups{{{"IMAGING"}, 1}, {{"LAB_RESULT"}, 2}}));
  EXPECT_EQ(Count(By({v1::DIMENSION_DIAGNOSIS})), (Groups{{{"E11"}, 2}, {{"I10"}, 1}}));
  EXPECT_EQ(Count(By({v1::DIMENSION_REGION})),
            (Groups{{{"DE-BY"}, 1}, {{"FR"}, 1}, {{"unknown"}, 1}}));
}

// Age at the record's year, in ten-year bands; periods in UTC.
TEST_F(StatisticsTest, AgeBandsAndPeriods) {
  EXPECT_EQ(Count(By({v1::DIMENSION_AGE_BAND, v1::DIMENSION_PERIOD})),
            (Groups{{{"20-29", "2025"}, 1}, {{"40-49", "2026"}, 1}, {{"unknown", "2026"}, 1}}));
  v1::StatisticsQuery q = By({v1::DIMENSION_PERIOD});
  q.set_period(v1::QUARTER);
  EXPECT_EQ(Count(q), (Groups{{{"2025-Q4"}, 1}, {{"2026-Q1"}, 2}, {{"2026-Q3"}, 1}}));
  q.set_period(v1::MONTH);
  EXPECT_EQ(Count(q),
            (Groups{{{"2025-12"}, 1}, {{"2026-01"}, 1}, {{"2026-03"}, 1}, {{"2026-07"}, 1}}));
}

// Filters: categories, a diagnosis prefix, [since, until).
TEST_F(StatisticsTest, Filters) {
  v1::StatisticsQuery q = By({v1::DIMENSION_CATEGORY});
  q.add_categories(v1::IMAGING);
  EXPECT_EQ(Count(q), (Groups{{{"IMAGING"}, 1}}));

  q = By({v1::DIMENSION_DIAGNOSIS});
  q.add_diagnosis_prefixes("I10");
  EXPECT_EQ(Count(q), (Groups{{{"I10"}, 1}}));
  q = By({v1::DIMENSION_CATEGORY});
  q.add_diagnosis_prefixes("E11.9");
  EXPECT_EQ(Count(q), (Groups{{{"LAB_RESULT"}, 2}}));

  q = By({v1::DIMENSION_CATEGORY});
  q.mutable_since()->set_seconds(Millis(2026, 1, 5) / 1000);
  q.mutable_until()->set_seconds(Millis(2026, 7, 1) / 1000);
  EXPECT_EQ(Count(q), (Groups{{{"IMAGING"}, 1}, {{"LAB_RESULT"}, 1}}));
}

// A patient in more groups than allowed counts in exactly that many, and
// which ones varies.
TEST_F(StatisticsTest, ContributionsAreBounded) {
  Patient("p4", 1990, "DE-BE");
  for (int month = 1; month <= 6; ++month) {
    Record(absl::StrCat("m", month), "p4", v1::VITALS, Millis(2024, month, 15), {});
  }
  v1::StatisticsQuery q = By({v1::DIMENSION_PERIOD});
  q.add_categories(v1::VITALS);
  q.set_period(v1::MONTH);
  auto total = [](const Groups& g) {
    int64_t sum = 0;
    for (const auto& [key, count] : g) sum += count;
    return sum;
  };
  EXPECT_EQ(total(Count(q, 10)), 6);
  std::map<std::vector<std::string>, int> seen;
  for (int i = 0; i < 200; ++i) {
    Groups g = Count(q, 2);
    EXPECT_EQ(total(g), 2);
    EXPECT_EQ(g.size(), 2u);
    for (const auto& [key, count] : g) ++seen[key];
  }
  // Every month is chosen about 200 * 2 / 6 = 67 times.
  ASSERT_EQ(seen.size(), 6u);
  for (const auto& [key, times] : seen) EXPECT_GT(times, 30) << key[0];
}

TEST(StatisticsQueryTest, BadQueriesNameTheField) {
  auto field_of = [](const v1::StatisticsQuery& q) {
    absl::Status s = CheckStatisticsQuery("query", q);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message().substr(0, s.message().find(':')));
  };
  v1::StatisticsQuery q;
  EXPECT_EQ(field_of(q), "query.group_by");
  q.add_group_by(v1::DIMENSION_REGION);
  q.add_group_by(v1::DIMENSION_REGION);
  EXPECT_EQ(field_of(q), "query.group_by[1]");
  q.set_group_by(1, static_cast<v1::StatisticsDimension>(77));
  EXPECT_EQ(field_of(q), "query.group_by[1]");
  q.set_group_by(1, v1::DIMENSION_PERIOD);
  q.add_group_by(v1::DIMENSION_CATEGORY);
  q.add_group_by(v1::DIMENSION_AGE_BAND);
  EXPECT_EQ(field_of(q), "query.group_by");
  q.mutable_group_by()->RemoveLast();
  q.add_categories(v1::RECORD_CATEGORY_UNSPECIFIED);
  EXPECT_EQ(field_of(q), "query.categories[0]");
  q.set_categories(0, v1::GENERAL);
  q.add_diagnosis_prefixes("E1");
  EXPECT_EQ(field_of(q), "query.diagnosis_prefixes[0]");
  q.set_diagnosis_prefixes(0, "E11");
  q.mutable_since()->set_seconds(2000);
  q.mutable_until()->set_seconds(1000);
  EXPECT_EQ(field_of(q), "query.until");
  q.mutable_until()->set_seconds(3000);
  EXPECT_TRUE(CheckStatisticsQuery("query", q).ok());
  EXPECT_EQ(DimensionNames(q), (std::vector<std::string>{"REGION", "PERIOD", "CATEGORY"}));
  EXPECT_EQ(CountedCategories(q), (std::vector<std::string>{"GENERAL"}));
  q.clear_categories();
  EXPECT_EQ(CountedCategories(q).size(), 8u);
}

TEST(StatisticsQueryTest, Icd10Codes) {
  // C7A: ICD-10-CM's categories may end in a letter.
  for (const char* good : {"E11", "E11.9", "J45.90", "S72.0012", "U07.1", "C7A.0"}) {
    EXPECT_TRUE(IsIcd10Code(good)) << good;
  }
  for (const char* bad : {"", "E1", "e11", "E11.", "E11.12345", "E11-9", "11E", "E11.9 "}) {
    EXPECT_FALSE(IsIcd10Code(bad)) << bad;
  }
  google::protobuf::RepeatedPtrField<std::string> codes;
  *codes.Add() = "E11.9";
  *codes.Add() = "E11.9";
  absl::Status s = CheckDiagnosisCodes("header.diagnosis_codes", codes);
  EXPECT_EQ(s.message(), "header.diagnosis_codes[1]: repeated");
}

TEST(ReleasePlanTest, FixedPoint) {
  EXPECT_EQ(*ParseFixedPoint("0.1", 6), 100000);
  EXPECT_EQ(*ParseFixedPoint("2", 6), 2000000);
  EXPECT_EQ(*ParseFixedPoint("0.000001", 15), 1000000000);
  EXPECT_EQ(*ParseFixedPoint("0", 15), 0);
  EXPECT_EQ(*ParseFixedPoint("007.5", 6), 7500000);
  for (const char* bad :
       {"", "-1", "1e-6", ".5", "1.", "0.0000001", "1,5", " 1", "abc", "10000000000000"}) {
    EXPECT_FALSE(ParseFixedPoint(bad, 6).ok()) << bad;
  }
}

policy::v1::Decision Allowing(std::map<std::string, policy::v1::Value> parameters) {
  policy::v1::Decision d;
  d.set_effect(policy::v1::ALLOW);
  d.add_rule_ids("research.institute_counts");
  policy::v1::Obligation* o = d.add_obligations();
  o->set_name("release_with_privacy");
  o->set_rule_id("research.institute_counts");
  for (auto& [k, v] : parameters) (*o->mutable_parameters())[k] = v;
  return d;
}

policy::v1::Value Int(int64_t v) {
  policy::v1::Value value;
  value.set_int_value(v);
  return value;
}
policy::v1::Value Text(const std::string& v) {
  policy::v1::Value value;
  value.set_string_value(v);
  return value;
}

std::map<std::string, policy::v1::Value> Laplace() {
  return {{"k", Int(10)},
          {"mechanism", Text("LAPLACE")},
          {"epsilon", Text("0.1")},
          {"delta", Text("0")},
          {"max_contributions", Int(4)},
          {"budget_epsilon", Text("2")},
          {"budget_delta", Text("0")},
          {"budget_period", Text("8760h")}};
}

TEST(ReleasePlanTest, ReadFromTheObligation) {
  auto plan = ReleasePlanOf(Allowing(Laplace()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->k, 10);
  EXPECT_EQ(plan->mechanism.kind, privacy::Mechanism::kLaplace);
  EXPECT_EQ(plan->mechanism.epsilon_micros, 100000);
  EXPECT_EQ(plan->mechanism.ChargedEpsilonMicros(), 100000);
  EXPECT_EQ(plan->mechanism.max_contributions, 4);
  EXPECT_EQ(plan->budget_epsilon_micros, 2000000);
  EXPECT_EQ(plan->budget_period, absl::Hours(8760));

  auto gaussian = Laplace();
  gaussian["mechanism"] = Text("GAUSSIAN");
  gaussian["epsilon"] = Text("0.5");
  gaussian["delta"] = Text("0.000001");
  plan = ReleasePlanOf(Allowing(gaussian));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->mechanism.delta_femtos, 1000000000);
  // 0.5 + 0.25 / (4 ln 1250000) = 0.5 + 0.00445196: 4452 millionths
  // rounded up, and one to spare.
  EXPECT_EQ(plan->mechanism.ChargedEpsilonMicros(), 504453);
}

// A decision that does not say how to release releases nothing.
TEST(ReleasePlanTest, MissingOrWrongParametersFailClosed) {
  policy::v1::Decision none;
  none.set_effect(policy::v1::ALLOW);
  none.add_rule_ids("r");
  EXPECT_EQ(ReleasePlanOf(none).status().code(), absl::StatusCode::kFailedPrecondition);
  struct Case {
    const char* name;
    policy::v1::Value value;
    bool erase;
  };
  for (const Case& c : std::vector<Case>{{"k", Int(0), false},
                                         {"k", Text("10"), false},
                                         {"mechanism", Text("UNIFORM"), false},
                                         {"epsilon", Text("-1"), false},
                                         {"epsilon", Text("0"), false},
                                         {"delta", Text("0.1"), false},
                                         {"max_contributions", Int(0), false},
                                         {"budget_period", Text("soon"), false},
                                         {"budget_epsilon", Text(""), true}}) {
    auto p = Laplace();
    if (c.erase) {
      p.erase(c.name);
    } else {
      p[c.name] = c.value;
    }
    absl::Status s = ReleasePlanOf(Allowing(p)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << c.name;
    EXPECT_NE(s.message().find("research.institute_counts"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace medvault::gateway
