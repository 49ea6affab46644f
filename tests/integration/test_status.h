// gtest assertions on absl::Status and absl::StatusOr<T>, printing the
// expression and the status on failure; the fields a gRPC refusal names.
#ifndef MEDVAULT_TESTS_INTEGRATION_TEST_STATUS_H_
#define MEDVAULT_TESTS_INTEGRATION_TEST_STATUS_H_

#include <grpcpp/support/error_details.h>
#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace medvault::integration {

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// The fields named by the google.rpc.BadRequest in `status`'s details (the
// grpc-status-details-bin trailer), as a client decodes them; empty when
// there are none.
inline std::vector<std::string> BadRequestFields(const grpc::Status& status) {
  google::rpc::Status details;
  if (!grpc::ExtractErrorDetails(status, &details).ok()) return {};
  std::vector<std::string> fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (!any.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) fields.push_back(v.field());
  }
  return fields;
}

}  // namespace medvault::integration

#define MEDVAULT_ASSERT_OK(expr)                                                   \
  do {                                                                             \
    const absl::Status medvault_status_ = ::medvault::integration::StatusOf(expr); \
    ASSERT_TRUE(medvault_status_.ok()) << #expr << ": " << medvault_status_;       \
  } while (0)
#define MEDVAULT_EXPECT_OK(expr)                                                   \
  do {                                                                             \
    const absl::Status medvault_status_ = ::medvault::integration::StatusOf(expr); \
    EXPECT_TRUE(medvault_status_.ok()) << #expr << ": " << medvault_status_;       \
  } while (0)

#endif  // MEDVAULT_TESTS_INTEGRATION_TEST_STATUS_H_
