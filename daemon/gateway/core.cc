#include "daemon/gateway/core.h"

#include "daemon/common/grpc_status.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"

namespace medvault::gateway {

absl::Status CommitWithAudit(RegistryDb& db, const v1::AuditEvent& event,
                             absl::FunctionRef<absl::Status(sqlite3*)> body) {
  return db.Write([&](sqlite3* sql) -> absl::Status {
    RETURN_IF_ERROR(body(sql));
    v1::AuditEvent succeeded = event;
    succeeded.set_outcome(v1::AuditEvent::SUCCEEDED);
    return db.audit_appender().Append(succeeded).status();
  });
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp out;
  const int64_t ms = absl::ToUnixMillis(t);
  out.set_seconds(ms / 1000);
  out.set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  return out;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

grpc::Status Serve(GatewayCore& core, grpc::ServerContext* context,
                   absl::FunctionRef<absl::Status(const Caller&)> body) {
  absl::StatusOr<Caller> caller = ResolveCaller(*context, core);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(body(*caller));
}

size_t Utf8Length(absl::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace medvault::gateway
