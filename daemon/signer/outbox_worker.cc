#include "daemon/signer/outbox_worker.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"

namespace medvault::signer {
namespace {

std::string BlockTag(uint64_t block) { return absl::StrCat("0x", absl::Hex(block)); }

bool IsFinal(AnchorState state) {
  return state == AnchorState::kConfirmed || state == AnchorState::kFailed;
}

}  // namespace

void OutboxWorker::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void OutboxWorker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void OutboxWorker::Notify() {
  absl::MutexLock lock(&mu_);
  ++changes_;
}

absl::StatusOr<OutboxStore::Enqueued> OutboxWorker::Submit(absl::string_view log_id,
                                                           uint64_t tree_size,
                                                           absl::string_view root_hash) {
  RETURN_IF_ERROR(CheckAnchorRequest(log_id, tree_size, root_hash));
  if (tree_size > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("tree_size: must be below 2^63");
  }
  ASSIGN_OR_RETURN(OutboxStore::Enqueued enqueued,
                   store_->Enqueue(log_id, tree_size, root_hash, options_.capacity));
  absl::MutexLock lock(&mu_);
  wake_ = true;
  return enqueued;
}

absl::StatusOr<OutboxEntry> OutboxWorker::WaitFinal(int64_t id, absl::Time deadline) {
  for (;;) {
    uint64_t seen;
    {
      absl::MutexLock lock(&mu_);
      seen = changes_;
    }
    ASSIGN_OR_RETURN(OutboxEntry entry, store_->Get(id));
    if (IsFinal(entry.state) || absl::Now() >= deadline) return entry;
    absl::MutexLock lock(&mu_);
    auto changed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return changes_ != seen; };
    mu_.AwaitWithDeadline(absl::Condition(&changed),
                          std::min(deadline, absl::Now() + options_.poll_interval));
  }
}

void OutboxWorker::Run() {
  absl::Duration backoff = options_.poll_interval;
  for (;;) {
    absl::StatusOr<bool> more = Step();
    absl::Duration wait = options_.poll_interval;
    if (!more.ok()) {
      if (more.status().ToString() != last_error_) {
        last_error_ = more.status().ToString();
        log::Warn("outbox.retrying", {{"error", more.status()}});
      }
      wait = backoff;
      backoff = std::min(backoff * 2, options_.max_backoff);
    } else {
      if (!last_error_.empty()) log::Info("outbox.recovered");
      last_error_.clear();
      backoff = options_.poll_interval;
      if (*more) wait = absl::ZeroDuration();
    }
    absl::MutexLock lock(&mu_);
    ++changes_;
    // A new request wakes an idle worker at once, but does not cut a
    // backoff short only to fail against an unreachable node again.
    const bool backing_off = !more.ok();
    auto woken = [this, backing_off]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || (wake_ && !backing_off);
    };
    if (wait > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
    if (stopping_) return;
    wake_ = false;
  }
}

absl::StatusOr<bool> OutboxWorker::Step() {
  ASSIGN_OR_RETURN(std::optional<OutboxEntry> entry, store_->NextUnfinished());
  if (!entry.has_value()) return false;
  if (entry->state == AnchorState::kQueued || entry->transactions.empty()) return SendFirst(*entry);
  return Track(*entry);
}

absl::StatusOr<bool> OutboxWorker::SendFirst(const OutboxEntry& entry) {
  absl::StatusOr<CallRequest> call =
      anchorer_->AnchorCall(entry.log_id, entry.tree_size, entry.root_hash);
  if (absl::IsInvalidArgument(call.status())) {
    RETURN_IF_ERROR(store_->MarkFailed(entry.id, call.status().message()));
    return true;
  }
  if (!call.ok()) return call.status();  // the keyvault (the key's address)
  TransactionSender& sender = anchorer_->sender();
  ASSIGN_OR_RETURN(uint64_t chain_id, sender.CheckedChainId());
  ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(*call, "latest"));
  if (outcome.reverted) {
    absl::StatusOr<AnchorResult> settled = anchorer_->FromRevert(outcome.data, entry.log_id);
    if (!settled.ok() && !absl::IsFailedPrecondition(settled.status())) return settled.status();
    if (settled.ok()) {
      log::Info("anchor.already_anchored",
                {{"outbox_id", entry.id}, {"tree_size", entry.tree_size}});
      RETURN_IF_ERROR(store_->MarkConfirmed(entry.id, "", settled->block_number, true));
    } else {
      log::Warn(
          "anchor.failed",
          {{"outbox_id", entry.id}, {"tree_size", entry.tree_size}, {"error", settled.status()}});
      RETURN_IF_ERROR(store_->MarkFailed(entry.id, settled.status().message()));
    }
    return true;
  }
  ASSIGN_OR_RETURN(uint64_t gas_limit, sender.GasLimit(*call));
  ASSIGN_OR_RETURN(Fees fees, sender.MarketFees());
  ASSIGN_OR_RETURN(uint64_t nonce, chain_->PendingNonce(call->from));
  ASSIGN_OR_RETURN(TransactionSender::Signed signed_tx,
                   sender.Sign(*call, chain_id, nonce, gas_limit, fees));
  SentTransaction tx{signed_tx.hash, signed_tx.raw, nonce, gas_limit, fees, absl::Now()};
  // Durable before the node sees it: after a crash the nonce and the hash
  // are known.
  RETURN_IF_ERROR(store_->RecordTransaction(entry.id, tx));
  absl::StatusOr<std::string> sent = chain_->SendRawTransaction(tx.raw);
  if (absl::IsFailedPrecondition(sent.status())) {
    // The node refused it (nonce too low, insufficient funds, ...): nothing
    // is in flight; try again from the start with a fresh nonce.
    RETURN_IF_ERROR(store_->Requeue(entry.id, sent.status().message()));
    return sent.status();
  }
  if (!sent.ok()) return sent.status();  // maybe sent; Track() rebroadcasts if not
  log::Info("anchor.submitted", {{"outbox_id", entry.id},
                                 {"tree_size", entry.tree_size},
                                 {"nonce", nonce},
                                 {"tx", ToHex(tx.hash)}});
  return false;
}

absl::StatusOr<bool> OutboxWorker::Track(const OutboxEntry& entry) {
  const SentTransaction& newest = entry.transactions.back();
  const uint64_t nonce = newest.nonce;
  ASSIGN_OR_RETURN(CallRequest call,
                   anchorer_->AnchorCall(entry.log_id, entry.tree_size, entry.root_hash));
  // The mined count first: a transaction mined after this read is seen by
  // the receipt checks below, so "nonce mined, no receipt of ours" is sound.
  ASSIGN_OR_RETURN(uint64_t mined, chain_->MinedNonce(call.from));
  // Every transaction ever signed for the entry, also those of an earlier
  // nonce (before it was queued again): whichever landed counts.
  for (auto tx = entry.transactions.rbegin(); tx != entry.transactions.rend(); ++tx) {
    ASSIGN_OR_RETURN(std::optional<TransactionReceipt> receipt,
                     chain_->GetTransactionReceipt(tx->hash));
    if (!receipt.has_value()) continue;
    ASSIGN_OR_RETURN(uint64_t head, chain_->BlockNumber());
    if (head + 1 < receipt->block_number + anchorer_->options().confirmations) return false;
    return Settle(entry, call, *receipt);
  }
  if (mined > nonce) {
    // None of ours was mined, yet the nonce was used.
    ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(call, "latest"));
    if (outcome.reverted) {
      absl::StatusOr<AnchorResult> settled = anchorer_->FromRevert(outcome.data, entry.log_id);
      if (settled.ok()) {
        RETURN_IF_ERROR(store_->MarkConfirmed(entry.id, "", settled->block_number, true));
        return true;
      }
    }
    log::Warn("anchor.nonce_taken", {{"outbox_id", entry.id}, {"nonce", nonce}});
    RETURN_IF_ERROR(store_->Requeue(
        entry.id, absl::StrCat("nonce ", nonce, " was used by another transaction")));
    return true;
  }
  ASSIGN_OR_RETURN(uint64_t pending, chain_->PendingNonce(call.from));
  if (pending <= nonce) {
    // The node's pool does not hold it (never sent, or the node lost it).
    log::Info("anchor.rebroadcast", {{"outbox_id", entry.id}, {"nonce", nonce}});
    RETURN_IF_ERROR(Broadcast(newest));
    return false;
  }
  if (absl::Now() - newest.sent_at >= options_.bump_after) return BumpFees(entry, call);
  return false;
}

absl::StatusOr<bool> OutboxWorker::Settle(const OutboxEntry& entry, const CallRequest& call,
                                          const TransactionReceipt& receipt) {
  if (receipt.success) {
    log::Info("anchor.confirmed", {{"outbox_id", entry.id},
                                   {"tree_size", entry.tree_size},
                                   {"tx", ToHex(receipt.transaction_hash)},
                                   {"block", receipt.block_number}});
    RETURN_IF_ERROR(
        store_->MarkConfirmed(entry.id, receipt.transaction_hash, receipt.block_number, false));
    return true;
  }
  // Reverted: replayed where it failed, for the reason.
  ASSIGN_OR_RETURN(CallOutcome outcome, chain_->EthCall(call, BlockTag(receipt.block_number)));
  if (outcome.reverted) {
    absl::StatusOr<AnchorResult> settled = anchorer_->FromRevert(outcome.data, entry.log_id);
    if (settled.ok()) {
      RETURN_IF_ERROR(
          store_->MarkConfirmed(entry.id, receipt.transaction_hash, settled->block_number, true));
      return true;
    }
    if (!absl::IsFailedPrecondition(settled.status())) return settled.status();
    RETURN_IF_ERROR(store_->MarkFailed(entry.id, settled.status().message()));
    return true;
  }
  RETURN_IF_ERROR(store_->MarkFailed(
      entry.id,
      absl::StrCat("transaction ", ToHex(receipt.transaction_hash), " reverted in block ",
                   receipt.block_number, " but its call succeeds when replayed (out of gas?)")));
  return true;
}

absl::Status OutboxWorker::Broadcast(const SentTransaction& tx) {
  absl::StatusOr<std::string> sent = chain_->SendRawTransaction(tx.raw);
  if (!sent.ok()) return sent.status();
  if (*sent != tx.hash) {
    return absl::InternalError(absl::StrCat("eth_sendRawTransaction returned ", ToHex(*sent),
                                            ", the transaction's hash is ", ToHex(tx.hash)));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> OutboxWorker::BumpFees(const OutboxEntry& entry, const CallRequest& call) {
  const SentTransaction& newest = entry.transactions.back();
  TransactionSender& sender = anchorer_->sender();
  ASSIGN_OR_RETURN(Fees market, sender.MarketFees());
  ASSIGN_OR_RETURN(
      Fees fees, ::medvault::signer::BumpFees(newest.fees, market, anchorer_->options().fee_caps));
  ASSIGN_OR_RETURN(uint64_t chain_id, sender.CheckedChainId());
  // The same gas limit: estimating again would run against the node's
  // pending state, where the transaction being replaced already anchored.
  ASSIGN_OR_RETURN(TransactionSender::Signed signed_tx,
                   sender.Sign(call, chain_id, newest.nonce, newest.gas_limit, fees));
  SentTransaction tx{signed_tx.hash,   signed_tx.raw, newest.nonce,
                     newest.gas_limit, fees,          absl::Now()};
  RETURN_IF_ERROR(store_->RecordTransaction(entry.id, tx));
  absl::Status sent = Broadcast(tx);
  if (absl::IsFailedPrecondition(sent)) {
    // Refused (underpriced, or the original was mined meanwhile): the
    // previous transaction stays the current one.
    RETURN_IF_ERROR(store_->ForgetTransaction(tx.hash));
    return sent;
  }
  RETURN_IF_ERROR(sent);
  log::Info("anchor.fee_bumped", {{"outbox_id", entry.id},
                                  {"nonce", newest.nonce},
                                  {"tx", ToHex(tx.hash)},
                                  {"replaces", ToHex(newest.hash)},
                                  {"max_fee_per_gas", fees.max_fee_per_gas},
                                  {"max_priority_fee_per_gas", fees.max_priority_fee_per_gas}});
  return false;
}

}  // namespace medvault::signer
