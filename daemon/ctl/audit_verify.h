// The compliance officer's check of an audit log, independent of the
// running gateway: the leaves (from a copy of the registry database or
// from an export), the signed tree heads, the log's public key and the
// anchors read from the chain. Everything is recomputed from the leaves;
// nothing the log stores about itself is trusted unless a signature or an
// anchor vouches for it.
#ifndef MEDVAULT_DAEMON_CTL_AUDIT_VERIFY_H_
#define MEDVAULT_DAEMON_CTL_AUDIT_VERIFY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/common/merkle.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::ctl {

// A tree head the AuditAnchor contract holds for the log.
struct ChainAnchor {
  uint64_t tree_size = 0;
  std::string root_hash;  // 32 bytes
  uint64_t block_number = 0;
};

struct AuditLogCopy {
  std::string log_id;  // 32 bytes
  // (leaf index, leaf bytes) in index order, as the source holds them.
  std::vector<std::pair<uint64_t, std::string>> leaves;
  // Level-0 hashes the database's tree holds, by leaf index; empty for an
  // export. Trusted only once its root matches a verified signed head.
  std::vector<merkle::Hash> stored_leaf_hashes;
  std::vector<v1::SignedTreeHead> heads;  // any order
  std::string public_key_der;             // the log key, SubjectPublicKeyInfo
  // Anchors from the chain, any order; absent when the chain was not read.
  std::optional<std::vector<ChainAnchor>> anchors;
};

struct AuditVerification {
  uint64_t entries = 0;
  uint64_t heads_checked = 0;
  uint64_t anchors_checked = 0;
  uint64_t consistency_checked = 0;
  // What does not match, one line each, most telling first.
  std::vector<std::string> problems;
  // The first leaf index that no longer matches, when it can be named:
  // exactly, or as the lowest of a range [first_bad, first_bad_end).
  std::optional<uint64_t> first_bad;
  std::optional<uint64_t> first_bad_end;
  bool ok() const { return problems.empty(); }
};

// Checks `log`: every leaf present in order, each signed head's signature
// and root, each anchor's root, consistency between consecutive anchors,
// and names the first entry that no longer matches. INVALID_ARGUMENT only
// for unusable input (a public key that does not parse).
absl::StatusOr<AuditVerification> VerifyAuditLog(const AuditLogCopy& log);

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_AUDIT_VERIFY_H_
