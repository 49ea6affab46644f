// The regulator's own test suites (policies/tests/*.textproto), one CTest
// case per suite, run against the bundle in policies/.
#include <filesystem>

#include "daemon/policy/bundle.h"
#include "daemon/policy/policy_tests.h"
#include "gtest/gtest.h"
#include "tests/policy/test_keys.h"

namespace medvault::policy {
namespace {

std::vector<std::string> Suites() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(std::string(MEDVAULT_TEST_SOURCE_DIR) +
                                                           "/policies/tests")) {
    if (e.path().extension() == ".textproto") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class PolicySuiteTest : public ::testing::TestWithParam<std::string> {};

// Every case of the suite passes against the bundle.
TEST_P(PolicySuiteTest, AllCasesPass) {
  auto files = ReadBundle(testing::SourceDir() + "/policies");
  ASSERT_TRUE(files.ok()) << files.status();
  auto policy = CompileBundle(*files);
  ASSERT_TRUE(policy.ok()) << policy.status();
  std::string path = testing::SourceDir() + "/policies/tests/" + GetParam() + ".textproto";
  v1::TestSuite suite;
  ASSERT_TRUE(ParseTextProto(testing::ReadAll(path), path, &suite).ok());
  ASSERT_GT(suite.cases_size(), 0);
  for (const CaseResult& r : RunSuite(**policy, suite)) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.failure;
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicySuiteTest, ::testing::ValuesIn(Suites()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace medvault::policy
