// The Solidity ABI of the calls the signer makes besides anchor() (see
// audit_anchor_abi.h): the regulator's LicenceRegistry.setLicence and
// PolicyRegistry.publish, AuditAnchor.addOperator, the contracts'
// constructor argument, and a one-line description of any of the
// contracts' custom errors (and Solidity's Error(string) / Panic(uint256))
// for revert reasons.
#ifndef MEDVAULT_DAEMON_SIGNER_REGISTRY_ABI_H_
#define MEDVAULT_DAEMON_SIGNER_REGISTRY_ABI_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::signer {

// LicenceRegistry.Status (and signer.proto's LicenceStatus): same numbers.
inline constexpr uint8_t kLicenceStatusMax = 4;

// setLicence(bytes32 practitioner, uint8 status, uint64 validUntil,
// bytes32 evidenceHash). INVALID_ARGUMENT naming the field for a value not
// 32 bytes or a status above kLicenceStatusMax (the contract checks the rest).
absl::StatusOr<std::string> EncodeSetLicenceCall(absl::string_view practitioner, uint8_t status,
                                                 uint64_t valid_until,
                                                 absl::string_view evidence_hash);

// publish(uint64 version, bytes32 bundleHash).
absl::StatusOr<std::string> EncodePublishPolicyCall(uint64_t version,
                                                    absl::string_view bundle_hash);

// addOperator(address account); `account` 20 bytes.
absl::StatusOr<std::string> EncodeAddOperatorCall(absl::string_view account);

// Init code followed by one address argument: every medvault contract's
// constructor takes its owner (AuditAnchor's admin, the registries'
// regulator). INVALID_ARGUMENT for empty code or an owner not 20 bytes.
absl::StatusOr<std::string> CreationWithOwner(absl::string_view init_code, absl::string_view owner);

// E.g. "VersionNotIncreasing(latest 3, given 2)", "NotOwner(0xab..)",
// "Error(\"...\")"; unknown data as "revert data 0x...".
std::string DescribeRevert(absl::string_view revert_data);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_REGISTRY_ABI_H_
