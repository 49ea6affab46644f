// Anchorer: puts a log's tree head on chain with AuditAnchor.anchor() and
// reads it back with latest().
//
// Anchor() is the synchronous path (one request, answered when confirmed):
//   1. simulate the call (eth_call): AlreadyAnchored means the same tree
//      head is already the latest (a retry of an anchor that landed) and is
//      a success without a transaction; TreeSizeNotIncreasing and
//      NotOperator are refused with FAILED_PRECONDITION;
//   2. send it with a TransactionSender (transaction_sender.h: gas, fees,
//      nonce, signature by the ChainKey in the keyvault, receipt
//      `confirmations` deep). A transaction that reverted is decoded the
//      same way; AlreadyAnchored is again a success.
//
// The signer process uses the durable outbox instead (outbox_worker.h),
// which drives the same steps one by one through the public step functions
// below and keeps nonces and transactions in its database.
//
// Thread-safe. `chain` and `key` must outlive the Anchorer.
#ifndef MEDVAULT_DAEMON_SIGNER_ANCHORER_H_
#define MEDVAULT_DAEMON_SIGNER_ANCHORER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/chain_key.h"
#include "daemon/signer/fee_policy.h"
#include "daemon/signer/json_rpc_client.h"
#include "daemon/signer/transaction_sender.h"

namespace medvault::signer {

// Chain id, confirmations, fee caps and the receipt wait as for any
// transaction (transaction_sender.h), and the contract.
struct AnchorerOptions : TransactionSenderOptions {
  std::string contract;  // AuditAnchor's address, 20 bytes
};

struct AnchorResult {
  // The transaction that anchored this tree head; empty when it was already
  // the latest one and nothing was sent.
  std::string transaction_hash;
  // Block that holds the anchor (from latest() when already anchored).
  uint64_t block_number = 0;
  bool already_anchored = false;
};

// The request Anchor() accepts: INVALID_ARGUMENT naming the field for a log
// id or root that is not 32 non-zero bytes or a zero tree size.
absl::Status CheckAnchorRequest(absl::string_view log_id, uint64_t tree_size,
                                absl::string_view root_hash);

class Anchorer {
 public:
  // INVALID_ARGUMENT for a contract that is not 20 bytes or no confirmations.
  static absl::StatusOr<std::unique_ptr<Anchorer>> Create(ChainClient* chain, ChainKey* key,
                                                          AnchorerOptions options);

  // Anchors (log_id, tree_size, root_hash). INVALID_ARGUMENT (naming the
  // field) for a log id or root that is not 32 non-zero bytes or a zero tree
  // size; FAILED_PRECONDITION when the contract refuses (a tree size not
  // above the latest, the signer's key not an operator, another revert:
  // the message has the reason) or the node's chain id is not the
  // configured one; UNAVAILABLE when the node or the keyvault cannot be
  // reached or the base fee is above the cap; DEADLINE_EXCEEDED when the
  // transaction was sent but not confirmed in time (the message has its
  // hash; it may still land, and anchoring again is harmless).
  absl::StatusOr<AnchorResult> Anchor(absl::string_view log_id, uint64_t tree_size,
                                      absl::string_view root_hash);

  // latest(log_id) at the latest block; all zero for a log never anchored.
  absl::StatusOr<Checkpoint> GetAnchor(absl::string_view log_id);

  // --- Steps, for the outbox worker (thread-safe, no nonce state) ---------
  // The anchor() call from the chain key's address; INVALID_ARGUMENT as Anchor().
  absl::StatusOr<CallRequest> AnchorCall(absl::string_view log_id, uint64_t tree_size,
                                         absl::string_view root_hash);
  // A revert of anchor(): a success for AlreadyAnchored, else
  // FAILED_PRECONDITION with the contract's reason. (The worker calls
  // eth_call itself: a node error there, also FAILED_PRECONDITION, must
  // stay a transient error and not fail the entry.)
  absl::StatusOr<AnchorResult> FromRevert(absl::string_view revert_data, absl::string_view log_id);
  // Chain id, gas, fees and signing with the chain key (its own nonces are
  // the caller's).
  TransactionSender& sender() { return sender_; }
  const AnchorerOptions& options() const { return options_; }

 private:
  Anchorer(ChainClient* chain, ChainKey* key, AnchorerOptions options);

  // Step 1 at `block`: nullopt when the call would succeed; a result when
  // this tree head is already the latest; FAILED_PRECONDITION with the
  // reason for any other revert (or a node error).
  absl::StatusOr<std::optional<AnchorResult>> Simulate(const CallRequest& call,
                                                       absl::string_view log_id,
                                                       absl::string_view block);

  // Constant after construction.
  ChainClient* const chain_;
  ChainKey* const key_;
  const AnchorerOptions options_;
  TransactionSender sender_;  // serialises the transactions of Anchor()
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_ANCHORER_H_
