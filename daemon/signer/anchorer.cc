#include "daemon/signer/anchorer.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"

namespace medvault::signer {
absl::Status CheckAnchorRequest(absl::string_view log_id, uint64_t tree_size,
                                absl::string_view root_hash) {
  RETURN_IF_ERROR(abi::CheckNonZero32(log_id, "log_id"));
  RETURN_IF_ERROR(abi::CheckNonZero32(root_hash, "root_hash"));
  if (tree_size == 0) return absl::InvalidArgumentError("tree_size: must be above 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Anchorer>> Anchorer::Create(ChainClient* chain, ChainKey* key,
                                                           AnchorerOptions options) {
  if (options.contract.size() != 20) {
    return absl::InvalidArgumentError("anchor contract: must be a 20-byte address");
  }
  if (options.confirmations == 0) {
    return absl::InvalidArgumentError("confirmations: must be at least 1");
  }
  return std::unique_ptr<Anchorer>(new Anchorer(chain, key, std::move(options)));
}

Anchorer::Anchorer(ChainClient* chain, ChainKey* key, AnchorerOptions options)
    : chain_(chain), key_(key), options_(std::move(options)), sender_(chain, key, options_) {}

absl::StatusOr<AnchorResult> Anchorer::Anchor(absl::string_view log_id, uint64_t tree_size,
                                              absl::string_view root_hash) {
  ASSIGN_OR_RETURN(CallRequest call, AnchorCall(log_id, tree_size, root_hash));
  RETURN_IF_ERROR(sender_.CheckedChainId().status());
  ASSIGN_OR_RETURN(std::optional<AnchorResult> settled, Simulate(call, log_id, "latest"));
  if (settled.has_value()) return *settled;
  ASSIGN_OR_RETURN(MinedTransaction mined, sender_.Send(call.to, call.data));
  AnchorResult result{mined.hash, mined.block_number, false};
  if (!mined.success) {
    if (mined.revert_data.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("transaction ", ToHex(mined.hash), " reverted in block ", mined.block_number,
                       " but its call succeeds when replayed (out of gas?)"));
    }
    ASSIGN_OR_RETURN(result, FromRevert(mined.revert_data, log_id));
    result.transaction_hash = mined.hash;
  }
  log::Info("anchor.confirmed", {{"log_id", ToHex(log_id)},
                                 {"tree_size", tree_size},
                                 {"tx", ToHex(mined.hash)},
                                 {"block", result.block_number},
                                 {"already_anchored", result.already_anchored}});
  return result;
}

absl::StatusOr<std::optional<AnchorResult>> Anchorer::Simulate(const CallRequest& call,
                                                               absl::string_view log_id,
                                                               absl::string_view block) {
  ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(call, block));
  if (!outcome.reverted) return std::nullopt;
  ASSIGN_OR_RETURN(AnchorResult result, FromRevert(outcome.data, log_id));
  return result;
}

absl::StatusOr<AnchorResult> Anchorer::FromRevert(absl::string_view revert_data,
                                                  absl::string_view log_id) {
  AnchorRevert revert = DecodeAnchorRevert(revert_data);
  switch (revert.kind) {
    case AnchorRevert::Kind::kAlreadyAnchored: {
      // Nothing to send: this tree head is the log's latest already.
      ASSIGN_OR_RETURN(Checkpoint latest, GetAnchor(log_id));
      AnchorResult result;
      result.already_anchored = true;
      result.block_number = latest.block_number;
      return result;
    }
    case AnchorRevert::Kind::kTreeSizeNotIncreasing:
      if (revert.latest_tree_size == revert.tree_size) {
        return absl::FailedPreconditionError(absl::StrCat(
            "tree_size: ", revert.tree_size, " is already anchored for log ", ToHex(log_id),
            " with a different root_hash (AuditAnchor: ", revert.description, ")"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("tree_size: ", revert.tree_size,
                       " is not above the latest anchored tree size ", revert.latest_tree_size,
                       " of log ", ToHex(log_id), " (AuditAnchor: ", revert.description, ")"));
    case AnchorRevert::Kind::kNotOperator:
      return absl::FailedPreconditionError(absl::StrCat(
          "the chain key ", ToHex(revert.account),
          " is not an operator of the AuditAnchor contract at ", ToHex(options_.contract)));
    case AnchorRevert::Kind::kOther:
      break;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("AuditAnchor.anchor reverted: ", revert.description));
}

absl::StatusOr<CallRequest> Anchorer::AnchorCall(absl::string_view log_id, uint64_t tree_size,
                                                 absl::string_view root_hash) {
  RETURN_IF_ERROR(CheckAnchorRequest(log_id, tree_size, root_hash));
  CallRequest call;
  ASSIGN_OR_RETURN(call.from, key_->Address());
  call.to = options_.contract;
  ASSIGN_OR_RETURN(call.data, EncodeAnchorCall(log_id, tree_size, root_hash));
  return call;
}

absl::StatusOr<Checkpoint> Anchorer::GetAnchor(absl::string_view log_id) {
  RETURN_IF_ERROR(abi::CheckNonZero32(log_id, "log_id"));
  CallRequest call;
  // latest() is a view: any sender does; the zero address needs no keyvault call.
  call.from = std::string(20, '\0');
  call.to = options_.contract;
  ASSIGN_OR_RETURN(call.data, EncodeLatestCall(log_id));
  ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(call, "latest"));
  if (outcome.reverted) {
    return absl::FailedPreconditionError(
        absl::StrCat("AuditAnchor.latest reverted: ", ToHex(outcome.data)));
  }
  if (outcome.data.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no contract code at signer.anchor_contract ",
                                                      ToHex(options_.contract),
                                                      " (latest() returned nothing)"));
  }
  auto checkpoint = DecodeLatestResult(outcome.data);
  if (!checkpoint.ok()) return absl::InternalError(checkpoint.status().message());
  return checkpoint;
}

}  // namespace medvault::signer
