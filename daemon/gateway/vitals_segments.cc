#include "daemon/gateway/vitals_segments.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/crypto.h>

#include <memory>

#include "daemon/common/status_macros.h"
#include "daemon/gateway/ciphertext_sink.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/record_cipher.h"
#include "daemon/gateway/record_store.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {

absl::StatusOr<v1::Record> StoreVitalsSegment(GatewayCore& core, const v1::Device& device,
                                              v1::AuditEvent event,
                                              const std::vector<VitalsBatchPtr>& batches) {
  v1::VitalsSegment segment;
  segment.set_device_id(device.device_id());
  segment.set_patient_id(device.patient_id());
  for (const VitalsBatchPtr& batch : batches) {
    for (const v1::VitalSample& s : batch->samples) *segment.add_samples() = s;
  }
  std::string plaintext;
  {
    google::protobuf::io::StringOutputStream out(&plaintext);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    segment.SerializeToCodedStream(&coded);
  }
  StoredRecord row;
  v1::Record& r = row.record;
  r.set_record_id(NewObjectId("rec"));
  r.set_patient_id(device.patient_id());
  r.set_category(v1::VITALS);
  r.set_content_type(std::string(kContentTypeVitalsSegment));
  r.set_author_organization_id(device.enrolled_by_organization_id());
  *r.mutable_created_at() = ToTimestamp(absl::Now());
  std::unique_ptr<CiphertextSink> sink;
  {
    // The plaintext key lives only until the encryptor has its key schedule.
    ASSIGN_OR_RETURN(SecretData key, GenerateRecordKey(core.backends, r.patient_id(), r.record_id(),
                                                       &row.wrapped_key));
    auto put = std::make_unique<grpc::ClientContext>();
    core.backends.SetDeadline(*put);
    ASSIGN_OR_RETURN(sink, CiphertextSink::Open(std::move(put), core.backends, key,
                                                RecordAssociatedData(r.patient_id(), r.record_id(),
                                                                     r.content_type()),
                                                r.content_type()));
  }
  // One piece: Add sends it on in messages of at most 1 MiB.
  absl::Status added = sink->Add(plaintext);
  OPENSSL_cleanse(plaintext.data(), plaintext.size());
  RETURN_IF_ERROR(added);
  ASSIGN_OR_RETURN(std::string cid, sink->Finish());
  r.set_size(sink->size());
  r.set_sha256(sink->Sha256Hex());
  r.set_cid(cid);
  event.set_record_id(r.record_id());
  event.set_record_cid(cid);
  absl::Status committed = CommitWithAudit(core.db, event, [&](sqlite3* db) -> absl::Status {
    RETURN_IF_ERROR(InsertRecord(db, row));
    return RecordSegment(db, device.device_id(), r.record_id(), segment.samples(0).sequence(),
                         segment.samples(segment.samples_size() - 1).sequence());
  });
  if (!committed.ok()) {
    // No row refers to the object: do not leave it pinned.
    DiscardStoredObject(core.backends, cid);
    return committed;
  }
  return std::move(row.record);
}

}  // namespace medvault::gateway
