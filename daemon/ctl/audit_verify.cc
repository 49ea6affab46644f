#include "daemon/ctl/audit_verify.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/common/openssl_util.h"
#include "daemon/common/status_macros.h"

namespace medvault::ctl {
namespace {

using merkle::Hash;

// The log key (DER SubjectPublicKeyInfo), parsed once for every head.
absl::StatusOr<openssl::KeyPtr> ParseLogKey(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  openssl::KeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (key == nullptr) {
    return absl::InvalidArgumentError("the log's public key is not a DER SubjectPublicKeyInfo");
  }
  return key;
}

// Whether `signature` (DER ECDSA) is `key`'s over SHA-256 of `message`.
absl::StatusOr<bool> SignatureVerifies(EVP_PKEY* key, const std::string& message,
                                       const std::string& signature) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return absl::InternalError("cannot set up signature verification");
  }
  const int verified = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();  // a bad signature leaves its reason on OpenSSL's queue
  return verified == 1;
}

// Every perfect subtree of the recomputed tree, level by level.
class MemoryTree {
 public:
  void Append(const Hash& leaf_hash) {
    range_.Append(leaf_hash, [&](int level, uint64_t, const Hash& hash) {
      if (levels_.size() <= static_cast<size_t>(level)) levels_.resize(level + 1);
      levels_[level].push_back(hash);
    });
  }
  uint64_t size() const { return range_.size(); }
  auto Reader() const {
    return [this](int level, uint64_t index) -> absl::StatusOr<Hash> {
      if (static_cast<size_t>(level) >= levels_.size() || index >= levels_[level].size()) {
        return absl::NotFoundError(absl::StrCat("no subtree ", level, "/", index));
      }
      return levels_[level][index];
    };
  }
  // The root at `size` <= size().
  Hash Root(uint64_t size) const { return *merkle::Root(size, Reader()); }
  const std::vector<Hash>& leaves() const {
    static const std::vector<Hash> kNone;
    return levels_.empty() ? kNone : levels_[0];
  }

 private:
  merkle::CompactRange range_;
  std::vector<std::vector<Hash>> levels_;
};

// A signed size or an anchored one, checked against the recomputed tree.
struct Commitment {
  uint64_t tree_size;
  Hash root;
  std::string what;  // "signed tree head at size 12 (2026-...)"
};

class Checker {
 public:
  Checker(const AuditLogCopy& log, AuditVerification& out) : log_(log), out_(out) {}

  absl::Status Run() {
    ReadLeaves();
    std::vector<Commitment> signed_heads;
    RETURN_IF_ERROR(CheckHeads(signed_heads));
    CheckCommitments(signed_heads, "signed tree heads");
    if (log_.anchors.has_value()) {
      std::vector<Commitment> anchors;
      for (const ChainAnchor& a : *log_.anchors) {
        absl::StatusOr<Hash> root = merkle::FromBytes(a.root_hash);
        if (!root.ok()) {
          Problem(absl::StrCat("the anchor in block ", a.block_number, " has a malformed root"));
          continue;
        }
        anchors.push_back({a.tree_size, *root,
                           absl::StrCat("the anchor on chain at size ", a.tree_size, " (block ",
                                        a.block_number, ")")});
        ++out_.anchors_checked;
      }
      CheckCommitments(anchors, "anchors");
    }
    Localise(signed_heads);
    if (exact_.has_value()) {
      out_.first_bad = exact_;
    } else if (range_begin_.has_value()) {
      out_.first_bad = range_begin_;
      out_.first_bad_end = range_end_;
    }
    return absl::OkStatus();
  }

 private:
  void Problem(std::string text) { out_.problems.push_back(std::move(text)); }
  void Exact(uint64_t index) { exact_ = std::min(exact_.value_or(index), index); }

  void ReadLeaves() {
    uint64_t expected = 0;
    for (const auto& [index, leaf] : log_.leaves) {
      if (index > expected) {
        Problem(index - expected == 1
                    ? absl::StrCat("entry ", expected, " is missing: deleted from the log")
                    : absl::StrCat("entries ", expected, " to ", index - 1,
                                   " are missing: deleted from the log"));
        Exact(expected);
      } else if (index < expected) {
        Problem(absl::StrCat("entry ", index, " appears out of order"));
        Exact(index);
      }
      expected = index + 1;
      tree_.Append(merkle::LeafHash(leaf));
    }
    out_.entries = tree_.size();
  }

  absl::Status CheckHeads(std::vector<Commitment>& signed_heads) {
    ASSIGN_OR_RETURN(openssl::KeyPtr key, ParseLogKey(log_.public_key_der));
    std::vector<v1::SignedTreeHead> heads = log_.heads;
    std::sort(heads.begin(), heads.end(),
              [](const auto& a, const auto& b) { return a.tree_size() < b.tree_size(); });
    for (const v1::SignedTreeHead& head : heads) {
      ++out_.heads_checked;
      const std::string what = absl::StrCat(
          "the signed tree head at size ", head.tree_size(), " (",
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                           absl::FromUnixMillis(static_cast<int64_t>(head.timestamp_ms())),
                           absl::UTCTimeZone()),
          ")");
      absl::StatusOr<Hash> root = merkle::FromBytes(head.root_hash());
      if (!root.ok()) {
        Problem(absl::StrCat(what, " has a malformed root"));
        continue;
      }
      if (!head.log_id().empty() && head.log_id() != log_.log_id) {
        Problem(absl::StrCat(what, " names another log"));
        continue;
      }
      ASSIGN_OR_RETURN(bool valid,
                       SignatureVerifies(key.get(),
                                         merkle::TreeHeadMessage(log_.log_id, head.tree_size(),
                                                                 head.timestamp_ms(), *root),
                                         head.signature()));
      if (!valid) {
        Problem(absl::StrCat(what,
                             ": the signature does not verify with the log's key (re-signed "
                             "with another key, or altered)"));
        continue;
      }
      signed_heads.push_back({head.tree_size(), *root, what});
    }
    return absl::OkStatus();
  }

  // Each commitment against the recomputed tree, and consecutive ones
  // against each other by a consistency proof over the recomputed tree.
  void CheckCommitments(std::vector<Commitment> commitments, absl::string_view kind) {
    std::sort(commitments.begin(), commitments.end(),
              [](const auto& a, const auto& b) { return a.tree_size < b.tree_size; });
    const uint64_t n = tree_.size();
    uint64_t last_good = 0;
    const Commitment* previous = nullptr;
    for (const Commitment& c : commitments) {
      if (c.tree_size > n) {
        Problem(absl::StrCat(c.what, " is beyond the log's ", n, " entries: entries from ", n,
                             " on are gone (the log truncated, or replaced by an older copy)"));
        Exact(n);
        continue;
      }
      if (c.tree_size == 0) continue;
      if (tree_.Root(c.tree_size) != c.root) {
        Problem(absl::StrCat(c.what, ": the entries no longer give its root (rewritten)"));
        if (!range_begin_.has_value() || last_good < *range_begin_) {
          range_begin_ = last_good;
          range_end_ = c.tree_size;
        }
        previous = nullptr;
        continue;
      }
      last_good = c.tree_size;
      if (previous != nullptr && previous->tree_size < c.tree_size) {
        absl::StatusOr<std::vector<Hash>> proof =
            merkle::ConsistencyProof(previous->tree_size, c.tree_size, tree_.Reader());
        absl::Status consistent = proof.ok()
                                      ? merkle::VerifyConsistency(previous->tree_size, c.tree_size,
                                                                  previous->root, c.root, *proof)
                                      : proof.status();
        ++out_.consistency_checked;
        if (!consistent.ok()) {
          Problem(absl::StrCat(kind, " at sizes ", previous->tree_size, " and ", c.tree_size,
                               " are not consistent: ", consistent.message()));
        }
      }
      previous = &c;
    }
  }

  // With the database's own leaf hashes: once they give a signed root,
  // they say exactly which entry changed.
  void Localise(const std::vector<Commitment>& signed_heads) {
    const std::vector<Hash>& stored = log_.stored_leaf_hashes;
    if (stored.empty()) return;
    // The largest signed size whose root the stored hashes give: up to
    // there they are vouched for. Heads come smallest first.
    merkle::CompactRange range;
    uint64_t vouched = 0;
    for (const Commitment& c : signed_heads) {
      if (c.tree_size > stored.size()) break;
      while (range.size() < c.tree_size) range.Append(stored[range.size()]);
      if (range.Root() == c.root) vouched = c.tree_size;
    }
    const std::vector<Hash>& recomputed = tree_.leaves();
    for (uint64_t i = 0; i < vouched; ++i) {
      if (i >= recomputed.size() || recomputed[i] != stored[i]) {
        Exact(i);
        return;
      }
    }
  }

  const AuditLogCopy& log_;
  AuditVerification& out_;
  MemoryTree tree_;
  std::optional<uint64_t> exact_;
  std::optional<uint64_t> range_begin_;
  std::optional<uint64_t> range_end_;
};

}  // namespace

absl::StatusOr<AuditVerification> VerifyAuditLog(const AuditLogCopy& log) {
  AuditVerification out;
  Checker checker(log, out);
  RETURN_IF_ERROR(checker.Run());
  return out;
}

}  // namespace medvault::ctl
