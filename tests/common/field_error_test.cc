// Field errors: the message a reader sees and the google.rpc.BadRequest a
// client reads say the same, whether made by InvalidField or derived from
// an older "<field>: ..." message.
#include "daemon/common/field_error.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::ElementsAre;

MATCHER_P2(Violation, field, description, "") {
  return arg.field() == field && arg.description() == description;
}

std::vector<google::rpc::BadRequest::FieldViolation> Violations(const absl::Status& status) {
  std::optional<google::rpc::BadRequest> bad = BadRequestOf(status);
  if (!bad.has_value()) return {};
  return {bad->field_violations().begin(), bad->field_violations().end()};
}

// InvalidField reads as before ("<field>: <description>") and names the
// field, map keys included, in its payload.
TEST(FieldErrorTest, InvalidFieldKeepsTheMessageAndNamesTheField) {
  absl::Status status = InvalidField("facts[\"patient.id\"]", "required for record.read");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "facts[\"patient.id\"]: required for record.read");
  EXPECT_TRUE(status.GetPayload(kBadRequestTypeUrl).has_value());
  EXPECT_THAT(Violations(status),
              ElementsAre(Violation("facts[\"patient.id\"]", "required for record.read")));
}

// Several fields: one line each, all in the BadRequest, in order.
TEST(FieldErrorTest, InvalidFieldsListsEveryField) {
  absl::Status status =
      InvalidFields({{"log_id", "must be 32 bytes"}, {"limit", "must be at most 1000"}});
  EXPECT_EQ(status.message(), "log_id: must be 32 bytes\nlimit: must be at most 1000");
  EXPECT_THAT(Violations(status), ElementsAre(Violation("log_id", "must be 32 bytes"),
                                              Violation("limit", "must be at most 1000")));
}

// Errors written as absl::InvalidArgumentError("<field path>: ...") get
// the same BadRequest without changing their call sites.
TEST(FieldErrorTest, FieldPathPrefixIsDerived) {
  EXPECT_THAT(Violations(absl::InvalidArgumentError("log_id: must be 32 bytes")),
              ElementsAre(Violation("log_id", "must be 32 bytes")));
  EXPECT_THAT(Violations(absl::InvalidArgumentError("context.record_ids[2]: too long: 65 bytes")),
              ElementsAre(Violation("context.record_ids[2]", "too long: 65 bytes")));
  EXPECT_THAT(Violations(absl::InvalidArgumentError("_v2: x")), ElementsAre(Violation("_v2", "x")));
}

// Messages that do not start with a field path, and other codes, get no
// BadRequest: a sentence, a file:line, a capitalised word, a quoted key.
TEST(FieldErrorTest, OtherMessagesAndCodesAreNotDerived) {
  for (const char* message :
       {"not a PEM private key", "rules.textproto:4: rules[0].id: required", "Key: bad",
        "facts[\"x\"]: unknown attribute", ": empty field", "log_id:no space", "2fa: bad",
        "socket path /run/x is longer than 107 bytes"}) {
    EXPECT_EQ(BadRequestOf(absl::InvalidArgumentError(message)), std::nullopt) << message;
  }
  EXPECT_EQ(BadRequestOf(absl::NotFoundError("patient_id: no such patient")), std::nullopt);
  EXPECT_EQ(BadRequestOf(absl::OkStatus()), std::nullopt);
}

// A payload wins over the message, and any code may carry one.
TEST(FieldErrorTest, PayloadWinsOverTheMessage) {
  absl::Status status = InvalidField("role", "unknown role \"GOD\"");
  absl::Status relabelled(absl::StatusCode::kFailedPrecondition, "other: text");
  relabelled.SetPayload(kBadRequestTypeUrl, *status.GetPayload(kBadRequestTypeUrl));
  EXPECT_THAT(Violations(relabelled), ElementsAre(Violation("role", "unknown role \"GOD\"")));
}

// Field paths move under the RPC's own field; the message stays as it was.
TEST(FieldErrorTest, WithFieldPrefixReRootsPaths) {
  absl::Status made =
      WithFieldPrefix(InvalidField("facts[\"a.b\"]", "unknown attribute"), "request");
  EXPECT_EQ(made.message(), "facts[\"a.b\"]: unknown attribute");
  EXPECT_THAT(Violations(made),
              ElementsAre(Violation("request.facts[\"a.b\"]", "unknown attribute")));
  absl::Status derived = WithFieldPrefix(absl::InvalidArgumentError("action: required"), "request");
  EXPECT_THAT(Violations(derived), ElementsAre(Violation("request.action", "required")));
  absl::Status plain = absl::InternalError("disk on fire");
  EXPECT_EQ(WithFieldPrefix(plain, "request"), plain);
}

// A status marked as naming no field gets no BadRequest, whatever its
// message looks like, and keeps code and message.
TEST(FieldErrorTest, WithoutFieldViolationsSuppressesDerivation) {
  absl::Status status = WithoutFieldViolations(
      absl::InvalidArgumentError("bundle: no rules (everything would be denied)"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "bundle: no rules (everything would be denied)");
  EXPECT_EQ(BadRequestOf(status), std::nullopt);
  EXPECT_EQ(BadRequestOf(WithFieldPrefix(status, "request")), std::nullopt);
}

}  // namespace
}  // namespace medvault
