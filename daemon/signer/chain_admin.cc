#include "daemon/signer/chain_admin.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/eth_tx.h"
#include "daemon/signer/registry_abi.h"

namespace medvault::signer {

absl::StatusOr<MinedTransaction> ChainAdmin::Transact(TransactionSender& sender,
                                                      absl::string_view what, absl::string_view to,
                                                      absl::string_view data) {
  CallRequest call;
  ASSIGN_OR_RETURN(call.from, sender.Sender());
  call.to = std::string(to);
  call.data = std::string(data);
  if (!to.empty()) {
    // A call to an address without code "succeeds" and does nothing; every
    // medvault contract answers owner() with a word.
    ASSIGN_OR_RETURN(CallOutcome owner,
                     chain_->EthCall({call.from, call.to, Selector("owner()")}, "latest"));
    if (owner.reverted || owner.data.size() != 32) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": no medvault contract at ", ToHex(to)));
    }
  }
  ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(call, "latest"));
  if (outcome.reverted) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " would revert: ", DescribeRevert(outcome.data)));
  }
  ASSIGN_OR_RETURN(MinedTransaction mined, sender.Send(to, data));
  if (!mined.success) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": transaction ", ToHex(mined.hash), " reverted in block ", mined.block_number, ": ",
        mined.revert_data.empty() ? "no reason (out of gas?)" : DescribeRevert(mined.revert_data)));
  }
  if (to.empty() && mined.contract_address.size() != 20) {
    return absl::InternalError(
        absl::StrCat(what, ": the receipt of ", ToHex(mined.hash), " has no contract address"));
  }
  log::Info("tx.confirmed", {{"what", what},
                             {"tx", ToHex(mined.hash)},
                             {"block", mined.block_number},
                             {"nonce", mined.nonce}});
  return mined;
}

absl::StatusOr<Deployment> ChainAdmin::Deploy(const ContractCode& code,
                                              absl::string_view regulator) {
  for (const auto& [field, value] : {std::pair{"audit_anchor_code", &code.audit_anchor},
                                     {"licence_registry_code", &code.licence_registry},
                                     {"policy_registry_code", &code.policy_registry}}) {
    if (value->empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty"));
  }
  Deployment out;
  ASSIGN_OR_RETURN(out.operator_address, operators_.Sender());
  if (regulator.empty()) {
    ASSIGN_OR_RETURN(out.regulator, regulators_.Sender());
  } else if (regulator.size() != 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("regulator: must be 20 bytes, got ", regulator.size()));
  } else {
    out.regulator = std::string(regulator);
  }
  std::vector<std::string> done;  // for the message if a later step fails
  auto step = [&](absl::string_view what, absl::string_view to,
                  absl::StatusOr<std::string> data) -> absl::StatusOr<MinedTransaction> {
    absl::StatusOr<MinedTransaction> mined =
        data.ok() ? Transact(operators_, what, to, *data) : data.status();
    if (!mined.ok() && !done.empty()) {
      return absl::Status(mined.status().code(),
                          absl::StrCat(mined.status().message(), " (already deployed, now unused: ",
                                       absl::StrJoin(done, ", "), ")"));
    }
    return mined;
  };
  ASSIGN_OR_RETURN(
      MinedTransaction anchor,
      step("deploy AuditAnchor", "", CreationWithOwner(code.audit_anchor, out.operator_address)));
  out.audit_anchor = anchor.contract_address;
  out.first_block = anchor.block_number;
  done.push_back(absl::StrCat("AuditAnchor at ", ToHex(out.audit_anchor)));
  RETURN_IF_ERROR(
      step("AuditAnchor.addOperator", out.audit_anchor, EncodeAddOperatorCall(out.operator_address))
          .status());
  ASSIGN_OR_RETURN(
      MinedTransaction licences,
      step("deploy LicenceRegistry", "", CreationWithOwner(code.licence_registry, out.regulator)));
  out.licence_registry = licences.contract_address;
  done.push_back(absl::StrCat("LicenceRegistry at ", ToHex(out.licence_registry)));
  ASSIGN_OR_RETURN(
      MinedTransaction policies,
      step("deploy PolicyRegistry", "", CreationWithOwner(code.policy_registry, out.regulator)));
  out.policy_registry = policies.contract_address;
  log::Info("contracts.deployed", {{"audit_anchor", ToHex(out.audit_anchor)},
                                   {"licence_registry", ToHex(out.licence_registry)},
                                   {"policy_registry", ToHex(out.policy_registry)},
                                   {"first_block", out.first_block}});
  return out;
}

absl::StatusOr<MinedTransaction> ChainAdmin::SetLicence(absl::string_view registry,
                                                        absl::string_view practitioner,
                                                        uint8_t status, uint64_t valid_until,
                                                        absl::string_view evidence_hash) {
  ASSIGN_OR_RETURN(std::string data,
                   EncodeSetLicenceCall(practitioner, status, valid_until, evidence_hash));
  return Transact(regulators_, "LicenceRegistry.setLicence", registry, data);
}

absl::StatusOr<MinedTransaction> ChainAdmin::PublishPolicy(absl::string_view registry,
                                                           uint64_t version,
                                                           absl::string_view bundle_hash) {
  ASSIGN_OR_RETURN(std::string data, EncodePublishPolicyCall(version, bundle_hash));
  return Transact(regulators_, "PolicyRegistry.publish", registry, data);
}

}  // namespace medvault::signer
