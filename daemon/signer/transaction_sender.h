// TransactionSender: one EIP-1559 transaction at a time, signed by a
// ChainKey (a key in the keyvault), sent and followed until it is mined
// `confirmations` deep. The synchronous path, for what an operator or the
// regulator does interactively (deploying the contracts, setting a
// licence, publishing a policy) and for the Anchorer's direct Anchor();
// the audit log's anchors go through the durable outbox instead
// (outbox_worker.h), which keeps its nonces in its own database.
//
// Each Send:
//   1. checks the node's chain id against the configured one;
//   2. gas from eth_estimateGas plus a quarter, fees from fee_policy.h;
//   3. the nonce from eth_getTransactionCount(sender, "pending"), asked
//      every time: the sender's transactions are serialised (a mutex per
//      TransactionSender, one per key) and each is mined or abandoned before
//      the next, so the node's pending count is the next free nonce;
//   4. signs keccak256 of the typed payload with the key; eth_sendRawTransaction;
//   5. polls for the receipt until `confirmations` blocks include it. A
//      transaction that failed is replayed with eth_call at its block, so
//      the caller gets the contract's revert data.
//
// Callers simulate first (eth_call): a call that would revert is answered
// with the contract's reason without spending gas or a nonce.
//
// Thread-safe. `chain` and `key` must outlive the sender.
#ifndef MEDVAULT_DAEMON_SIGNER_TRANSACTION_SENDER_H_
#define MEDVAULT_DAEMON_SIGNER_TRANSACTION_SENDER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/signer/chain_key.h"
#include "daemon/signer/fee_policy.h"
#include "daemon/signer/json_rpc_client.h"

namespace medvault::signer {

struct TransactionSenderOptions {
  uint64_t expected_chain_id = 0;  // 0: whatever the node reports
  uint32_t confirmations = 1;      // blocks that must include the transaction, at least 1
  FeeCaps fee_caps;
  absl::Duration receipt_timeout = absl::Minutes(2);
  absl::Duration poll_interval = absl::Milliseconds(200);
};

// A transaction that was mined and is `confirmations` deep.
struct MinedTransaction {
  std::string hash;    // 32 bytes
  std::string sender;  // 20 bytes
  uint64_t nonce = 0;
  uint64_t block_number = 0;
  bool success = false;
  // When !success: what eth_call returns replaying it at its block (the
  // contract's revert data; empty if the replay succeeds, e.g. out of gas).
  std::string revert_data;
  // A contract creation's new address (20 bytes).
  std::string contract_address;
};

class TransactionSender {
 public:
  TransactionSender(ChainClient* chain, ChainKey* key, TransactionSenderOptions options)
      : chain_(chain), key_(key), options_(std::move(options)) {}

  // The node's chain id; FAILED_PRECONDITION when it is not the configured one.
  absl::StatusOr<uint64_t> CheckedChainId();

  // The key's address, 20 bytes.
  absl::StatusOr<std::string> Sender() { return key_->Address(); }

  // Sends a call from the key to `to` (20 bytes; empty to create a contract
  // from `data`) and waits. A mined transaction that failed is a result
  // (success false), not an error. Errors: FAILED_PRECONDITION for a chain
  // id mismatch or gas estimation refused (the call reverts now);
  // UNAVAILABLE when the node or keyvault cannot be reached or the base fee
  // is above the cap; DEADLINE_EXCEEDED when the transaction was sent but
  // is not confirmed within receipt_timeout (the message has its hash and
  // nonce: it may still land).
  absl::StatusOr<MinedTransaction> Send(absl::string_view to, absl::string_view data);

  // --- Send's steps, for the outbox worker (which keeps its own nonces) ---
  // The fees to offer now (fee_policy.h): UNAVAILABLE above the caps.
  absl::StatusOr<Fees> MarketFees();
  // eth_estimateGas plus a quarter.
  absl::StatusOr<uint64_t> GasLimit(const CallRequest& call);
  struct Signed {
    std::string raw;   // for eth_sendRawTransaction
    std::string hash;  // keccak256(raw)
  };
  // `call` (to, data) as an EIP-1559 transaction signed by the key, not sent.
  absl::StatusOr<Signed> Sign(const CallRequest& call, uint64_t chain_id, uint64_t nonce,
                              uint64_t gas_limit, const Fees& fees);

  const TransactionSenderOptions& options() const { return options_; }

 private:
  absl::StatusOr<MinedTransaction> WaitForReceipt(const CallRequest& call, MinedTransaction sent);

  ChainClient* const chain_;
  ChainKey* const key_;
  const TransactionSenderOptions options_;
  absl::Mutex mu_;  // held for a whole Send: one transaction of this key at a time
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_TRANSACTION_SENDER_H_
