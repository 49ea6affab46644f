// The JSON-RPC client against a minimal HTTP peer on loopback: results,
// node errors, malformed replies and an unreachable node each map to the
// documented status.
#include "daemon/signer/json_rpc_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;

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
}

}  // namespace
}  // namespace medvault::signer
