#include "daemon/gateway/backends.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/roles.h"

namespace medvault::gateway {
namespace {

std::shared_ptr<grpc::Channel> Connect(const config::v1::Config& config, Role role) {
  return grpc::CreateChannel("unix:" + SocketPath(config, role),
                             grpc::InsecureChannelCredentials());
}

}  // namespace

Backends::Backends(const config::v1::Config& config)
    : policy_(internal::v1::Policy::NewStub(Connect(config, Role::kPolicy))),
      keyvault_(internal::v1::KeyVault::NewStub(Connect(config, Role::kKeyvault))),
      storage_(internal::v1::Storage::NewStub(Connect(config, Role::kStorage))),
      signer_(internal::v1::Signer::NewStub(Connect(config, Role::kSigner))),
      timeout_(absl::Milliseconds(config.gateway().backend_timeout_ms())) {}

void Backends::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

uint64_t Backends::ChainId() {
  if (uint64_t known = chain_id_.load()) return known;
  grpc::ClientContext context;
  SetDeadline(context);
  internal::v1::GetChainInfoResponse response;
  grpc::Status status =
      signer_->GetChainInfo(&context, internal::v1::GetChainInfoRequest(), &response);
  if (!status.ok()) {
    BackendError("signer", "GetChainInfo", status).IgnoreError();  // logged there
    return 0;
  }
  chain_id_.store(response.chain_id());
  return response.chain_id();
}

absl::Status BackendError(absl::string_view backend, absl::string_view method,
                          const grpc::Status& status) {
  log::Warn("backend.failed", {{"backend", backend},
                               {"method", method},
                               {"code", static_cast<int>(status.error_code())},
                               {"error", status.error_message()}});
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return absl::UnavailableError(absl::StrCat(backend, " is unavailable; retry later"));
    default:
      return absl::InternalError(absl::StrCat(backend, " ", method, " failed"));
  }
}

}  // namespace medvault::gateway
