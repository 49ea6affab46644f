// Ethereum EIP-1559 (type 2) transactions: the hash the chain key signs and
// the signed raw transaction eth_sendRawTransaction takes (EIP-2718 typed
// envelope, EIP-1559 fields), plus the hex forms JSON-RPC uses. Keccak-256
// is in daemon/common/keccak.h.
//
// Wire format (EIP-1559):
//   signing hash = keccak256(0x02 || rlp([chain_id, nonce,
//                  max_priority_fee_per_gas, max_fee_per_gas, gas_limit, to,
//                  value, data, access_list]))
//   raw          = 0x02 || rlp([chain_id, ..., access_list, y_parity, r, s])
// The access list is always empty here. Integers are encoded minimally
// (rlp.h); `to` is the 20-byte address; r and s drop leading zero bytes.
//
// Bytes are carried in std::string. Amounts are uint64 wei: 18.4 ether per
// unit of gas is far above any fee this process may pay (the caps in the
// configuration bound them) and `value` is always 0 for contract calls.
#ifndef MEDVAULT_DAEMON_SIGNER_ETH_TX_H_
#define MEDVAULT_DAEMON_SIGNER_ETH_TX_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::signer {

// "0x" and lower-case hex digits of `bytes` ("0x" for none).
std::string ToHex(absl::string_view bytes);
// The bytes of "0x"-prefixed hex with an even number of digits (either
// case). INVALID_ARGUMENT naming `what` otherwise.
absl::StatusOr<std::string> FromHex(absl::string_view hex, absl::string_view what = "hex");
// A 20-byte address from "0x" and 40 hex digits (ParseEthAddress: one case,
// or the EIP-55 checksum). INVALID_ARGUMENT naming `what` otherwise.
absl::StatusOr<std::string> ParseAddress(absl::string_view hex, absl::string_view what = "address");

struct Eip1559Transaction {
  uint64_t chain_id = 0;
  uint64_t nonce = 0;
  uint64_t max_priority_fee_per_gas = 0;  // wei
  uint64_t max_fee_per_gas = 0;           // wei
  uint64_t gas_limit = 0;
  std::string to;      // 20 bytes; empty for a contract creation (data is the init code)
  uint64_t value = 0;  // wei
  std::string data;    // calldata
};

// An Ethereum ECDSA signature over secp256k1, as the keyvault returns it.
struct EthSignature {
  std::string r;          // 32 bytes, big-endian
  std::string s;          // 32 bytes, big-endian, low-s
  uint32_t y_parity = 0;  // the recovery id, 0 or 1
};

// 0x02 || rlp(fields without the signature). INVALID_ARGUMENT when `to` is
// not 20 bytes or max_priority_fee_per_gas exceeds max_fee_per_gas.
absl::StatusOr<std::string> SigningPayload(const Eip1559Transaction& tx);
// keccak256(SigningPayload(tx)): the 32-byte digest the chain key signs.
absl::StatusOr<std::string> SigningHash(const Eip1559Transaction& tx);
// 0x02 || rlp(fields, y_parity, r, s): what eth_sendRawTransaction takes
// (hex-encoded). Its Keccak-256 is the transaction hash. INVALID_ARGUMENT
// for a bad transaction (as above), r or s not 32 bytes, or y_parity
// above 1.
absl::StatusOr<std::string> EncodeSignedTransaction(const Eip1559Transaction& tx,
                                                    const EthSignature& signature);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_ETH_TX_H_
