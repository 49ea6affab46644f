// RLP encoding: the examples of the specification (Ethereum Yellow Paper,
// appendix B, and ethereum.org's RLP page) as fixed vectors, and the length
// boundaries compared with `cast to-rlp` in the same run.
#include "daemon/signer/rlp.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/signer/eth_tx.h"
#include "gtest/gtest.h"
#include "tests/signer/cast_tool.h"

namespace medvault::signer {
namespace {

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// The specification's examples.
TEST(RlpTest, SpecificationExamples) {
  EXPECT_EQ(Hex(rlp::EncodeBytes("dog")), "83646f67");
  EXPECT_EQ(Hex(rlp::EncodeList({rlp::EncodeBytes("cat"), rlp::EncodeBytes("dog")})),
            "c88363617483646f67");
  EXPECT_EQ(Hex(rlp::EncodeBytes("")), "80");
  EXPECT_EQ(Hex(rlp::EncodeList({})), "c0");
  EXPECT_EQ(Hex(rlp::EncodeUint(0)), "80");
  EXPECT_EQ(Hex(rlp::EncodeBytes(std::string(1, '\0'))), "00");
  EXPECT_EQ(Hex(rlp::EncodeUint(15)), "0f");
  EXPECT_EQ(Hex(rlp::EncodeUint(1024)), "820400");
  // The set-theoretical representation of three: [ [], [[]], [ [], [[]] ] ].
  std::string empty = rlp::EncodeList({});
  std::string one = rlp::EncodeList({empty});
  EXPECT_EQ(Hex(rlp::EncodeList({empty, one, rlp::EncodeList({empty, one})})), "c7c0c1c0c3c0c1c0");
  std::string lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
  EXPECT_EQ(Hex(rlp::EncodeBytes(lorem)), "b838" + Hex(lorem));
}

// Integers are minimal big-endian; leading zeros of r and s are dropped.
TEST(RlpTest, IntegersAreMinimal) {
  EXPECT_EQ(Hex(rlp::EncodeUint(0x7f)), "7f");
  EXPECT_EQ(Hex(rlp::EncodeUint(0x80)), "8180");
  EXPECT_EQ(Hex(rlp::EncodeUint(0xffffffffffffffffull)), "88ffffffffffffffff");
  EXPECT_EQ(Hex(rlp::EncodeBigEndianUint(std::string("\0\0\x01\x02", 4))), "820102");
  EXPECT_EQ(Hex(rlp::EncodeBigEndianUint(std::string(32, '\0'))), "80");
}

// Strings and lists on both sides of every length boundary (55/56 bytes,
// one/two length bytes) encode as cast encodes them.
TEST(RlpTest, MatchesCastAtLengthBoundaries) {
  std::vector<std::string> items;
  std::vector<std::string> json;
  for (size_t length : {0, 1, 2, 55, 56, 255, 256, 1024, 40000}) {
    std::string bytes(length, '\x5a');
    if (length == 1) bytes = "\x80";  // one byte that is not its own encoding
    items.push_back(rlp::EncodeBytes(bytes));
    json.push_back(absl::StrCat("\"", ToHex(bytes), "\""));
  }
  items.push_back(rlp::EncodeBytes("\x01"));  // one byte below 0x80: itself
  json.push_back("\"0x01\"");
  // A nested short list and a nested long list.
  items.push_back(rlp::EncodeList({rlp::EncodeBytes("\x7f"), rlp::EncodeBytes("")}));
  json.push_back(R"(["0x7f","0x"])");
  items.push_back(rlp::EncodeList({rlp::EncodeBytes(std::string(60, 'a'))}));
  json.push_back(absl::StrCat(R"([")", ToHex(std::string(60, 'a')), R"("])"));

  for (size_t i = 0; i < items.size(); ++i) {
    absl::StatusOr<std::string> expected =
        testing::RunCast({"to-rlp", absl::StrCat("[", json[i], "]")});
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(ToHex(rlp::EncodeList({items[i]})), *expected) << "item " << i;
  }
  absl::StatusOr<std::string> all =
      testing::RunCast({"to-rlp", absl::StrCat("[", absl::StrJoin(json, ","), "]")});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(ToHex(rlp::EncodeList(items)), *all);
}

}  // namespace
}  // namespace medvault::signer
