#include "daemon/gateway/record_service.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ciphertext_sink.h"
#include "daemon/gateway/content_check.h"
#include "daemon/gateway/dispute_store.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/record_cipher.h"
#include "daemon/gateway/registry_service.h"
#include "daemon/gateway/statistics.h"

namespace medvault::gateway {
namespace {

// The client sets the pace of an upload, so the per-call backend deadline
// (meant for one request) would cut long uploads short.
constexpr absl::Duration kTransferTimeout = absl::Minutes(10);

absl::Status CheckContentType(absl::string_view field, absl::string_view content_type) {
  if (IsAllowedContentType(content_type)) return absl::OkStatus();
  return InvalidField(
      field, absl::StrCat("not an allowed content type; one of ", kContentTypeFhirJson, ", ",
                          kContentTypePdf, ", ", kContentTypePng, ", ", kContentTypeJpeg, ", ",
                          kContentTypeDicom, ", ", kContentTypeText));
}

// Reads the first message's header, then feeds the data messages to `fn`.
template <typename Request, typename Header, typename Fn>
absl::Status ReadUpload(grpc::ServerContext& context, grpc::ServerReader<Request>& reader,
                        Header (Request::*header)() const, Fn fn) {
  Request first;
  if (!reader.Read(&first) || first.part_case() != Request::kHeader) {
    return InvalidField("header", "the first message must be the header");
  }
  auto next = [&](std::string* data) -> absl::StatusOr<bool> {
    Request message;
    if (!reader.Read(&message)) {
      // A stream cut short by the client is not a complete record.
      if (context.IsCancelled()) return absl::CancelledError("the client cancelled the upload");
      return false;
    }
    if (message.part_case() != Request::kData) {
      return InvalidField("header", "only the first message may be a header");
    }
    *data = std::move(*message.mutable_data());
    return true;
  };
  return fn((first.*header)(), next);
}

}  // namespace

grpc::Status RecordService::UploadRecord(grpc::ServerContext* context,
                                         grpc::ServerReader<v1::UploadRecordRequest>* reader,
                                         v1::Record* response) {
  return Serve(core_, context, [&](const Caller& c) {
    return ReadUpload(*context, *reader, &v1::UploadRecordRequest::header,
                      [&](const v1::RecordHeader& header, NextData next) {
                        return DoUpload(*context, c, header, next, *response);
                      });
  });
}

grpc::Status RecordService::AmendRecord(grpc::ServerContext* context,
                                        grpc::ServerReader<v1::AmendRecordRequest>* reader,
                                        v1::Record* response) {
  return Serve(core_, context, [&](const Caller& c) {
    return ReadUpload(*context, *reader, &v1::AmendRecordRequest::header,
                      [&](const v1::AmendmentHeader& header, NextData next) {
                        return DoAmend(*context, c, header, next, *response);
                      });
  });
}

grpc::Status RecordService::ListRecords(grpc::ServerContext* context,
                                        const v1::ListRecordsRequest* request,
                                        v1::ListRecordsResponse* response) {
  return Serve(core_, context, [&](const Caller& c) { return DoList(c, *request, *response); });
}

grpc::Status RecordService::GetRecord(grpc::ServerContext* context,
                                      const v1::GetRecordRequest* request,
                                      grpc::ServerWriter<v1::GetRecordResponse>* writer) {
  return Serve(core_, context, [&](const Caller& c) { return DoGet(c, *request, *writer); });
}

absl::Status RecordService::DoUpload(grpc::ServerContext& context, const Caller& caller,
                                     const v1::RecordHeader& header, NextData next,
                                     v1::Record& response) {
  RETURN_IF_ERROR(CheckId("header.patient_id", header.patient_id()));
  if (header.category() == v1::RECORD_CATEGORY_UNSPECIFIED ||
      !v1::RecordCategory_IsValid(header.category())) {
    return InvalidField("header.category", "a record category is required");
  }
  RETURN_IF_ERROR(CheckContentType("header.content_type", header.content_type()));
  RETURN_IF_ERROR(CheckDiagnosisCodes("header.diagnosis_codes", header.diagnosis_codes()));
  v1::Patient patient;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(patient, LoadPatient(db, header.patient_id()));
    return absl::OkStatus();
  }));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RecordService/UploadRecord");
  event.set_patient_id(header.patient_id());
  Facts facts;
  facts.String("patient.id", header.patient_id())
      .String("record.category", v1::RecordCategory_Name(header.category()))
      .Set("patient.care_organizations",
           {patient.care_organizations().begin(), patient.care_organizations().end()});
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "record.write",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "record.write", now, decision, event);
  StoredRecord row;
  v1::Record& r = row.record;
  r.set_record_id(NewObjectId("rec"));
  r.set_patient_id(header.patient_id());
  r.set_category(header.category());
  r.set_content_type(header.content_type());
  *r.mutable_diagnosis_codes() = header.diagnosis_codes();
  std::sort(r.mutable_diagnosis_codes()->begin(), r.mutable_diagnosis_codes()->end());
  r.set_author_organization_id(caller.organization.organization_id);
  r.set_author_practitioner_id(caller.practitioner_id);
  *r.mutable_created_at() = ToTimestamp(now);
  return StoreRecord(context, std::move(row), std::move(event), next, response);
}

absl::Status RecordService::DoAmend(grpc::ServerContext& context, const Caller& caller,
                                    const v1::AmendmentHeader& header, NextData next,
                                    v1::Record& response) {
  RETURN_IF_ERROR(CheckObjectId("header.record_id", "rec", header.record_id()));
  const size_t reason_length = Utf8Length(header.reason());
  if (reason_length < 1 || reason_length > 1000) {
    return InvalidField("header.reason", "1 to 1000 characters");
  }
  RETURN_IF_ERROR(CheckContentType("header.content_type", header.content_type()));
  if (!header.dispute_id().empty()) {
    RETURN_IF_ERROR(CheckObjectId("header.dispute_id", "dsp", header.dispute_id()));
  }
  StoredRecord original;
  v1::Patient patient;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(original, LoadRecord(db, header.record_id()));
    ASSIGN_OR_RETURN(patient, LoadPatient(db, original.record.patient_id()));
    if (header.dispute_id().empty()) return absl::OkStatus();
    // An amendment answers an upheld dispute about this very record.
    absl::StatusOr<v1::Dispute> dispute = LoadDispute(db, header.dispute_id(), false);
    if (!dispute.ok() && !absl::IsNotFound(dispute.status())) return dispute.status();
    if (!dispute.ok() || dispute->patient_id() != patient.patient_id()) {
      return absl::NotFoundError(
          absl::StrCat("dispute \"", header.dispute_id(), "\" not found for the record's patient"));
    }
    if (dispute->record_id() != original.record.record_id()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dispute \"", header.dispute_id(), "\" is about record ", dispute->record_id()));
    }
    if (dispute->state() != "UPHELD") {
      return absl::FailedPreconditionError(
          absl::StrCat("dispute \"", header.dispute_id(), "\" is ", dispute->state(),
                       "; an amendment answers an UPHELD dispute"));
    }
    return absl::OkStatus();
  }));
  const v1::Record& o = original.record;
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method("/medvault.v1.RecordService/AmendRecord");
  event.set_patient_id(o.patient_id());
  event.set_record_id(o.record_id());
  event.set_dispute_id(header.dispute_id());
  Facts facts;
  facts.String("patient.id", o.patient_id())
      .String("record.id", o.record_id())
      .String("record.category", v1::RecordCategory_Name(o.category()))
      .String("amendment.reason", header.reason())
      .Set("patient.care_organizations",
           {patient.care_organizations().begin(), patient.care_organizations().end()});
  ASSIGN_OR_RETURN(auto decision, core_.authorizer.Authorize(caller, "record.amend",
                                                             std::move(facts), now, event));
  FillAuditEvent(caller, "record.amend", now, decision, event);
  // The audit event names the amendment; the original is its subject.
  event.set_subject_id(o.record_id());
  StoredRecord row;
  v1::Record& r = row.record;
  r.set_record_id(NewObjectId("rec"));
  r.set_patient_id(o.patient_id());
  r.set_category(o.category());
  r.set_content_type(header.content_type());
  r.set_author_organization_id(caller.organization.organization_id);
  r.set_author_practitioner_id(caller.practitioner_id);
  r.set_amends_record_id(o.record_id());
  r.set_amendment_reason(header.reason());
  *r.mutable_created_at() = ToTimestamp(now);
  row.dispute_id = header.dispute_id();
  return StoreRecord(context, std::move(row), std::move(event), next, response);
}

absl::Status RecordService::StoreRecord(grpc::ServerContext& context, StoredRecord row,
                                        v1::AuditEvent event, NextData next, v1::Record& response) {
  v1::Record& r = row.record;
  // The Put below may run as long as the client keeps sending, so it has no
  // short deadline of its own: a storage process that does not answer
  // within backend_timeout_ms is found down here, before anything is sent.
  RETURN_IF_ERROR(ProbeStorage(core_.backends));
  std::unique_ptr<CiphertextSink> sink;
  {
    // The plaintext key lives only until the encryptor has its key schedule.
    ASSIGN_OR_RETURN(SecretData key, GenerateRecordKey(core_.backends, r.patient_id(),
                                                       r.record_id(), &row.wrapped_key));
    // The Put is a child call of the upload: it inherits the client's
    // cancellation.
    std::unique_ptr<grpc::ClientContext> put = grpc::ClientContext::FromServerContext(context);
    put->set_deadline(absl::ToChronoTime(absl::Now() + kTransferTimeout));
    ASSIGN_OR_RETURN(sink, CiphertextSink::Open(std::move(put), core_.backends, key,
                                                RecordAssociatedData(r.patient_id(), r.record_id(),
                                                                     r.content_type()),
                                                r.content_type()));
  }
  const uint64_t limit = core_.config.max_record_bytes();
  std::string data;
  while (true) {
    ASSIGN_OR_RETURN(bool more, next(&data));
    if (!more) break;
    // Storage takes at most 1 MiB a message, and so does the upload.
    if (data.size() > kStorageMessageBytes) {
      return InvalidField("data", "at most 1 MiB per message");
    }
    if (sink->size() + data.size() > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("record exceeds gateway.max_record_bytes (", limit, " bytes)"));
    }
    RETURN_IF_ERROR(sink->Add(data));
  }
  ASSIGN_OR_RETURN(std::string cid, sink->Finish());
  r.set_size(sink->size());
  r.set_sha256(sink->Sha256Hex());
  r.set_fhir_resource_type(sink->fhir_resource_type());
  r.set_cid(cid);
  event.set_record_id(r.record_id());
  event.set_record_cid(cid);
  // A client that gave up while storage finished must not find a record it
  // was told failed.
  absl::Status committed =
      context.IsCancelled()
          ? absl::CancelledError("the client cancelled the upload before it was recorded")
          : CommitWithAudit(core_.db, event, [&](sqlite3* db) { return InsertRecord(db, row); });
  if (!committed.ok()) {
    // No row refers to the object: do not leave it pinned.
    DiscardStoredObject(core_.backends, cid);
    return committed;
  }
  response = std::move(row.record);
  return absl::OkStatus();
}

}  // namespace medvault::gateway
