#include "daemon/signer/transaction_sender.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {

absl::StatusOr<uint64_t> TransactionSender::CheckedChainId() {
  ASSIGN_OR_RETURN(uint64_t chain_id, chain_->ChainId());
  if (options_.expected_chain_id != 0 && chain_id != options_.expected_chain_id) {
    return absl::FailedPreconditionError(absl::StrCat("node reports chain id ", chain_id,
                                                      ", configuration expects ",
                                                      options_.expected_chain_id));
  }
  return chain_id;
}

absl::StatusOr<Fees> TransactionSender::MarketFees() {
  ASSIGN_OR_RETURN(uint64_t base_fee, chain_->NextBaseFee());
  ASSIGN_OR_RETURN(uint64_t tip, chain_->MaxPriorityFeePerGas());
  return ChooseFees(base_fee, tip, options_.fee_caps);
}

absl::StatusOr<uint64_t> TransactionSender::GasLimit(const CallRequest& call) {
  ASSIGN_OR_RETURN(uint64_t gas, chain_->EstimateGas(call));
  return gas + gas / 4;
}

absl::StatusOr<TransactionSender::Signed> TransactionSender::Sign(const CallRequest& call,
                                                                  uint64_t chain_id, uint64_t nonce,
                                                                  uint64_t gas_limit,
                                                                  const Fees& fees) {
  Eip1559Transaction tx;
  tx.chain_id = chain_id;
  tx.nonce = nonce;
  tx.to = call.to;
  tx.data = call.data;
  tx.gas_limit = gas_limit;
  tx.max_fee_per_gas = fees.max_fee_per_gas;
  tx.max_priority_fee_per_gas = fees.max_priority_fee_per_gas;
  ASSIGN_OR_RETURN(std::string digest, SigningHash(tx));
  ASSIGN_OR_RETURN(EthSignature signature, key_->SignDigest(digest));
  Signed out;
  ASSIGN_OR_RETURN(out.raw, EncodeSignedTransaction(tx, signature));
  out.hash = Keccak256(out.raw);
  return out;
}

absl::StatusOr<MinedTransaction> TransactionSender::Send(absl::string_view to,
                                                         absl::string_view data) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(uint64_t chain_id, CheckedChainId());
  CallRequest call;
  ASSIGN_OR_RETURN(call.from, key_->Address());
  call.to = std::string(to);
  call.data = std::string(data);
  ASSIGN_OR_RETURN(uint64_t gas_limit, GasLimit(call));
  ASSIGN_OR_RETURN(Fees fees, MarketFees());
  ASSIGN_OR_RETURN(uint64_t nonce, chain_->PendingNonce(call.from));
  ASSIGN_OR_RETURN(Signed signed_tx, Sign(call, chain_id, nonce, gas_limit, fees));
  MinedTransaction sent;
  sent.hash = std::move(signed_tx.hash);
  sent.sender = call.from;
  sent.nonce = nonce;
  ASSIGN_OR_RETURN(std::string accepted, chain_->SendRawTransaction(signed_tx.raw));
  if (accepted != sent.hash) {
    return absl::InternalError(absl::StrCat("eth_sendRawTransaction returned ", ToHex(accepted),
                                            ", the transaction's hash is ", ToHex(sent.hash)));
  }
  log::Info("tx.sent", {{"tx", ToHex(sent.hash)},
                        {"from", ToHex(sent.sender)},
                        {"nonce", sent.nonce},
                        {"create", call.to.empty()}});
  return WaitForReceipt(call, std::move(sent));
}

absl::StatusOr<MinedTransaction> TransactionSender::WaitForReceipt(const CallRequest& call,
                                                                   MinedTransaction sent) {
  const absl::Time deadline = absl::Now() + options_.receipt_timeout;
  absl::Status last = absl::OkStatus();
  for (;;) {
    absl::StatusOr<std::optional<TransactionReceipt>> receipt =
        chain_->GetTransactionReceipt(sent.hash);
    if (!receipt.ok()) {
      last = receipt.status();  // the node may come back before the deadline
    } else if (receipt->has_value()) {
      const TransactionReceipt& r = **receipt;
      absl::StatusOr<uint64_t> head = chain_->BlockNumber();
      if (!head.ok()) {
        last = head.status();
      } else if (*head + 1 >= r.block_number + options_.confirmations) {
        sent.block_number = r.block_number;
        sent.success = r.success;
        sent.contract_address = r.contract_address;
        if (!r.success) {
          // Replays the call where it failed, for the contract's reason.
          ASSIGN_OR_RETURN(CallOutcome replay,
                           chain_->EthCall(call, absl::StrCat("0x", absl::Hex(r.block_number))));
          if (replay.reverted) sent.revert_data = std::move(replay.data);
        }
        return sent;
      }
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(options_.poll_interval);
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "transaction ", ToHex(sent.hash), " (nonce ", sent.nonce, ") not confirmed by ",
      options_.confirmations, " block(s) within ", absl::FormatDuration(options_.receipt_timeout),
      "; it may still land", last.ok() ? "" : absl::StrCat(" (last error: ", last.message(), ")")));
}

}  // namespace medvault::signer
