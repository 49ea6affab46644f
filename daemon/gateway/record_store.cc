#include "daemon/gateway/record_store.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

constexpr char kRecordColumns[] =
    "id, patient_id, category, content_type, fhir_resource_type, size, sha256, cid, "
    "wrapped_key, created_at, author_organization_id, author_practitioner_id, "
    "amends_record_id, amendment_reason, dispute_id";

constexpr char kKeyPurpose[] = "record";

StoredRecord ReadRow(SqliteStatement& q) {
  StoredRecord row;
  v1::Record& r = row.record;
  r.set_record_id(q.Text(0));
  r.set_patient_id(q.Text(1));
  v1::RecordCategory category = v1::RECORD_CATEGORY_UNSPECIFIED;
  v1::RecordCategory_Parse(q.Text(2), &category);
  r.set_category(category);
  r.set_content_type(q.Text(3));
  r.set_fhir_resource_type(q.Text(4));
  r.set_size(static_cast<uint64_t>(q.Int(5)));
  r.set_sha256(q.Text(6));
  r.set_cid(q.Text(7));
  row.wrapped_key = q.Blob(8);
  *r.mutable_created_at() = DbTimestamp(q.Int(9));
  r.set_author_organization_id(q.Text(10));
  r.set_author_practitioner_id(q.Text(11));
  if (!q.IsNull(12)) r.set_amends_record_id(q.Text(12));
  r.set_amendment_reason(q.Text(13));
  row.dispute_id = q.Text(14);
  return row;
}

// The record's diagnosis codes, sorted.
absl::Status AddDiagnosisCodes(sqlite3* db, v1::Record& record) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT code FROM record_diagnoses WHERE record_id = ? ORDER BY code");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, record.record_id());
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::OkStatus();
    record.add_diagnosis_codes(q.Text(0));
  }
}

absl::Status AddAmendedBy(sqlite3* db, v1::Record& record) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT id FROM records WHERE amends_record_id = ? ORDER BY created_at, id");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, record.record_id());
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return absl::OkStatus();
    record.add_amended_by(q.Text(0));
  }
}

// What a record's row does not hold: its diagnosis codes and amendments.
absl::Status AddLinkedRows(sqlite3* db, v1::Record& record) {
  RETURN_IF_ERROR(AddDiagnosisCodes(db, record));
  return AddAmendedBy(db, record);
}

internal::v1::DataKeyContext KeyContext(const std::string& patient_id,
                                        const std::string& record_id) {
  internal::v1::DataKeyContext context;
  context.set_patient_id(patient_id);
  context.set_record_id(record_id);
  context.set_purpose(kKeyPurpose);
  return context;
}

// Moves a key out of a response field into a SecretData, wiping the field.
SecretData TakeKey(std::string* field) {
  SecretData key(*field);
  OPENSSL_cleanse(field->data(), field->size());
  field->clear();
  return key;
}

}  // namespace

absl::StatusOr<StoredRecord> LoadRecord(sqlite3* db, const std::string& record_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    absl::StrCat("SELECT ", kRecordColumns, " FROM records WHERE id = ?").c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, record_id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("record \"", record_id, "\" not found"));
  StoredRecord row = ReadRow(q);
  RETURN_IF_ERROR(AddLinkedRows(db, row.record));
  return row;
}

absl::StatusOr<std::vector<StoredRecord>> PatientRecords(sqlite3* db,
                                                         const std::string& patient_id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    absl::StrCat("SELECT ", kRecordColumns,
                                 " FROM records WHERE patient_id = ? "
                                 "ORDER BY created_at DESC, id DESC")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, patient_id);
  std::vector<StoredRecord> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool found, q.Step());
    if (!found) break;
    rows.push_back(ReadRow(q));
  }
  for (StoredRecord& row : rows) RETURN_IF_ERROR(AddLinkedRows(db, row.record));
  return rows;
}

absl::Status InsertRecord(sqlite3* db, const StoredRecord& row) {
  const v1::Record& r = row.record;
  SqliteStatement q(db, RegistryDb::kOwner,
                    absl::StrCat("INSERT INTO records (", kRecordColumns,
                                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                        .c_str());
  RETURN_IF_ERROR(q.status());
  q.BindText(1, r.record_id()).BindText(2, r.patient_id());
  q.BindText(3, v1::RecordCategory_Name(r.category())).BindText(4, r.content_type());
  q.BindText(5, r.fhir_resource_type()).Bind(6, static_cast<int64_t>(r.size()));
  q.BindText(7, r.sha256()).BindText(8, r.cid()).BindBlob(9, row.wrapped_key);
  q.Bind(10, DbTime(FromTimestamp(r.created_at())));
  q.BindText(11, r.author_organization_id()).BindText(12, r.author_practitioner_id());
  // Left unbound (NULL) for an original: the column references records(id).
  if (!r.amends_record_id().empty()) q.BindText(13, r.amends_record_id());
  q.BindText(14, r.amendment_reason()).BindText(15, row.dispute_id);
  RETURN_IF_ERROR(q.Step().status());
  for (const std::string& code : r.diagnosis_codes()) {
    SqliteStatement d(db, RegistryDb::kOwner,
                      "INSERT INTO record_diagnoses (record_id, code) VALUES (?, ?)");
    RETURN_IF_ERROR(d.status());
    d.BindText(1, r.record_id()).BindText(2, code);
    RETURN_IF_ERROR(d.Step().status());
  }
  return absl::OkStatus();
}

absl::StatusOr<EmergencyAccessRow> LoadEmergencyAccess(sqlite3* db, const std::string& id) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT patient_id, practitioner_id, reason, expires_at "
                    "FROM emergency_accesses WHERE id = ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, id);
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("emergency access \"", id, "\" not found"));
  return EmergencyAccessRow{id, q.Text(0), q.Text(1), q.Text(2), FromDbTime(q.Int(3))};
}

absl::StatusOr<SecretData> GenerateRecordKey(Backends& backends, const std::string& patient_id,
                                             const std::string& record_id,
                                             std::string* wrapped_key) {
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::GenerateDataKeyRequest request;
  *request.mutable_context() = KeyContext(patient_id, record_id);
  internal::v1::GenerateDataKeyResponse response;
  grpc::Status status = backends.keyvault().GenerateDataKey(&context, request, &response);
  SecretData key = TakeKey(response.mutable_plaintext_key());
  if (!status.ok()) return BackendError("keyvault", "GenerateDataKey", status);
  *wrapped_key = response.wrapped_key();
  return key;
}

absl::StatusOr<SecretData> UnwrapRecordKey(Backends& backends, const std::string& patient_id,
                                           const std::string& record_id,
                                           const std::string& wrapped_key) {
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::DecryptRequest request;
  request.set_wrapped_key(wrapped_key);
  *request.mutable_context() = KeyContext(patient_id, record_id);
  internal::v1::DecryptResponse response;
  grpc::Status status = backends.keyvault().Decrypt(&context, request, &response);
  SecretData key = TakeKey(response.mutable_plaintext_key());
  if (!status.ok()) return BackendError("keyvault", "Decrypt", status);
  return key;
}

void DiscardStoredObject(Backends& backends, const std::string& cid) {
  {
    grpc::ClientContext context;
    backends.SetDeadline(context);
    internal::v1::UnpinRequest request;
    request.set_cid(cid);
    internal::v1::UnpinResponse response;
    grpc::Status status = backends.storage().Unpin(&context, request, &response);
    if (!status.ok()) {
      log::Warn("record.discard_failed",
                {{"cid", cid}, {"step", "unpin"}, {"error", status.error_message()}});
    }
  }
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::RemoveRequest request;
  request.set_cid(cid);
  internal::v1::RemoveResponse response;
  grpc::Status status = backends.storage().Remove(&context, request, &response);
  if (!status.ok()) {
    log::Warn("record.discard_failed",
              {{"cid", cid}, {"step", "remove"}, {"error", status.error_message()}});
    return;
  }
  log::Info("record.discarded", {{"cid", cid}});
}

absl::Status ProbeStorage(Backends& backends) {
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::GetStoreInfoResponse response;
  grpc::Status status =
      backends.storage().GetStoreInfo(&context, internal::v1::GetStoreInfoRequest(), &response);
  if (!status.ok()) return BackendError("storage", "GetStoreInfo", status);
  return absl::OkStatus();
}

}  // namespace medvault::gateway
