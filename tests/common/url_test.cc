#include "daemon/common/url.h"

#include "gtest/gtest.h"

namespace medvault {
namespace {

TEST(EndpointForLogsTest, KeepsOnlySchemeHostAndPort) {
  EXPECT_EQ(EndpointForLogs("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
  EXPECT_EQ(EndpointForLogs("https://mainnet.example.net/v3/KEY"), "https://mainnet.example.net");
  EXPECT_EQ(EndpointForLogs("https://user:pa@ss@node.example:443/rpc?key=K#x"),
            "https://node.example:443");
  EXPECT_EQ(EndpointForLogs("http://[::1]:5001?token=T"), "http://[::1]:5001");
  EXPECT_EQ(EndpointForLogs("node.example/KEY"), "(unparsable URL)");
  EXPECT_EQ(EndpointForLogs("://KEY"), "(unparsable URL)");
}

}  // namespace
}  // namespace medvault
