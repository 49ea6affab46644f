// The disputes and dispute_events tables (registry_db.cc) as v1::Dispute:
// disputes.obligations holds a serialized v1::Dispute with only its
// `obligations` set (the open obligations of the last transition);
// dispute_events.event a serialized v1::DisputeEvent, seq from 1.
#ifndef MEDVAULT_DAEMON_GATEWAY_DISPUTE_STORE_H_
#define MEDVAULT_DAEMON_GATEWAY_DISPUTE_STORE_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "medvault/policy/v1/policy.pb.h"
#include "medvault/v1/disputes.pb.h"

namespace medvault::gateway {

// One dispute, with its events oldest first when `with_events`; NOT_FOUND
// for an unknown id. amendment_id is the stored one, else the record
// RecordService.AmendRecord wrote with this dispute_id.
absl::StatusOr<v1::Dispute> LoadDispute(sqlite3* db, const std::string& id, bool with_events);
// A patient's disputes, or with `patient_id` empty every dispute not in a
// final state; oldest first, without events.
absl::StatusOr<std::vector<v1::Dispute>> ListDisputeRows(sqlite3* db,
                                                         const std::string& patient_id);
// Appends `event` to the dispute's history.
absl::Status AppendDisputeEvent(sqlite3* db, const std::string& dispute_id,
                                const v1::DisputeEvent& event);
// The decision's obligations as disputes.obligations stores them.
std::string ObligationsBlob(const policy::v1::Decision& decision);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_DISPUTE_STORE_H_
