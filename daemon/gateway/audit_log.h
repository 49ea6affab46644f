// Appending audit events to the registry database, in the caller's
// transaction. The events are the leaves of the tamper-evident log; a
// change whose event cannot be written is rolled back with it (fail
// closed).
#ifndef MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_
#define MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::gateway {

// Appends `event` (deterministic serialisation) inside the current
// transaction; returns its sequence number.
absl::StatusOr<int64_t> AppendAuditEvent(sqlite3* db, const v1::AuditEvent& event);

// The audit events about `patient_id`, oldest first.
absl::StatusOr<std::vector<v1::AuditEvent>> PatientAuditEvents(sqlite3* db,
                                                               const std::string& patient_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_AUDIT_LOG_H_
