// Research statistics through the real fleet (SoftHSM2 keyvault, the
// regulator's signed policy with research.textproto, storage, SQLCipher),
// over mutual TLS: a hospital registers patients with their year of birth
// and region and uploads records with ICD-10 codes; a research institute
// counts patients by diagnosis under k = 10 and Laplace noise until its
// privacy budget runs out (exactly 20 queries); the policy's refusals; the
// health authority's own Gaussian budget; every query in the audit log with
// what it spent; and the validation of the new upload and registration
// fields.
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/gateway/privacy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/v1/audit.grpc.pb.h"
#include "medvault/v1/research.grpc.pb.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Key = std::vector<std::string>;

constexpr char kInstitute[] = "city-research-institute";
constexpr char kMethod[] = "/medvault.v1.ResearchService/CountPatients";
// policies/research.textproto: what one institute query costs and what it
// may spend within 8760h (epsilon in millionths).
constexpr int64_t kInstituteEpsilon = 100000;
constexpr int64_t kInstituteBudget = 2000000;
constexpr int kInstituteQueries = 20;
// The authority's per-query and total amounts (delta in units of 1e-15).
constexpr int64_t kAuthorityEpsilon = 500000;
constexpr int64_t kAuthorityDelta = 1000000000;
constexpr int64_t kAuthorityBudget = 20000000;
constexpr int64_t kAuthorityBudgetDelta = 100000000000;
// Patients p-00..p-11 have type 2 diabetes (E11.9 on a lab result), the
// first 8 in Bavaria, the others in France; p-12 and p-13 asthma (J45.0).
constexpr int kDiabetic = 12;
constexpr int kBavarian = 8;
constexpr int kPatients = 14;

std::string PatientId(int i) { return absl::StrFormat("p-%02d", i); }

v1::StatisticsQuery Query(std::vector<v1::StatisticsDimension> group_by,
                          std::vector<v1::RecordCategory> categories) {
  v1::StatisticsQuery query;
  for (v1::StatisticsDimension d : group_by) query.add_group_by(d);
  for (v1::RecordCategory c : categories) query.add_categories(c);
  return query;
}

// The released cells by key; a test failure for a key given twice.
std::map<Key, int64_t> Cells(const v1::CountPatientsResponse& response) {
  std::map<Key, int64_t> cells;
  for (const v1::StatisticsCell& cell : response.cells()) {
    EXPECT_TRUE(cells.emplace(Key(cell.key().begin(), cell.key().end()), cell.patients()).second)
        << "a key released twice: " << response.DebugString();
  }
  return cells;
}

class ResearchTest : public GatewayTest {
 protected:
  std::unique_ptr<v1::ResearchService::Stub> Research(const As& as) const {
    return v1::ResearchService::NewStub(
        GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
  }

  grpc::Status Count(const As& as, const v1::StatisticsQuery& query,
                     v1::CountPatientsResponse* out) const {
    v1::CountPatientsRequest request;
    *request.mutable_query() = query;
    out->Clear();
    return Research(as)->CountPatients(Context(as).get(), request, out);
  }

  grpc::Status RegisterPatientWith(const std::string& id, uint32_t birth_year,
                                   const std::string& region) const {
    v1::RegisterPatientRequest request;
    request.set_patient_id(id);
    request.set_address(kPatientAddress);
    request.set_birth_year(birth_year);
    request.set_region(region);
    v1::Patient out;
    return Registry(hospital_)->RegisterPatient(Context(hospital_).get(), request, &out);
  }

  grpc::Status UploadWithCodes(const std::string& patient, v1::RecordCategory category,
                               const std::vector<std::string>& codes, v1::Record* out) const {
    v1::RecordHeader header;
    header.set_patient_id(patient);
    header.set_category(category);
    header.set_content_type("text/plain");
    for (const std::string& code : codes) header.add_diagnosis_codes(code);
    return Upload(hospital_, header, absl::StrCat("findings for ", patient, "\n"), out);
  }

  const As hospital_{"client"};
  const As institute_{"institute"};
  const As regulator_{"regulator"};
  const As compliance_{"compliance"};
};

TEST_F(ResearchTest, CountsUnderKAnonymityNoiseAndBudget) {
  const int this_year = absl::ToCivilYear(absl::Now(), absl::UTCTimeZone()).year();
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  ASSERT_NO_FATAL_FAILURE(Issue("institute", kInstitute, "research"));
  ASSERT_NO_FATAL_FAILURE(Issue("compliance", "compliance-office", "compliance"));
  v1::RegisterOrganizationRequest register_institute;
  register_institute.set_organization_id(kInstitute);
  register_institute.set_display_name("City Research Institute");
  register_institute.set_role(v1::ORGANIZATION_ROLE_RESEARCH);
  v1::Organization registered;
  grpc::Status s =
      Registry(regulator_)
          ->RegisterOrganization(Context(regulator_).get(), register_institute, &registered);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // Registration: the year of birth and the region are checked.
  s = RegisterPatientWith("p-bad", 0, "de-by");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), Contains("region"));
  s = RegisterPatientWith("p-bad", 1800, "DE-BY");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), Contains("birth_year"));

  // 12 diabetics aged 65 (8 in DE-BY, 4 in FR), 2 asthmatics aged 25 in
  // DE-BE, each with a lab result; 8 of the diabetics also have an imaging
  // record coded J45.0, which a LAB_RESULT query must not count (with them
  // J45 would reach k).
  for (int i = 0; i < kPatients; ++i) {
    const bool diabetic = i < kDiabetic;
    s = RegisterPatientWith(PatientId(i), diabetic ? this_year - 65 : this_year - 25,
                            diabetic ? (i < kBavarian ? "DE-BY" : "FR") : "DE-BE");
    ASSERT_TRUE(s.ok()) << PatientId(i) << ": " << Describe(s);
  }
  v1::Record lab;
  s = UploadWithCodes(PatientId(0), v1::LAB_RESULT, {"I10", "E11.9"}, &lab);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(lab.diagnosis_codes(), ElementsAre("E11.9", "I10"));
  for (int i = 1; i < kPatients; ++i) {
    v1::Record record;
    s = UploadWithCodes(PatientId(i), v1::LAB_RESULT, {i < kDiabetic ? "E11.9" : "J45.0"}, &record);
    ASSERT_TRUE(s.ok()) << PatientId(i) << ": " << Describe(s);
  }
  for (int i = 3; i < 3 + 8; ++i) {
    v1::Record record;
    s = UploadWithCodes(PatientId(i), v1::IMAGING, {"J45.0"}, &record);
    ASSERT_TRUE(s.ok()) << PatientId(i) << ": " << Describe(s);
  }

  // Upload: the codes are checked; read back, they come sorted.
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"e11"}, {"E1"}, {"E11.9", "E11."}}) {
    v1::Record record;
    s = UploadWithCodes(PatientId(0), v1::LAB_RESULT, bad, &record);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << bad.back() << ": " << Describe(s);
    EXPECT_THAT(BadRequestFields(s),
                Contains(absl::StrCat("header.diagnosis_codes[", bad.size() - 1, "]")))
        << bad.back();
  }
  {
    v1::Record record;
    s = UploadWithCodes(PatientId(0), v1::LAB_RESULT, {"E11.9", "E11.9"}, &record);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(BadRequestFields(s), Contains("header.diagnosis_codes[1]"));
  }
  const As patient0{"client", Acting::kPatient, PatientId(0)};
  std::vector<v1::Record> records = List(patient0, PatientId(0));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].record_id(), lab.record_id());
  EXPECT_THAT(records[0].diagnosis_codes(), ElementsAre("E11.9", "I10"));

  // Refusals, before any query is answered: bad input, then policy.
  const v1::StatisticsQuery by_diagnosis = Query({v1::DIMENSION_DIAGNOSIS}, {v1::LAB_RESULT});
  v1::CountPatientsResponse answer;
  s = Count(institute_, Query({}, {v1::LAB_RESULT}), &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), Contains("query.group_by"));
  s = Count(institute_, Query({v1::DIMENSION_DIAGNOSIS, v1::DIMENSION_DIAGNOSIS}, {v1::LAB_RESULT}),
            &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), Contains("query.group_by[1]"));
  const std::vector<v1::StatisticsQuery> forbidden = {
      Query({v1::DIMENSION_DIAGNOSIS}, {v1::GENETIC}),
      Query({v1::DIMENSION_DIAGNOSIS}, {v1::LAB_RESULT, v1::SEXUAL_HEALTH}),
      // No category named: every category, GENETIC included.
      Query({v1::DIMENSION_DIAGNOSIS}, {}),
      Query({v1::DIMENSION_DIAGNOSIS, v1::DIMENSION_REGION}, {v1::LAB_RESULT}),
  };
  for (const v1::StatisticsQuery& query : forbidden) {
    s = Count(institute_, query, &answer);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << query.ShortDebugString() << ": " << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("decision")) << query.ShortDebugString();
  }
  s = Count(hospital_, by_diagnosis, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  // A research certificate of an organisation the regulator never
  // registered is refused too (the institute's role is one the regulator
  // gives by registering it, as for hospitals).
  ASSERT_NO_FATAL_FAILURE(Issue("unregistered", "unregistered-lab", "research"));
  s = Count(As{"unregistered"}, by_diagnosis, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "an unregistered research organisation was answered: " << Describe(s);

  // The institute's budget buys exactly 20 queries: E11 (12 patients) is
  // released with noise, J45 (2 lab results) and I10 (1) are below k = 10
  // and absent.
  for (int i = 1; i <= kInstituteQueries; ++i) {
    SCOPED_TRACE(absl::StrCat("query ", i));
    s = Count(institute_, by_diagnosis, &answer);
    ASSERT_TRUE(s.ok()) << Describe(s);
    std::map<Key, int64_t> cells = Cells(answer);
    ASSERT_TRUE(cells.count({"E11"})) << answer.DebugString();
    EXPECT_GE(cells[{"E11"}], 0);
    EXPECT_FALSE(cells.count({"J45"})) << answer.DebugString();
    EXPECT_FALSE(cells.count({"I10"})) << answer.DebugString();
    EXPECT_EQ(cells.size(), 1u) << answer.DebugString();
    EXPECT_EQ(answer.k(), 10);
    EXPECT_EQ(answer.mechanism(), "LAPLACE");
    EXPECT_EQ(answer.max_contributions(), 4);
    EXPECT_EQ(answer.spent().epsilon_micros(), kInstituteEpsilon);
    EXPECT_EQ(answer.spent().delta_femtos(), 0);
    EXPECT_EQ(answer.remaining().epsilon_micros(), kInstituteBudget - i * kInstituteEpsilon);
    EXPECT_EQ(answer.remaining().delta_femtos(), 0);
    EXPECT_THAT(answer.decision().rule_ids(), Contains("research.institute_counts"));
  }
  // The 21st is refused, saying what is left; a refusal spends nothing,
  // so the 22nd is refused the same way.
  for (int i = 0; i < 2; ++i) {
    s = Count(institute_, by_diagnosis, &answer);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(s);
    EXPECT_THAT(s.error_message(), HasSubstr("exhausted"));
    EXPECT_THAT(s.error_message(), HasSubstr("epsilon 0, delta 0 left"));
    EXPECT_THAT(answer.cells(), IsEmpty());
  }

  // The health authority has a budget of its own: Gaussian noise, k = 5,
  // charged the epsilon privacy.h proves. Only DE-BY's 8 reach k; FR (4)
  // and DE-BE (2) are absent.
  gateway::privacy::Mechanism gaussian;
  gaussian.kind = gateway::privacy::Mechanism::kGaussian;
  gaussian.epsilon_micros = kAuthorityEpsilon;
  gaussian.delta_femtos = kAuthorityDelta;
  gaussian.max_contributions = 8;
  const int64_t charged = gaussian.ChargedEpsilonMicros();
  EXPECT_GT(charged, kAuthorityEpsilon);
  s = Count(regulator_, Query({v1::DIMENSION_AGE_BAND, v1::DIMENSION_REGION}, {}), &answer);
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::map<Key, int64_t> by_age_and_region = Cells(answer);
  const Key bavarians{"60-69", "DE-BY"};
  ASSERT_TRUE(by_age_and_region.count(bavarians)) << answer.DebugString();
  EXPECT_GE(by_age_and_region[bavarians], 0);
  EXPECT_EQ(by_age_and_region.size(), 1u) << answer.DebugString();
  EXPECT_EQ(answer.mechanism(), "GAUSSIAN");
  EXPECT_EQ(answer.k(), 5);
  EXPECT_EQ(answer.max_contributions(), 8);
  EXPECT_EQ(answer.spent().epsilon_micros(), charged);
  EXPECT_EQ(answer.spent().delta_femtos(), kAuthorityDelta);
  EXPECT_EQ(answer.remaining().epsilon_micros(), kAuthorityBudget - charged);
  EXPECT_EQ(answer.remaining().delta_femtos(), kAuthorityBudgetDelta - kAuthorityDelta);
  EXPECT_THAT(answer.decision().rule_ids(), Contains("research.health_authority_counts"));

  // The audit log holds every query: the 20 answered with what each spent,
  // the 2 refused for the budget with nothing spent, the 4 policy denials;
  // the authority's with its charge; the hospital's denial.
  int answered = 0, over_budget = 0, policy_denied = 0, authority = 0, hospital = 0,
      unregistered = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  std::vector<v1::AuditEvent> queries;
  while (true) {
    queries.clear();
    for (const v1::AuditEvent& e : AuditEvents(compliance_)) {
      if (e.action() == "stats.query") queries.push_back(e);
    }
    // 20 + 2 + 4 from the institute, 1 from the authority, 1 from the
    // hospital, 1 from the unregistered lab (allowed or not).
    if (queries.size() >= 29 || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  for (const v1::AuditEvent& e : queries) {
    SCOPED_TRACE(e.ShortDebugString());
    EXPECT_EQ(e.method(), kMethod);
    EXPECT_TRUE(e.has_statistics_query());
    const std::string& who = e.actor().organization_id();
    if (who == kInstitute) {
      if (e.outcome() == v1::AuditEvent::SUCCEEDED) {
        ++answered;
        EXPECT_EQ(e.privacy_spent().epsilon_micros(), kInstituteEpsilon);
        EXPECT_EQ(e.privacy_spent().delta_femtos(), 0);
        EXPECT_EQ(e.statistics_query().SerializeAsString(), by_diagnosis.SerializeAsString());
        EXPECT_EQ(e.refusal(), "");
        EXPECT_THAT(e.rule_ids(), Contains("research.institute_counts"));
      } else if (!e.refusal().empty()) {
        ++over_budget;
        EXPECT_EQ(e.outcome(), v1::AuditEvent::DENIED);
        EXPECT_EQ(e.refusal(), "privacy_budget_exhausted");
        EXPECT_FALSE(e.has_privacy_spent());
        EXPECT_EQ(e.statistics_query().SerializeAsString(), by_diagnosis.SerializeAsString());
      } else {
        ++policy_denied;
        EXPECT_EQ(e.outcome(), v1::AuditEvent::DENIED);
        EXPECT_FALSE(e.has_privacy_spent());
      }
    } else if (who == "regulator") {
      ++authority;
      EXPECT_EQ(e.outcome(), v1::AuditEvent::SUCCEEDED);
      EXPECT_EQ(e.privacy_spent().epsilon_micros(), charged);
      EXPECT_EQ(e.privacy_spent().delta_femtos(), kAuthorityDelta);
    } else if (who == kClientName) {
      ++hospital;
      EXPECT_EQ(e.outcome(), v1::AuditEvent::DENIED);
      EXPECT_FALSE(e.has_privacy_spent());
    } else if (who == "unregistered-lab") {
      ++unregistered;
      EXPECT_EQ(e.outcome(), v1::AuditEvent::DENIED);
    }
  }
  EXPECT_EQ(answered, kInstituteQueries);
  EXPECT_EQ(over_budget, 2);
  EXPECT_EQ(policy_denied, 4);
  EXPECT_EQ(authority, 1);
  EXPECT_EQ(hospital, 1);
  EXPECT_EQ(unregistered, 1);
  EXPECT_EQ(queries.size(), 29u);
}

}  // namespace
}  // namespace medvault::integration
