#include "daemon/gateway/dispute_store.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

// The amendment that answered the dispute: the column once a transition
// stored it, else the record RecordService.AmendRecord wrote with it.
absl::StatusOr<std::string> AmendmentOf(sqlite3* db, const std::string& dispute_id,
                                        std::string stored) {
  if (!stored.empty()) return stored;
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT id FROM records WHERE dispute_id = ? ORDER BY created_at LIMIT 1");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, dispute_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  return found ? q.Text(0) : std::string();
}

constexpr char kDisputeColumns[] =
    "SELECT id, patient_id, record_id, state, created_at, state_entered_at, amendment_id, "
    "obligations FROM disputes ";

absl::StatusOr<v1::Dispute> DisputeFromRow(sqlite3* db, SqliteStatement& q) {
  v1::Dispute dispute;
  if (!dispute.ParseFromString(q.Blob(7))) {
    return absl::InternalError("registry database: unreadable dispute obligations");
  }
  dispute.set_dispute_id(q.Text(0));
  dispute.set_patient_id(q.Text(1));
  dispute.set_record_id(q.Text(2));
  dispute.set_state(q.Text(3));
  *dispute.mutable_created_at() = DbTimestamp(q.Int(4));
  *dispute.mutable_state_entered_at() = DbTimestamp(q.Int(5));
  ASSIGN_OR_RETURN(*dispute.mutable_amendment_id(),
                   AmendmentOf(db, dispute.dispute_id(), q.Text(6)));
  return dispute;
}

}  // namespace

absl::StatusOr<v1::Dispute> LoadDispute(sqlite3* db, const std::string& id, bool with_events) {
  SqliteStatement q(db, RegistryDb::kOwner, absl::StrCat(kDisputeColumns, "WHERE id = ?").c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("dispute \"", id, "\" not found"));
  ASSIGN_OR_RETURN(v1::Dispute dispute, DisputeFromRow(db, q));
  if (!with_events) return dispute;
  SqliteStatement events(db, RegistryDb::kOwner,
                         "SELECT event FROM dispute_events WHERE dispute_id = ? ORDER BY seq");
  RETURN_IF_ERROR(events.status());
  events.BindText(1, id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, events.Step());
    if (!row) break;
    if (!dispute.add_events()->ParseFromString(events.Blob(0))) {
      return absl::InternalError("registry database: unreadable dispute event");
    }
  }
  return dispute;
}

absl::Status AppendDisputeEvent(sqlite3* db, const std::string& dispute_id,
                                const v1::DisputeEvent& event) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "INSERT INTO dispute_events (dispute_id, seq, event) SELECT ?, "
                    "COALESCE(MAX(seq), 0) + 1, ? FROM dispute_events WHERE dispute_id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, dispute_id).BindBlob(2, event.SerializeAsString()).BindText(3, dispute_id);
  return q.Step().status();
}

absl::StatusOr<std::vector<v1::Dispute>> ListDisputeRows(sqlite3* db,
                                                         const std::string& patient_id) {
  const std::string sql = absl::StrCat(
      kDisputeColumns,
      patient_id.empty() ? "WHERE state NOT IN ('WITHDRAWN', 'CLOSED') " : "WHERE patient_id = ? ",
      "ORDER BY created_at, id");
  SqliteStatement q(db, RegistryDb::kOwner, sql.c_str());
  RETURN_IF_ERROR(q.status());
  if (!patient_id.empty()) q.BindText(1, patient_id);
  std::vector<v1::Dispute> disputes;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(disputes.emplace_back(), DisputeFromRow(db, q));
  }
  return disputes;
}

std::string ObligationsBlob(const policy::v1::Decision& decision) {
  v1::Dispute holder;
  for (const auto& o : decision.obligations()) {
    v1::Obligation* out = holder.add_obligations();
    out->set_name(o.name());
    out->set_due(o.due());
  }
  return holder.SerializeAsString();
}
}  // namespace medvault::gateway
