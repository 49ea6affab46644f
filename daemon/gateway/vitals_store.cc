#include "daemon/gateway/vitals_store.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

constexpr char kDeviceColumns[] =
    "id, patient_id, status, enrolled_by_organization_id, enrolled_by_practitioner_id, "
    "enrolled_at, revoked_at, stored_through";

v1::Device::Status StatusOf(const std::string& name) {
  v1::Device::Status status = v1::Device::STATUS_UNSPECIFIED;
  v1::Device::Status_Parse(name, &status);
  return status;
}

}  // namespace

absl::StatusOr<v1::Device> LoadDevice(sqlite3* db, const std::string& device_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    absl::StrCat("SELECT ", kDeviceColumns, " FROM devices WHERE id = ?").c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, device_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("device \"", device_id, "\" not enrolled"));
  v1::Device d;
  d.set_device_id(q.Text(0));
  d.set_patient_id(q.Text(1));
  d.set_status(StatusOf(q.Text(2)));
  d.set_enrolled_by_organization_id(q.Text(3));
  d.set_enrolled_by_practitioner_id(q.Text(4));
  *d.mutable_enrolled_at() = DbTimestamp(q.Int(5));
  if (q.Int(6) != 0) *d.mutable_revoked_at() = DbTimestamp(q.Int(6));
  d.set_stored_through(static_cast<uint64_t>(q.Int(7)));
  return d;
}

absl::Status InsertDevice(sqlite3* db, const v1::Device& d) {
  ASSIGN_OR_RETURN(bool exists, RowExists(db, "SELECT 1 FROM devices WHERE id = ?", d.device_id()));
  if (exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("device \"", d.device_id(), "\" was already enrolled"));
  }
  SqliteStatement q(
      db, RegistryDb::kOwner,
      absl::StrCat("INSERT INTO devices (", kDeviceColumns, ") VALUES (?, ?, ?, ?, ?, ?, 0, 0)")
          .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, d.device_id()).BindText(2, d.patient_id());
  q.BindText(3, v1::Device::Status_Name(d.status()));
  q.BindText(4, d.enrolled_by_organization_id()).BindText(5, d.enrolled_by_practitioner_id());
  q.Bind(6, DbTime(FromTimestamp(d.enrolled_at())));
  return q.Step().status();
}

absl::Status UpdateDeviceStatus(sqlite3* db, const v1::Device& d) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "UPDATE devices SET status = ?, revoked_at = ? WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, v1::Device::Status_Name(d.status()));
  q.Bind(2, d.has_revoked_at() ? DbTime(FromTimestamp(d.revoked_at())) : 0);
  q.BindText(3, d.device_id());
  return q.Step().status();
}

absl::Status RecordSegment(sqlite3* db, const std::string& device_id, const std::string& record_id,
                           uint64_t first, uint64_t last) {
  SqliteStatement insert(db, RegistryDb::kOwner,
                         "INSERT INTO vitals_segments (record_id, device_id, first_sequence, "
                         "last_sequence) VALUES (?, ?, ?, ?)");
  RETURN_IF_ERROR(insert.status());
  insert.BindText(1, record_id).BindText(2, device_id);
  insert.Bind(3, static_cast<int64_t>(first)).Bind(4, static_cast<int64_t>(last));
  RETURN_IF_ERROR(insert.Step().status());
  SqliteStatement update(db, RegistryDb::kOwner,
                         "UPDATE devices SET stored_through = MAX(stored_through, ?) WHERE id = ?");
  RETURN_IF_ERROR(update.status());
  update.Bind(1, static_cast<int64_t>(last)).BindText(2, device_id);
  return update.Step().status();
}

absl::StatusOr<v1::Device> ReadDevice(RegistryDb& db, const std::string& device_id) {
  v1::Device device;
  RETURN_IF_ERROR(db.Read([&](sqlite3* sql) -> absl::Status {
    ASSIGN_OR_RETURN(device, LoadDevice(sql, device_id));
    return absl::OkStatus();
  }));
  return device;
}

}  // namespace medvault::gateway
