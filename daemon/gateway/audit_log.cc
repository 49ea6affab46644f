#include "daemon/gateway/audit_log.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

constexpr char kSizes[] =
    "SELECT (SELECT COALESCE(MAX(seq), 0) FROM audit_events), "
    "(SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_tree WHERE level = 0)";
constexpr char kReadNode[] = "SELECT hash FROM audit_tree WHERE level = ? AND idx = ?";

absl::Status TreeBehind(int64_t events, int64_t leaves) {
  return absl::DataLossError(absl::StrCat("registry database: the audit tree has ", leaves,
                                          " leaves for ", events, " audit events"));
}

// Reads stored nodes for merkle.h, one prepared statement for all.
class NodeStore {
 public:
  explicit NodeStore(sqlite3* db) : read_(db, RegistryDb::kOwner, kReadNode) {}
  absl::Status status() const { return read_.status(); }

  auto Reader() {
    return [this](int level, uint64_t index) { return Read(level, index); };
  }

  absl::StatusOr<merkle::Hash> Read(int level, uint64_t index) {
    read_.Reset();
    read_.Bind(1, level).Bind(2, static_cast<int64_t>(index));
    ASSIGN_OR_RETURN(bool found, read_.Step());
    if (!found) {
      return absl::DataLossError(
          absl::StrCat("registry database: audit tree node ", level, "/", index, " is missing"));
    }
    return merkle::FromBytes(read_.Blob(0));
  }

 private:
  SqliteStatement read_;
};

// The tree's size, checked to cover `limit` leaves.
absl::Status CheckSize(sqlite3* db, uint64_t size) {
  ASSIGN_OR_RETURN(uint64_t have, AuditTreeSize(db));
  if (size > have) {
    return absl::InvalidArgumentError(
        absl::StrCat("the audit log has ", have, " entries, fewer than ", size));
  }
  return absl::OkStatus();
}

}  // namespace

std::string CanonicalEvent(const v1::AuditEvent& event) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    event.SerializeToCodedStream(&coded);
  }
  return out;
}

AuditAppender::AuditAppender(sqlite3* db)
    : db_(db),
      size_(db, RegistryDb::kOwner, kSizes),
      insert_event_(db, RegistryDb::kOwner,
                    "INSERT INTO audit_events (seq, time, action, patient_id, event) "
                    "VALUES (?, ?, ?, ?, ?)"),
      insert_node_(db, RegistryDb::kOwner,
                   "INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)"),
      read_node_(db, RegistryDb::kOwner, kReadNode) {}

absl::StatusOr<int64_t> AuditAppender::Append(const v1::AuditEvent& event) {
  for (const SqliteStatement* s : {&size_, &insert_event_, &insert_node_, &read_node_}) {
    RETURN_IF_ERROR(s->status());
  }
  size_.Reset();
  RETURN_IF_ERROR(size_.Step().status());
  const int64_t events = size_.Int(0);
  const int64_t leaves = size_.Int(1);
  if (events != leaves) return TreeBehind(events, leaves);

  const std::string leaf = CanonicalEvent(event);
  const int64_t ms = event.time().seconds() * 1000 + event.time().nanos() / 1000000;
  insert_event_.Reset();
  insert_event_.Bind(1, events + 1).Bind(2, ms).BindText(3, event.action());
  insert_event_.BindText(4, event.patient_id()).BindBlob(5, leaf);
  RETURN_IF_ERROR(insert_event_.Step().status());
  RETURN_IF_ERROR(AddLeaf(static_cast<uint64_t>(events), merkle::LeafHash(leaf)));
  return events + 1;
}

absl::Status AuditAppender::AddLeaf(uint64_t index, const merkle::Hash& leaf_hash) {
  merkle::Hash hash = leaf_hash;
  int level = 0;
  uint64_t at = index;
  while (true) {
    insert_node_.Reset();
    insert_node_.Bind(1, level).Bind(2, static_cast<int64_t>(at));
    insert_node_.BindBlob(3, merkle::ToBytes(hash));
    RETURN_IF_ERROR(insert_node_.Step().status());
    // A right child completes its parent, with its left sibling.
    if ((at & 1) == 0) return absl::OkStatus();
    read_node_.Reset();
    read_node_.Bind(1, level).Bind(2, static_cast<int64_t>(at - 1));
    ASSIGN_OR_RETURN(bool found, read_node_.Step());
    if (!found) {
      return absl::DataLossError(
          absl::StrCat("registry database: audit tree node ", level, "/", at - 1, " is missing"));
    }
    ASSIGN_OR_RETURN(merkle::Hash left, merkle::FromBytes(read_node_.Blob(0)));
    hash = merkle::NodeHash(left, hash);
    ++level;
    at >>= 1;
  }
}

absl::StatusOr<int64_t> AppendAuditEvent(sqlite3* db, const v1::AuditEvent& event) {
  AuditAppender appender(db);
  return appender.Append(event);
}

absl::Status CatchUpAuditTree(sqlite3* db) {
  SqliteStatement sizes(db, RegistryDb::kOwner, kSizes);
  RETURN_IF_ERROR(sizes.status());
  RETURN_IF_ERROR(sizes.Step().status());
  const int64_t events = sizes.Int(0);
  const int64_t leaves = sizes.Int(1);
  if (leaves == events) return absl::OkStatus();
  if (leaves > events) return TreeBehind(events, leaves);
  AuditAppender appender(db);
  uint64_t expected = static_cast<uint64_t>(leaves);
  RETURN_IF_ERROR(
      ForEachAuditLeaf(db, expected, [&](uint64_t index, const std::string& leaf) -> absl::Status {
        if (index != expected) {
          return absl::DataLossError(
              absl::StrCat("registry database: audit event ", expected + 1, " is missing"));
        }
        ++expected;
        return appender.AddLeaf(index, merkle::LeafHash(leaf));
      }));
  return absl::OkStatus();
}

absl::Status ForEachAuditLeaf(sqlite3* db, uint64_t start,
                              absl::FunctionRef<absl::Status(uint64_t, const std::string&)> leaf) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT seq, event FROM audit_events WHERE seq > ? ORDER BY seq");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(start));
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::OkStatus();
    RETURN_IF_ERROR(leaf(static_cast<uint64_t>(q.Int(0) - 1), q.Blob(1)));
  }
}

absl::StatusOr<uint64_t> AuditTreeSize(sqlite3* db) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_tree WHERE level = 0");
  RETURN_IF_ERROR(q.status());
  RETURN_IF_ERROR(q.Step().status());
  return static_cast<uint64_t>(q.Int(0));
}

absl::StatusOr<merkle::Hash> AuditRoot(sqlite3* db, uint64_t size) {
  RETURN_IF_ERROR(CheckSize(db, size));
  NodeStore nodes(db);
  RETURN_IF_ERROR(nodes.status());
  return merkle::Root(size, nodes.Reader());
}

absl::StatusOr<std::vector<merkle::Hash>> AuditInclusionProof(sqlite3* db, uint64_t index,
                                                              uint64_t size) {
  RETURN_IF_ERROR(CheckSize(db, size));
  NodeStore nodes(db);
  RETURN_IF_ERROR(nodes.status());
  return merkle::InclusionProof(index, size, nodes.Reader());
}

absl::StatusOr<std::vector<merkle::Hash>> AuditConsistencyProof(sqlite3* db, uint64_t first,
                                                                uint64_t second) {
  RETURN_IF_ERROR(CheckSize(db, second));
  NodeStore nodes(db);
  RETURN_IF_ERROR(nodes.status());
  return merkle::ConsistencyProof(first, second, nodes.Reader());
}

absl::StatusOr<std::vector<std::pair<uint64_t, std::string>>> AuditLeaves(sqlite3* db,
                                                                          uint64_t start,
                                                                          uint64_t count) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT seq, event FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(start)).Bind(2, static_cast<int64_t>(start + count));
  std::vector<std::pair<uint64_t, std::string>> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.emplace_back(static_cast<uint64_t>(q.Int(0) - 1), q.Blob(1));
  }
  return out;
}

absl::StatusOr<std::string> BoundLogName(sqlite3* db) {
  SqliteStatement q(db, RegistryDb::kOwner, "SELECT log_name FROM audit_log_name");
  RETURN_IF_ERROR(q.status());
  ASSIGN_OR_RETURN(bool found, q.Step());
  return found ? q.Text(0) : std::string();
}

absl::Status CheckLogName(sqlite3* db, const std::string& name) {
  ASSIGN_OR_RETURN(std::string bound, BoundLogName(db));
  if (bound.empty() || bound == name) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "gateway.audit.log_name is \"", name, "\" but this registry database's audit log is \"",
      bound, "\": a log keeps its name, its anchors on chain are under it"));
}

absl::Status StoreTreeHead(sqlite3* db, const std::string& log_name,
                           const v1::SignedTreeHead& head) {
  RETURN_IF_ERROR(CheckLogName(db, log_name));
  {
    SqliteStatement bind(db, RegistryDb::kOwner,
                         "INSERT OR IGNORE INTO audit_log_name (log_name) VALUES (?)");
    RETURN_IF_ERROR(bind.status());
    bind.BindText(1, log_name);
    RETURN_IF_ERROR(bind.Step().status());
  }
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO audit_tree_heads (tree_size, timestamp_ms, root_hash, signature) "
                    "VALUES (?, ?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(head.tree_size()))
      .Bind(2, static_cast<int64_t>(head.timestamp_ms()))
      .BindBlob(3, head.root_hash())
      .BindBlob(4, head.signature());
  return q.Step().status();
}

namespace {

// Signed heads as `query` (tree_size, timestamp_ms, root_hash, signature)
// gives them.
absl::StatusOr<std::vector<v1::SignedTreeHead>> ReadTreeHeads(sqlite3* db, const char* query) {
  SqliteStatement q(db, RegistryDb::kOwner, query);
  RETURN_IF_ERROR(q.status());
  std::vector<v1::SignedTreeHead> heads;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return heads;
    v1::SignedTreeHead& head = heads.emplace_back();
    head.set_tree_size(static_cast<uint64_t>(q.Int(0)));
    head.set_timestamp_ms(static_cast<uint64_t>(q.Int(1)));
    head.set_root_hash(q.Blob(2));
    head.set_signature(q.Blob(3));
  }
}

}  // namespace

absl::StatusOr<std::optional<v1::SignedTreeHead>> LatestTreeHead(sqlite3* db) {
  ASSIGN_OR_RETURN(std::vector<v1::SignedTreeHead> heads,
                   ReadTreeHeads(db,
                                 "SELECT tree_size, timestamp_ms, root_hash, signature FROM "
                                 "audit_tree_heads ORDER BY tree_size DESC LIMIT 1"));
  if (heads.empty()) return std::nullopt;
  return std::move(heads.front());
}

absl::StatusOr<std::vector<v1::SignedTreeHead>> AuditTreeHeads(sqlite3* db) {
  return ReadTreeHeads(db,
                       "SELECT tree_size, timestamp_ms, root_hash, signature FROM "
                       "audit_tree_heads ORDER BY tree_size");
}

absl::StatusOr<AnchorRequestRow> LatestAnchorRequest(sqlite3* db) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT tree_size, requested_at FROM audit_anchor_requests "
                    "ORDER BY tree_size DESC LIMIT 1");
  RETURN_IF_ERROR(q.status());
  AnchorRequestRow row;
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (found) {
    row.tree_size = static_cast<uint64_t>(q.Int(0));
    row.requested_at_ms = q.Int(1);
  }
  return row;
}

absl::Status StoreAnchorRequest(sqlite3* db, uint64_t tree_size, uint64_t outbox_id,
                                int64_t requested_at_ms) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT OR REPLACE INTO audit_anchor_requests (tree_size, outbox_id, "
                    "requested_at) VALUES (?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  q.Bind(1, static_cast<int64_t>(tree_size))
      .Bind(2, static_cast<int64_t>(outbox_id))
      .Bind(3, requested_at_ms);
  return q.Step().status();
}

absl::StatusOr<std::vector<v1::AuditEvent>> PatientAuditEvents(sqlite3* db,
                                                               const std::string& patient_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT event FROM audit_events WHERE patient_id = ? ORDER BY seq");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  std::vector<v1::AuditEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (!events.emplace_back().ParseFromString(q.Blob(0))) {
      return absl::DataLossError("registry database: an audit event does not parse");
    }
  }
  return events;
}

}  // namespace medvault::gateway
