#include "daemon/storage/cid.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medvault::storage {
namespace {

using ::testing::HasSubstr;

// The CID every IPFS implementation gives the empty file with raw leaves.
constexpr char kEmptyRaw[] = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

TEST(CidTest, EmptyRawBlockHasTheWellKnownCid) {
  EXPECT_EQ(Cid::Of(Codec::kRaw, "").ToString(), kEmptyRaw);
}

TEST(CidTest, ParsesWhatItPrints) {
  for (Codec codec : {Codec::kRaw, Codec::kDagPb}) {
    Cid cid = Cid::Of(codec, "some block");
    auto parsed = Cid::Parse(cid.ToString());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, cid);
    auto from_bytes = Cid::FromBytes(cid.bytes());
    ASSERT_TRUE(from_bytes.ok());
    EXPECT_EQ(*from_bytes, cid);
  }
  EXPECT_EQ(Cid::Of(Codec::kDagPb, "x").ToString().substr(0, 4), "bafy");
  EXPECT_EQ(Cid::Of(Codec::kRaw, "x").ToString().substr(0, 4), "bafk");
}

TEST(CidTest, MatchesOnlyItsOwnBytes) {
  Cid cid = Cid::Of(Codec::kRaw, "block");
  EXPECT_TRUE(cid.Matches("block"));
  EXPECT_FALSE(cid.Matches("blocK"));
}

TEST(CidTest, RefusesWhatItCannotVerifyNamingWhy) {
  struct Case {
    std::string text;
    std::string why;
  };
  std::string raw = Cid::Of(Codec::kRaw, "x").bytes();
  std::string dag_cbor = raw;
  dag_cbor[1] = 0x71;
  std::string blake = raw;
  blake[2] = 0x13;  // sha2-512 code, with a 32-byte digest: still refused
  std::string cidv2 = raw;
  cidv2[0] = 2;
  std::vector<Case> cases = {
      {"", "empty"},
      {"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "CIDv0"},
      {"zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "multibase prefix 'z'"},
      {"b" + Base32Encode(raw.substr(0, 20)), "digest"},
      {std::string(kEmptyRaw) + "a", "base32"},
      {"bafkrei!dwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "alphabet"},
      {"b" + Base32Encode(dag_cbor), "codec 0x71"},
      {"b" + Base32Encode(blake), "hash function 0x13"},
      {"b" + Base32Encode(cidv2), "version 2"},
  };
  for (const Case& c : cases) {
    auto parsed = Cid::Parse(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.why)) << c.text;
    EXPECT_THAT(parsed.status().message(), HasSubstr("cid: ")) << c.text;
  }
}

TEST(Base32Test, RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    auto back = Base32Decode(Base32Encode(data));
    ASSERT_TRUE(back.ok()) << i;
    EXPECT_EQ(*back, data);
    data.push_back(static_cast<char>(i * 37));
  }
  EXPECT_EQ(Base32Encode("foobar"), "mzxw6ytboi");  // RFC 4648 test vector, lower case
}

}  // namespace
}  // namespace medvault::storage
