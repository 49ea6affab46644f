// ChainClient: what the signer needs from an Ethereum node. JsonRpcChainClient
// speaks Ethereum JSON-RPC 2.0 over HTTP(S) with libcurl.
#ifndef MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_
#define MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace medvault::signer {

class ChainClient {
 public:
  virtual ~ChainClient() = default;
  // eth_chainId
  virtual absl::StatusOr<uint64_t> ChainId() = 0;
  // eth_blockNumber
  virtual absl::StatusOr<uint64_t> BlockNumber() = 0;
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
      : url_(std::move(url)), timeout_(timeout) {}

  absl::StatusOr<uint64_t> ChainId() override;
  absl::StatusOr<uint64_t> BlockNumber() override;

  // One JSON-RPC call; `params_json` is a JSON array. Returns the "result"
  // member as JSON text.
  absl::StatusOr<std::string> Call(absl::string_view method, absl::string_view params_json);

 private:
  absl::StatusOr<uint64_t> CallQuantity(absl::string_view method);

  const std::string url_;
  const absl::Duration timeout_;
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_JSON_RPC_CLIENT_H_
