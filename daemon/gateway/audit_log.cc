#include "daemon/gateway/audit_log.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/time/time.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

std::string Canonical(const v1::AuditEvent& event) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  event.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

}  // namespace

absl::StatusOr<int64_t> AppendAuditEvent(sqlite3* db, const v1::AuditEvent& event) {
  SqliteStatement q(
      db, RegistryDb::kOwner,
      "INSERT INTO audit_events (time, action, patient_id, event) VALUES (?, ?, ?, ?)");
  RETURN_IF_ERROR(q.status());
  const int64_t ms = event.time().seconds() * 1000 + event.time().nanos() / 1000000;
  q.Bind(1, ms).BindText(2, event.action()).BindText(3, event.patient_id());
  q.BindBlob(4, Canonical(event));
  RETURN_IF_ERROR(q.Step().status());
  return sqlite3_last_insert_rowid(db);
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
