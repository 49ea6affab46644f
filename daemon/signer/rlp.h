// RLP (Recursive Length Prefix), the serialisation of Ethereum transactions
// (Ethereum Yellow Paper, appendix B).
//
// Written here rather than taken from a library: Debian 12 packages no RLP
// encoder for C++ (the maintained ones are parts of Ethereum clients written
// in Go, Rust or Java, or of npm packages), and only encoding is needed, which
// is a page of code checked against `cast` in tests/signer/rlp_test.cc.
//
// Items are byte strings (std::string as bytes). Encoding never fails.
#ifndef MEDVAULT_DAEMON_SIGNER_RLP_H_
#define MEDVAULT_DAEMON_SIGNER_RLP_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace medvault::signer::rlp {

// A byte string: a single byte below 0x80 is itself; otherwise a length
// prefix (0x80 + length up to 55 bytes, 0xb7 + length of the length beyond).
std::string EncodeBytes(absl::string_view bytes);

// An unsigned integer: its big-endian bytes without leading zeros, so 0 is
// the empty string (0x80).
std::string EncodeUint(uint64_t value);

// An unsigned integer given as big-endian bytes of any length (r and s of a
// signature): leading zero bytes are dropped first.
std::string EncodeBigEndianUint(absl::string_view big_endian);

// A list of items that are already RLP-encoded: 0xc0 + payload length up to
// 55 bytes, 0xf7 + length of the length beyond.
std::string EncodeList(absl::Span<const std::string> encoded_items);

}  // namespace medvault::signer::rlp

#endif  // MEDVAULT_DAEMON_SIGNER_RLP_H_
