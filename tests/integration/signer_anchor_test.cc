// medvault-signer anchoring on a real chain (signer_fixture.h): what lands,
// how it reads back, retries and refusals.
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/signer_fixture.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

// An anchor lands with a transaction sent from the keyvault's address, and
// GetAnchor, cast call and the receipt all agree on what was anchored.
TEST_F(SignerAnchorTest, AnchorLandsAndReadsBack) {
  const std::string log_id(32, '\x4c');
  const std::string root(32, '\x52');
  internal::v1::AnchorResponse response;
  grpc::Status status = Anchor(log_id, 5, root, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.created());
  const internal::v1::AnchorStatus& anchored = response.status();
  ASSERT_EQ(anchored.state(), internal::v1::ANCHOR_STATE_CONFIRMED) << anchored.ShortDebugString();
  EXPECT_FALSE(anchored.already_anchored());
  EXPECT_EQ(anchored.nonce(), 0u);
  ASSERT_EQ(anchored.transaction_hash().size(), 32u);

  // The receipt: success, and the sender recovered from the signature is
  // the keyvault's chain address.
  std::string receipt = Cast({"receipt", "--json", Hex(anchored.transaction_hash())});
  EXPECT_EQ(JsonMember(receipt, "status"), "0x1") << receipt;
  EXPECT_EQ(absl::AsciiStrToLower(JsonMember(receipt, "from")), chain_address_) << receipt;
  EXPECT_EQ(JsonMember(receipt, "type"), "0x2") << receipt;
  EXPECT_EQ(Cast({"to-dec", JsonMember(receipt, "blockNumber")}, /*rpc=*/false),
            std::to_string(anchored.block_number()));
  // GetAnchorStatus reports the same entry.
  internal::v1::AnchorStatus entry;
  status = GetStatus(anchored.outbox_id(), &entry);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(entry.SerializeAsString(), anchored.SerializeAsString());

  internal::v1::GetAnchorResponse latest;
  status = GetAnchor(log_id, &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 5u);
  EXPECT_EQ(latest.root_hash(), root);
  EXPECT_EQ(latest.block_number(), anchored.block_number());
  EXPECT_GT(latest.timestamp(), 0u);

  // An independent reader sees the same checkpoint.
  std::string call =
      Cast({"call", contract_, "latest(bytes32)(uint64,bytes32,uint64,uint64)", Hex(log_id)});
  EXPECT_THAT(call, HasSubstr(absl::StrCat("5\n", Hex(root))));

  // A log never anchored reads as zero.
  status = GetAnchor(std::string(32, '\x01'), &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 0u);
}

// The same tree head again returns the same outbox entry without a new
// transaction; a smaller tree size fails with the contract's reason, and the
// same size with another root is refused at once; the nonce stays
// continuous throughout.
TEST_F(SignerAnchorTest, RetriesAreHarmlessAndRollbacksRefused) {
  const std::string log_id(32, '\x4c');
  const std::string root(32, '\x52');
  internal::v1::AnchorResponse first;
  grpc::Status status = Anchor(log_id, 5, root, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(first.status().state(), internal::v1::ANCHOR_STATE_CONFIRMED);

  internal::v1::AnchorResponse again;
  status = Anchor(log_id, 5, root, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(again.created());
  EXPECT_EQ(again.status().outbox_id(), first.status().outbox_id());
  EXPECT_EQ(again.status().transaction_hash(), first.status().transaction_hash());
  EXPECT_EQ(again.status().block_number(), first.status().block_number());

  internal::v1::AnchorResponse refused;
  status = Anchor(log_id, 3, root, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr("tree_size: 3 is not above the latest anchored tree size 5"));
  status = Anchor(log_id, 5, std::string(32, '\x53'), &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("with a different root_hash"));

  internal::v1::AnchorResponse next;
  status = Anchor(log_id, 9, std::string(32, '\x54'), &next);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(next.status().state(), internal::v1::ANCHOR_STATE_CONFIRMED);
  EXPECT_FALSE(next.status().already_anchored());
  EXPECT_EQ(next.status().nonce(), 1u);
  EXPECT_GT(next.status().block_number(), first.status().block_number());
  // Two transactions sent, nonces 0 and 1: nothing for the refused ones.
  EXPECT_EQ(Cast({"nonce", chain_address_}), "2");

  internal::v1::GetAnchorResponse latest;
  status = GetAnchor(log_id, &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 9u);
}

// Malformed requests are refused before anything reaches the chain,
// naming the field.
TEST_F(SignerAnchorTest, BadRequestsNameTheField) {
  internal::v1::AnchorResponse response;
  grpc::Status status = Anchor("short", 1, std::string(32, '\x01'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("log_id"));
  status = Anchor(std::string(32, '\x01'), 1, std::string(32, '\0'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("root_hash"));
  status = Anchor(std::string(32, '\x01'), 0, std::string(32, '\x02'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("tree_size"));
  EXPECT_EQ(Cast({"nonce", chain_address_}), "0");
}

}  // namespace
}  // namespace medvault::integration
