// The JSON-RPC client against a minimal HTTP peer on loopback: results,
// node errors, reverts, receipts, malformed replies and an unreachable node
// each map to the documented status.
#include "daemon/signer/json_rpc_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "daemon/signer/eth_tx.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Answers one HTTP request with `body` and closes.
class OneShotHttpPeer {
 public:
  explicit OneShotHttpPeer(std::string body) : body_(std::move(body)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      std::string reply = absl::StrCat(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", body_.size(),
          "\r\nConnection: close\r\n\r\n", body_);
      (void)!write(c, reply.data(), reply.size());
      close(c);
    });
  }
  ~OneShotHttpPeer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  std::string body_;
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

// Hex quantities parse; anything else is INVALID_ARGUMENT.
TEST(ParseQuantityTest, AcceptsOnlyHexQuantities) {
  EXPECT_EQ(*ParseQuantity("0x7a69"), 31337u);
  EXPECT_EQ(*ParseQuantity("0x0"), 0u);
  EXPECT_FALSE(ParseQuantity("7a69").ok());
  EXPECT_FALSE(ParseQuantity("0x").ok());
  EXPECT_FALSE(ParseQuantity("0xzz").ok());
  EXPECT_FALSE(ParseQuantity("0x10000000000000000").ok());
}

// A result is read from the reply.
TEST(JsonRpcChainClientTest, ReadsChainId) {
  OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":"0x7a69"})");
  JsonRpcChainClient client(peer.url(), absl::Seconds(5));
  auto id = client.ChainId();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 31337u);
}

// The node's own error is FAILED_PRECONDITION and carries its message.
TEST(JsonRpcChainClientTest, NodeErrorIsFailedPrecondition) {
  OneShotHttpPeer peer(
      R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}})");
  JsonRpcChainClient client(peer.url(), absl::Seconds(5));
  auto id = client.ChainId();
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(id.status().message(), HasSubstr("method not found"));
}

// A reply that is not JSON, or whose result is not a quantity, is INTERNAL.
TEST(JsonRpcChainClientTest, MalformedReplyIsInternal) {
  {
    OneShotHttpPeer peer("<html>proxy error</html>");
    EXPECT_EQ(JsonRpcChainClient(peer.url(), absl::Seconds(5)).ChainId().status().code(),
              absl::StatusCode::kInternal);
  }
  {
    OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":12})");
    EXPECT_EQ(JsonRpcChainClient(peer.url(), absl::Seconds(5)).ChainId().status().code(),
              absl::StatusCode::kInternal);
  }
}

// Nobody listening is UNAVAILABLE.
TEST(JsonRpcChainClientTest, UnreachableNodeIsUnavailable) {
  int port;
  {
    OneShotHttpPeer peer("{}");  // reserve, then release, a free port
    port = std::stoi(peer.url().substr(peer.url().rfind(':') + 1));
  }
  JsonRpcChainClient client(absl::StrCat("http://127.0.0.1:", port), absl::Seconds(2));
  EXPECT_EQ(client.ChainId().status().code(), absl::StatusCode::kUnavailable);
  // Credentials in the URL (user:password@, an API key in the path or the
  // query, as hosted endpoints take them) never reach the message, which is logged.
  JsonRpcChainClient keyed(
      absl::StrCat("http://user:s3cret@127.0.0.1:", port, "/v3/APIKEY123?token=T0KEN"),
      absl::Seconds(2));
  absl::Status down = keyed.ChainId().status();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.message(), HasSubstr(absl::StrCat("http://127.0.0.1:", port)));
  for (const char* secret : {"s3cret", "APIKEY123", "T0KEN", "user"}) {
    EXPECT_THAT(down.message(), Not(HasSubstr(secret))) << down.message();
  }
}

// eth_feeHistory: the next block's base fee is the last baseFeePerGas entry.
TEST(JsonRpcChainClientTest, NextBaseFeeIsTheLastEntry) {
  OneShotHttpPeer peer(
      R"({"jsonrpc":"2.0","id":1,"result":{"baseFeePerGas":["0x2df55018","0x283da6a1"],)"
      R"("gasUsedRatio":[0.0023806],"oldestBlock":"0x3","reward":[]}})");
  auto fee = JsonRpcChainClient(peer.url(), absl::Seconds(5)).NextBaseFee();
  ASSERT_TRUE(fee.ok()) << fee.status();
  EXPECT_EQ(*fee, 0x283da6a1u);
}

// An empty or missing baseFeePerGas is INTERNAL, not a crash.
TEST(JsonRpcChainClientTest, MalformedFeeHistoryIsInternal) {
  for (const char* body :
       {R"({"jsonrpc":"2.0","id":1,"result":{"baseFeePerGas":[]}})",
        R"({"jsonrpc":"2.0","id":1,"result":{}})", R"({"jsonrpc":"2.0","id":1,"result":"0x1"})"}) {
    OneShotHttpPeer peer(body);
    EXPECT_EQ(JsonRpcChainClient(peer.url(), absl::Seconds(5)).NextBaseFee().status().code(),
              absl::StatusCode::kInternal)
        << body;
  }
}

// A revert (an error with data, as anvil answers) is an outcome with the
// revert data; an error without data is the node's error.
TEST(JsonRpcChainClientTest, EthCallRevertCarriesData) {
  CallRequest call{std::string(20, '\x01'), std::string(20, '\x02'), "\x70\xc1"};
  {
    OneShotHttpPeer peer(
        R"({"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted: \u0011",)"
        R"("data":"0x1d9b917e00ff"}})");
    auto outcome = JsonRpcChainClient(peer.url(), absl::Seconds(5)).EthCall(call, "latest");
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_TRUE(outcome->reverted);
    EXPECT_EQ(outcome->data, std::string("\x1d\x9b\x91\x7e\x00\xff", 6));
  }
  {
    OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":"0x0102"})");
    auto outcome = JsonRpcChainClient(peer.url(), absl::Seconds(5)).EthCall(call, "0xb");
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_FALSE(outcome->reverted);
    EXPECT_EQ(outcome->data, "\x01\x02");
  }
  {
    OneShotHttpPeer peer(
        R"({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}})");
    auto outcome = JsonRpcChainClient(peer.url(), absl::Seconds(5)).EthCall(call, "latest");
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(outcome.status().message(), HasSubstr("header not found"));
  }
}

// A receipt is read; null (not mined yet) is nullopt; a receipt without a
// status is INTERNAL.
TEST(JsonRpcChainClientTest, ReadsReceipts) {
  const std::string hash(32, '\xab');
  {
    OneShotHttpPeer peer(
        absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":{"transactionHash":")", ToHex(hash),
                     R"(","blockNumber":"0x1f","status":"0x0","gasUsed":"0x5208","logs":[]}})"));
    auto receipt = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetTransactionReceipt(hash);
    ASSERT_TRUE(receipt.ok()) << receipt.status();
    ASSERT_TRUE(receipt->has_value());
    EXPECT_EQ((*receipt)->transaction_hash, hash);
    EXPECT_EQ((*receipt)->block_number, 31u);
    EXPECT_FALSE((*receipt)->success);
    EXPECT_EQ((*receipt)->gas_used, 21000u);
  }
  {
    OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":null})");
    auto receipt = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetTransactionReceipt(hash);
    ASSERT_TRUE(receipt.ok()) << receipt.status();
    EXPECT_FALSE(receipt->has_value());
  }
  {
    OneShotHttpPeer peer(absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":{"transactionHash":")",
                                      ToHex(hash), R"(","blockNumber":"0x1f"}})"));
    auto receipt = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetTransactionReceipt(hash);
    EXPECT_EQ(receipt.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(receipt.status().message(), HasSubstr("status"));
  }
}

// eth_sendRawTransaction returns the 32-byte hash; anything else is INTERNAL.
TEST(JsonRpcChainClientTest, SendRawTransactionReturnsTheHash) {
  const std::string hash(32, '\xcd');
  {
    OneShotHttpPeer peer(absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":")", ToHex(hash), "\"}"));
    auto sent = JsonRpcChainClient(peer.url(), absl::Seconds(5)).SendRawTransaction("\x02\xc0");
    ASSERT_TRUE(sent.ok()) << sent.status();
    EXPECT_EQ(*sent, hash);
  }
  {
    OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":"0x1234"})");
    EXPECT_EQ(JsonRpcChainClient(peer.url(), absl::Seconds(5))
                  .SendRawTransaction("\x02\xc0")
                  .status()
                  .code(),
              absl::StatusCode::kInternal);
  }
}

// One eth_getLogs entry: the defaults with `changes` (member -> JSON value;
// an empty value drops the member).
std::string LogJson(const std::map<std::string, std::string>& changes = {}) {
  std::map<std::string, std::string> fields = {
      {"address", absl::StrCat("\"", ToHex(std::string(20, '\x11')), "\"")},
      {"topics", absl::StrCat("[\"", ToHex(std::string(32, '\x22')), "\",\"",
                              ToHex(std::string(32, '\x33')), "\"]")},
      {"data", "\"0x0102\""},
      {"blockNumber", "\"0x1f\""},
      {"blockHash", absl::StrCat("\"", ToHex(std::string(32, '\xbb')), "\"")},
      {"transactionHash", absl::StrCat("\"", ToHex(std::string(32, '\x77')), "\"")},
      {"logIndex", "\"0x3\""},
  };
  for (const auto& [name, value] : changes) fields[name] = value;
  std::string json;
  for (const auto& [name, value] : fields) {
    if (!value.empty()) absl::StrAppend(&json, json.empty() ? "" : ",", "\"", name, "\":", value);
  }
  return absl::StrCat("{", json, "}");
}

std::string LogsReply(const std::string& logs) {
  return absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":[)", logs, "]}");
}

LogFilter AnyFilter() {
  return LogFilter{{std::string(20, '\x11')}, {std::string(32, '\x22')}, 1, 40};
}

// eth_getLogs entries are read field by field; "removed" is optional.
TEST(JsonRpcChainClientTest, ReadsLogs) {
  OneShotHttpPeer peer(LogsReply(absl::StrCat(LogJson(), ",", LogJson({{"removed", "true"}}))));
  auto logs = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetLogs(AnyFilter());
  ASSERT_TRUE(logs.ok()) << logs.status();
  ASSERT_EQ(logs->size(), 2u);
  const EventLog& log = (*logs)[0];
  EXPECT_EQ(log.address, std::string(20, '\x11'));
  ASSERT_EQ(log.topics.size(), 2u);
  EXPECT_EQ(log.topics[1], std::string(32, '\x33'));
  EXPECT_EQ(log.data, "\x01\x02");
  EXPECT_EQ(log.block_number, 31u);
  EXPECT_EQ(log.block_hash, std::string(32, '\xbb'));
  EXPECT_EQ(log.transaction_hash, std::string(32, '\x77'));
  EXPECT_EQ(log.log_index, 3u);
  EXPECT_FALSE(log.removed);
  EXPECT_TRUE((*logs)[1].removed);
}

// Malformed logs are INTERNAL naming what is wrong (never a crash); an
// empty filter is refused before anything is sent.
TEST(JsonRpcChainClientTest, MalformedLogsAreInternal) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"jsonrpc":"2.0","id":1,"result":{}})", "not a list"},
      {LogsReply(LogJson({{"topics", R"(["0x1234"])"}})), "a topic is not 32 bytes"},
      {LogsReply(LogJson({{"topics", "[1,2,3,4,5]"}})), "topics is not a list of at most 4"},
      {LogsReply(LogJson({{"blockNumber", "null"}})), "result is not a string"},
      {LogsReply(LogJson({{"logIndex", ""}})), "no \"logIndex\""},
      {LogsReply(LogJson({{"logIndex", R"("0x100000000")"}})), "logIndex 4294967296"},
      {LogsReply(LogJson({{"removed", R"("no")"}})), "removed is not a boolean"},
      {LogsReply(LogJson({{"blockHash", R"("0x1234")"}})), "blockHash is 2 bytes, not 32"},
      {LogsReply(LogJson({{"address", R"("0x1234")"}})), "address is 2 bytes, not 20"},
  };
  for (const auto& [reply, error] : cases) {
    OneShotHttpPeer peer(reply);
    auto logs = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetLogs(AnyFilter());
    EXPECT_EQ(logs.status().code(), absl::StatusCode::kInternal) << reply;
    EXPECT_THAT(logs.status().message(), HasSubstr(error)) << reply;
  }
  LogFilter empty = AnyFilter();
  empty.addresses.clear();
  EXPECT_EQ(
      JsonRpcChainClient("http://127.0.0.1:1", absl::Seconds(1)).GetLogs(empty).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// A block header is read; null (beyond the head) is nullopt; another
// block's number or a short hash is INTERNAL.
TEST(JsonRpcChainClientTest, ReadsBlockHeaders) {
  auto header_json = [](absl::string_view number, absl::string_view hash) {
    return absl::StrCat(R"({"jsonrpc":"2.0","id":1,"result":{"number":")", number, R"(","hash":")",
                        hash, R"(","parentHash":")", ToHex(std::string(32, '\xaa')),
                        R"(","timestamp":"0x65","transactions":[]}})");
  };
  const std::string hash = ToHex(std::string(32, '\xbb'));
  {
    OneShotHttpPeer peer(header_json("0x1f", hash));
    auto header = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetBlockHeader(31);
    ASSERT_TRUE(header.ok()) << header.status();
    ASSERT_TRUE(header->has_value());
    EXPECT_EQ((*header)->number, 31u);
    EXPECT_EQ((*header)->hash, std::string(32, '\xbb'));
    EXPECT_EQ((*header)->parent_hash, std::string(32, '\xaa'));
    EXPECT_EQ((*header)->timestamp, 101u);
  }
  {
    OneShotHttpPeer peer(R"({"jsonrpc":"2.0","id":1,"result":null})");
    auto header = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetBlockHeader(31);
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_FALSE(header->has_value());
  }
  for (const auto& [reply, error] :
       {std::pair{header_json("0x20", hash), "asked for block 31, got block 32"},
        std::pair{header_json("0x1f", "0xbb"), "hash is 1 bytes"}}) {
    OneShotHttpPeer peer(reply);
    auto header = JsonRpcChainClient(peer.url(), absl::Seconds(5)).GetBlockHeader(31);
    EXPECT_EQ(header.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(header.status().message(), HasSubstr(error));
  }
}

}  // namespace
}  // namespace medvault::signer
