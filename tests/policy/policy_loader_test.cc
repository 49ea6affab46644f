// Compiling policy files: every mistake is a load error naming file:line.
#include "daemon/policy/policy_loader.h"

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::policy {
namespace {

using ::testing::HasSubstr;

constexpr char kVocabulary[] = R"(
enums { name: "status" values: ["ACTIVE", "REVOKED"] }
attributes { name: "actor.id" type: STRING }
attributes { name: "patient.id" type: STRING }
attributes { name: "licence.status" type: ENUM enum: "status" }
attributes { name: "count" type: INT }
attributes { name: "created" type: TIME }
roles { name: "PATIENT" }
actions { name: "record.read" }
obligations { name: "notify" }
)";

absl::StatusOr<std::unique_ptr<CompiledPolicy>> Compile(const std::string& rules) {
  return CompilePolicy({{"vocabulary.textproto", kVocabulary}, {"rules.textproto", rules}});
}

// The message of a failed compile of `rules`, which must fail.
std::string ErrorOf(const std::string& rules) {
  auto p = Compile(rules);
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

constexpr char kGoodRule[] = R"(rules {
  id: "r1"
  effect: PERMIT
  description: "patients read their own"
  actions: "record.read"
  roles: "PATIENT"
  conditions { compare { attribute: "actor.id" op: EQ other: "patient.id" } }
})";

// A correct file compiles into indexed rules.
TEST(PolicyLoaderTest, GoodRuleCompiles) {
  auto p = Compile(kGoodRule);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->rules.size(), 1u);
  EXPECT_EQ((*p)->rules_by_action_role.size(), 1u);
}

// An unknown attribute names its file, line and field path.
TEST(PolicyLoaderTest, UnknownAttributeHasFileAndLine) {
  EXPECT_THAT(ErrorOf(R"(rules {
  id: "r1" effect: PERMIT description: "d" actions: "record.read"
  conditions {
    present: "patient.shoe_size"
  }
})"),
              HasSubstr("rules.textproto:4: rules[0].conditions[0].present: unknown attribute "
                        "\"patient.shoe_size\""));
}

// An obligation's parameter names a constant; a fact or an unknown name is
// a load error at its line.
TEST(PolicyLoaderTest, ObligationParametersNameConstants) {
  constexpr char kRule[] = R"(rules {
  id: "r1" effect: PERMIT description: "d" actions: "record.read"
  obligations { name: "notify" parameters { key: "who" value: "%s" } }
})";
  EXPECT_THAT(ErrorOf(absl::StrFormat(kRule, "actor.id")),
              HasSubstr("rules.textproto:3: rules[0].obligations[0].parameters[\"who\"]: "
                        "\"actor.id\" is not a constant"));
  EXPECT_THAT(ErrorOf(absl::StrFormat(kRule, "nobody")), HasSubstr("unknown attribute \"nobody\""));
}

// An unknown role, action, obligation and enum value: each with its line.
TEST(PolicyLoaderTest, UnknownNamesHaveLines) {
  std::string e = ErrorOf(R"(rules {
  id: "r1" effect: PERMIT description: "d"
  actions: "record.burn"
  roles: "JANITOR"
  conditions { compare { attribute: "licence.status" op: EQ value: "LAPSED" } }
  obligations { name: "pray" }
})");
  EXPECT_THAT(e,
              HasSubstr("rules.textproto:3: rules[0].actions[0]: unknown action \"record.burn\""));
  EXPECT_THAT(e, HasSubstr("rules.textproto:4: rules[0].roles[0]: unknown role \"JANITOR\""));
  EXPECT_THAT(e, HasSubstr("rules.textproto:5: rules[0].conditions[0].compare.value: unknown "
                           "licence.status value \"LAPSED\""));
  EXPECT_THAT(e, HasSubstr("rules.textproto:6: rules[0].obligations[0].name: unknown obligation"));
}

// A state machine transition naming an unknown state.
TEST(PolicyLoaderTest, UnknownStateHasLine) {
  std::string e = ErrorOf(R"(state_machines {
  name: "dispute"
  states: ["FILED", "CLOSED"]
  transitions {
    action: "record.read"
    from: "FILED"
    to: "DECIDED"
    roles: "PATIENT"
  }
})");
  EXPECT_THAT(e, HasSubstr("rules.textproto:7: state_machines[0].transitions[0].to: unknown state "
                           "\"DECIDED\" of dispute"));
}

// Types are checked at load: ordering a STRING, comparing INT with TIME.
TEST(PolicyLoaderTest, TypeMismatchesAreLoadErrors) {
  std::string e = ErrorOf(R"(rules {
  id: "r1" effect: PERMIT description: "d" actions: "record.read"
  conditions { compare { attribute: "actor.id" op: LT value: "x" } }
  conditions { compare { attribute: "count" op: GE other: "created" } }
  conditions { compare { attribute: "count" op: EQ value: "ten" } }
  conditions { age { attribute: "count" op: GT duration: "1h" } }
})");
  EXPECT_THAT(e, HasSubstr(":3: rules[0].conditions[0].compare.op: < needs INT, TIME or DURATION"));
  EXPECT_THAT(
      e, HasSubstr(":4: rules[0].conditions[1].compare.other: count (INT) and created (TIME)"));
  EXPECT_THAT(e, HasSubstr(":5: rules[0].conditions[2].compare.value: \"ten\" is not a INT value"));
  EXPECT_THAT(e, HasSubstr(":6: rules[0].conditions[3].age.attribute: must be a TIME attribute"));
}

// Duplicate rule ids and a rule without effect or actions.
TEST(PolicyLoaderTest, DuplicatesAndMissingFields) {
  std::string e = ErrorOf(absl::StrCat(kGoodRule, "\n", kGoodRule, "\nrules { id: \"r2\" }"));
  EXPECT_THAT(e, HasSubstr("rule id \"r1\" used twice"));
  EXPECT_THAT(e, HasSubstr("rules[2].effect: PERMIT or DENY required"));
  EXPECT_THAT(e, HasSubstr("rules[2].actions: at least one action (or all_actions) required"));
}

// A syntax error is reported with file:line:column.
TEST(PolicyLoaderTest, SyntaxErrorHasLineAndColumn) {
  EXPECT_THAT(ErrorOf("rules {\n  id: \"r1\"\n  colour: BLUE\n}"),
              HasSubstr("rules.textproto:3:9: Message type \"medvault.policy.v1.Rule\" has no "
                        "field named \"colour\""));
}

// Condition references: unknown ones and cycles are load errors.
TEST(PolicyLoaderTest, ConditionReferences) {
  std::string e = ErrorOf(R"(
conditions { name: "a" condition { ref: "b" } }
conditions { name: "b" condition { ref: "a" } }
rules { id: "r1" effect: PERMIT description: "d" actions: "record.read"
        conditions { ref: "a" } conditions { ref: "nope" } })");
  EXPECT_THAT(e, HasSubstr("refers to itself"));
  EXPECT_THAT(
      e, HasSubstr("rules.textproto:5: rules[0].conditions[1].ref: unknown condition \"nope\""));
}

// A bundle without any rule would deny everything silently; refused.
TEST(PolicyLoaderTest, NoRulesIsAnError) { EXPECT_THAT(ErrorOf(""), HasSubstr("no rules")); }

}  // namespace
}  // namespace medvault::policy

namespace medvault::policy {
namespace {

// The fast path for "YYYY-MM-DDTHH:MM:SSZ" agrees with absl's RFC 3339
// parser and refuses dates that do not exist.
TEST(Rfc3339Test, FastPathAgreesAndRefusesImpossibleDates) {
  for (const char* text :
       {"2026-06-01T12:00:00Z", "2024-02-29T23:59:59Z", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z", "2026-06-01T12:00:00.5Z", "2026-06-01T14:00:00+02:00"}) {
    absl::Time want;
    std::string err;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &want, &err)) << text;
    auto got = ParseRfc3339(text);
    ASSERT_TRUE(got.ok()) << text;
    EXPECT_EQ(*got, want) << text;
  }
  for (const char* text : {"2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                           "2026-06-01T24:00:00Z", "2026-06-01 12:00:00Z", "2026-06-01T12:00:00",
                           "+026-06-01T12:00:00Z", ""}) {
    EXPECT_FALSE(ParseRfc3339(text).ok()) << text;
  }
}

}  // namespace
}  // namespace medvault::policy
