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

}  // namespace
}  // namespace medvault::signer
