// The regulator's calls and the contracts' revert reasons, compared with
// cast's encodings in the same run.
#include "daemon/signer/registry_abi.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/eth_tx.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/signer/cast_tool.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;

std::string Cast(const std::vector<std::string>& args) {
  absl::StatusOr<std::string> out = testing::RunCast(args);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.value_or("");
}

// What cast encodes for the same call (its calldata is also how a custom
// error is encoded in revert data: selector, then the arguments).
std::string CastCalldata(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"calldata"};
  full.insert(full.end(), args.begin(), args.end());
  absl::StatusOr<std::string> bytes = FromHex(Cast(full));
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.value_or("");
}

const std::string kPractitioner(32, '\x50');
const std::string kEvidence(32, '\x45');

TEST(RegistryAbiTest, CallsMatchCast) {
  absl::StatusOr<std::string> set = EncodeSetLicenceCall(kPractitioner, 2, 4102444800, kEvidence);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(*set, CastCalldata({"setLicence(bytes32,uint8,uint64,bytes32)", ToHex(kPractitioner),
                                "2", "4102444800", ToHex(kEvidence)}));
  absl::StatusOr<std::string> publish = EncodePublishPolicyCall(7, kEvidence);
  ASSERT_TRUE(publish.ok()) << publish.status();
  EXPECT_EQ(*publish, CastCalldata({"publish(uint64,bytes32)", "7", ToHex(kEvidence)}));
  const std::string account(20, '\xab');
  absl::StatusOr<std::string> add = EncodeAddOperatorCall(account);
  ASSERT_TRUE(add.ok()) << add.status();
  EXPECT_EQ(*add, CastCalldata({"addOperator(address)", ToHex(account)}));
  // Constructor argument: the init code, then the owner as one word.
  absl::StatusOr<std::string> creation = CreationWithOwner("\x60\x80", account);
  ASSERT_TRUE(creation.ok());
  absl::StatusOr<std::string> word = FromHex(Cast({"abi-encode", "f(address)", ToHex(account)}));
  ASSERT_TRUE(word.ok());
  EXPECT_EQ(*creation, std::string("\x60\x80") + *word);
}

TEST(RegistryAbiTest, BadFieldsAreNamed) {
  EXPECT_THAT(EncodeSetLicenceCall("short", 1, 1, kEvidence).status().message(),
              HasSubstr("practitioner"));
  EXPECT_THAT(EncodeSetLicenceCall(kPractitioner, 5, 1, kEvidence).status().message(),
              HasSubstr("status"));
  EXPECT_THAT(EncodePublishPolicyCall(1, "x").status().message(), HasSubstr("bundle_hash"));
  EXPECT_THAT(EncodeAddOperatorCall("x").status().message(), HasSubstr("account"));
  EXPECT_THAT(CreationWithOwner("", std::string(20, 'a')).status().message(),
              HasSubstr("init code"));
}

// Each of the contracts' errors, encoded by cast, is named with its values.
TEST(RegistryAbiTest, DescribesEveryRevert) {
  const std::string who = "0x00000000000000000000000000000000000000aa";
  EXPECT_EQ(DescribeRevert(CastCalldata({"VersionNotIncreasing(uint64,uint64)", "3", "2"})),
            "VersionNotIncreasing(latest 3, given 2)");
  EXPECT_EQ(
      DescribeRevert(CastCalldata({"ValidUntilNotInFuture(uint64,uint256)", "1000", "1700000000"})),
      "ValidUntilNotInFuture(valid until 1000, block time 1700000000)");
  EXPECT_EQ(DescribeRevert(CastCalldata({"NotOwner(address)", who})), "NotOwner(" + who + ")");
  EXPECT_EQ(DescribeRevert(CastCalldata({"NotOperator(address)", who})),
            "NotOperator(" + who + ")");
  for (const char* plain :
       {"ZeroPractitioner", "InvalidStatus", "ZeroEvidenceHash", "ZeroBundleHash", "ZeroAddress"}) {
    EXPECT_EQ(DescribeRevert(CastCalldata({absl::StrCat(plain, "()")})), plain);
  }
  EXPECT_EQ(DescribeRevert(CastCalldata({"Error(string)", "no \"way\""})),
            "Error(\"no \\\"way\\\"\")");
  EXPECT_EQ(DescribeRevert(CastCalldata({"Panic(uint256)", "17"})), "Panic(17)");
  EXPECT_EQ(DescribeRevert(CastCalldata(
                {"TreeSizeNotIncreasing(bytes32,uint64,uint64)", ToHex(kEvidence), "5", "3"})),
            "TreeSizeNotIncreasing(latest 5, given 3)");
  // Unknown or truncated data is shown as it is, never misread.
  EXPECT_EQ(DescribeRevert(std::string("\x01\x02\x03", 3)), "revert data 0x010203");
  EXPECT_THAT(
      DescribeRevert(CastCalldata({"VersionNotIncreasing(uint64,uint64)", "3", "2"}).substr(0, 40)),
      HasSubstr("revert data"));
  // A uint256 that does not fit a uint64 is said to be out of range.
  EXPECT_THAT(DescribeRevert(CastCalldata({"ValidUntilNotInFuture(uint64,uint256)", "1",
                                           "340282366920938463463374607431768211456"})),
              HasSubstr("block time (out of range)"));
}

}  // namespace
}  // namespace medvault::signer
