// Merkle trees in the form of RFC 6962 section 2.1 (RFC 9162 section 2.1):
// the audit log's hashes, proofs and their verification.
//
//   leaf hash  SHA-256(0x00 || leaf)
//   node hash  SHA-256(0x01 || left || right)
//   empty tree SHA-256()
//
// Proofs are built from the hashes of perfect subtrees, which never change
// once their last leaf is in: node (level, index) covers leaves
// [index * 2^level, (index + 1) * 2^level). Where they are kept (a database
// table, memory) is the caller's: a NodeReader answers them. A proof needs
// O(log n) of them, whatever the tree's size.
#ifndef MEDVAULT_DAEMON_COMMON_MERKLE_H_
#define MEDVAULT_DAEMON_COMMON_MERKLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace medvault::merkle {

using Hash = std::array<uint8_t, 32>;

Hash LeafHash(absl::string_view leaf);
Hash NodeHash(const Hash& left, const Hash& right);
Hash EmptyRoot();

// The hash as bytes, and back (INVALID_ARGUMENT unless exactly 32 bytes).
inline std::string ToBytes(const Hash& h) { return std::string(h.begin(), h.end()); }
absl::StatusOr<Hash> FromBytes(absl::string_view bytes);
std::string ToHex(const Hash& h);

// The hash of the perfect subtree at (level, index); NOT_FOUND or DATA_LOSS
// when the store does not have it.
using NodeReader = absl::FunctionRef<absl::StatusOr<Hash>(int level, uint64_t index)>;

// MTH(D[begin:end]) of RFC 6962 for any range (begin < end), from perfect
// subtrees.
absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, NodeReader nodes);

// The root of the tree of the first `size` leaves (EmptyRoot() for 0).
absl::StatusOr<Hash> Root(uint64_t size, NodeReader nodes);

// PATH(index, D[0:size]) of RFC 6962 section 2.1.1, leaf end first.
// INVALID_ARGUMENT unless index < size.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, NodeReader nodes);

// PROOF(first, D[0:second]) of RFC 6962 section 2.1.2. INVALID_ARGUMENT
// unless 0 < first <= second; empty when first == second.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second,
                                                   NodeReader nodes);

// RFC 9162 section 2.1.3.2. OK, or FAILED_PRECONDITION saying why not.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root);

// RFC 9162 section 2.1.4.2 (and first == second: an empty proof and equal
// roots). OK, or FAILED_PRECONDITION saying why not.
absl::Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                               const Hash& second_root, absl::Span<const Hash> proof);

// What the log signing key signs for a tree head: RFC 6962's
// TreeHeadSignature (version v1, signature type tree_hash, timestamp,
// tree size, root) followed by the 32-byte log id; 82 bytes, integers big
// endian. See medvault.v1.SignedTreeHead.
std::string TreeHeadMessage(absl::string_view log_id, uint64_t tree_size, uint64_t timestamp_ms,
                            const Hash& root);

// The id of the log named `name`: SHA-256 of the name.
std::string LogId(absl::string_view name);

// The right edge of a growing tree: one perfect subtree per set bit of its
// size, enough to append and to give the root. For recomputing a tree leaf
// by leaf (the verifier) and for finding which perfect subtrees an append
// completes (the log).
class CompactRange {
 public:
  // Appends a leaf hash; `completed` gets each perfect subtree the append
  // completes (level, index, hash), the leaf itself first.
  void Append(const Hash& leaf_hash,
              absl::FunctionRef<void(int level, uint64_t index, const Hash& hash)> completed);
  void Append(const Hash& leaf_hash);

  uint64_t size() const { return size_; }
  Hash Root() const;

 private:
  uint64_t size_ = 0;
  // Perfect subtrees, largest (leftmost) first: their levels are the set
  // bits of size_, from the top.
  std::vector<std::pair<int, Hash>> edge_;
};

}  // namespace medvault::merkle

#endif  // MEDVAULT_DAEMON_COMMON_MERKLE_H_
