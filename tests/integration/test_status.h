// gtest assertions on absl::Status and absl::StatusOr<T>, printing the
// expression and the status on failure.
#ifndef MEDVAULT_TESTS_INTEGRATION_TEST_STATUS_H_
#define MEDVAULT_TESTS_INTEGRATION_TEST_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace medvault::integration {

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
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
