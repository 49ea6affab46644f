// The gateway's registry database: organisations, practitioners, patients,
// records, access requests, grants, emergency accesses, disputes, consent
// nonces and the audit events. SQLCipher keyed with the keyvault's database
// key "gateway" (a raw key, no KDF), WAL mode, foreign keys on, schema
// migrations applied at open.
//
// One connection, used under a mutex: every change and its audit event go
// in one transaction (Write), so a crash leaves either both or neither.
#ifndef MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_
#define MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"

namespace medvault::gateway {

class RegistryDb {
 public:
  // Opens (creating it) <dir>/registry.db and migrates it to the current
  // schema. FAILED_PRECONDITION for a wrong key or a newer schema.
  static absl::StatusOr<std::unique_ptr<RegistryDb>> Open(const std::string& dir,
                                                          const SecretData& key);
  ~RegistryDb();
  RegistryDb(const RegistryDb&) = delete;
  RegistryDb& operator=(const RegistryDb&) = delete;

  // Runs `body` in one IMMEDIATE transaction; any error rolls everything
  // back and is returned.
  absl::Status Write(absl::FunctionRef<absl::Status(sqlite3*)> body);
  // Runs `body` with the connection, outside a transaction (reads).
  absl::Status Read(absl::FunctionRef<absl::Status(sqlite3*)> body);

  // The schema version after migrations.
  int64_t schema_version() const { return version_; }

  static constexpr char kOwner[] = "registry database";

 private:
  RegistryDb(sqlite3* db, int64_t version) : db_(db), version_(version) {}

  absl::Mutex mu_;
  sqlite3* const db_;
  const int64_t version_;
};

// Whether `sql` (a SELECT with one parameter) finds a row for `key`.
absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key);
// The same with two parameters.
absl::StatusOr<bool> RowExists(sqlite3* db, const char* sql, absl::string_view key,
                               absl::string_view second);
// Whether `organization_id` cares for the patient (patient_care).
absl::StatusOr<bool> PatientInCare(sqlite3* db, absl::string_view patient_id,
                                   absl::string_view organization_id);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_REGISTRY_DB_H_
