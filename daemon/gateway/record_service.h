// medvault.v1.RecordService: upload, amend, list and read records.
//
// Writes encrypt the content on its way to storage and commit the record
// row with its audit event once storage has the ciphertext (an object left
// without a row is removed). Reads ask policy per record (under the
// caller's grants, an emergency access or an insurer's claim consent),
// audit the access before any byte is sent, and stream the plaintext
// segment by segment as each one is authenticated.
#ifndef MEDVAULT_DAEMON_GATEWAY_RECORD_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_RECORD_SERVICE_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "daemon/common/grpc_status.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/record_cipher.h"
#include "daemon/gateway/record_store.h"
#include "medvault/v1/records.grpc.pb.h"

namespace medvault::gateway {

class RecordService final : public v1::RecordService::Service {
 public:
  explicit RecordService(GatewayCore& core) : core_(core) {}

  grpc::Status UploadRecord(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadRecordRequest>* reader,
                            v1::Record* response) override;
  grpc::Status AmendRecord(grpc::ServerContext* context,
                           grpc::ServerReader<v1::AmendRecordRequest>* reader,
                           v1::Record* response) override;
  grpc::Status ListRecords(grpc::ServerContext* context, const v1::ListRecordsRequest* request,
                           v1::ListRecordsResponse* response) override;
  grpc::Status GetRecord(grpc::ServerContext* context, const v1::GetRecordRequest* request,
                         grpc::ServerWriter<v1::GetRecordResponse>* writer) override;

 private:
  // Sets *data to the next data message's bytes; false at the end of the
  // stream. INVALID_ARGUMENT for a header after the first message,
  // CANCELLED when the client went away (the stream did not end cleanly).
  using NextData = absl::FunctionRef<absl::StatusOr<bool>(std::string* data)>;

  absl::Status DoUpload(grpc::ServerContext& context, const Caller& caller,
                        const v1::RecordHeader& header, NextData next, v1::Record& response);
  absl::Status DoAmend(grpc::ServerContext& context, const Caller& caller,
                       const v1::AmendmentHeader& header, NextData next, v1::Record& response);
  // The shared write path: `row` holds the metadata the header and policy
  // settled (ids, category, content type, authors, amendment fields);
  // encrypts and stores the content `next` yields, then commits the row
  // with `event`. The storage call is a child of `context`: a client that
  // cancels or passes its deadline cancels it, and nothing is committed.
  absl::Status StoreRecord(grpc::ServerContext& context, StoredRecord row, v1::AuditEvent event,
                           NextData next, v1::Record& response);

  // In record_read.cc.
  absl::Status DoList(const Caller& caller, const v1::ListRecordsRequest& request,
                      v1::ListRecordsResponse& response);
  absl::Status DoGet(const Caller& caller, const v1::GetRecordRequest& request,
                     grpc::ServerWriter<v1::GetRecordResponse>& writer);
  absl::Status StreamPlaintext(const StoredRecord& row, RecordDecryptor& decryptor,
                               grpc::ServerWriter<v1::GetRecordResponse>& writer);

  GatewayCore& core_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_RECORD_SERVICE_H_
