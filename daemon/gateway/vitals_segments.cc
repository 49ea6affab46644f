#include "daemon/gateway/vitals_segments.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ids.h"
#include "daemon/gateway/record_cipher.h"
#include "daemon/gateway/record_store.h"
#include "daemon/gateway/vitals_store.h"

namespace medvault::gateway {
namespace {

// Storage takes at most 1 MiB a message.
constexpr size_t kMessageBytes = 1 << 20;

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

// Sends `ciphertext` to storage Put; returns the CID.
absl::StatusOr<std::string> PutObject(Backends& backends, const std::string& ciphertext) {
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::PutResponse response;
  auto writer = backends.storage().Put(&context, &response);
  for (size_t at = 0; at < ciphertext.size(); at += kMessageBytes) {
    internal::v1::PutRequest request;
    request.set_data(ciphertext.substr(at, kMessageBytes));
    if (!writer->Write(request)) break;  // Finish says why
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return BackendError("storage", "Put", status);
  return response.cid();
}

}  // namespace

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
  r.set_size(plaintext.size());
  r.set_sha256(Sha256Hex(plaintext));
  *r.mutable_created_at() = ToTimestamp(absl::Now());
  std::string ciphertext;
  {
    // The plaintext key lives only until the record is sealed.
    ASSIGN_OR_RETURN(SecretData key, GenerateRecordKey(core.backends, r.patient_id(), r.record_id(),
                                                       &row.wrapped_key));
    ASSIGN_OR_RETURN(auto encryptor, RecordEncryptor::Create(
                                         key, RecordAssociatedData(r.patient_id(), r.record_id(),
                                                                   r.content_type())));
    RETURN_IF_ERROR(encryptor->Update(plaintext, &ciphertext));
    RETURN_IF_ERROR(encryptor->Finish(&ciphertext));
  }
  OPENSSL_cleanse(plaintext.data(), plaintext.size());
  ASSIGN_OR_RETURN(std::string cid, PutObject(core.backends, ciphertext));
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
