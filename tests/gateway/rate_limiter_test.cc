// The per-organisation token bucket, on a clock the test moves.
#include "daemon/gateway/rate_limiter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway {
namespace {

class RateLimiterTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  RateLimiter limiter_{10, 20, [this] { return now_; }};
};

TEST_F(RateLimiterTest, BurstThenRefusedUntilRefilled) {
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(limiter_.Acquire("st-mary").ok()) << i;
  absl::Status over = limiter_.Acquire("st-mary");
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.message(), ::testing::HasSubstr("st-mary"));
  // A tenth of a second refills one call at 10 a second.
  now_ += absl::Milliseconds(100);
  EXPECT_TRUE(limiter_.Acquire("st-mary").ok());
  EXPECT_FALSE(limiter_.Acquire("st-mary").ok());
}

TEST_F(RateLimiterTest, OrganisationsHaveTheirOwnBuckets) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter_.Acquire("st-mary").ok());
  EXPECT_FALSE(limiter_.Acquire("st-mary").ok());
  EXPECT_TRUE(limiter_.Acquire("city-general").ok());
}

TEST_F(RateLimiterTest, IdleTimeFillsNoMoreThanTheBurst) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter_.Acquire("st-mary").ok());
  now_ += absl::Hours(1);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(limiter_.Acquire("st-mary").ok()) << i;
  EXPECT_FALSE(limiter_.Acquire("st-mary").ok());
}

TEST_F(RateLimiterTest, AClockGoingBackGivesNothing) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter_.Acquire("st-mary").ok());
  now_ -= absl::Seconds(5);
  EXPECT_FALSE(limiter_.Acquire("st-mary").ok());
}

}  // namespace
}  // namespace medvault::gateway
