// VitalsService's rows in the registry database: the devices enrolled to
// patients (devices) and the segments their samples were stored in
// (vitals_segments, beside the segments' rows in records). Every function
// but ReadDevice runs on the connection it is given, inside the caller's
// transaction or read.
//
// devices.status is "ACTIVE" or "REVOKED"; devices.stored_through the
// highest sample sequence number durably stored (it only grows, in the
// transaction that commits the segment holding it).
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_STORE_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/gateway/content_check.h"
#include "daemon/gateway/registry_db.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {

// NOT_FOUND naming the device when it was never enrolled.
absl::StatusOr<v1::Device> LoadDevice(sqlite3* db, const std::string& device_id);
// LoadDevice in a read of its own.
absl::StatusOr<v1::Device> ReadDevice(RegistryDb& db, const std::string& device_id);
// ALREADY_EXISTS when the id was ever enrolled.
absl::Status InsertDevice(sqlite3* db, const v1::Device& device);
// Sets status and revoked_at.
absl::Status UpdateDeviceStatus(sqlite3* db, const v1::Device& device);
// The segment `record_id` (already inserted in records) holds samples
// first..last of the device: records it and raises the device's
// stored_through to `last`.
absl::Status RecordSegment(sqlite3* db, const std::string& device_id, const std::string& record_id,
                           uint64_t first, uint64_t last);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_STORE_H_
