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
    : Backends(Connect(config, Role::kPolicy), Connect(config, Role::kKeyvault),
               Connect(config, Role::kStorage), Connect(config, Role::kSigner),
               absl::Milliseconds(config.gateway().backend_timeout_ms())) {}

Backends::Backends(std::shared_ptr<grpc::Channel> policy, std::shared_ptr<grpc::Channel> keyvault,
                   std::shared_ptr<grpc::Channel> storage, std::shared_ptr<grpc::Channel> signer,
                   absl::Duration timeout)
    : policy_(internal::v1::Policy::NewStub(policy)),
      keyvault_(internal::v1::KeyVault::NewStub(keyvault)),
      storage_(internal::v1::Storage::NewStub(storage)),
      signer_(internal::v1::Signer::NewStub(signer)),
      timeout_(timeout) {}

void Backends::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
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
