// EIP-712 digests, the eth_signTypedData_v4 document and signer recovery,
// checked against the EIP's own example and against cast (Foundry) signing
// the document this code produces, in the same run.
#include "daemon/gateway/eip712.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/keccak.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/signer/cast_tool.h"

namespace medvault::gateway::eip712 {
namespace {

using signer::testing::RunCast;
using ::testing::HasSubstr;

// anvil's first two development accounts.
constexpr char kKey0[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
constexpr char kAddress0[] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
constexpr char kKey1[] = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
constexpr char kAddress1[] = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

MATCHER_P(IsInvalid, text, "") {
  const absl::Status& status = arg;
  *result_listener << "status is " << status;
  return status.code() == absl::StatusCode::kInvalidArgument &&
         absl::StrContains(status.message(), text);
}

std::string Hex(absl::string_view bytes) { return "0x" + absl::BytesToHexString(bytes); }
std::string Unhex(absl::string_view hex) {
  return absl::HexStringToBytes(absl::StripPrefix(hex, "0x"));
}
std::string Address(absl::string_view text) {
  absl::StatusOr<std::string> address = ParseEthAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.value_or("");
}

Domain TestDomain() { return Domain{"medvault", "1", 31337}; }

// A patient's decision: every field type apart from nested structs.
TypedMessage Consent(std::vector<std::string> purposes) {
  TypedMessage t;
  t.types = {{"Consent",
              {{"patient", "address"},
               {"record", "bytes32"},
               {"grantee", "string"},
               {"purposes", "string[]"},
               {"expires", "uint256"},
               {"granted", "bool"}}}};
  t.message.type = "Consent";
  t.message.values = {{"patient", Address(kAddress0)},
                      {"record", Keccak256("record 17")},
                      {"grantee", std::string("Dr. Émile Zola, St. Mary's")},
                      {"purposes", std::move(purposes)},
                      {"expires", uint64_t{18000000000000000000u}},
                      {"granted", true}};
  return t;
}

std::shared_ptr<const Message> Person(std::string name, absl::string_view wallet) {
  auto person = std::make_shared<Message>();
  person->type = "Person";
  person->values = {{"name", std::move(name)}, {"wallet", Address(wallet)}};
  return person;
}

// The example of EIP-712 (nested structs).
TypedMessage Mail() {
  TypedMessage t;
  t.types = {{"Mail", {{"from", "Person"}, {"to", "Person"}, {"contents", "string"}}},
             {"Person", {{"name", "string"}, {"wallet", "address"}}}};
  t.message.type = "Mail";
  t.message.values = {{"from", Person("Cow", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")},
                      {"to", Person("Bob", "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")},
                      {"contents", std::string("Hello, Bob!")}};
  return t;
}

// cast's eth_signTypedData_v4 signature of our document, r || s || v.
absl::StatusOr<std::string> CastSignTyped(const Domain& domain, const TypedMessage& typed,
                                          const char* key) {
  absl::StatusOr<std::string> json = ToTypedDataJson(domain, typed);
  if (!json.ok()) return json.status();
  absl::StatusOr<std::string> sig =
      RunCast({"wallet", "sign", "--data", "--private-key", key, *json});
  if (!sig.ok()) return sig.status();
  return Unhex(*sig);
}

// cast's signature of a raw 32-byte digest, without any prefix or hashing.
absl::StatusOr<std::string> CastSignDigest(absl::string_view digest, const char* key) {
  absl::StatusOr<std::string> sig =
      RunCast({"wallet", "sign", "--no-hash", "--private-key", key, Hex(digest)});
  if (!sig.ok()) return sig.status();
  return Unhex(*sig);
}

// encodeType names the primary type first, then every referenced struct
// type (also indirectly referenced ones) sorted by name.
TEST(Eip712Test, EncodeTypeListsReferencedTypesSorted) {
  EXPECT_EQ(*EncodeType(Mail().types, "Mail"),
            "Mail(Person from,Person to,string contents)Person(string name,address wallet)");
  Types types = {{"Top", {{"z", "Zeta"}, {"ok", "bool"}}},
                 {"Zeta", {{"a", "Alpha"}}},
                 {"Alpha", {{"n", "uint256"}}},
                 {"Unused", {}}};
  EXPECT_EQ(*EncodeType(types, "Top"), "Top(Zeta z,bool ok)Alpha(uint256 n)Zeta(Alpha a)");
}

// The example of the EIP itself: typeHash, hashStruct and the digest under
// its domain (which has a verifyingContract, so it is built here by hand).
TEST(Eip712Test, MailExampleFromTheEip) {
  const TypedMessage mail = Mail();
  EXPECT_EQ(Hex(*TypeHash(mail.types, "Mail")),
            "0xa0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2");
  absl::StatusOr<std::string> hash = HashStruct(mail.types, mail.message);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(Hex(*hash), "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");
  const std::string separator = Keccak256(
      absl::StrCat(Keccak256("EIP712Domain(string name,string version,uint256 chainId,address "
                             "verifyingContract)"),
                   Keccak256("Ether Mail"), Keccak256("1"), std::string(31, '\0'), "\x01",
                   std::string(12, '\0'), Address("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")));
  EXPECT_EQ(Hex(Keccak256(absl::StrCat("\x19\x01", separator, *hash))),
            "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
}

// For a flat decision with a string[] (empty, one, several with non-ASCII
// text) and for nested structs, cast signing our JSON document signs exactly
// our digest, and the signer recovered from it is the signing account.
TEST(Eip712Test, DigestAndDocumentMatchCast) {
  std::vector<TypedMessage> messages = {Consent({}), Consent({"treatment"}),
                                        Consent({"treatment", "research ✓", "", "ünï"}), Mail()};
  for (const TypedMessage& typed : messages) {
    SCOPED_TRACE(ToTypedDataJson(TestDomain(), typed).value_or("(no document)"));
    absl::StatusOr<std::string> digest = Digest(TestDomain(), typed);
    ASSERT_TRUE(digest.ok()) << digest.status();
    absl::StatusOr<std::string> signature = CastSignTyped(TestDomain(), typed, kKey0);
    ASSERT_TRUE(signature.ok()) << signature.status();
    EXPECT_EQ(Hex(*signature), Hex(*CastSignDigest(*digest, kKey0)));
    absl::StatusOr<std::string> signer = RecoverSigner(*digest, *signature);
    ASSERT_TRUE(signer.ok()) << signer.status();
    EXPECT_EQ(*FormatEthAddress(*signer), kAddress0);
  }
}

// Each key recovers to the address cast derives for it.
TEST(RecoverTest, RecoversTheAddressCastDerives) {
  const TypedMessage typed = Consent({"treatment"});
  const std::string digest = *Digest(TestDomain(), typed);
  for (const char* key : {kKey0, kKey1}) {
    absl::StatusOr<std::string> expected = RunCast({"wallet", "address", "--private-key", key});
    ASSERT_TRUE(expected.ok()) << expected.status();
    absl::StatusOr<std::string> signer =
        RecoverSigner(digest, *CastSignTyped(TestDomain(), typed, key));
    ASSERT_TRUE(signer.ok()) << signer.status();
    EXPECT_EQ(*FormatEthAddress(*signer), *expected);
  }
  EXPECT_EQ(*FormatEthAddress(*RecoverSigner(digest, *CastSignDigest(digest, kKey1))), kAddress1);
}

// A decision changed after signing (any field, the domain) no longer
// recovers the patient's address.
TEST(RecoverTest, TamperedDecisionRecoversAnotherAddress) {
  const TypedMessage typed = Consent({"treatment"});
  const std::string signature = *CastSignTyped(TestDomain(), typed, kKey0);
  const std::string patient = Address(kAddress0);
  std::vector<std::pair<Domain, TypedMessage>> tampered(5, {TestDomain(), typed});
  tampered[0].second.message.values["grantee"] = std::string("Dr. Evil");
  tampered[1].second.message.values["purposes"] = std::vector<std::string>{"treatment", "sale"};
  tampered[2].second.message.values["granted"] = false;
  tampered[3].second.message.values["expires"] = uint64_t{1};
  tampered[4].first.chain_id = 1;
  for (const auto& [domain, message] : tampered) {
    absl::StatusOr<std::string> signer = RecoverSigner(*Digest(domain, message), signature);
    if (signer.ok()) {
      EXPECT_NE(*signer, patient);
    }
  }
}

// v may be 27/28 (wallets) or 0/1; the high-s twin of a valid signature,
// which recovers the same key, is refused (EIP-2).
TEST(RecoverTest, AcceptsBothParityFormsButNotHighS) {
  const std::string digest = *Digest(TestDomain(), Consent({}));
  std::string signature = *CastSignDigest(digest, kKey0);
  std::string zero_one = signature;
  zero_one[64] = static_cast<char>(signature[64] - 27);
  EXPECT_EQ(*RecoverSigner(digest, zero_one), Address(kAddress0));

  // s' = n - s, with the other parity.
  const std::string order =
      Unhex("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  std::string high = signature;
  int borrow = 0;
  for (int i = 31; i >= 0; --i) {
    int d = static_cast<uint8_t>(order[i]) - static_cast<uint8_t>(signature[32 + i]) - borrow;
    borrow = d < 0;
    high[32 + i] = static_cast<char>(d + (borrow ? 256 : 0));
  }
  high[64] = static_cast<char>(signature[64] == 27 ? 28 : 27);
  EXPECT_THAT(RecoverSigner(digest, high).status(), IsInvalid("EIP-2"));
}

// Malformed signatures and digests are errors naming what is wrong.
TEST(RecoverTest, RejectsMalformedInput) {
  const std::string digest = *Digest(TestDomain(), Consent({}));
  const std::string good = *CastSignDigest(digest, kKey0);
  EXPECT_THAT(RecoverSigner(digest, "").status(), IsInvalid("65 bytes"));
  EXPECT_THAT(RecoverSigner(digest, good.substr(0, 64)).status(), IsInvalid("65 bytes"));
  EXPECT_THAT(RecoverSigner(digest, good + '\0').status(), IsInvalid("65 bytes"));
  EXPECT_THAT(RecoverSigner(digest.substr(1), good).status(), IsInvalid("digest"));
  for (char v : {'\x02', '\x1a', '\x1d', '\xff'}) {
    std::string bad = good;
    bad[64] = v;
    EXPECT_THAT(RecoverSigner(digest, bad).status(), IsInvalid("signature.v"));
  }
  EXPECT_THAT(RecoverSigner(digest, std::string(64, '\xff') + '\x1b').status(),
              IsInvalid("curve order"));
  EXPECT_THAT(RecoverSigner(digest, std::string(64, '\0') + '\x1b').status(),
              IsInvalid("no public key"));
}

// EIP-55: the EIP's own vectors, and cast agrees.
TEST(AddressTest, FormatsTheEip55Checksum) {
  for (const char* expected :
       {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        kAddress0, kAddress1}) {
    const std::string lower = absl::AsciiStrToLower(expected);
    EXPECT_EQ(*FormatEthAddress(*ParseEthAddress(lower)), expected);
    EXPECT_EQ(*RunCast({"to-check-sum-address", lower}), expected);
  }
  EXPECT_THAT(FormatEthAddress("short").status(), IsInvalid("20 bytes"));
}

// Lower-case, upper-case and checksummed input parse; a mixed case that is
// not the checksum (a typo) and anything not 0x + 40 hex digits do not.
TEST(AddressTest, ParsesStrictly) {
  const std::string bytes = Unhex("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
  EXPECT_EQ(*ParseEthAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), bytes);
  EXPECT_EQ(*ParseEthAddress("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"), bytes);
  EXPECT_EQ(*ParseEthAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), bytes);
  EXPECT_THAT(ParseEthAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").status(),
              IsInvalid("EIP-55"));
  for (const char* bad :
       {"", "0x", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
        "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "0X5aaeb6053f3e94c9b9a09f3"}) {
    EXPECT_THAT(ParseEthAddress(bad).status(), IsInvalid("40 hex digits")) << bad;
  }
}

// The document is exactly the eth_signTypedData_v4 form, keys sorted, so
// equal decisions give byte-equal documents.
TEST(JsonTest, IsTheSortedTypedDataDocument) {
  TypedMessage typed;
  typed.types = {{"Decision", {{"patient", "address"}, {"n", "uint256"}, {"p", "string[]"}}}};
  typed.message = {"Decision",
                   {{"patient", Address(kAddress1)},
                    {"n", uint64_t{42}},
                    {"p", std::vector<std::string>{"a\"b"}}}};
  EXPECT_EQ(
      *ToTypedDataJson(TestDomain(), typed),
      R"({"domain":{"chainId":31337,"name":"medvault","version":"1"},)"
      R"("message":{"n":"42","p":["a\"b"],"patient":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},)"
      R"("primaryType":"Decision","types":{"Decision":[{"name":"patient","type":"address"},)"
      R"({"name":"n","type":"uint256"},{"name":"p","type":"string[]"}],)"
      R"("EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},)"
      R"({"name":"chainId","type":"uint256"}]}})");
  const TypedMessage consent = Consent({"x", "y"});
  EXPECT_EQ(*ToTypedDataJson(TestDomain(), consent), *ToTypedDataJson(TestDomain(), consent));
  Domain big = TestDomain();
  big.chain_id = (uint64_t{1} << 53) + 1;
  EXPECT_THAT(ToTypedDataJson(big, consent).status(), IsInvalid("domain.chainId"));
}

// Malformed types are refused, naming the type or field.
TEST(TypesTest, RejectsMalformedTypes) {
  const auto error = [](Types types) { return EncodeType(types, "T").status(); };
  EXPECT_THAT(error({}), IsInvalid("no struct type"));
  EXPECT_THAT(error({{"T", {{"a", "uint8"}}}}), IsInvalid("types.T.a: unsupported type"));
  EXPECT_THAT(error({{"T", {{"a", "Person[]"}}}, {"Person", {}}}), IsInvalid("types.T.a"));
  EXPECT_THAT(error({{"T", {{"a", "bool"}, {"a", "bool"}}}}), IsInvalid("duplicate field"));
  EXPECT_THAT(error({{"T", {}}, {"T", {}}}), IsInvalid("duplicate struct type"));
  EXPECT_THAT(error({{"T", {{"a b", "bool"}}}}), IsInvalid("bad field name"));
  EXPECT_THAT(error({{"T(", {}}}), IsInvalid("bad name"));
  EXPECT_THAT(error({{"T", {}}, {"EIP712Domain", {}}}), IsInvalid("reserved"));
}

// Values that do not fit their types are refused, naming the field path.
TEST(EncodeDataTest, RejectsMalformedMessages) {
  const auto error = [](void (*change)(Message&)) {
    TypedMessage typed = Mail();
    typed.types.push_back(Consent({}).types[0]);
    typed.message = Consent({}).message;
    change(typed.message);
    return HashStruct(typed.types, typed.message).status();
  };
  EXPECT_THAT(error([](Message& m) { m.values.erase("grantee"); }),
              IsInvalid("Consent.grantee: missing"));
  EXPECT_THAT(error([](Message& m) { m.values["extra"] = true; }),
              IsInvalid("Consent.extra: not a field"));
  EXPECT_THAT(error([](Message& m) { m.values["granted"] = uint64_t{1}; }),
              IsInvalid("Consent.granted: wrong kind"));
  EXPECT_THAT(error([](Message& m) { m.values["patient"] = std::string(19, 'a'); }),
              IsInvalid("Consent.patient: must be 20 bytes"));
  EXPECT_THAT(error([](Message& m) { m.values["record"] = std::string(33, 'a'); }),
              IsInvalid("Consent.record"));
  EXPECT_THAT(error([](Message& m) { m.values["grantee"] = std::string("\xc3\x28"); }),
              IsInvalid("Consent.grantee: not UTF-8"));
  EXPECT_THAT(error([](Message& m) {
                m.values["purposes"] = std::vector<std::string>{"ok", "\xed\xa0\x80"};
              }),
              IsInvalid("Consent.purposes[1]: not UTF-8"));
  EXPECT_THAT(error([](Message& m) { m.type = "Nope"; }), IsInvalid("no struct type"));

  // UTF-8: two-, three- and four-byte forms pass; overlong, surrogate, above
  // U+10FFFF, truncated and stray continuation bytes do not.
  Types types = {{"T", {{"s", "string"}}}};
  for (const char* good :
       {"", "a\x7f", "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(HashStruct(types, {"T", {{"s", std::string(good)}}}).ok())
        << absl::CHexEscape(good);
  }
  for (const char* bad : {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xe2\x9c", "\x80", "\xf5\x80\x80\x80", "\xfe"}) {
    EXPECT_THAT(HashStruct(types, {"T", {{"s", std::string(bad)}}}).status(),
                IsInvalid("T.s: not UTF-8"))
        << absl::CHexEscape(bad);
  }

  TypedMessage mail = Mail();
  mail.message.values["to"] = std::shared_ptr<const Message>();
  EXPECT_THAT(HashStruct(mail.types, mail.message).status(), IsInvalid("Mail.to: null"));
  auto stranger = std::make_shared<Message>(*Person("Eve", kAddress1));
  stranger->values.erase("wallet");
  mail.message.values["to"] = std::shared_ptr<const Message>(stranger);
  EXPECT_THAT(HashStruct(mail.types, mail.message).status(), IsInvalid("Mail.to.wallet: missing"));
  stranger->type = "Mail";
  EXPECT_THAT(HashStruct(mail.types, mail.message).status(),
              IsInvalid("Mail.to: a Mail value for a field of type Person"));
}

}  // namespace
}  // namespace medvault::gateway::eip712
