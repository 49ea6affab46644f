// medvault-signer's durable outbox on a real chain (signer_fixture.h):
// kill -9 of the signer, the node going away, and stuck transactions
// replaced by a fee bump. Mining is switched off and on through anvil's
// JSON-RPC (evm_setAutomine, anvil_mine) to hold a transaction in flight.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/signer_fixture.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

class SignerOutboxTest : public SignerAnchorTest {
 protected:
  // With automining off, queues tree size 5 of `log_id` and waits until its
  // transaction is sent (in anvil's pool, not mined); its status.
  internal::v1::AnchorStatus SendUnmined(const std::string& log_id) {
    AnvilRpc("evm_setAutomine", "[false]");
    internal::v1::AnchorResponse queued;
    grpc::Status status = Anchor(log_id, 5, std::string(32, '\x52'), &queued, /*wait=*/false);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(queued.created());
    return AwaitStatus(queued.status().outbox_id(),
                       [](const auto& s) { return s.state() == internal::v1::ANCHOR_STATE_SENT; });
  }

  // Anchored events of `log_id` on chain, counted by cast (independently of
  // the signer).
  size_t AnchoredEvents(const std::string& log_id) {
    std::string events =
        Cast({"logs", "--json", "--address", contract_, "--from-block", "0",
              "Anchored(bytes32 indexed,uint64,bytes32,address indexed)", Hex(log_id)});
    std::vector<absl::string_view> split = absl::StrSplit(events, "\"transactionHash\"");
    return split.size() - 1;
  }
};

// An acknowledged request survives kill -9 of the signer between sending
// its transaction and the transaction being mined: after a restart the
// same nonce is tracked, the anchor lands exactly once, and the next
// request gets the next nonce.
TEST_F(SignerOutboxTest, KilledBeforeMinedLandsOnceAfterRestart) {
  const std::string log_id(32, '\x4c');
  internal::v1::AnchorStatus sent = SendUnmined(log_id);
  ASSERT_EQ(sent.state(), internal::v1::ANCHOR_STATE_SENT);
  const uint64_t id = sent.outbox_id();
  ASSERT_EQ(sent.nonce(), 0u);
  // In anvil's pool, not mined.
  EXPECT_THAT(AnvilRpc("eth_getTransactionByHash",
                       absl::StrCat("[\"", Hex(sent.transaction_hash()), "\"]")),
              HasSubstr("\"blockNumber\":null"));

  ASSERT_NO_FATAL_FAILURE(KillSigner());
  AnvilRpc("anvil_mine", "[\"0x1\"]");
  ASSERT_NO_FATAL_FAILURE(StartSigner());

  internal::v1::AnchorStatus confirmed = AwaitStatus(
      id, [](const auto& s) { return s.state() == internal::v1::ANCHOR_STATE_CONFIRMED; });
  EXPECT_EQ(confirmed.nonce(), 0u);
  EXPECT_FALSE(confirmed.already_anchored());
  std::string receipt = Cast({"receipt", "--json", Hex(confirmed.transaction_hash())});
  EXPECT_EQ(JsonMember(receipt, "status"), "0x1") << receipt;
  EXPECT_EQ(Cast({"nonce", chain_address_}), "1");

  // The next request takes nonce 1, and the chain holds both tree heads once.
  AnvilRpc("evm_setAutomine", "[true]");
  internal::v1::AnchorResponse next;
  grpc::Status status = Anchor(log_id, 9, std::string(32, '\x54'), &next);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(next.status().state(), internal::v1::ANCHOR_STATE_CONFIRMED);
  EXPECT_EQ(next.status().nonce(), 1u);
  EXPECT_EQ(Cast({"nonce", chain_address_}), "2");
  EXPECT_EQ(AnchoredEvents(log_id), 2u);
}

// Requests made while the chain is down are acknowledged from the outbox;
// when the node returns (with its chain) they all land, in order, each once.
// As the issue has it: a stream of requests over a 30-second outage.
TEST_F(SignerOutboxTest, ChainOutageQueuesAndResumes) {
  const std::string log_id(32, '\x4c');
  StopProcessGroup(anvil_pid_, absl::Seconds(10));  // anvil writes its state file
  anvil_pid_ = 0;
  const absl::Time back_at = absl::Now() + absl::Seconds(30);
  std::vector<uint64_t> ids;
  for (uint64_t size = 3; absl::Now() < back_at; size += 3) {
    internal::v1::AnchorResponse queued;
    grpc::Status status =
        Anchor(log_id, size, std::string(32, static_cast<char>(size)), &queued, /*wait=*/false);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(queued.status().state(), internal::v1::ANCHOR_STATE_QUEUED);
    ids.push_back(queued.status().outbox_id());
    absl::SleepFor(absl::Seconds(2));
  }
  ASSERT_GE(ids.size(), 10u);
  for (uint64_t id : ids) {
    internal::v1::AnchorStatus entry;
    ASSERT_TRUE(GetStatus(id, &entry).ok());
    EXPECT_EQ(entry.state(), internal::v1::ANCHOR_STATE_QUEUED) << entry.ShortDebugString();
  }

  ASSERT_NO_FATAL_FAILURE(StartAnvil());
  uint64_t nonce = 0;
  for (uint64_t id : ids) {
    internal::v1::AnchorStatus entry = AwaitStatus(
        id, [](const auto& s) { return s.state() == internal::v1::ANCHOR_STATE_CONFIRMED; });
    EXPECT_EQ(entry.nonce(), nonce++) << entry.ShortDebugString();
    EXPECT_FALSE(entry.already_anchored());
  }
  // None twice: one transaction and one Anchored event per request.
  EXPECT_EQ(Cast({"nonce", chain_address_}), std::to_string(ids.size()));
  EXPECT_EQ(AnchoredEvents(log_id), ids.size());
  internal::v1::GetAnchorResponse latest;
  ASSERT_TRUE(GetAnchor(log_id, &latest).ok());
  EXPECT_EQ(latest.tree_size(), 3 * ids.size());
}

// A transaction in flight when the node goes away (and comes back without
// its transaction pool) is broadcast again, under the same nonce, and lands
// once.
TEST_F(SignerOutboxTest, InFlightTransactionSurvivesNodeRestart) {
  const std::string log_id(32, '\x4c');
  internal::v1::AnchorStatus sent = SendUnmined(log_id);
  ASSERT_EQ(sent.state(), internal::v1::ANCHOR_STATE_SENT);
  const uint64_t id = sent.outbox_id();
  StopProcessGroup(anvil_pid_, absl::Seconds(10));
  anvil_pid_ = 0;
  absl::SleepFor(absl::Seconds(2));
  ASSERT_NO_FATAL_FAILURE(StartAnvil());  // automining again

  internal::v1::AnchorStatus confirmed = AwaitStatus(
      id, [](const auto& s) { return s.state() == internal::v1::ANCHOR_STATE_CONFIRMED; });
  EXPECT_EQ(confirmed.nonce(), sent.nonce());
  EXPECT_FALSE(confirmed.already_anchored());
  EXPECT_EQ(Cast({"nonce", chain_address_}), "1");
  // It landed because the signer sent it again (anvil's state file keeps
  // the chain, not the pool).
  EXPECT_THAT(ReadWholeFile(signer_log()).value_or(""), HasSubstr("event=anchor.rebroadcast"));
  internal::v1::GetAnchorResponse latest;
  ASSERT_TRUE(GetAnchor(log_id, &latest).ok());
  EXPECT_EQ(latest.tree_size(), 5u);
}

// A transaction that is not mined is replaced after signer.fee_bump_after_ms
// by one with the same nonce and fees at least 12.5 % higher, and that one
// is what gets mined.
TEST_F(SignerOutboxTest, StuckTransactionIsReplacedByFeeBump) {
  const std::string log_id(32, '\x4c');
  internal::v1::AnchorStatus first = SendUnmined(log_id);
  ASSERT_EQ(first.state(), internal::v1::ANCHOR_STATE_SENT);
  const uint64_t id = first.outbox_id();
  std::string original = Cast({"tx", "--json", Hex(first.transaction_hash())});
  const std::string original_fee = JsonMember(original, "maxFeePerGas");
  const std::string original_tip = JsonMember(original, "maxPriorityFeePerGas");
  ASSERT_FALSE(original_fee.empty()) << original;

  internal::v1::AnchorStatus bumped = AwaitStatus(
      id, [](const auto& s) { return s.transactions() >= 2; }, absl::Seconds(20));
  EXPECT_EQ(bumped.state(), internal::v1::ANCHOR_STATE_SENT);
  EXPECT_EQ(bumped.nonce(), first.nonce());
  EXPECT_NE(bumped.transaction_hash(), first.transaction_hash());
  // The signer records a replacement before it broadcasts it (so that a
  // crash cannot lose it): mine only once the node has it in its pool.
  const std::string params = absl::StrCat("[\"", Hex(bumped.transaction_hash()), "\"]");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::StrContains(AnvilRpc("eth_getTransactionByHash", params), "\"result\":null")) {
    ASSERT_LT(absl::Now(), deadline) << "the node never received the replacement";
    absl::SleepFor(absl::Milliseconds(50));
  }

  AnvilRpc("anvil_mine", "[\"0x1\"]");
  internal::v1::AnchorStatus confirmed = AwaitStatus(
      id, [](const auto& s) { return s.state() == internal::v1::ANCHOR_STATE_CONFIRMED; });
  EXPECT_NE(confirmed.transaction_hash(), first.transaction_hash());
  EXPECT_EQ(confirmed.nonce(), first.nonce());
  std::string mined = Cast({"tx", "--json", Hex(confirmed.transaction_hash())});
  auto quantity = [this](const std::string& hex) {
    return std::stoull(Cast({"to-dec", hex}, /*rpc=*/false));
  };
  EXPECT_GE(quantity(JsonMember(mined, "maxFeePerGas")) * 8, quantity(original_fee) * 9) << mined;
  EXPECT_GE(quantity(JsonMember(mined, "maxPriorityFeePerGas")) * 8, quantity(original_tip) * 9)
      << mined;
  EXPECT_EQ(Cast({"to-dec", JsonMember(mined, "nonce")}, /*rpc=*/false), "0");
  EXPECT_EQ(Cast({"nonce", chain_address_}), "1");
  // The original was never mined.
  EXPECT_THAT(AnvilRpc("eth_getTransactionReceipt",
                       absl::StrCat("[\"", Hex(first.transaction_hash()), "\"]")),
              HasSubstr("\"result\":null"));
}

}  // namespace
}  // namespace medvault::integration
