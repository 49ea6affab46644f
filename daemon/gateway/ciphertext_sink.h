// How a record's content becomes a stored object: CiphertextSink hashes,
// checks and encrypts the plaintext as it arrives and streams the
// ciphertext to storage Put. Both record writers use it: RecordService's
// uploads and amendments (record_service.cc) and the segments of live
// vitals (vitals_segments.cc).
#ifndef MEDVAULT_DAEMON_GATEWAY_CIPHERTEXT_SINK_H_
#define MEDVAULT_DAEMON_GATEWAY_CIPHERTEXT_SINK_H_

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/common/secret.h"
#include "daemon/gateway/backends.h"
#include "daemon/gateway/record_cipher.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::gateway {

// Storage takes at most this many bytes a message.
inline constexpr size_t kStorageMessageBytes = 1 << 20;

// One record's content on its way to storage. Nothing is stored (the Put
// is cancelled) unless Finish succeeds.
//
// Thread safety: one thread at a time.
class CiphertextSink {
 public:
  // Starts a storage Put on `context`, whose deadline (and parent call,
  // if any) the caller has set. The content is encrypted with `key` and
  // `associated_data` (record_cipher.h) and checked as `content_type` at
  // Finish (CheckRecordContent).
  static absl::StatusOr<std::unique_ptr<CiphertextSink>> Open(
      std::unique_ptr<grpc::ClientContext> context, Backends& backends, const SecretData& key,
      std::string associated_data, std::string content_type);
  // Cancels the Put unless Finish succeeded; wipes the kept content.
  ~CiphertextSink();
  CiphertextSink(const CiphertextSink&) = delete;
  CiphertextSink& operator=(const CiphertextSink&) = delete;

  // The next piece of the content. UNAVAILABLE (naming storage) when the
  // Put broke.
  absl::Status Add(absl::string_view plaintext);
  // Checks the content, then completes the upload; returns the CID.
  absl::StatusOr<std::string> Finish();

  // Bytes of content added so far.
  uint64_t size() const { return size_; }
  // For FHIR JSON, after Finish: the resource type.
  const std::string& fhir_resource_type() const { return fhir_resource_type_; }
  // The content's SHA-256 in lower-case hex. Call once, after the last Add.
  std::string Sha256Hex();

 private:
  CiphertextSink(std::unique_ptr<RecordEncryptor> encryptor,
                 std::unique_ptr<grpc::ClientContext> context);
  // Sends whole messages, and with `all` the rest too.
  absl::Status Send(bool all);
  void Abort();

  std::unique_ptr<RecordEncryptor> encryptor_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha_;
  std::string content_type_;
  bool keep_whole_ = false;
  std::string content_;  // whole, or the prefix the check needs
  std::string pending_;  // ciphertext not sent yet
  uint64_t size_ = 0;
  std::string fhir_resource_type_;
  std::unique_ptr<grpc::ClientContext> context_;
  internal::v1::PutResponse put_response_;
  std::unique_ptr<grpc::ClientWriter<internal::v1::PutRequest>> writer_;
  bool finished_ = false;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CIPHERTEXT_SINK_H_
