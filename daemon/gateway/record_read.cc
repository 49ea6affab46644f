// RecordService reads: ListRecords and GetRecord, and the policy question
// every read asks (under a grant, an emergency access or a claim consent).
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/grant_facts.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/record_cipher.h"
#include "daemon/gateway/record_service.h"
#include "daemon/gateway/registry_service.h"

namespace medvault::gateway {
namespace {

constexpr size_t kMessageBytes = 1 << 20;
constexpr absl::Duration kTransferTimeout = absl::Minutes(10);

// What the reads of one call rest on, resolved once.
struct ReadBasisState {
  std::string action = "record.read";
  v1::Purpose purpose = v1::TREATMENT;
  std::string claim_id;
  bool insurer = false;
  // Practitioners and insurers read under their grants.
  bool by_grant = false;
  std::vector<v1::Grant> grants;
  std::optional<EmergencyAccessRow> emergency;
};

struct ReadDecision {
  policy::v1::Decision decision;
  std::string grant_id;
};

absl::Status CheckBasis(const v1::ReadBasis& basis) {
  if (!v1::Purpose_IsValid(basis.purpose())) {
    return InvalidField("basis.purpose", "unknown purpose");
  }
  if (!basis.emergency_access_id().empty()) {
    RETURN_IF_ERROR(CheckObjectId("basis.emergency_access_id", "emg", basis.emergency_access_id()));
  }
  if (!basis.claim_id().empty()) RETURN_IF_ERROR(CheckId("basis.claim_id", basis.claim_id()));
  return absl::OkStatus();
}

absl::StatusOr<ReadBasisState> ResolveBasis(sqlite3* db, const Caller& caller,
                                            const std::string& patient_id,
                                            const v1::ReadBasis& basis, absl::Time now) {
  ReadBasisState state;
  state.claim_id = basis.claim_id();
  state.insurer = caller.policy_role == "INSURER";
  if (!basis.emergency_access_id().empty()) {
    if (!caller.is_practitioner()) {
      return absl::FailedPreconditionError("an emergency access is a practitioner's");
    }
    ASSIGN_OR_RETURN(EmergencyAccessRow row, LoadEmergencyAccess(db, basis.emergency_access_id()));
    if (row.practitioner_id != caller.practitioner_id || row.patient_id != patient_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("emergency access \"", row.id, "\" is not the caller's for this patient"));
    }
    if (row.expires_at <= now) {
      return absl::FailedPreconditionError(
          absl::StrCat("emergency access \"", row.id, "\" has expired"));
    }
    state.action = "record.read_emergency";
    state.purpose = v1::EMERGENCY;
    state.emergency = std::move(row);
  } else if (caller.is_patient()) {
    state.purpose = v1::PATIENT_ACCESS;
  } else if (state.insurer) {
    state.purpose = v1::CLAIM;
  }
  if (basis.purpose() != v1::PURPOSE_UNSPECIFIED) state.purpose = basis.purpose();
  state.by_grant = !state.emergency && (caller.is_practitioner() || state.insurer);
  if (state.by_grant) {
    ASSIGN_OR_RETURN(state.grants, ActiveGrants(db, patient_id, caller.actor_id));
  }
  return state;
}

Facts ReadFacts(const ReadBasisState& state, const v1::Record& record, const v1::Grant* grant) {
  Facts facts;
  facts.String("patient.id", record.patient_id())
      .String("record.id", record.record_id())
      .String("record.category", v1::RecordCategory_Name(record.category()))
      .String("request.purpose", v1::Purpose_Name(state.purpose));
  if (!state.claim_id.empty()) facts.String("claim.id", state.claim_id);
  if (state.emergency) facts.String("emergency.reason", state.emergency->reason);
  if (grant != nullptr) {
    AddGrantFacts(*grant, facts);
    if (state.insurer) {
      AddClaimConsentFacts(*grant, record.record_id(), record.category(), facts);
    }
  }
  return facts;
}

// Asks policy about reading `record`: under each grant in turn until one
// allows. With `denied`, a final deny is logged (Authorize) and returned as
// PERMISSION_DENIED; without, it is returned as a decision.
absl::StatusOr<ReadDecision> DecideRead(Authorizer& authorizer, const Caller& caller,
                                        const ReadBasisState& state, const v1::Record& record,
                                        absl::Time now, const v1::AuditEvent* denied) {
  std::vector<const v1::Grant*> candidates;
  for (const v1::Grant& g : state.grants) candidates.push_back(&g);
  if (candidates.empty()) candidates.push_back(nullptr);
  ReadDecision result;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const v1::Grant* grant = candidates[i];
    Facts facts = ReadFacts(state, record, grant);
    if (i + 1 == candidates.size() && denied != nullptr) {
      v1::AuditEvent event = *denied;
      if (grant != nullptr) event.set_grant_id(grant->grant_id());
      ASSIGN_OR_RETURN(result.decision,
                       authorizer.Authorize(caller, state.action, std::move(facts), now, event));
    } else {
      ASSIGN_OR_RETURN(result.decision,
                       authorizer.Decide(caller, state.action, std::move(facts), now));
    }
    if (result.decision.effect() == policy::v1::ALLOW) {
      if (grant != nullptr) result.grant_id = grant->grant_id();
      return result;
    }
  }
  return result;
}

}  // namespace

absl::Status RecordService::DoList(const Caller& caller, const v1::ListRecordsRequest& request,
                                   v1::ListRecordsResponse& response) {
  RETURN_IF_ERROR(CheckId("patient_id", request.patient_id()));
  RETURN_IF_ERROR(CheckBasis(request.basis()));
  const absl::Time now = absl::Now();
  std::vector<StoredRecord> rows;
  ReadBasisState state;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(LoadPatient(db, request.patient_id()).status());
    ASSIGN_OR_RETURN(rows, PatientRecords(db, request.patient_id()));
    ASSIGN_OR_RETURN(state, ResolveBasis(db, caller, request.patient_id(), request.basis(), now));
    return absl::OkStatus();
  }));
  for (StoredRecord& row : rows) {
    ASSIGN_OR_RETURN(ReadDecision read,
                     DecideRead(core_.authorizer, caller, state, row.record, now, nullptr));
    if (read.decision.effect() == policy::v1::ALLOW) {
      *response.add_records() = std::move(row.record);
    }
  }
  // One event for the list: "record.list" is no policy action (each record
  // was decided as "record.read"), so it carries no decision; subject_id is
  // the number of records returned.
  v1::AuditEvent event;
  FillAuditEvent(caller, "record.list", now, policy::v1::Decision(), event);
  event.set_method("/medvault.v1.RecordService/ListRecords");
  event.set_patient_id(request.patient_id());
  event.set_emergency_access_id(request.basis().emergency_access_id());
  event.set_subject_id(absl::StrCat(response.records_size()));
  return CommitWithAudit(core_.db, event, [](sqlite3*) { return absl::OkStatus(); });
}

absl::Status RecordService::DoGet(const Caller& caller, const v1::GetRecordRequest& request,
                                  grpc::ServerWriter<v1::GetRecordResponse>& writer) {
  RETURN_IF_ERROR(CheckObjectId("record_id", "rec", request.record_id()));
  RETURN_IF_ERROR(CheckBasis(request.basis()));
  const absl::Time now = absl::Now();
  StoredRecord row;
  ReadBasisState state;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(row, LoadRecord(db, request.record_id()));
    ASSIGN_OR_RETURN(state,
                     ResolveBasis(db, caller, row.record.patient_id(), request.basis(), now));
    return absl::OkStatus();
  }));
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RecordService/GetRecord");
  event.set_patient_id(row.record.patient_id());
  event.set_record_id(row.record.record_id());
  event.set_record_cid(row.record.cid());
  event.set_emergency_access_id(request.basis().emergency_access_id());
  ASSIGN_OR_RETURN(ReadDecision read,
                   DecideRead(core_.authorizer, caller, state, row.record, now, &event));
  event.set_grant_id(read.grant_id);
  FillAuditEvent(caller, state.action, now, read.decision, event);
  // The key before the audit event: a keyvault outage leaves no "read"
  // in the log for a read that could not happen.
  std::unique_ptr<RecordDecryptor> decryptor;
  {
    const v1::Record& r = row.record;
    ASSIGN_OR_RETURN(SecretData key, UnwrapRecordKey(core_.backends, r.patient_id(), r.record_id(),
                                                     row.wrapped_key));
    ASSIGN_OR_RETURN(
        decryptor, RecordDecryptor::Create(
                       key, RecordAssociatedData(r.patient_id(), r.record_id(), r.content_type())));
  }
  // Fail closed: the read is in the log before any byte leaves.
  RETURN_IF_ERROR(CommitWithAudit(core_.db, event, [](sqlite3*) { return absl::OkStatus(); }));
  v1::GetRecordResponse first;
  *first.mutable_record() = row.record;
  if (!writer.Write(first)) return absl::CancelledError("the caller went away");
  return StreamPlaintext(row, *decryptor, writer);
}

// Streams the plaintext segment by segment as each is authenticated. A
// record cut short or not matching its digest ends the stream with
// DATA_LOSS after the authentic segments before the fault were sent.
absl::Status RecordService::StreamPlaintext(const StoredRecord& row, RecordDecryptor& decryptor,
                                            grpc::ServerWriter<v1::GetRecordResponse>& writer) {
  const v1::Record& r = row.record;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (sha == nullptr || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("record: SHA-256 unavailable");
  }
  uint64_t size = 0;
  std::string plaintext;
  auto send = [&]() -> absl::Status {
    EVP_DigestUpdate(sha.get(), plaintext.data(), plaintext.size());
    size += plaintext.size();
    for (size_t at = 0; at < plaintext.size(); at += kMessageBytes) {
      v1::GetRecordResponse message;
      message.set_data(plaintext.substr(at, kMessageBytes));
      if (!writer.Write(message)) return absl::CancelledError("the caller went away");
    }
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    plaintext.clear();
    return absl::OkStatus();
  };
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kTransferTimeout));
  internal::v1::GetRequest get;
  get.set_cid(r.cid());
  auto reader = core_.backends.storage().Get(&context, get);
  internal::v1::GetResponse chunk;
  absl::Status failed;
  while (failed.ok() && reader->Read(&chunk)) {
    failed = decryptor.Update(chunk.data(), &plaintext);
    if (failed.ok()) failed = send();
  }
  if (!failed.ok()) context.TryCancel();
  grpc::Status status = reader->Finish();
  RETURN_IF_ERROR(failed);
  if (!status.ok()) return BackendError("storage", "Get", status);
  RETURN_IF_ERROR(decryptor.Finish(&plaintext));
  RETURN_IF_ERROR(send());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(sha.get(), digest, &length);
  const std::string hex =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
  if (hex != r.sha256() || size != r.size()) {
    return absl::DataLossError(
        absl::StrCat("record \"", r.record_id(), "\" does not match its stored digest"));
  }
  return absl::OkStatus();
}

}  // namespace medvault::gateway
