// The Solidity ABI of contracts/src/AuditAnchor.sol that the signer uses:
// calldata for anchor() and latest(), the result of latest(), and the
// contract's custom errors in revert data.
//
// ABI encoding (Solidity ABI specification): 4-byte selector =
// keccak256("name(type,...)")[0:4], then one 32-byte word per static
// argument; bytes32 as is, uint64 big-endian and left-padded with zeros.
#ifndef MEDVAULT_DAEMON_SIGNER_AUDIT_ANCHOR_ABI_H_
#define MEDVAULT_DAEMON_SIGNER_AUDIT_ANCHOR_ABI_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::signer {

// The first 4 bytes of keccak256(signature), e.g. "latest(bytes32)".
std::string Selector(absl::string_view signature);

// ABI words, shared by the other contracts' encoders (registry_abi.h).
namespace abi {
inline constexpr size_t kWord = 32;
// A uint64 as a big-endian 32-byte word.
std::string Uint64Word(uint64_t value);
// A 20-byte address left-padded to a word.
std::string AddressWord(absl::string_view address);
// The uint64 in a 32-byte word; false when bits above 64 are set.
bool WordToUint64(absl::string_view word, uint64_t* value);
// INVALID_ARGUMENT "<field>: must be 32 bytes, got n" unless 32 bytes.
absl::Status CheckBytes32(absl::string_view value, absl::string_view field);
// As CheckBytes32, and INVALID_ARGUMENT "<field>: must not be all zero".
absl::Status CheckNonZero32(absl::string_view value, absl::string_view field);
}  // namespace abi

// anchor(bytes32 logId, uint64 treeSize, bytes32 rootHash). INVALID_ARGUMENT
// naming the field when log_id or root_hash is not 32 bytes.
absl::StatusOr<std::string> EncodeAnchorCall(absl::string_view log_id, uint64_t tree_size,
                                             absl::string_view root_hash);
// latest(bytes32 logId).
absl::StatusOr<std::string> EncodeLatestCall(absl::string_view log_id);

// What latest(logId) returns; all zero for a log never anchored.
struct Checkpoint {
  uint64_t tree_size = 0;
  std::string root_hash;      // 32 bytes
  uint64_t timestamp = 0;     // block timestamp, seconds
  uint64_t block_number = 0;  // block of the anchoring transaction
};
// Decodes latest()'s four words. INVALID_ARGUMENT if the output is not 128
// bytes or a uint64 word has bits above 64 (not what the contract returns).
absl::StatusOr<Checkpoint> DecodeLatestResult(absl::string_view output);

// AuditAnchor's custom errors, from revert data.
struct AnchorRevert {
  enum class Kind {
    kAlreadyAnchored,        // log_id, tree_size, root_hash: this exact checkpoint is the latest
    kTreeSizeNotIncreasing,  // log_id, latest_tree_size, tree_size
    kNotOperator,            // account: the sender is not an operator
    kOther,                  // anything else (description has the raw data)
  };
  Kind kind = Kind::kOther;
  uint64_t tree_size = 0;
  uint64_t latest_tree_size = 0;
  std::string account;  // 20 bytes, kNotOperator only
  // One line for an error message, e.g. "TreeSizeNotIncreasing(latest 5, given 3)".
  std::string description;
};
AnchorRevert DecodeAnchorRevert(absl::string_view revert_data);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_AUDIT_ANCHOR_ABI_H_
