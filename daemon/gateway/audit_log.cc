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

}  // namespace medvault::gateway
