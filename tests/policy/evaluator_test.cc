// Deciding requests: default deny, deny-overrides, obligations, decision
// ids, explanations, and malformed requests refused by field.
#include "daemon/policy/evaluator.h"

#include "daemon/common/field_error.h"
#include "daemon/policy/bundle.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/test_keys.h"

namespace medvault::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::shared_ptr<const CompiledPolicy> Bundle() {
  static auto* policy = [] {
    auto files = ReadBundle(testing::SourceDir() + "/policies");
    EXPECT_TRUE(files.ok()) << files.status();
    auto p = CompileBundle(*files);
    EXPECT_TRUE(p.ok()) << p.status();
    return new std::shared_ptr<const CompiledPolicy>(*p);
  }();
  return *policy;
}

void SetFact(v1::Request& r, const std::string& name, const std::string& value) {
  (*r.mutable_facts())[name].set_string_value(value);
}

v1::Request BreakGlass() {
  v1::Request r;
  r.set_action("record.read_emergency");
  r.set_role("PRACTITIONER");
  r.set_time("2026-06-01T12:00:00Z");
  SetFact(r, "actor.id", "dr-ana");
  (*r.mutable_facts())["actor.organization_registered"].set_bool_value(true);
  SetFact(r, "licence.status", "ACTIVE");
  SetFact(r, "licence.expires_at", "2027-01-01T00:00:00Z");
  SetFact(r, "licence.verified_at", "2026-06-01T08:00:00Z");
  SetFact(r, "patient.id", "patient-7");
  SetFact(r, "emergency.reason", "unconscious");
  return r;
}

// Nothing matching is a deny that names no rule.
TEST(EvaluatorTest, DefaultDeny) {
  v1::Request r;
  r.set_action("record.read");
  r.set_role("PRACTITIONER");
  r.set_time("2026-06-01T12:00:00Z");
  SetFact(r, "actor.id", "dr-ana");
  SetFact(r, "patient.id", "patient-7");
  SetFact(r, "record.category", "GENERAL");
  SetFact(r, "request.purpose", "TREATMENT");
  SetFact(r, "licence.status", "ACTIVE");
  SetFact(r, "licence.expires_at", "2027-01-01T00:00:00Z");
  SetFact(r, "licence.verified_at", "2026-06-01T08:00:00Z");
  auto d = Evaluate(*Bundle(), r);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->effect(), v1::DENY);
  EXPECT_TRUE(d->rule_ids().empty());
  EXPECT_THAT(d->explanation(), HasSubstr("denied by default"));
  EXPECT_EQ(d->policy_version(), 2u);
}

// An allow carries the rule, its obligations with due times, the version.
TEST(EvaluatorTest, AllowCarriesObligations) {
  auto d = Evaluate(*Bundle(), BreakGlass());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->effect(), v1::ALLOW);
  EXPECT_THAT(d->rule_ids(), ElementsAre("emergency.break_glass"));
  ASSERT_EQ(d->obligations_size(), 3);
  EXPECT_EQ(d->obligations(0).name(), "notify_patient");
  EXPECT_EQ(d->obligations(0).due(), "2026-06-02T12:00:00Z");
  EXPECT_EQ(d->obligations(2).name(), "regulator_review");
  EXPECT_EQ(d->obligations(2).due(), "2026-06-08T12:00:00Z");
  EXPECT_EQ(d->bundle_hash(), Bundle()->bundle_hash_hex);
  EXPECT_EQ(d->explanation(),
            "allowed by emergency.break_glass: a licensed practitioner of a registered hospital "
            "reads without a grant in an emergency, stating a reason");
}

// An obligation's parameters carry the constants they name, typed: the
// privacy a research answer is released with.
TEST(EvaluatorTest, ObligationParametersCarryConstants) {
  v1::Request r;
  r.set_action("stats.query");
  r.set_role("RESEARCHER");
  r.set_time("2026-06-01T12:00:00Z");
  SetFact(r, "actor.id", "institute-1");
  SetFact(r, "request.purpose", "RESEARCH");
  (*r.mutable_facts())["actor.organization_registered"].set_bool_value(true);
  (*r.mutable_facts())["query.dimensions"].mutable_list_value()->add_values("AGE_BAND");
  (*r.mutable_facts())["query.categories"].mutable_list_value()->add_values("LAB_RESULT");
  auto d = Evaluate(*Bundle(), r);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->effect(), v1::ALLOW) << d->explanation();
  ASSERT_EQ(d->obligations_size(), 1);
  const auto& p = d->obligations(0).parameters();
  EXPECT_EQ(d->obligations(0).name(), "release_with_privacy");
  EXPECT_EQ(p.at("k").int_value(), 10);
  EXPECT_EQ(p.at("mechanism").string_value(), "LAPLACE");
  EXPECT_EQ(p.at("epsilon").string_value(), "0.1");
  EXPECT_EQ(p.at("max_contributions").int_value(), 4);
  EXPECT_EQ(p.at("budget_period").string_value(), "8760h");
  EXPECT_EQ(p.size(), 8u);
}

// A matching deny overrides a matching permit.
TEST(EvaluatorTest, DenyOverridesPermit) {
  v1::Request r = BreakGlass();
  SetFact(r, "licence.status", "REVOKED");
  auto d = Evaluate(*Bundle(), r);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->effect(), v1::DENY);
  EXPECT_THAT(d->rule_ids(), ElementsAre("licence.suspended_or_revoked"));
  EXPECT_TRUE(d->obligations().empty());
}

// The same request always gets the same decision and id; another request
// (here: another request id) another id.
TEST(EvaluatorTest, DeterministicDecisionId) {
  v1::Request r = BreakGlass();
  auto a = Evaluate(*Bundle(), r);
  auto b = Evaluate(*Bundle(), r);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
  EXPECT_EQ(a->decision_id().size(), 32u);
  r.set_request_id("req-2");
  auto c = Evaluate(*Bundle(), r);
  EXPECT_NE(a->decision_id(), c->decision_id());
}

// Explain lists every rule of the action with why it did or did not match.
TEST(EvaluatorTest, ExplainSaysWhy) {
  v1::Request r = BreakGlass();
  SetFact(r, "licence.verified_at", "2026-05-01T00:00:00Z");
  std::vector<v1::RuleTrace> traces;
  auto d = Explain(*Bundle(), r, &traces);
  ASSERT_TRUE(d.ok());
  bool saw_stale = false, saw_other_role = false;
  for (const auto& t : traces) {
    if (t.rule_id() == "licence.stale") {
      saw_stale = true;
      EXPECT_TRUE(t.matched());
    }
    if (t.rule_id() == "licence.pending") {
      EXPECT_FALSE(t.matched());
      EXPECT_THAT(t.reason(), HasSubstr("licence.status is ACTIVE"));
    }
    if (t.rule_id() == "access.researcher_never_reads_records") {
      saw_other_role = true;
      EXPECT_EQ(t.reason(), "not for role PRACTITIONER");
    }
  }
  EXPECT_TRUE(saw_stale);
  EXPECT_TRUE(saw_other_role);
}

// Malformed requests are INVALID_ARGUMENT naming the field.
TEST(EvaluatorTest, MalformedRequestsNameTheField) {
  struct Case {
    std::function<void(v1::Request&)> spoil;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](v1::Request& r) { r.clear_action(); }, "action: required"},
      {[](v1::Request& r) { r.set_action("x"); }, "action: unknown action \"x\""},
      {[](v1::Request& r) { r.set_role("GOD"); }, "role: unknown role \"GOD\""},
      {[](v1::Request& r) { r.set_time("yesterday"); }, "time: \"yesterday\" is not an RFC 3339"},
      {[](v1::Request& r) { SetFact(r, "nope", "1"); }, "facts[\"nope\"]: unknown attribute"},
      {[](v1::Request& r) { SetFact(r, "request.time", "2026-01-01T00:00:00Z"); },
       "facts[\"request.time\"]: is the request's time field"},
      {[](v1::Request& r) { (*r.mutable_facts())["licence.status"].set_int_value(1); },
       "facts[\"licence.status\"]: licence.status is ENUM"},
      {[](v1::Request& r) { SetFact(r, "licence.expires_at", "soon"); },
       "facts[\"licence.expires_at\"]: \"soon\" is not an RFC 3339"},
      {[](v1::Request& r) { r.mutable_facts()->erase("patient.id"); },
       "facts[\"patient.id\"]: required for record.read_emergency"},
  };
  for (const Case& c : cases) {
    v1::Request r = BreakGlass();
    c.spoil(r);
    auto d = Evaluate(*Bundle(), r);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(d.status().message(), HasSubstr(c.message));
  }
}

// A refused request also names the field as a google.rpc.BadRequest, map
// keys included, for clients that do not parse messages.
TEST(EvaluatorTest, MalformedRequestsCarryBadRequest) {
  v1::Request r = BreakGlass();
  r.mutable_facts()->erase("patient.id");
  auto d = Evaluate(*Bundle(), r);
  std::optional<google::rpc::BadRequest> bad = BadRequestOf(d.status());
  ASSERT_TRUE(bad.has_value()) << d.status();
  ASSERT_EQ(bad->field_violations_size(), 1);
  EXPECT_EQ(bad->field_violations(0).field(), "facts[\"patient.id\"]");
  EXPECT_EQ(bad->field_violations(0).description(), "required for record.read_emergency");

  r = BreakGlass();
  r.set_role("GOD");
  bad = BadRequestOf(Evaluate(*Bundle(), r).status());
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->field_violations(0).field(), "role");
}

// Times far apart do not overflow the age arithmetic.
TEST(EvaluatorTest, ExtremeTimesDoNotWrap) {
  v1::Request r = BreakGlass();
  r.set_time("9999-12-31T23:59:59Z");
  SetFact(r, "licence.verified_at", "0001-01-01T00:00:00Z");
  auto d = Evaluate(*Bundle(), r);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->effect(), v1::DENY);
}

}  // namespace
}  // namespace medvault::policy
