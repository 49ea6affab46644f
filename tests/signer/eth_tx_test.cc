// EIP-1559 transactions, Keccak-256 and the AuditAnchor ABI against fixed
// vectors and against `cast` (an independent implementation) in the same
// run: the signing hash is checked by having cast sign it and getting
// byte-for-byte the transaction `cast mktx` builds from the same fields.
#include "daemon/signer/eth_tx.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/signer/cast_tool.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;

// A throwaway key, public in many tutorials; never a real account.
constexpr char kTestKey[] = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
constexpr char kContract[] = "0x5fbdb2315678afecb367f032d93f642f64180aa3";

std::string Bytes32(char fill) { return std::string(32, fill); }

Eip1559Transaction AnchorTransaction() {
  Eip1559Transaction tx;
  tx.chain_id = 31337;
  tx.nonce = 7;
  tx.max_priority_fee_per_gas = 1'500'000'000;
  tx.max_fee_per_gas = 30'000'000'000;
  tx.gas_limit = 100'000;
  tx.to = *ParseAddress(kContract);
  tx.data = *EncodeAnchorCall(Bytes32('\x11'), 5, Bytes32('\x22'));
  return tx;
}

// Splits cast's 65-byte r || s || v (v = 27 + y-parity).
EthSignature FromCastSignature(absl::string_view hex) {
  std::string bytes = *FromHex(hex);
  EXPECT_EQ(bytes.size(), 65u);
  return EthSignature{bytes.substr(0, 32), bytes.substr(32, 32),
                      static_cast<uint32_t>(static_cast<uint8_t>(bytes[64]) - 27)};
}

// Keccak-256 of the empty string and of "abc" (the original Keccak, not SHA3-256).
TEST(Keccak256Test, FixedVectors) {
  EXPECT_EQ(ToHex(Keccak256("")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  EXPECT_EQ(ToHex(Keccak256("abc")),
            "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

// Keccak-256 of inputs around the 136-byte rate agrees with cast keccak.
TEST(Keccak256Test, MatchesCast) {
  for (size_t length : {1, 135, 136, 137, 1000}) {
    std::string data(length, '\xa5');
    absl::StatusOr<std::string> expected = testing::RunCast({"keccak", ToHex(data)});
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(ToHex(Keccak256(data)), *expected) << length << " bytes";
  }
}

// Hex and addresses: strict, with the field named in the error.
TEST(HexTest, ParsesStrictly) {
  EXPECT_EQ(*FromHex("0x00ff"), std::string("\0\xff", 2));
  EXPECT_EQ(*FromHex("0x"), "");
  EXPECT_FALSE(FromHex("00ff").ok());
  EXPECT_FALSE(FromHex("0x0").ok());
  EXPECT_FALSE(FromHex("0xzz").ok());
  EXPECT_EQ(ParseAddress(kContract)->size(), 20u);
  absl::StatusOr<std::string> short_address = ParseAddress("0x1234", "signer.anchor_contract");
  EXPECT_THAT(short_address.status().message(), HasSubstr("signer.anchor_contract"));
}

// The selector and calldata of anchor() and latest() are cast's.
TEST(AuditAnchorAbiTest, CalldataMatchesCast) {
  const std::string log_id =
      *FromHex("0x0102030405060708091011121314151617181920212223242526272829303132");
  const std::string root = Bytes32('\xee');
  absl::StatusOr<std::string> expected =
      testing::RunCast({"calldata", "anchor(bytes32,uint64,bytes32)", ToHex(log_id),
                        "18446744073709551615", ToHex(root)});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(ToHex(*EncodeAnchorCall(log_id, UINT64_MAX, root)), *expected);

  expected = testing::RunCast({"calldata", "latest(bytes32)", ToHex(log_id)});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(ToHex(*EncodeLatestCall(log_id)), *expected);
  // The selector itself, as a fixed vector (cast sig "anchor(bytes32,uint64,bytes32)").
  EXPECT_EQ(ToHex(Selector("anchor(bytes32,uint64,bytes32)")), "0x70c127c6");
  EXPECT_FALSE(EncodeAnchorCall("short", 1, root).ok());
}

// latest()'s four words decode; a truncated answer is an error.
TEST(AuditAnchorAbiTest, DecodesLatest) {
  std::string output = *FromHex(
      absl::StrCat("0x", std::string(62, '0'), "2a", absl::BytesToHexString(Bytes32('\x33')),
                   std::string(56, '0'), "6b01b320", std::string(63, '0'), "9"));
  absl::StatusOr<Checkpoint> c = DecodeLatestResult(output);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tree_size, 42u);
  EXPECT_EQ(c->root_hash, Bytes32('\x33'));
  EXPECT_EQ(c->timestamp, 0x6b01b320u);
  EXPECT_EQ(c->block_number, 9u);
  EXPECT_FALSE(DecodeLatestResult(output.substr(1)).ok());
}

// The contract's custom errors are recognised from revert data (recorded
// from anvil: AlreadyAnchored(0x11.., 5, 0x22..)).
TEST(AuditAnchorAbiTest, DecodesReverts) {
  std::string already =
      *FromHex(absl::StrCat("0x1d9b917e", absl::BytesToHexString(Bytes32('\x11')),
                            std::string(63, '0'), "5", absl::BytesToHexString(Bytes32('\x22'))));
  AnchorRevert r = DecodeAnchorRevert(already);
  EXPECT_EQ(r.kind, AnchorRevert::Kind::kAlreadyAnchored);
  EXPECT_EQ(r.tree_size, 5u);
  std::string not_increasing =
      *FromHex(absl::StrCat("0x15c43d95", absl::BytesToHexString(Bytes32('\x11')),
                            std::string(63, '0'), "5", std::string(63, '0'), "3"));
  r = DecodeAnchorRevert(not_increasing);
  EXPECT_EQ(r.kind, AnchorRevert::Kind::kTreeSizeNotIncreasing);
  EXPECT_EQ(r.latest_tree_size, 5u);
  EXPECT_EQ(r.tree_size, 3u);
  r = DecodeAnchorRevert("\x01\x02");
  EXPECT_EQ(r.kind, AnchorRevert::Kind::kOther);
  EXPECT_THAT(r.description, HasSubstr("0x0102"));
}

// Fixed vector: the signed transaction cast mktx built for these fields
// (recorded once; r, s and y-parity taken from it).
TEST(Eip1559Test, FixedVector) {
  const std::string expected =
      "0x02f8d3827a69078459682f008506fc23ac00830186a0945fbdb2315678afecb367f032d93f642f64180aa380"
      "b86470c127c61111111111111111111111111111111111111111111111111111111111111111000000000000000"
      "00000000000000000000000000000000000000000000000052222222222222222222222222222222222222222"
      "222222222222222222222222c080a0d88fedaea49474558739d9fe281c8c1553e5de0a76797c0bbd5a04ad8e2"
      "278eda052aef7a50179b1860011b115a249845a006ff1571f8a290d729d3a3167dc004e";
  EthSignature signature{
      *FromHex("0xd88fedaea49474558739d9fe281c8c1553e5de0a76797c0bbd5a04ad8e2278ed"),
      *FromHex("0x52aef7a50179b1860011b115a249845a006ff1571f8a290d729d3a3167dc004e"), 0};
  absl::StatusOr<std::string> raw = EncodeSignedTransaction(AnchorTransaction(), signature);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(ToHex(*raw), expected);
}

// Our signing hash, signed by cast, gives exactly the transaction cast
// mktx builds and signs itself (RFC 6979 signatures are deterministic), for
// several field values including zeros and large numbers.
TEST(Eip1559Test, SigningHashAndEncodingMatchCast) {
  for (int variant = 0; variant < 4; ++variant) {
    Eip1559Transaction tx = AnchorTransaction();
    if (variant == 3) {  // a contract creation: no `to`, init code as data
      tx.to.clear();
      tx.data = std::string("\x60\x00\x60\x00\xf3", 5);
    }
    if (variant == 1) {
      tx.nonce = 0;
      tx.max_priority_fee_per_gas = 0;
      tx.data.clear();
      tx.value = 1;
    } else if (variant == 2) {
      tx.chain_id = 1;
      tx.nonce = 0xffffffff;
      tx.max_fee_per_gas = UINT64_MAX;
      tx.gas_limit = 30'000'000;
    }
    absl::StatusOr<std::string> hash = SigningHash(tx);
    ASSERT_TRUE(hash.ok()) << hash.status();
    absl::StatusOr<std::string> signed_by_cast =
        testing::RunCast({"wallet", "sign", "--no-hash", "--private-key", kTestKey, ToHex(*hash)});
    ASSERT_TRUE(signed_by_cast.ok()) << signed_by_cast.status();
    absl::StatusOr<std::string> raw =
        EncodeSignedTransaction(tx, FromCastSignature(*signed_by_cast));
    ASSERT_TRUE(raw.ok()) << raw.status();

    std::vector<std::string> mktx = {"mktx",
                                     "--private-key",
                                     kTestKey,
                                     "--chain",
                                     std::to_string(tx.chain_id),
                                     "--nonce",
                                     std::to_string(tx.nonce),
                                     "--gas-limit",
                                     std::to_string(tx.gas_limit),
                                     "--priority-gas-price",
                                     std::to_string(tx.max_priority_fee_per_gas),
                                     "--gas-price",
                                     std::to_string(tx.max_fee_per_gas),
                                     "--value",
                                     std::to_string(tx.value)};
    if (tx.to.empty()) {
      mktx.push_back("--create");
      mktx.push_back(ToHex(tx.data));
    } else {
      mktx.push_back(ToHex(tx.to));
    }
    if (!tx.to.empty() && !tx.data.empty()) {
      mktx.push_back("anchor(bytes32,uint64,bytes32)");
      mktx.push_back(ToHex(Bytes32('\x11')));
      mktx.push_back("5");
      mktx.push_back(ToHex(Bytes32('\x22')));
    }
    absl::StatusOr<std::string> expected = testing::RunCast(mktx);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(ToHex(*raw), *expected) << "variant " << variant;
  }
}

// Bad fields and signatures are refused, naming what is wrong.
TEST(Eip1559Test, RefusesBadInput) {
  Eip1559Transaction tx = AnchorTransaction();
  tx.to = "short";
  EXPECT_THAT(SigningHash(tx).status().message(), HasSubstr("transaction.to"));
  tx = AnchorTransaction();
  tx.max_priority_fee_per_gas = tx.max_fee_per_gas + 1;
  EXPECT_THAT(SigningHash(tx).status().message(), HasSubstr("max_priority_fee_per_gas"));
  EthSignature bad{Bytes32('\x01'), "s", 0};
  EXPECT_THAT(EncodeSignedTransaction(AnchorTransaction(), bad).status().message(),
              HasSubstr("32 bytes"));
  EthSignature parity{Bytes32('\x01'), Bytes32('\x02'), 2};
  EXPECT_THAT(EncodeSignedTransaction(AnchorTransaction(), parity).status().message(),
              HasSubstr("y_parity"));
}

}  // namespace
}  // namespace medvault::signer
