// The anchoring sequence against a fake chain and a fake key: the nonce
// policy, the fee caps, confirmations, and how reverts are reported.
#include "daemon/signer/anchorer.h"

#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/signer/fake_chain.h"

namespace medvault::signer {
namespace {

using abi::Uint64Word;
using testing::FakeKey;
using ::testing::HasSubstr;
using testing::kSender;
using testing::NonceOf;

const std::string kLogId(32, '\x4c');
const std::string kRoot(32, '\x52');

// A chain that mines every sent transaction into the next block. Each call
// is recorded; answers can be scripted.
class FakeChain : public testing::AnchoringChain {
 public:
  absl::StatusOr<uint64_t> ChainId() override { return 31337; }
  absl::StatusOr<uint64_t> BlockNumber() override { return head; }
  absl::StatusOr<uint64_t> PendingNonce(absl::string_view address) override {
    ++pending_nonce_reads;
    EXPECT_EQ(address, kSender);
    return pending_nonce;
  }
  absl::StatusOr<uint64_t> MinedNonce(absl::string_view) override { return pending_nonce; }
  absl::StatusOr<uint64_t> MaxPriorityFeePerGas() override { return tip; }
  absl::StatusOr<uint64_t> NextBaseFee() override { return base_fee; }
  absl::StatusOr<uint64_t> EstimateGas(const CallRequest&) override { return 40'000; }
  absl::StatusOr<CallOutcome> EthCall(const CallRequest& call, absl::string_view block) override {
    call_blocks.push_back(std::string(block));
    if (!call_reverts.empty()) {
      CallOutcome outcome{true, call_reverts.front()};
      call_reverts.pop_front();
      return outcome;
    }
    if (call.data.substr(0, 4) == Selector("latest(bytes32)")) {
      return CallOutcome{
          false, Uint64Word(5) + kRoot + Uint64Word(1700000000) + Uint64Word(anchored_block)};
    }
    return CallOutcome{false, ""};
  }
  absl::StatusOr<std::string> SendRawTransaction(absl::string_view raw) override {
    if (!send_errors.empty()) {
      absl::Status error = send_errors.front();
      send_errors.pop_front();
      return error;
    }
    sent.push_back(std::string(raw));
    ++pending_nonce;
    return Keccak256(raw);
  }
  absl::StatusOr<std::optional<TransactionReceipt>> GetTransactionReceipt(
      absl::string_view hash) override {
    if (!mined) return std::nullopt;
    ++head;  // each poll, another block arrives
    return TransactionReceipt{std::string(hash), mined_block, receipt_success, 30'000, ""};
  }

  uint64_t head = 10;
  uint64_t pending_nonce = 7;
  int pending_nonce_reads = 0;
  uint64_t tip = 1'000;
  uint64_t base_fee = 10'000;
  uint64_t anchored_block = 3;
  bool mined = true;
  uint64_t mined_block = 11;
  bool receipt_success = true;
  std::deque<std::string> call_reverts;
  std::deque<absl::Status> send_errors;
  std::vector<std::string> call_blocks;
  std::vector<std::string> sent;
};

class AnchorerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Anchorer> Make(uint32_t confirmations = 1) {
    AnchorerOptions options;
    options.contract = std::string(20, '\xcc');
    options.expected_chain_id = 31337;
    options.confirmations = confirmations;
    options.fee_caps = {100'000, 2'000};
    options.receipt_timeout = absl::Milliseconds(200);
    options.poll_interval = absl::Milliseconds(1);
    auto anchorer = Anchorer::Create(&chain_, &key_, options);
    EXPECT_TRUE(anchorer.ok()) << anchorer.status();
    return *std::move(anchorer);
  }

  FakeChain chain_;
  FakeKey key_;
};

// Each synchronous anchor takes the node's pending nonce (they are
// serialised, so that is the next free one): consecutive nonces.
TEST_F(AnchorerTest, NonceFromTheNodeEachTime) {
  auto anchorer = Make();
  for (uint64_t size = 5; size < 8; ++size) {
    absl::StatusOr<AnchorResult> r = anchorer->Anchor(kLogId, size, kRoot);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->transaction_hash, Keccak256(chain_.sent.back()));
    EXPECT_EQ(r->block_number, 11u);
  }
  EXPECT_EQ(chain_.pending_nonce_reads, 3);
  ASSERT_EQ(chain_.sent.size(), 3u);
  EXPECT_EQ(NonceOf(chain_.sent[0]), 7u);
  EXPECT_EQ(NonceOf(chain_.sent[2]), 9u);
  EXPECT_EQ(key_.digests.size(), 3u);
}

// A failed submission makes the next anchor ask the node for the nonce again.
TEST_F(AnchorerTest, NonceReReadAfterFailedSend) {
  auto anchorer = Make();
  chain_.send_errors.push_back(absl::UnavailableError("node down"));
  EXPECT_EQ(anchorer->Anchor(kLogId, 5, kRoot).status().code(), absl::StatusCode::kUnavailable);
  chain_.pending_nonce = 8;  // e.g. another transaction landed meanwhile
  ASSERT_TRUE(anchorer->Anchor(kLogId, 5, kRoot).ok());
  EXPECT_EQ(chain_.pending_nonce_reads, 2);
  EXPECT_EQ(NonceOf(chain_.sent.back()), 8u);
}

// AlreadyAnchored in the simulation: success, nothing signed or sent.
TEST_F(AnchorerTest, AlreadyAnchoredSendsNothing) {
  auto anchorer = Make();
  chain_.call_reverts.push_back(Selector("AlreadyAnchored(bytes32,uint64,bytes32)") + kLogId +
                                Uint64Word(5) + kRoot);
  absl::StatusOr<AnchorResult> r = anchorer->Anchor(kLogId, 5, kRoot);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->already_anchored);
  EXPECT_TRUE(r->transaction_hash.empty());
  EXPECT_EQ(r->block_number, 3u);  // from latest()
  EXPECT_TRUE(chain_.sent.empty());
  EXPECT_TRUE(key_.digests.empty());
}

// A key that, once asked to sign, makes the chain's next eth_call revert
// with AlreadyAnchored: the simulation before it passes, the replay of the
// mined transaction after it reverts.
class RacingKey : public FakeKey {
 public:
  explicit RacingKey(FakeChain* chain) : chain_(chain) {}
  absl::StatusOr<EthSignature> SignDigest(absl::string_view digest) override {
    chain_->call_reverts.push_back(Selector("AlreadyAnchored(bytes32,uint64,bytes32)") + kLogId +
                                   Uint64Word(5) + kRoot);
    return FakeKey::SignDigest(digest);
  }

 private:
  FakeChain* chain_;
};

// A transaction that reverted on chain with AlreadyAnchored (it raced an
// earlier one for the same tree head) is a success too; the call is
// replayed at the receipt's block to read the reason.
TEST_F(AnchorerTest, RevertedReceiptWithAlreadyAnchoredIsSuccess) {
  RacingKey key(&chain_);
  AnchorerOptions options;
  options.contract = std::string(20, '\xcc');
  options.fee_caps = {100'000, 2'000};
  options.poll_interval = absl::Milliseconds(1);
  auto anchorer = Anchorer::Create(&chain_, &key, options);
  ASSERT_TRUE(anchorer.ok()) << anchorer.status();
  chain_.receipt_success = false;
  absl::StatusOr<AnchorResult> r = (*anchorer)->Anchor(kLogId, 5, kRoot);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->already_anchored);
  EXPECT_EQ(r->transaction_hash, Keccak256(chain_.sent.back()));
  ASSERT_GE(chain_.call_blocks.size(), 2u);
  EXPECT_EQ(chain_.call_blocks[0], "latest");
  EXPECT_EQ(chain_.call_blocks[1], "0xb");  // block 11
}

// A smaller tree size is refused with the contract's numbers.
TEST_F(AnchorerTest, TreeSizeNotIncreasingIsFailedPrecondition) {
  auto anchorer = Make();
  chain_.call_reverts.push_back(Selector("TreeSizeNotIncreasing(bytes32,uint64,uint64)") + kLogId +
                                Uint64Word(5) + Uint64Word(3));
  absl::StatusOr<AnchorResult> r = anchorer->Anchor(kLogId, 3, kRoot);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("not above the latest anchored tree size 5"));
  EXPECT_TRUE(chain_.sent.empty());
}

// The answer waits until the transaction is `confirmations` blocks deep.
TEST_F(AnchorerTest, WaitsForConfirmations) {
  auto anchorer = Make(/*confirmations=*/4);
  chain_.head = 11;
  chain_.mined_block = 11;
  ASSERT_TRUE(anchorer->Anchor(kLogId, 5, kRoot).ok());
  EXPECT_GE(chain_.head + 1, 11u + 4);
}

// Never mined: DEADLINE_EXCEEDED naming the transaction.
TEST_F(AnchorerTest, UnconfirmedIsDeadlineExceeded) {
  auto anchorer = Make();
  chain_.mined = false;
  absl::StatusOr<AnchorResult> r = anchorer->Anchor(kLogId, 5, kRoot);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr(ToHex(Keccak256(chain_.sent.back()))));
}

// A base fee above the cap: UNAVAILABLE, nothing signed.
TEST_F(AnchorerTest, BaseFeeAboveCapSendsNothing) {
  auto anchorer = Make();
  chain_.base_fee = 100'001;
  EXPECT_EQ(anchorer->Anchor(kLogId, 5, kRoot).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(key_.digests.empty());
}

// Malformed input is refused before anything reaches the chain.
TEST_F(AnchorerTest, BadInputNamesTheField) {
  auto anchorer = Make();
  EXPECT_THAT(anchorer->Anchor("x", 5, kRoot).status().message(), HasSubstr("log_id"));
  EXPECT_THAT(anchorer->Anchor(kLogId, 5, std::string(32, '\0')).status().message(),
              HasSubstr("root_hash"));
  EXPECT_THAT(anchorer->Anchor(kLogId, 0, kRoot).status().message(), HasSubstr("tree_size"));
  EXPECT_TRUE(chain_.call_blocks.empty());
}

}  // namespace
}  // namespace medvault::signer
