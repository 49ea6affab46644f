// Log lines: logfmt and JSON bodies escape what would break a line or a field.
#include "daemon/common/logging.h"

#include "gtest/gtest.h"

namespace medvault::log {
namespace {

// Plain values stay bare; values with spaces, quotes or newlines are quoted
// and escaped so one event is always one line.
TEST(LoggingTest, LogfmtQuotesOnlyWhenNeeded) {
  EXPECT_EQ(FormatBody(Format::kLogfmt, "rpc.denied", {{"uid", 1001}, {"method", "GetTokenInfo"}}),
            "event=rpc.denied uid=1001 method=GetTokenInfo");
  EXPECT_EQ(FormatBody(Format::kLogfmt, "x", {{"msg", "two words"}, {"q", "say \"hi\"\nbye"}}),
            R"(event=x msg="two words" q="say \"hi\"\nbye")");
  EXPECT_EQ(FormatBody(Format::kLogfmt, "x", {{"empty", ""}}), R"(event=x empty="")");
}

// JSON bodies are valid members of the object the prefix opened.
TEST(LoggingTest, JsonEscapesControlCharacters) {
  EXPECT_EQ(FormatBody(Format::kJson, "started", {{"path", "/a\"b"}, {"c", std::string("\x01")}}),
            R"("event":"started","path":"/a\"b","c":"\u0001"})");
}

}  // namespace
}  // namespace medvault::log
