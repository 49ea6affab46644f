#include "daemon/signer/fee_policy.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace medvault::signer {
namespace {

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// value * 1.125, rounded up, saturating.
uint64_t Raise(uint64_t value) {
  const uint64_t raise = value / 8 + (value % 8 != 0 ? 1 : 0);
  return SaturatingAdd(value, std::max<uint64_t>(raise, 1));
}

}  // namespace

absl::StatusOr<Fees> ChooseFees(uint64_t next_base_fee, uint64_t suggested_priority_fee,
                                const FeeCaps& caps) {
  if (next_base_fee > caps.max_fee_per_gas) {
    return absl::UnavailableError(absl::StrCat(
        "the next block's base fee, ", next_base_fee,
        " wei per gas, is above signer.max_fee_per_gas_wei (", caps.max_fee_per_gas, ")"));
  }
  Fees fees;
  uint64_t tip = std::min(suggested_priority_fee, caps.max_priority_fee_per_gas);
  fees.max_fee_per_gas = std::min(SaturatingAdd(SaturatingAdd(next_base_fee, next_base_fee), tip),
                                  caps.max_fee_per_gas);
  fees.max_priority_fee_per_gas = std::min(tip, fees.max_fee_per_gas);
  return fees;
}

absl::StatusOr<Fees> BumpFees(const Fees& previous, const Fees& market, const FeeCaps& caps) {
  Fees bumped;
  bumped.max_fee_per_gas = std::max(Raise(previous.max_fee_per_gas), market.max_fee_per_gas);
  bumped.max_priority_fee_per_gas =
      std::max(Raise(previous.max_priority_fee_per_gas), market.max_priority_fee_per_gas);
  if (bumped.max_fee_per_gas > caps.max_fee_per_gas ||
      bumped.max_priority_fee_per_gas > caps.max_priority_fee_per_gas) {
    // The lowest acceptable replacement is already above a cap: any
    // smaller raise would be refused by the node as underpriced.
    const bool fee_room = Raise(previous.max_fee_per_gas) <= caps.max_fee_per_gas;
    const bool tip_room = Raise(previous.max_priority_fee_per_gas) <= caps.max_priority_fee_per_gas;
    if (!fee_room || !tip_room) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot raise the fees (", previous.max_fee_per_gas, " / ",
          previous.max_priority_fee_per_gas, " wei per gas) by 12.5 % within ",
          "signer.max_fee_per_gas_wei (", caps.max_fee_per_gas,
          ") and signer.max_priority_fee_per_gas_wei (", caps.max_priority_fee_per_gas, ")"));
    }
    bumped.max_fee_per_gas = std::min(bumped.max_fee_per_gas, caps.max_fee_per_gas);
    bumped.max_priority_fee_per_gas =
        std::min(bumped.max_priority_fee_per_gas, caps.max_priority_fee_per_gas);
  }
  // EIP-1559: the tip may not exceed the fee cap.
  if (bumped.max_priority_fee_per_gas > bumped.max_fee_per_gas) {
    bumped.max_fee_per_gas = bumped.max_priority_fee_per_gas;
    if (bumped.max_fee_per_gas > caps.max_fee_per_gas) {
      return absl::ResourceExhaustedError("the raised tip would exceed signer.max_fee_per_gas_wei");
    }
  }
  return bumped;
}

}  // namespace medvault::signer
