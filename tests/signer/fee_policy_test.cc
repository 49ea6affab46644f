// The fee policy: twice the base fee plus the tip, both within their caps.
#include "daemon/signer/fee_policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

constexpr FeeCaps kCaps{100'000, 2'000};

// Below the caps: 2 × base + the node's tip.
TEST(FeePolicyTest, TwiceBaseFeePlusTip) {
  absl::StatusOr<Fees> fees = ChooseFees(10'000, 1'000, kCaps);
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->max_fee_per_gas, 21'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 1'000u);
}

// The tip and the fee never exceed their caps, and the tip never the fee.
TEST(FeePolicyTest, Caps) {
  absl::StatusOr<Fees> fees = ChooseFees(60'000, 50'000, kCaps);
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->max_fee_per_gas, 100'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 2'000u);
  fees = ChooseFees(0, 5'000, FeeCaps{1'000, 1'000});
  ASSERT_TRUE(fees.ok());
  EXPECT_EQ(fees->max_fee_per_gas, 1'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 1'000u);
  // No overflow near the top of uint64.
  fees = ChooseFees(UINT64_MAX - 1, UINT64_MAX, FeeCaps{UINT64_MAX, UINT64_MAX});
  ASSERT_TRUE(fees.ok());
  EXPECT_EQ(fees->max_fee_per_gas, UINT64_MAX);
}

// A base fee above the cap is UNAVAILABLE, naming the setting.
TEST(FeePolicyTest, BaseFeeAboveCapIsUnavailable) {
  absl::StatusOr<Fees> fees = ChooseFees(100'001, 0, kCaps);
  EXPECT_EQ(fees.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(fees.status().message(), ::testing::HasSubstr("signer.max_fee_per_gas_wei"));
}

// A replacement raises both fees by at least 12.5 % (rounded up), or to
// the market's if higher.
TEST(FeePolicyTest, BumpRaisesBothFeesByAnEighth) {
  absl::StatusOr<Fees> fees = BumpFees({16'000, 800}, {1'000, 100}, kCaps);
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->max_fee_per_gas, 18'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 900u);
  fees = BumpFees({16'001, 1}, {50'000, 1'500}, kCaps);  // rounded up; market wins
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->max_fee_per_gas, 50'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 1'500u);
  fees = BumpFees({16'001, 0}, {0, 0}, kCaps);  // at least 1 wei more
  ASSERT_TRUE(fees.ok());
  EXPECT_EQ(fees->max_fee_per_gas, 18'002u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 1u);
}

// The market above the cap is clipped to it as long as 12.5 % still fits;
// with no room for 12.5 % the bump is RESOURCE_EXHAUSTED.
TEST(FeePolicyTest, BumpStaysWithinCaps) {
  absl::StatusOr<Fees> fees = BumpFees({80'000, 1'000}, {500'000, 9'000}, kCaps);
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->max_fee_per_gas, 100'000u);
  EXPECT_EQ(fees->max_priority_fee_per_gas, 2'000u);
  fees = BumpFees({90'000, 1'000}, {0, 0}, kCaps);
  EXPECT_EQ(fees.status().code(), absl::StatusCode::kResourceExhausted);
  fees = BumpFees({10'000, 1'900}, {0, 0}, kCaps);
  EXPECT_EQ(fees.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace medvault::signer
