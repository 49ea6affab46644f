// A practitioner's licence as the regulator's LicenceRegistry on chain
// says, read through the signer's event index: once per public call (into
// the Caller), for policy's licence facts and for GetPractitioner.
#ifndef MEDVAULT_DAEMON_GATEWAY_LICENCE_H_
#define MEDVAULT_DAEMON_GATEWAY_LICENCE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/gateway/backends.h"
#include "medvault/internal/v1/signer.pb.h"
#include "medvault/v1/types.pb.h"

namespace medvault::gateway {

struct Licence {
  // LICENCE_STATUS_NONE when the registry has no entry for the key.
  internal::v1::LicenceStatus status = internal::v1::LICENCE_STATUS_NONE;
  // Last second of validity (unix time); 0 when unknown.
  uint64_t valid_until = 0;
  // When the index last read the chain up to its head (ms since the
  // epoch): how fresh `status` is. 0 if never.
  int64_t synced_ms = 0;
};

// The chain's licence key of a licence number:
// keccak256("medvault.licence.v1:" || licence_number).
std::string LicenceKey(absl::string_view licence_number);

// Signer.GetLicence for `licence_key` (32 bytes). UNAVAILABLE (retryable)
// when the signer cannot answer.
absl::StatusOr<Licence> ReadLicence(Backends& backends, const std::string& licence_key);

// The licence_status word of policy's vocabulary; nullptr when there is
// none (no entry: policy then denies, "status unknown").
const char* PolicyLicenceStatus(internal::v1::LicenceStatus status);
// The public API's view.
v1::LicenceStatus PublicLicenceStatus(internal::v1::LicenceStatus status);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_LICENCE_H_
