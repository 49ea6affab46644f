// Where a record lives: its row in the registry database (metadata, CID,
// wrapped data key), its ciphertext in storage, and its data key in the
// keyvault. Helpers for RecordService; no policy here.
#ifndef MEDVAULT_DAEMON_GATEWAY_RECORD_STORE_H_
#define MEDVAULT_DAEMON_GATEWAY_RECORD_STORE_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/common/secret.h"
#include "daemon/gateway/backends.h"
#include "medvault/v1/records.pb.h"

namespace medvault::gateway {

// A row of the records table.
struct StoredRecord {
  v1::Record record;  // amended_by filled when loaded
  std::string wrapped_key;
  std::string dispute_id;
};

// NOT_FOUND naming the record.
absl::StatusOr<StoredRecord> LoadRecord(sqlite3* db, const std::string& record_id);
// The patient's records, newest first.
absl::StatusOr<std::vector<StoredRecord>> PatientRecords(sqlite3* db,
                                                         const std::string& patient_id);
absl::Status InsertRecord(sqlite3* db, const StoredRecord& row);

// A row of the emergency_accesses table.
struct EmergencyAccessRow {
  std::string id;
  std::string patient_id;
  std::string practitioner_id;
  std::string reason;
  absl::Time expires_at;
};
// NOT_FOUND naming the emergency access.
absl::StatusOr<EmergencyAccessRow> LoadEmergencyAccess(sqlite3* db, const std::string& id);

// A fresh data key for a record (keyvault GenerateDataKey, context patient,
// record, "record"); the wrapped form goes to *wrapped_key.
absl::StatusOr<SecretData> GenerateRecordKey(Backends& backends, const std::string& patient_id,
                                             const std::string& record_id,
                                             std::string* wrapped_key);
// The plaintext data key of a record (keyvault Decrypt).
absl::StatusOr<SecretData> UnwrapRecordKey(Backends& backends, const std::string& patient_id,
                                           const std::string& record_id,
                                           const std::string& wrapped_key);

// Unpins and removes `cid` from storage: best effort, failures are logged,
// for an object no record refers to.
void DiscardStoredObject(Backends& backends, const std::string& cid);

// Storage GetStoreInfo under the backend deadline: UNAVAILABLE when the
// storage process is down or does not answer in time.
absl::Status ProbeStorage(Backends& backends);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_RECORD_STORE_H_
