// Asking policy: every public RPC builds the facts of its request, and the
// Authorizer adds what is known about the caller (actor.*, the licence the
// Caller read from the chain through the signer's index) and asks
// medvault-policy. A deny is
// written to the audit log before the caller hears PERMISSION_DENIED.
#ifndef MEDVAULT_DAEMON_GATEWAY_AUTHORIZER_H_
#define MEDVAULT_DAEMON_GATEWAY_AUTHORIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/gateway/backends.h"
#include "daemon/gateway/caller.h"
#include "daemon/gateway/registry_db.h"
#include "medvault/policy/v1/policy.pb.h"
#include "medvault/v1/audit.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

// The facts of one policy request, by attribute name.
class Facts {
 public:
  Facts& String(absl::string_view name, absl::string_view value);
  Facts& Bool(absl::string_view name, bool value);
  Facts& Time(absl::string_view name, absl::Time value);
  Facts& Set(absl::string_view name, const std::vector<std::string>& values);
  const policy::v1::Request& request() const { return request_; }
  policy::v1::Request& request() { return request_; }

 private:
  policy::v1::Request request_;
};

// RFC 3339 in UTC with seconds, as policy reads times.
std::string PolicyTime(absl::Time time);

class Authorizer {
 public:
  Authorizer(Backends& backends, RegistryDb& db) : backends_(backends), db_(db) {}

  // Decides `action` for `caller` at `now`. On ALLOW returns the decision.
  // On DENY appends `denied` (completed with the caller, action and
  // decision; outcome DENIED) to the audit log and returns
  // PERMISSION_DENIED naming the decision id and rules. UNAVAILABLE when
  // policy cannot answer: nothing is allowed without a decision.
  absl::StatusOr<policy::v1::Decision> Authorize(const Caller& caller, absl::string_view action,
                                                 Facts facts, absl::Time now,
                                                 v1::AuditEvent denied);
  // Like Authorize, but a deny is returned as a decision, not logged: for
  // filtering lists, where each item is one decision of a larger call.
  absl::StatusOr<policy::v1::Decision> Decide(const Caller& caller, absl::string_view action,
                                              Facts facts, absl::Time now);

 private:
  Backends& backends_;
  RegistryDb& db_;
};

// Completes `event` with the caller, action, time and decision.
void FillAuditEvent(const Caller& caller, absl::string_view action, absl::Time now,
                    const policy::v1::Decision& decision, v1::AuditEvent& event);
// The decision as the public API shows it.
v1::Decision PublicDecision(const policy::v1::Decision& decision);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_AUTHORIZER_H_
