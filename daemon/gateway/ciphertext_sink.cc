#include "daemon/gateway/ciphertext_sink.h"

#include <openssl/crypto.h>

#include "absl/strings/escaping.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/content_check.h"

namespace medvault::gateway {
namespace {

// Enough of a binary record for its signature check (DICOM: 128 + 4).
constexpr size_t kPrefixBytes = 132;

// Types checked whole (the rest by their first kPrefixBytes).
bool CheckedWhole(absl::string_view content_type) {
  return content_type == kContentTypeFhirJson || content_type == kContentTypeText ||
         content_type == kContentTypeVitalsSegment;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CiphertextSink>> CiphertextSink::Open(
    std::unique_ptr<grpc::ClientContext> context, Backends& backends, const SecretData& key,
    std::string associated_data, std::string content_type) {
  ASSIGN_OR_RETURN(auto encryptor, RecordEncryptor::Create(key, std::move(associated_data)));
  std::unique_ptr<CiphertextSink> sink(
      new CiphertextSink(std::move(encryptor), std::move(context)));
  sink->keep_whole_ = CheckedWhole(content_type);
  sink->content_type_ = std::move(content_type);
  if (sink->sha_ == nullptr || EVP_DigestInit_ex(sink->sha_.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("record: SHA-256 unavailable");
  }
  sink->writer_ = backends.storage().Put(sink->context_.get(), &sink->put_response_);
  return sink;
}

CiphertextSink::CiphertextSink(std::unique_ptr<RecordEncryptor> encryptor,
                               std::unique_ptr<grpc::ClientContext> context)
    : encryptor_(std::move(encryptor)),
      sha_(EVP_MD_CTX_new(), EVP_MD_CTX_free),
      context_(std::move(context)) {}

CiphertextSink::~CiphertextSink() {
  Abort();
  OPENSSL_cleanse(content_.data(), content_.size());
}

absl::Status CiphertextSink::Add(absl::string_view plaintext) {
  size_ += plaintext.size();
  EVP_DigestUpdate(sha_.get(), plaintext.data(), plaintext.size());
  if (keep_whole_) {
    content_.append(plaintext.data(), plaintext.size());
  } else if (content_.size() < kPrefixBytes) {
    absl::string_view head = plaintext.substr(0, kPrefixBytes - content_.size());
    content_.append(head.data(), head.size());
  }
  RETURN_IF_ERROR(encryptor_->Update(plaintext, &pending_));
  return Send(/*all=*/false);
}

absl::StatusOr<std::string> CiphertextSink::Finish() {
  RETURN_IF_ERROR(CheckRecordContent(content_type_, content_));
  if (content_type_ == kContentTypeFhirJson) {
    ASSIGN_OR_RETURN(fhir_resource_type_, FhirResourceType(content_));
  }
  RETURN_IF_ERROR(encryptor_->Finish(&pending_));
  RETURN_IF_ERROR(Send(/*all=*/true));
  writer_->WritesDone();
  finished_ = true;
  grpc::Status status = writer_->Finish();
  if (!status.ok()) return BackendError("storage", "Put", status);
  return put_response_.cid();
}

std::string CiphertextSink::Sha256Hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(sha_.get(), digest, &length);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::Status CiphertextSink::Send(bool all) {
  size_t sent = 0;
  while (pending_.size() - sent >= kStorageMessageBytes || (all && sent < pending_.size())) {
    internal::v1::PutRequest request;
    request.set_data(pending_.substr(sent, kStorageMessageBytes));
    sent += request.data().size();
    if (!writer_->Write(request)) {
      finished_ = true;
      return BackendError("storage", "Put", writer_->Finish());
    }
  }
  pending_.erase(0, sent);
  return absl::OkStatus();
}

void CiphertextSink::Abort() {
  if (finished_ || writer_ == nullptr) return;
  finished_ = true;
  context_->TryCancel();
  writer_->Finish();
}

}  // namespace medvault::gateway
