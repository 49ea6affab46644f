// ChainClient: what the signer needs from an Ethereum node. JsonRpcChainClient
// speaks Ethereum JSON-RPC 2.0 over HTTP(S) with libcurl.
#ifndef MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_
#define MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/common/url.h"

namespace medvault::signer {

// A message call (eth_call, eth_estimateGas). Addresses are 20 bytes; `to`
// is empty for a contract creation, whose `data` is the init code.
struct CallRequest {
  std::string from;
  std::string to;
  std::string data;
};

// What eth_call returned: the return data, or the revert data when the EVM
// reverted (the node answers with a JSON-RPC error carrying "data").
struct CallOutcome {
  bool reverted = false;
  std::string data;
};

// The parts of eth_getTransactionReceipt the signer uses.
struct TransactionReceipt {
  std::string transaction_hash;  // 32 bytes
  uint64_t block_number = 0;
  bool success = false;  // status 0x1
  uint64_t gas_used = 0;
  std::string contract_address;  // 20 bytes for a contract creation, else empty
};

// An eth_getLogs filter: logs of any of `addresses` (20 bytes each) whose
// first topic is any of `topic0` (32 bytes each), in blocks from_block to
// to_block inclusive.
struct LogFilter {
  std::vector<std::string> addresses;
  std::vector<std::string> topic0;
  uint64_t from_block = 0;
  uint64_t to_block = 0;
};

// One log (event) of eth_getLogs.
struct EventLog {
  std::string address;              // 20 bytes: the contract that emitted it
  std::vector<std::string> topics;  // 32 bytes each; topics[0] is the event's
  std::string data;                 // the non-indexed arguments, ABI-encoded
  uint64_t block_number = 0;
  std::string block_hash;        // 32 bytes
  std::string transaction_hash;  // 32 bytes
  uint32_t log_index = 0;        // position in the block
  bool removed = false;          // dropped by a reorganisation (filters only)
};

// The parts of a block header the indexer uses.
struct BlockHeader {
  uint64_t number = 0;
  std::string hash;         // 32 bytes
  std::string parent_hash;  // 32 bytes
  uint64_t timestamp = 0;   // seconds since the epoch
};

// Every method: UNAVAILABLE when the node cannot be reached or times out;
// INTERNAL for a malformed answer; the node's JSON-RPC error as
// FAILED_PRECONDITION with its code and message.
class ChainClient {
 public:
  virtual ~ChainClient() = default;
  // eth_chainId
  virtual absl::StatusOr<uint64_t> ChainId() = 0;
  // eth_blockNumber
  virtual absl::StatusOr<uint64_t> BlockNumber() = 0;
  // eth_getTransactionCount(address, "pending"): the next nonce of `address`
  // (20 bytes), counting transactions still in the node's pool.
  virtual absl::StatusOr<uint64_t> PendingNonce(absl::string_view address) = 0;
  // eth_getTransactionCount(address, "latest"): transactions of `address`
  // already in blocks, i.e. the lowest nonce not yet mined.
  virtual absl::StatusOr<uint64_t> MinedNonce(absl::string_view address) = 0;
  // eth_maxPriorityFeePerGas: the node's suggested tip, in wei.
  virtual absl::StatusOr<uint64_t> MaxPriorityFeePerGas() = 0;
  // eth_feeHistory(1, "latest", []): the last baseFeePerGas entry, which is
  // the base fee of the block after the latest one, in wei.
  virtual absl::StatusOr<uint64_t> NextBaseFee() = 0;
  // eth_estimateGas. A revert is FAILED_PRECONDITION.
  virtual absl::StatusOr<uint64_t> EstimateGas(const CallRequest& call) = 0;
  // eth_call at `block` ("latest", or a block number as a quantity). A
  // revert is an outcome, not an error.
  virtual absl::StatusOr<CallOutcome> EthCall(const CallRequest& call, absl::string_view block) = 0;
  // eth_sendRawTransaction of `raw` (bytes); returns the 32-byte transaction hash.
  virtual absl::StatusOr<std::string> SendRawTransaction(absl::string_view raw) = 0;
  // eth_getTransactionReceipt of a 32-byte hash; nullopt while the node has
  // no receipt (pending or unknown).
  virtual absl::StatusOr<std::optional<TransactionReceipt>> GetTransactionReceipt(
      absl::string_view hash) = 0;
  // eth_getLogs with `filter`, in the node's order (block, then log index).
  // A log without a block (pending) or with a field of the wrong size is a
  // malformed answer (INTERNAL).
  virtual absl::StatusOr<std::vector<EventLog>> GetLogs(const LogFilter& filter) = 0;
  // eth_getBlockByNumber(number, false); nullopt when the node has no such
  // block (beyond its head).
  virtual absl::StatusOr<std::optional<BlockHeader>> GetBlockHeader(uint64_t number) = 0;
};

// Parses an Ethereum QUANTITY ("0x7a69"); INVALID_ARGUMENT otherwise.
absl::StatusOr<uint64_t> ParseQuantity(absl::string_view hex);

class JsonRpcChainClient : public ChainClient {
 public:
  // Thread-safe; every call uses its own connection. UNAVAILABLE when the
  // node cannot be reached or times out; INTERNAL for a malformed answer;
  // the node's JSON-RPC error is returned as FAILED_PRECONDITION with its
  // code and message.
  JsonRpcChainClient(std::string url, absl::Duration timeout)
      : url_(std::move(url)), endpoint_(EndpointForLogs(url_)), timeout_(timeout) {}

  absl::StatusOr<uint64_t> ChainId() override;
  absl::StatusOr<uint64_t> BlockNumber() override;
  absl::StatusOr<uint64_t> PendingNonce(absl::string_view address) override;
  absl::StatusOr<uint64_t> MinedNonce(absl::string_view address) override;
  absl::StatusOr<uint64_t> MaxPriorityFeePerGas() override;
  absl::StatusOr<uint64_t> NextBaseFee() override;
  absl::StatusOr<uint64_t> EstimateGas(const CallRequest& call) override;
  absl::StatusOr<CallOutcome> EthCall(const CallRequest& call, absl::string_view block) override;
  absl::StatusOr<std::string> SendRawTransaction(absl::string_view raw) override;
  absl::StatusOr<std::optional<TransactionReceipt>> GetTransactionReceipt(
      absl::string_view hash) override;
  absl::StatusOr<std::vector<EventLog>> GetLogs(const LogFilter& filter) override;
  absl::StatusOr<std::optional<BlockHeader>> GetBlockHeader(uint64_t number) override;

  // One JSON-RPC call; `params_json` is a JSON array. Returns the "result"
  // member as JSON text.
  absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view params_json);

 private:
  // The reply's "result" or "error" member; see the .cc.
  struct Reply;
  absl::StatusOr<Reply> Invoke(absl::string_view method, absl::string_view params_json);
  absl::StatusOr<uint64_t> CallQuantity(absl::string_view method,
                                        absl::string_view params_json = "[]");

  const std::string url_;
  const std::string endpoint_;  // url_ for messages, without credentials (url.h)
  const absl::Duration timeout_;
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_
