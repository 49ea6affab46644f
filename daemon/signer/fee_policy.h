// How much the signer offers to pay for a transaction (EIP-1559 fees).
//
// The tip is the node's suggestion (eth_maxPriorityFeePerGas), never above
// its cap. The fee cap is twice the next block's base fee (from
// eth_feeHistory) plus the tip, so the transaction stays includable while
// the base fee rises for about six full blocks (12.5 % a block), never
// above its own cap. The chain charges base fee + tip, not the cap.
#ifndef MEDVAULT_DAEMON_SIGNER_FEE_POLICY_H_
#define MEDVAULT_DAEMON_SIGNER_FEE_POLICY_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace medvault::signer {

// From the configuration (signer.max_fee_per_gas_wei,
// signer.max_priority_fee_per_gas_wei).
struct FeeCaps {
  uint64_t max_fee_per_gas = 0;           // wei
  uint64_t max_priority_fee_per_gas = 0;  // wei
};

struct Fees {
  uint64_t max_fee_per_gas = 0;           // wei
  uint64_t max_priority_fee_per_gas = 0;  // wei, never above max_fee_per_gas
};

// UNAVAILABLE when the next block's base fee is already above the cap on
// the fee (the transaction could not be included now; fees may fall).
absl::StatusOr<Fees> ChooseFees(uint64_t next_base_fee, uint64_t suggested_priority_fee,
                                const FeeCaps& caps);

// Fees for a replacement of a transaction that was not mined: the same
// nonce, each fee raised by at least 12.5 % over `previous` (rounded up;
// nodes require 10 %, geth and Besu alike), or to the `market` fees if those
// are higher, never above the caps. RESOURCE_EXHAUSTED when the caps leave
// no room for a 12.5 % raise of both (the transaction keeps waiting).
absl::StatusOr<Fees> BumpFees(const Fees& previous, const Fees& market, const FeeCaps& caps);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_FEE_POLICY_H_
