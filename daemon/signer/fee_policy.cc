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

}  // namespace medvault::signer
