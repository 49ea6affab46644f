#include "daemon/signer/eth_tx.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/keccak.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/rlp.h"

namespace medvault::signer {
namespace {

constexpr char kEip1559Type = 0x02;

absl::Status CheckTransaction(const Eip1559Transaction& tx) {
  if (tx.to.size() != 20 && !tx.to.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "transaction.to: must be 20 bytes (or empty to create a contract), got ", tx.to.size()));
  }
  if (tx.max_priority_fee_per_gas > tx.max_fee_per_gas) {
    return absl::InvalidArgumentError(
        absl::StrCat("transaction.max_priority_fee_per_gas: ", tx.max_priority_fee_per_gas,
                     " is above max_fee_per_gas ", tx.max_fee_per_gas));
  }
  return absl::OkStatus();
}

// The nine RLP-encoded fields both encodings start with.
std::vector<std::string> UnsignedFields(const Eip1559Transaction& tx) {
  return {rlp::EncodeUint(tx.chain_id),
          rlp::EncodeUint(tx.nonce),
          rlp::EncodeUint(tx.max_priority_fee_per_gas),
          rlp::EncodeUint(tx.max_fee_per_gas),
          rlp::EncodeUint(tx.gas_limit),
          rlp::EncodeBytes(tx.to),
          rlp::EncodeUint(tx.value),
          rlp::EncodeBytes(tx.data),
          rlp::EncodeList({})};  // access list
}

std::string Typed(const std::vector<std::string>& fields) {
  return std::string(1, kEip1559Type) + rlp::EncodeList(fields);
}

}  // namespace

std::string ToHex(absl::string_view bytes) {
  return absl::StrCat("0x", absl::BytesToHexString(bytes));
}

absl::StatusOr<std::string> FromHex(absl::string_view hex, absl::string_view what) {
  if (!absl::StartsWith(hex, "0x") && !absl::StartsWith(hex, "0X")) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": must start with 0x"));
  }
  hex.remove_prefix(2);
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": odd number of hex digits"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": not a hex digit: '", absl::CHexEscape(std::string(1, c)), "'"));
    }
  }
  return absl::HexStringToBytes(hex);
}

absl::StatusOr<std::string> ParseAddress(absl::string_view hex, absl::string_view what) {
  absl::StatusOr<std::string> bytes = ParseEthAddress(hex);
  if (!bytes.ok())
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", bytes.status().message()));
  return bytes;
}

absl::StatusOr<std::string> SigningPayload(const Eip1559Transaction& tx) {
  RETURN_IF_ERROR(CheckTransaction(tx));
  return Typed(UnsignedFields(tx));
}

absl::StatusOr<std::string> SigningHash(const Eip1559Transaction& tx) {
  ASSIGN_OR_RETURN(std::string payload, SigningPayload(tx));
  return Keccak256(payload);
}

absl::StatusOr<std::string> EncodeSignedTransaction(const Eip1559Transaction& tx,
                                                    const EthSignature& signature) {
  RETURN_IF_ERROR(CheckTransaction(tx));
  if (signature.r.size() != 32 || signature.s.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat("signature: r and s must be 32 bytes, got ",
                                                   signature.r.size(), " and ",
                                                   signature.s.size()));
  }
  if (signature.y_parity > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature.y_parity: must be 0 or 1, got ", signature.y_parity));
  }
  std::vector<std::string> fields = UnsignedFields(tx);
  fields.push_back(rlp::EncodeUint(signature.y_parity));
  fields.push_back(rlp::EncodeBigEndianUint(signature.r));
  fields.push_back(rlp::EncodeBigEndianUint(signature.s));
  return Typed(fields);
}

}  // namespace medvault::signer
