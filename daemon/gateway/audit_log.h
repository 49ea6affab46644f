// The audit log in the registry database: audit events appended in the
// caller's transaction as leaves of an RFC 6962 Merkle tree (audit_events
// and audit_tree), its signed tree heads (audit_tree_heads) and the proofs
// AuditService serves. A change whose event cannot be written is rolled
// back with it (fail closed).
#ifndef MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_
#define MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_

#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "daemon/common/merkle.h"
#include "daemon/common/sqlite.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::gateway {

// The event's deterministic serialisation: its leaf in the log.
std::string CanonicalEvent(const v1::AuditEvent& event);

// Appends events inside the current transaction, each as the next leaf,
// with the tree nodes it completes. Statements are prepared once, so a
// batch of events in one transaction costs one preparation.
class AuditAppender {
 public:
  explicit AuditAppender(sqlite3* db);

  // The event's sequence number (its leaf index + 1). DATA_LOSS when the
  // tree does not cover every event before it (fail closed).
  absl::StatusOr<int64_t> Append(const v1::AuditEvent& event);

  // Adds the tree nodes of leaf `index` (whose event is already stored).
  absl::Status AddLeaf(uint64_t index, const merkle::Hash& leaf_hash);

 private:
  sqlite3* const db_;
  SqliteStatement size_;
  SqliteStatement insert_event_;
  SqliteStatement insert_node_;
  SqliteStatement read_node_;
};

// Appends one event in the current transaction; its sequence number.
// Prepares its statements each time: the services use
// RegistryDb::audit_appender() instead.
absl::StatusOr<int64_t> AppendAuditEvent(sqlite3* db, const v1::AuditEvent& event);

// Adds tree nodes for events written before the tree existed (a database
// of schema 1). Run once at start, in a transaction; OK when none.
absl::Status CatchUpAuditTree(sqlite3* db);

// The number of leaves in the tree.
absl::StatusOr<uint64_t> AuditTreeSize(sqlite3* db);

// Root and proofs over the stored tree (see merkle.h), for sizes up to
// AuditTreeSize.
absl::StatusOr<merkle::Hash> AuditRoot(sqlite3* db, uint64_t size);
absl::StatusOr<std::vector<merkle::Hash>> AuditInclusionProof(sqlite3* db, uint64_t index,
                                                              uint64_t size);
absl::StatusOr<std::vector<merkle::Hash>> AuditConsistencyProof(sqlite3* db, uint64_t first,
                                                                uint64_t second);

// Calls `leaf` with (index, canonical bytes) for each entry from leaf
// index `start` on, in order, as the events table holds them (a missing
// entry is skipped, not filled in: callers check the indexes).
absl::Status ForEachAuditLeaf(sqlite3* db, uint64_t start,
                              absl::FunctionRef<absl::Status(uint64_t, const std::string&)> leaf);

// Leaves [start, start + count) as (index, canonical bytes); fewer at the
// end of the log.
absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> AuditLeaves(sqlite3* db,
                                                                          uint64_t start,
                                                                          uint64_t count);

// The log keeps the name it signed its first head under: its anchors on
// chain are under that name's id. OK when `name` is that name, or when no
// head is signed yet; FAILED_PRECONDITION naming both otherwise.
absl::Status CheckLogName(sqlite3* db, const std::string& name);
// The name the log was bound to, "" before its first signed head.
absl::StatusOr<std::string> BoundLogName(sqlite3* db);

// Stores a signed head (binding the log to `log_name` with the first).
absl::Status StoreTreeHead(sqlite3* db, const std::string& log_name,
                           const v1::SignedTreeHead& head);
// The largest signed head, if any; `log_id` is filled in by the caller.
absl::StatusOr<std::optional<v1::SignedTreeHead>> LatestTreeHead(sqlite3* db);
// Every signed head, smallest first; `log_id` is filled in by the caller.
absl::StatusOr<std::vector<v1::SignedTreeHead>> AuditTreeHeads(sqlite3* db);

// The largest tree size handed to the signer for anchoring (0 if none) and
// when.
struct AnchorRequestRow {
  uint64_t tree_size = 0;
  int64_t requested_at_ms = 0;
};
absl::StatusOr<AnchorRequestRow> LatestAnchorRequest(sqlite3* db);
absl::Status StoreAnchorRequest(sqlite3* db, uint64_t tree_size, uint64_t outbox_id,
                                int64_t requested_at_ms);

// The audit events about `patient_id`, oldest first.
absl::StatusOr<std::vector<v1::AuditEvent>> PatientAuditEvents(sqlite3* db,
                                                               const std::string& patient_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_
