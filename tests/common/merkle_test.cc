#include "daemon/common/merkle.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace medvault::merkle {
namespace {

// The RFC's definitions, computed naively from the leaves: what the
// node-based proofs must equal.
Hash Mth(const std::vector<Hash>& leaves, uint64_t begin, uint64_t end) {
  if (end == begin) return EmptyRoot();
  if (end - begin == 1) return leaves[begin];
  uint64_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  return NodeHash(Mth(leaves, begin, begin + k), Mth(leaves, begin + k, end));
}

void NaivePath(const std::vector<Hash>& leaves, uint64_t m, uint64_t begin, uint64_t end,
               std::vector<Hash>& out) {
  if (end - begin <= 1) return;
  uint64_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  if (m < begin + k) {
    NaivePath(leaves, m, begin, begin + k, out);
    out.push_back(Mth(leaves, begin + k, end));
  } else {
    NaivePath(leaves, m, begin + k, end, out);
    out.push_back(Mth(leaves, begin, begin + k));
  }
}

void NaiveSubProof(const std::vector<Hash>& leaves, uint64_t m, uint64_t begin, uint64_t end,
                   bool whole, std::vector<Hash>& out) {
  if (m == end - begin) {
    if (!whole) out.push_back(Mth(leaves, begin, end));
    return;
  }
  uint64_t k = 1;
  while (k * 2 < end - begin) k *= 2;
  if (m <= k) {
    NaiveSubProof(leaves, m, begin, begin + k, whole, out);
    out.push_back(Mth(leaves, begin + k, end));
  } else {
    NaiveSubProof(leaves, m - k, begin + k, end, false, out);
    out.push_back(Mth(leaves, begin, begin + k));
  }
}

class MerkleTest : public ::testing::Test {
 protected:
  void Grow(uint64_t n) {
    while (leaves_.size() < n) {
      const Hash leaf = LeafHash(absl::StrCat("event ", leaves_.size()));
      leaves_.push_back(leaf);
      range_.Append(leaf, [&](int level, uint64_t index, const Hash& hash) {
        EXPECT_TRUE(nodes_.emplace(std::make_pair(level, index), hash).second);
      });
    }
  }
  absl::StatusOr<Hash> Node(int level, uint64_t index) {
    auto it = nodes_.find({level, index});
    if (it == nodes_.end()) return absl::NotFoundError(absl::StrCat(level, "/", index));
    return it->second;
  }
  auto Reader() {
    return [this](int level, uint64_t index) { return Node(level, index); };
  }

  std::vector<Hash> leaves_;
  std::map<std::pair<int, uint64_t>, Hash> nodes_;
  CompactRange range_;
};

TEST_F(MerkleTest, KnownRoots) {
  EXPECT_EQ(ToHex(EmptyRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 6962's leaf hash of the empty leaf, as Certificate Transparency
  // implementations publish it.
  EXPECT_EQ(ToHex(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST_F(MerkleTest, ProofsEqualTheRfcDefinitionsAndVerify) {
  for (uint64_t n = 1; n <= 70; ++n) {
    Grow(n);
    ASSERT_EQ(range_.size(), n);
    const Hash root = Mth(leaves_, 0, n);
    EXPECT_EQ(range_.Root(), root) << n;
    ASSERT_EQ(*Root(n, Reader()), root) << n;
    for (uint64_t m = 0; m < n; ++m) {
      std::vector<Hash> naive;
      NaivePath(leaves_, m, 0, n, naive);
      auto proof = InclusionProof(m, n, Reader());
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, naive) << m << " of " << n;
      EXPECT_TRUE(VerifyInclusion(m, n, leaves_[m], *proof, root).ok()) << m << " of " << n;
      if (n > 1) {
        EXPECT_FALSE(VerifyInclusion((m + 1) % n, n, leaves_[m], *proof, root).ok());
      }
      if (!proof->empty()) {
        std::vector<Hash> bad = *proof;
        bad.back()[7] ^= 1;
        EXPECT_FALSE(VerifyInclusion(m, n, leaves_[m], bad, root).ok());
        bad = *proof;
        bad.pop_back();
        EXPECT_FALSE(VerifyInclusion(m, n, leaves_[m], bad, root).ok());
      }
      std::vector<Hash> longer = *proof;
      longer.push_back(root);
      EXPECT_FALSE(VerifyInclusion(m, n, leaves_[m], longer, root).ok());
    }
    for (uint64_t m = 1; m <= n; ++m) {
      std::vector<Hash> naive;
      NaiveSubProof(leaves_, m, 0, n, true, naive);
      auto proof = ConsistencyProof(m, n, Reader());
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, naive) << m << " to " << n;
      const Hash first = Mth(leaves_, 0, m);
      EXPECT_TRUE(VerifyConsistency(m, n, first, root, *proof).ok()) << m << " to " << n;
      Hash wrong = first;
      wrong[0] ^= 0x80;
      EXPECT_FALSE(VerifyConsistency(m, n, wrong, root, *proof).ok()) << m << " to " << n;
      for (size_t i = 0; i < proof->size(); ++i) {
        std::vector<Hash> bad = *proof;
        bad[i][31] ^= 1;
        EXPECT_FALSE(VerifyConsistency(m, n, first, root, bad).ok()) << m << " to " << n;
      }
      if (m < n) {
        EXPECT_FALSE(VerifyConsistency(m, n, first, root, {}).ok());
      }
    }
  }
}

TEST_F(MerkleTest, BadArguments) {
  Grow(5);
  EXPECT_EQ(InclusionProof(5, 5, Reader()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(0, 5, Reader()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(4, 3, Reader()).status().code(), absl::StatusCode::kInvalidArgument);
  // A store missing a node says so rather than giving a wrong proof.
  nodes_.erase({2, 0});
  EXPECT_EQ(InclusionProof(4, 5, Reader()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FromBytes("short").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace medvault::merkle
