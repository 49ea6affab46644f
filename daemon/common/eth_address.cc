#include "daemon/common/eth_address.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"

namespace medvault {
namespace {

// EIP-55: a hex letter is upper-case where the matching nibble of
// keccak256(lower-case hex) is 8 or more.
std::string Checksummed(absl::string_view address) {
  std::string hex = absl::BytesToHexString(address);
  const std::string hash = Keccak256(hex);
  for (size_t i = 0; i < hex.size(); ++i) {
    const auto byte = static_cast<unsigned char>(hash[i / 2]);
    if ((i % 2 == 0 ? byte >> 4 : byte & 0x0F) >= 8) hex[i] = absl::ascii_toupper(hex[i]);
  }
  return "0x" + hex;
}

std::string Quoted(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 64)), text.size() > 64 ? "..." : "",
                      "\"");
}

}  // namespace

std::string EthAddressOfPublicKey(absl::string_view xy) { return Keccak256(xy).substr(12); }

absl::StatusOr<std::string> ParseEthAddress(absl::string_view text) {
  if (text.size() != 42 || !absl::StartsWith(text, "0x") ||
      !absl::c_all_of(text.substr(2),
                      [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be 0x and 40 hex digits, got ", Quoted(text)));
  }
  const std::string bytes = absl::HexStringToBytes(text.substr(2));
  const bool lower = absl::c_none_of(text, absl::ascii_isupper);
  const bool upper = absl::c_none_of(text.substr(2), absl::ascii_islower);
  if (!lower && !upper && Checksummed(bytes) != text) {
    return absl::InvalidArgumentError(absl::StrCat("mixed case is not the EIP-55 checksum (",
                                                   Checksummed(bytes), "): mistyped?"));
  }
  return bytes;
}

absl::StatusOr<std::string> FormatEthAddress(absl::string_view address) {
  if (address.size() != 20) {
    return absl::InvalidArgumentError(absl::StrCat("must be 20 bytes, got ", address.size()));
  }
  return Checksummed(address);
}

}  // namespace medvault
