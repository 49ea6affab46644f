#include "daemon/gateway/licence.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"

namespace medvault::gateway {

std::string LicenceKey(absl::string_view licence_number) {
  return Keccak256(absl::StrCat("medvault.licence.v1:", licence_number));
}

absl::StatusOr<Licence> ReadLicence(Backends& backends, const std::string& licence_key) {
  grpc::ClientContext context;
  backends.SetDeadline(context);
  internal::v1::GetLicenceRequest request;
  request.set_practitioner(licence_key);
  internal::v1::GetLicenceResponse response;
  grpc::Status status = backends.signer().GetLicence(&context, request, &response);
  Licence licence;
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return licence;
  if (!status.ok()) return BackendError("signer", "GetLicence", status);
  licence.status = response.licence().status();
  licence.valid_until = response.licence().valid_until();
  licence.synced_ms = response.index().synced_ms();
  return licence;
}

const char* PolicyLicenceStatus(internal::v1::LicenceStatus status) {
  switch (status) {
    case internal::v1::LICENCE_STATUS_ACTIVE:
      return "ACTIVE";
    case internal::v1::LICENCE_STATUS_SUSPENDED:
      return "SUSPENDED";
    case internal::v1::LICENCE_STATUS_REVOKED:
      return "REVOKED";
    case internal::v1::LICENCE_STATUS_EXPIRED:
      return "EXPIRED";
    default:
      return nullptr;
  }
}

v1::LicenceStatus PublicLicenceStatus(internal::v1::LicenceStatus status) {
  switch (status) {
    case internal::v1::LICENCE_STATUS_ACTIVE:
      return v1::LICENCE_ACTIVE;
    case internal::v1::LICENCE_STATUS_SUSPENDED:
      return v1::LICENCE_SUSPENDED;
    case internal::v1::LICENCE_STATUS_REVOKED:
      return v1::LICENCE_REVOKED;
    case internal::v1::LICENCE_STATUS_EXPIRED:
      return v1::LICENCE_EXPIRED;
    default:
      return v1::LICENCE_UNKNOWN;
  }
}

}  // namespace medvault::gateway
