#include "daemon/signer/registry_abi.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {
namespace {

using abi::kWord;

absl::Status CheckAddress(absl::string_view value, absl::string_view field) {
  if (value.size() != 20) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be 20 bytes, got ", value.size()));
  }
  return absl::OkStatus();
}

// Argument `i` of the revert data after the selector as a uint64, or
// "(out of range)" when it does not fit (e.g. a uint256 block timestamp).
std::string Uint64Arg(absl::string_view args, size_t i) {
  uint64_t value = 0;
  if (!abi::WordToUint64(args.substr(i * kWord, kWord), &value)) return "(out of range)";
  return absl::StrCat(value);
}

std::string AddressArg(absl::string_view args, size_t i) {
  return ToHex(args.substr(i * kWord + 12, 20));
}

// Solidity's Error(string): offset, length, bytes. Empty on malformed data.
std::string ErrorString(absl::string_view args) {
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!abi::WordToUint64(args.substr(0, kWord), &offset) || offset > args.size() ||
      !abi::WordToUint64(args.substr(offset, kWord), &length) ||
      length > args.size() - offset - kWord) {
    return "";
  }
  return std::string(args.substr(offset + kWord, length));
}

}  // namespace

absl::StatusOr<std::string> EncodeSetLicenceCall(absl::string_view practitioner, uint8_t status,
                                                 uint64_t valid_until,
                                                 absl::string_view evidence_hash) {
  RETURN_IF_ERROR(abi::CheckBytes32(practitioner, "practitioner"));
  RETURN_IF_ERROR(abi::CheckBytes32(evidence_hash, "evidence_hash"));
  if (status > kLicenceStatusMax) {
    return absl::InvalidArgumentError(absl::StrCat("status: ", status, " is not a licence status"));
  }
  return absl::StrCat(Selector("setLicence(bytes32,uint8,uint64,bytes32)"), practitioner,
                      abi::Uint64Word(status), abi::Uint64Word(valid_until), evidence_hash);
}

absl::StatusOr<std::string> EncodePublishPolicyCall(uint64_t version,
                                                    absl::string_view bundle_hash) {
  RETURN_IF_ERROR(abi::CheckBytes32(bundle_hash, "bundle_hash"));
  return absl::StrCat(Selector("publish(uint64,bytes32)"), abi::Uint64Word(version), bundle_hash);
}

absl::StatusOr<std::string> EncodeAddOperatorCall(absl::string_view account) {
  RETURN_IF_ERROR(CheckAddress(account, "account"));
  return absl::StrCat(Selector("addOperator(address)"), abi::AddressWord(account));
}

absl::StatusOr<std::string> CreationWithOwner(absl::string_view init_code,
                                              absl::string_view owner) {
  if (init_code.empty()) return absl::InvalidArgumentError("init code: empty");
  RETURN_IF_ERROR(CheckAddress(owner, "owner"));
  return absl::StrCat(init_code, abi::AddressWord(owner));
}

std::string DescribeRevert(absl::string_view data) {
  if (data.size() < 4 || (data.size() - 4) % kWord != 0) {
    return absl::StrCat("revert data ", ToHex(data));
  }
  const absl::string_view selector = data.substr(0, 4);
  const absl::string_view args = data.substr(4);
  const size_t words = args.size() / kWord;
  // The contracts' errors without arguments.
  for (const char* name : {"ZeroPractitioner", "InvalidStatus", "ZeroEvidenceHash",
                           "ZeroBundleHash", "ZeroAddress", "ZeroLogId", "ZeroRootHash"}) {
    if (words == 0 && selector == Selector(absl::StrCat(name, "()"))) return absl::StrCat(name);
  }
  // ... with one address.
  for (const char* name :
       {"NotOwner", "NotPendingOwner", "NotOperator", "AlreadyOperator", "UnknownOperator"}) {
    if (words == 1 && selector == Selector(absl::StrCat(name, "(address)"))) {
      return absl::StrCat(name, "(", AddressArg(args, 0), ")");
    }
  }
  if (words == 2 && selector == Selector("VersionNotIncreasing(uint64,uint64)")) {
    return absl::StrCat("VersionNotIncreasing(latest ", Uint64Arg(args, 0), ", given ",
                        Uint64Arg(args, 1), ")");
  }
  if (words == 2 && selector == Selector("ValidUntilNotInFuture(uint64,uint256)")) {
    return absl::StrCat("ValidUntilNotInFuture(valid until ", Uint64Arg(args, 0), ", block time ",
                        Uint64Arg(args, 1), ")");
  }
  if (words == 1 && selector == Selector("Panic(uint256)")) {
    return absl::StrCat("Panic(", Uint64Arg(args, 0), ")");
  }
  if (selector == Selector("Error(string)")) {
    return absl::StrCat("Error(\"", absl::CHexEscape(ErrorString(args)), "\")");
  }
  // AuditAnchor's errors with a log id.
  AnchorRevert anchor = DecodeAnchorRevert(data);
  if (anchor.kind != AnchorRevert::Kind::kOther) return anchor.description;
  return absl::StrCat("revert data ", ToHex(data));
}

}  // namespace medvault::signer
