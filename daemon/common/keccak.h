// Keccak-256, the hash Ethereum uses everywhere (transaction hashes, ABI
// selectors, event topics, addresses, EIP-712). It is the original Keccak
// padding, not FIPS-202 SHA3-256: OpenSSL 3.0 has only the latter, so this
// comes from Crypto++. Shared by the signer (chain side) and the gateway
// (patient signatures).
#ifndef MEDVAULT_DAEMON_COMMON_KECCAK_H_
#define MEDVAULT_DAEMON_COMMON_KECCAK_H_

#include <string>

#include "absl/strings/string_view.h"

namespace medvault {

// The 32 raw bytes of Keccak-256 over `data`. Thread-safe.
std::string Keccak256(absl::string_view data);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_KECCAK_H_
