// What every public service of the gateway works with: the configuration,
// the registry database, the internal services and the policy gate; and
// the steps every RPC shares (who calls, what time it is, commit a change
// with its audit event).
#ifndef MEDVAULT_DAEMON_GATEWAY_CORE_H_
#define MEDVAULT_DAEMON_GATEWAY_CORE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/gateway/authorizer.h"
#include "daemon/gateway/backends.h"
#include "daemon/gateway/caller.h"
#include "daemon/gateway/client_identity.h"
#include "daemon/gateway/rate_limiter.h"
#include "daemon/gateway/registry_db.h"
#include "google/protobuf/timestamp.pb.h"
#include "medvault/config/v1/config.pb.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::gateway {

struct GatewayCore {
  const config::v1::Gateway& config;
  RegistryDb& db;
  Backends& backends;
  Authorizer& authorizer;
  // Checked on every call as well as at the handshake, so that a
  // certificate revoked while its connection is open stops working.
  RevocationList* revocations;
  // gateway.calls_per_second per organisation, checked on every call.
  RateLimiter* rate_limiter;
  // Told (with the patient id) once a grant's revocation has committed, so
  // that live sessions under the patient's grants (vitals watches) decide
  // their access again at once. May be empty.
  std::function<void(const std::string& patient_id)> grant_revoked = nullptr;
};

// Runs an RPC's `body` as its resolved caller (ResolveCaller: identity,
// revocation, rate, the person acting) and converts the status for gRPC.
grpc::Status Serve(GatewayCore& core, grpc::ServerContext* context,
                   absl::FunctionRef<absl::Status(const Caller&)> body);

// Number of UTF-8 characters (code points) of `text`: the bytes that do
// not continue a sequence. For the "1 to N characters" limits of text
// fields.
size_t Utf8Length(absl::string_view text);

// Runs `body` in a transaction (RegistryDb::Write, shared with concurrent
// writers) and appends `event` (outcome SUCCEEDED) in the same one: both
// are kept, or neither.
absl::Status CommitWithAudit(RegistryDb& db, const v1::AuditEvent& event,
                             absl::FunctionRef<absl::Status(sqlite3*)> body);

// Unix milliseconds, as the registry database stores times.
inline int64_t DbTime(absl::Time t) { return absl::ToUnixMillis(t); }
inline absl::Time FromDbTime(int64_t ms) { return absl::FromUnixMillis(ms); }
google::protobuf::Timestamp ToTimestamp(absl::Time t);
inline google::protobuf::Timestamp DbTimestamp(int64_t ms) { return ToTimestamp(FromDbTime(ms)); }
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CORE_H_
