#include "daemon/common/merkle.h"

#include <openssl/sha.h>

#include "absl/numeric/bits.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"

namespace medvault::merkle {
namespace {

// The largest power of two below n (n >= 2): where RFC 6962 splits D[n].
uint64_t Split(uint64_t n) { return uint64_t{1} << (63 - absl::countl_zero(n - 1)); }

bool IsPerfect(uint64_t begin, uint64_t n) { return absl::has_single_bit(n) && begin % n == 0; }

absl::Status Path(uint64_t m, uint64_t begin, uint64_t end, NodeReader nodes,
                  std::vector<Hash>& out) {
  if (end - begin == 1) return absl::OkStatus();
  const uint64_t mid = begin + Split(end - begin);
  if (m < mid) {
    RETURN_IF_ERROR(Path(m, begin, mid, nodes, out));
    ASSIGN_OR_RETURN(Hash sibling, RangeHash(mid, end, nodes));
    out.push_back(sibling);
  } else {
    RETURN_IF_ERROR(Path(m, mid, end, nodes, out));
    ASSIGN_OR_RETURN(Hash sibling, RangeHash(begin, mid, nodes));
    out.push_back(sibling);
  }
  return absl::OkStatus();
}

// SUBPROOF(m, D[begin:end], whole) of RFC 6962 section 2.1.2.
absl::Status SubProof(uint64_t m, uint64_t begin, uint64_t end, bool whole, NodeReader nodes,
                      std::vector<Hash>& out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!whole) {
      ASSIGN_OR_RETURN(Hash subtree, RangeHash(begin, end, nodes));
      out.push_back(subtree);
    }
    return absl::OkStatus();
  }
  const uint64_t k = Split(n);
  if (m <= k) {
    RETURN_IF_ERROR(SubProof(m, begin, begin + k, whole, nodes, out));
    ASSIGN_OR_RETURN(Hash sibling, RangeHash(begin + k, end, nodes));
    out.push_back(sibling);
  } else {
    RETURN_IF_ERROR(SubProof(m - k, begin + k, end, false, nodes, out));
    ASSIGN_OR_RETURN(Hash sibling, RangeHash(begin, begin + k, nodes));
    out.push_back(sibling);
  }
  return absl::OkStatus();
}

Hash Sha256(absl::string_view bytes) {
  Hash out;
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  return out;
}

absl::string_view View(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

absl::Status Mismatch(absl::string_view what) { return absl::FailedPreconditionError(what); }

}  // namespace

Hash LeafHash(absl::string_view leaf) {
  std::string buffer(1, '\x00');
  buffer.append(leaf.data(), leaf.size());
  return Sha256(buffer);
}

Hash NodeHash(const Hash& left, const Hash& right) {
  std::array<char, 65> buffer;
  buffer[0] = '\x01';
  std::copy(left.begin(), left.end(), buffer.begin() + 1);
  std::copy(right.begin(), right.end(), buffer.begin() + 33);
  return Sha256(absl::string_view(buffer.data(), buffer.size()));
}

Hash EmptyRoot() { return Sha256(""); }

absl::StatusOr<Hash> FromBytes(absl::string_view bytes) {
  if (bytes.size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat("a hash is 32 bytes, not ", bytes.size()));
  }
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

std::string ToHex(const Hash& h) { return absl::BytesToHexString(View(h)); }

std::string TreeHeadMessage(absl::string_view log_id, uint64_t tree_size, uint64_t timestamp_ms,
                            const Hash& root) {
  std::string out;
  out.reserve(82);
  out.push_back('\x00');  // version v1
  out.push_back('\x01');  // signature type tree_hash
  for (uint64_t v : {timestamp_ms, tree_size}) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  }
  out.append(reinterpret_cast<const char*>(root.data()), root.size());
  out.append(log_id.data(), log_id.size());
  return out;
}

std::string LogId(absl::string_view name) { return ToBytes(Sha256(name)); }

absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, NodeReader nodes) {
  const uint64_t n = end - begin;
  if (IsPerfect(begin, n)) {
    const int level = absl::countr_zero(n);
    return nodes(level, begin >> level);
  }
  const uint64_t mid = begin + Split(n);
  ASSIGN_OR_RETURN(Hash left, RangeHash(begin, mid, nodes));
  ASSIGN_OR_RETURN(Hash right, RangeHash(mid, end, nodes));
  return NodeHash(left, right);
}

absl::StatusOr<Hash> Root(uint64_t size, NodeReader nodes) {
  if (size == 0) return EmptyRoot();
  return RangeHash(0, size, nodes);
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, NodeReader nodes) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf ", index, " is not in a tree of ", size, " leaves"));
  }
  std::vector<Hash> out;
  RETURN_IF_ERROR(Path(index, 0, size, nodes, out));
  return out;
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t first, uint64_t second,
                                                   NodeReader nodes) {
  if (first == 0 || first > second) {
    return absl::InvalidArgumentError(absl::StrCat("no consistency proof from ", first, " to ",
                                                   second, " leaves: need 0 < first <= second"));
  }
  std::vector<Hash> out;
  RETURN_IF_ERROR(SubProof(first, 0, second, true, nodes, out));
  return out;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return Mismatch(absl::StrCat("leaf ", index, " is not in a tree of ", size, " leaves"));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return Mismatch("the inclusion proof is longer than the tree is deep");
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("the inclusion proof is shorter than the tree is deep");
  if (r != root) return Mismatch("the inclusion proof leads to another root");
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                               const Hash& second_root, absl::Span<const Hash> proof) {
  if (first == 0 || first > second) {
    return Mismatch(absl::StrCat("no consistency from ", first, " to ", second, " leaves"));
  }
  if (first == second) {
    if (!proof.empty()) return Mismatch("a consistency proof between equal sizes must be empty");
    if (first_root != second_root) return Mismatch("two roots of the same size differ");
    return absl::OkStatus();
  }
  if (proof.empty()) return Mismatch("the consistency proof is empty");
  std::vector<Hash> path;
  if (absl::has_single_bit(first)) path.push_back(first_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = first - 1;
  uint64_t sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Mismatch("the consistency proof is too long");
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("the consistency proof is too short");
  if (fr != first_root) return Mismatch("the consistency proof does not lead to the first root");
  if (sr != second_root) return Mismatch("the consistency proof does not lead to the second root");
  return absl::OkStatus();
}

void CompactRange::Append(
    const Hash& leaf_hash,
    absl::FunctionRef<void(int level, uint64_t index, const Hash& hash)> completed) {
  const uint64_t index = size_++;
  completed(0, index, leaf_hash);
  edge_.emplace_back(0, leaf_hash);
  while (edge_.size() >= 2 && edge_[edge_.size() - 2].first == edge_.back().first) {
    const int level = edge_.back().first + 1;
    const Hash merged = NodeHash(edge_[edge_.size() - 2].second, edge_.back().second);
    edge_.pop_back();
    edge_.back() = {level, merged};
    completed(level, index >> level, merged);
  }
}

void CompactRange::Append(const Hash& leaf_hash) {
  Append(leaf_hash, [](int, uint64_t, const Hash&) {});
}

Hash CompactRange::Root() const {
  if (edge_.empty()) return EmptyRoot();
  Hash r = edge_.back().second;
  for (size_t i = edge_.size() - 1; i-- > 0;) r = NodeHash(edge_[i].second, r);
  return r;
}

}  // namespace medvault::merkle
