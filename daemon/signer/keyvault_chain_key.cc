#include "daemon/signer/keyvault_chain_key.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"

namespace medvault::signer {
namespace {

absl::Status FromGrpc(absl::string_view method, const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("keyvault ", method, ": ", status.error_message()));
}

}  // namespace

KeyvaultChainKey::KeyvaultChainKey(const std::string& socket_path, absl::Duration timeout,
                                   internal::v1::ChainKeyName name)
    : stub_(internal::v1::KeyVault::NewStub(
          grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()))),
      timeout_(timeout),
      name_(name) {}

absl::StatusOr<std::string> KeyvaultChainKey::Address() {
  absl::MutexLock lock(&mu_);
  if (!address_.empty()) return address_;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  internal::v1::GetChainPublicKeyRequest request;
  request.set_key(name_);
  internal::v1::GetChainPublicKeyResponse response;
  grpc::Status status = stub_->GetChainPublicKey(&context, request, &response);
  if (!status.ok()) return FromGrpc("GetChainPublicKey", status);
  auto address = ParseAddress(response.address(), "keyvault GetChainPublicKey address");
  if (!address.ok()) return absl::InternalError(address.status().message());
  address_ = *std::move(address);
  return address_;
}

absl::StatusOr<EthSignature> KeyvaultChainKey::SignDigest(absl::string_view digest) {
  if (digest.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest: must be 32 bytes, got ", digest.size()));
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  internal::v1::SignDigestRequest request;
  request.set_digest(std::string(digest));
  request.set_key(name_);
  internal::v1::SignDigestResponse response;
  grpc::Status status = stub_->SignDigest(&context, request, &response);
  if (!status.ok()) return FromGrpc("SignDigest", status);
  if (response.r().size() != 32 || response.s().size() != 32 || response.recovery_id() > 1) {
    return absl::InternalError("keyvault SignDigest: malformed signature (r, s or recovery id)");
  }
  return EthSignature{response.r(), response.s(), response.recovery_id()};
}

absl::StatusOr<SecretData> KeyvaultChainKey::DatabaseKey(absl::Duration wait) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + wait));
  context.set_wait_for_ready(true);
  internal::v1::UnwrapDatabaseKeyRequest request;
  request.set_name("signer");
  internal::v1::UnwrapDatabaseKeyResponse response;
  grpc::Status status = stub_->UnwrapDatabaseKey(&context, request, &response);
  if (!status.ok()) return FromGrpc("UnwrapDatabaseKey", status);
  std::string* key = response.mutable_key();
  SecretData secret(*key);
  OPENSSL_cleanse(key->data(), key->size());
  if (secret.size() != 32) {
    return absl::InternalError(
        absl::StrCat("keyvault UnwrapDatabaseKey: the key is ", secret.size(), " bytes, not 32"));
  }
  return secret;
}

}  // namespace medvault::signer
