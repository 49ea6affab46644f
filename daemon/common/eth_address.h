// Ethereum account addresses: the 20 bytes from a secp256k1 public key,
// and their text forms ("0x" and 40 hex digits, EIP-55 checksummed). One
// implementation for the keyvault (its chain keys), the signer
// (configured contracts) and the gateway (patients' keys).
#ifndef MEDVAULT_DAEMON_COMMON_ETH_ADDRESS_H_
#define MEDVAULT_DAEMON_COMMON_ETH_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault {

// The address of an uncompressed public key given as its 64 bytes x || y
// (without the 0x04 prefix): the last 20 bytes of their Keccak-256.
std::string EthAddressOfPublicKey(absl::string_view xy);

// The 20 bytes of "0x" and 40 hex digits, all lower-case, all upper-case or
// EIP-55 checksummed. INVALID_ARGUMENT otherwise, in particular for mixed
// case that is not the checksum (a mistyped address); the message
// describes the problem without a field name, for the caller to prefix.
absl::StatusOr<std::string> ParseEthAddress(absl::string_view text);

// The EIP-55 checksummed form of a 20-byte address; INVALID_ARGUMENT for
// any other length.
absl::StatusOr<std::string> FormatEthAddress(absl::string_view address);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_ETH_ADDRESS_H_
