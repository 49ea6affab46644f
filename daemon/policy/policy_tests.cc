#include "daemon/policy/policy_tests.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/policy/evaluator.h"

namespace medvault::policy {
namespace {

std::string Sorted(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<std::string> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  return absl::StrJoin(v, ", ");
}

std::string Check(const CompiledPolicy& policy, const v1::TestSuite& suite, const v1::TestCase& c) {
  v1::Request request = suite.base();
  request.MergeFrom(c.request());
  for (const std::string& name : c.remove_facts()) request.mutable_facts()->erase(name);
  auto decision = Evaluate(policy, request);
  if (!c.expect_error().empty()) {
    if (decision.ok()) return absl::StrCat("expected error \"", c.expect_error(), "\", got a decision");
    if (!absl::StrContains(decision.status().message(), c.expect_error())) {
      return absl::StrCat("expected error \"", c.expect_error(), "\", got \"",
                          decision.status().message(), "\"");
    }
    return "";
  }
  if (!decision.ok()) return absl::StrCat("request refused: ", decision.status().message());
  std::vector<std::string> wrong;
  if (c.expect() != v1::EFFECT_UNSPECIFIED && decision->effect() != c.expect()) {
    wrong.push_back(absl::StrCat("expected ", v1::Effect_Name(c.expect()), ", got ",
                                 v1::Effect_Name(decision->effect())));
  }
  if (!c.expect_rule_ids().empty() &&
      Sorted(c.expect_rule_ids()) != Sorted(decision->rule_ids())) {
    wrong.push_back(absl::StrCat("expected rules [", Sorted(c.expect_rule_ids()), "], got [",
                                 Sorted(decision->rule_ids()), "]"));
  }
  for (const std::string& name : c.expect_obligations()) {
    bool found = std::any_of(decision->obligations().begin(), decision->obligations().end(),
                             [&](const v1::Obligation& o) { return o.name() == name; });
    if (!found) wrong.push_back(absl::StrCat("expected obligation ", name));
  }
  if (!c.expect_next_state().empty() && c.expect_next_state() != decision->next_state()) {
    wrong.push_back(absl::StrCat("expected next state ", c.expect_next_state(), ", got \"",
                                 decision->next_state(), "\""));
  }
  if (wrong.empty()) return "";
  return absl::StrCat(absl::StrJoin(wrong, "; "), " (", decision->explanation(), ")");
}

}  // namespace

std::vector<CaseResult> RunSuite(const CompiledPolicy& policy, const v1::TestSuite& suite) {
  std::vector<CaseResult> results;
  for (const v1::TestCase& c : suite.cases()) {
    CaseResult r;
    r.name = c.name();
    if (c.expect() == v1::EFFECT_UNSPECIFIED && c.expect_error().empty()) {
      r.failure = "the case expects nothing (set expect or expect_error)";
    } else {
      r.failure = Check(policy, suite, c);
    }
    r.passed = r.failure.empty();
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace medvault::policy
