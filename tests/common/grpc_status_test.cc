// ToGrpcStatus at a service edge: code and message kept, and for a field
// error a google.rpc.Status in error_details that any client decodes.
#include "daemon/common/grpc_status.h"

#include <grpcpp/support/error_details.h>

#include "daemon/common/field_error.h"
#include "gmock/gmock.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

// The details a client gets back: google.rpc.Status from error_details
// (what grpc-status-details-bin carries), its one Any unpacked.
google::rpc::BadRequest DetailsOf(const grpc::Status& status) {
  google::rpc::Status details;
  EXPECT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  EXPECT_EQ(details.code(), status.error_code());
  EXPECT_EQ(details.message(), status.error_message());
  google::rpc::BadRequest bad;
  EXPECT_EQ(details.details_size(), 1);
  if (details.details_size() == 1) {
    EXPECT_EQ(details.details(0).type_url(), kBadRequestTypeUrl);
    EXPECT_TRUE(details.details(0).UnpackTo(&bad));
  }
  return bad;
}

// InvalidField's violation survives the trip through error_details.
TEST(GrpcStatusTest, FieldErrorRoundTripsAsBadRequest) {
  grpc::Status status = ToGrpcStatus(InvalidField("facts[\"licence.status\"]", "is ENUM"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "facts[\"licence.status\"]: is ENUM");
  google::rpc::BadRequest bad = DetailsOf(status);
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "facts[\"licence.status\"]");
  EXPECT_EQ(bad.field_violations(0).description(), "is ENUM");
}

// An existing "<field>: ..." INVALID_ARGUMENT gains the same details.
TEST(GrpcStatusTest, DerivedFieldErrorCarriesBadRequest) {
  grpc::Status status = ToGrpcStatus(absl::InvalidArgumentError("log_id: must be 32 bytes"));
  EXPECT_EQ(status.error_message(), "log_id: must be 32 bytes");
  google::rpc::BadRequest bad = DetailsOf(status);
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "log_id");
  EXPECT_EQ(bad.field_violations(0).description(), "must be 32 bytes");
}

// Errors that name no field keep code and message, and carry no details.
TEST(GrpcStatusTest, OtherErrorsHaveNoDetails) {
  for (const absl::Status& s :
       {absl::InvalidArgumentError("not a PEM private key"),
        absl::FailedPreconditionError("no policy bundle is loaded"),
        WithoutFieldViolations(absl::InvalidArgumentError("bundle: no rules"))}) {
    grpc::Status status = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(status.error_code()), s.raw_code());
    EXPECT_EQ(status.error_message(), s.message());
    EXPECT_EQ(status.error_details(), "") << s;
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace medvault
