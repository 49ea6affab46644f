// The outbox worker's decisions against a fake node with a transaction
// pool and on-demand mining, over a real (SQLCipher) outbox: a crash
// between recording and broadcasting, a node that refuses, a nonce taken
// by something else, reverts, and fee bumps at the cap.
#include "daemon/signer/outbox_worker.h"

#include <stdlib.h>

#include <filesystem>
#include <map>
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
using testing::NonceOf;

const std::string kLog(32, '\x4c');
const std::string kRoot(32, '\x52');

// A node with a pool (one transaction per nonce, the latest replacement
// wins) that mines only when told, and an AuditAnchor holding one tree
// head.
class PoolChain : public testing::AnchoringChain {
 public:
  absl::StatusOr<uint64_t> ChainId() override { return Up(31337); }
  absl::StatusOr<uint64_t> BlockNumber() override { return Up(head); }
  absl::StatusOr<uint64_t> PendingNonce(absl::string_view) override {
    uint64_t next = mined_nonce;
    while (pool.count(next) != 0) ++next;
    return Up(next);
  }
  absl::StatusOr<uint64_t> MinedNonce(absl::string_view) override { return Up(mined_nonce); }
  absl::StatusOr<uint64_t> MaxPriorityFeePerGas() override { return Up(tip); }
  absl::StatusOr<uint64_t> NextBaseFee() override { return Up(base_fee); }
  absl::StatusOr<uint64_t> EstimateGas(const CallRequest&) override { return Up(40'000); }
  absl::StatusOr<CallOutcome> EthCall(const CallRequest& call, absl::string_view) override {
    if (!up) return absl::UnavailableError("node down");
    if (call.data.substr(0, 4) == Selector("latest(bytes32)")) {
      return CallOutcome{false,
                         Uint64Word(tree_size) + root + Uint64Word(1) + Uint64Word(anchored_block)};
    }
    const std::string root_arg = call.data.substr(4 + 64, 32);
    const uint64_t size_arg = static_cast<uint8_t>(call.data[4 + 63]);
    if (size_arg == tree_size && root_arg == root) {
      return CallOutcome{true, Selector("AlreadyAnchored(bytes32,uint64,bytes32)") + kLog +
                                   Uint64Word(size_arg) + root_arg};
    }
    if (size_arg <= tree_size) {
      return CallOutcome{true, Selector("TreeSizeNotIncreasing(bytes32,uint64,uint64)") + kLog +
                                   Uint64Word(tree_size) + Uint64Word(size_arg)};
    }
    return CallOutcome{false, ""};
  }
  absl::StatusOr<std::string> SendRawTransaction(absl::string_view raw) override {
    if (!up) return absl::UnavailableError("node down");
    ++sends;
    if (refuse) return absl::FailedPreconditionError("node returned error: insufficient funds");
    const uint64_t nonce = NonceOf(raw);
    if (nonce < mined_nonce) return absl::FailedPreconditionError("nonce too low");
    pool[nonce] = std::string(raw);
    if (automine) Mine();
    return Keccak256(raw);
  }
  absl::StatusOr<std::optional<TransactionReceipt>> GetTransactionReceipt(
      absl::string_view hash) override {
    if (!up) return absl::UnavailableError("node down");
    auto it = receipts.find(std::string(hash));
    if (it == receipts.end()) return std::optional<TransactionReceipt>();
    return std::optional<TransactionReceipt>(it->second);
  }

  // Mines the pool's transaction of the next nonce into a new block (its
  // anchor() call as the contract would run it: size from the calldata).
  void Mine() {
    ++head;
    auto it = pool.find(mined_nonce);
    if (it == pool.end()) return;
    const std::string hash = Keccak256(it->second);
    const std::string& raw = it->second;
    // The calldata is the last 100 bytes before the signature (3 + 32 + 32
    // + 1 bytes); the tests' tree heads are all written that way.
    const std::string data = raw.substr(raw.size() - 68 - 100, 100);
    const uint64_t size_arg = static_cast<uint8_t>(data[4 + 63]);
    const bool success = size_arg > tree_size;
    if (success) {
      tree_size = size_arg;
      root = data.substr(4 + 64, 32);
      anchored_block = head;
    }
    receipts[hash] = TransactionReceipt{hash, head, success, 30'000, ""};
    pool.erase(it);
    ++mined_nonce;
  }

  absl::StatusOr<uint64_t> Up(uint64_t value) {
    if (!up) return absl::UnavailableError("node down");
    return value;
  }

  bool up = true;
  bool refuse = false;
  bool automine = false;  // mines each transaction as it arrives
  uint64_t head = 10;
  uint64_t mined_nonce = 4;
  uint64_t tip = 1'000;
  uint64_t base_fee = 10'000;
  uint64_t tree_size = 0;
  std::string root = std::string(32, '\0');
  uint64_t anchored_block = 0;
  int sends = 0;
  std::map<uint64_t, std::string> pool;
  std::map<std::string, TransactionReceipt> receipts;
};

class OutboxWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/outbox-worker-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    auto store = OutboxStore::Open(dir_ + "/outbox.db", SecretData(std::string(32, '\x11')));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    AnchorerOptions options;
    options.contract = std::string(20, '\xcc');
    options.expected_chain_id = 31337;
    options.fee_caps = {100'000, 2'000};
    auto anchorer = Anchorer::Create(&chain_, &key_, options);
    ASSERT_TRUE(anchorer.ok());
    anchorer_ = *std::move(anchorer);
    OutboxWorkerOptions worker_options;
    worker_options.bump_after = absl::ZeroDuration();
    worker_ =
        std::make_unique<OutboxWorker>(store_.get(), anchorer_.get(), &chain_, worker_options);
  }
  void TearDown() override {
    worker_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  int64_t Submit(uint64_t tree_size, char root = '\x52') {
    auto enqueued = worker_->Submit(kLog, tree_size, std::string(32, root));
    EXPECT_TRUE(enqueued.ok()) << enqueued.status();
    return enqueued.ok() ? enqueued->entry.id : 0;
  }
  OutboxEntry Entry(int64_t id) { return *store_->Get(id); }

  std::string dir_;
  PoolChain chain_;
  FakeKey key_;
  std::unique_ptr<OutboxStore> store_;
  std::unique_ptr<Anchorer> anchorer_;
  std::unique_ptr<OutboxWorker> worker_;
};

// Sent with the pending nonce, recorded, then confirmed once mined; the
// next entry takes the next nonce.
TEST_F(OutboxWorkerTest, SendsInOrderWithConsecutiveNonces) {
  const int64_t a = Submit(5);
  const int64_t b = Submit(9);
  EXPECT_THAT(worker_->Step(), absl::StatusOr<bool>(false));
  EXPECT_EQ(Entry(a).state, AnchorState::kSent);
  EXPECT_EQ(Entry(a).nonce, 4u);
  EXPECT_EQ(Entry(b).state, AnchorState::kQueued);
  chain_.Mine();
  EXPECT_THAT(worker_->Step(), absl::StatusOr<bool>(true));
  EXPECT_EQ(Entry(a).state, AnchorState::kConfirmed);
  EXPECT_EQ(Entry(a).block_number, 11u);
  EXPECT_EQ(Entry(a).transaction_hash, Entry(a).transactions.back().hash);
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(b).nonce, 5u);
}

// The node lacks a recorded transaction (a crash after recording it and
// before broadcasting, or a node restarted without its pool): the next step
// finds its nonce missing from the pool and broadcasts it again, unchanged.
TEST_F(OutboxWorkerTest, RecordedButNotInPoolIsSentAgain) {
  const int64_t id = Submit(5);
  ASSERT_TRUE(worker_->Step().ok());  // records, then sends
  const std::string raw = chain_.pool.at(4);
  chain_.pool.clear();
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(chain_.pool.at(4), raw);
  EXPECT_EQ(Entry(id).transactions.size(), 1u);
  chain_.Mine();
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).state, AnchorState::kConfirmed);
  EXPECT_EQ(chain_.mined_nonce, 5u);
}

// The node refusing the transaction puts the entry back in the queue; the
// chain being down leaves it where it is. Neither loses the request.
TEST_F(OutboxWorkerTest, RefusalRequeuesAndOutageWaits) {
  const int64_t id = Submit(5);
  chain_.refuse = true;
  EXPECT_FALSE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).state, AnchorState::kQueued);
  EXPECT_THAT(Entry(id).error, HasSubstr("insufficient funds"));
  EXPECT_EQ(Entry(id).attempts, 1u);
  chain_.refuse = false;
  chain_.up = false;
  EXPECT_EQ(worker_->Step().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Entry(id).state, AnchorState::kQueued);
  chain_.up = true;
  ASSERT_TRUE(worker_->Step().ok());
  chain_.Mine();
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).state, AnchorState::kConfirmed);
}

// A tree head that is already the latest is confirmed without a
// transaction; a smaller one fails with the contract's reason.
TEST_F(OutboxWorkerTest, AlreadyAnchoredAndRefusedTreeHeads) {
  chain_.tree_size = 5;
  chain_.root = kRoot;
  chain_.anchored_block = 8;
  const int64_t same = Submit(5);
  const int64_t smaller = Submit(3);
  EXPECT_THAT(worker_->Step(), absl::StatusOr<bool>(true));
  EXPECT_EQ(Entry(same).state, AnchorState::kConfirmed);
  EXPECT_TRUE(Entry(same).already_anchored);
  EXPECT_EQ(Entry(same).block_number, 8u);
  EXPECT_THAT(worker_->Step(), absl::StatusOr<bool>(true));
  EXPECT_EQ(Entry(smaller).state, AnchorState::kFailed);
  EXPECT_THAT(Entry(smaller).error, HasSubstr("is not above the latest anchored tree size 5"));
  EXPECT_EQ(chain_.sends, 0);
}

// Pending past bump_after: replaced under the same nonce with both fees
// raised by an eighth; the replacement is what is mined and recorded.
TEST_F(OutboxWorkerTest, StuckTransactionIsReplaced) {
  const int64_t id = Submit(5);
  ASSERT_TRUE(worker_->Step().ok());
  const SentTransaction first = Entry(id).transactions.back();
  ASSERT_TRUE(worker_->Step().ok());  // bump_after is zero here
  OutboxEntry bumped = Entry(id);
  ASSERT_EQ(bumped.transactions.size(), 2u);
  const SentTransaction& second = bumped.transactions.back();
  EXPECT_EQ(second.nonce, first.nonce);
  EXPECT_EQ(second.gas_limit, first.gas_limit);
  EXPECT_GE(second.fees.max_fee_per_gas * 8, first.fees.max_fee_per_gas * 9);
  EXPECT_GE(second.fees.max_priority_fee_per_gas * 8, first.fees.max_priority_fee_per_gas * 9);
  EXPECT_EQ(chain_.pool.at(first.nonce), second.raw);
  chain_.Mine();
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).state, AnchorState::kConfirmed);
  EXPECT_EQ(Entry(id).transaction_hash, second.hash);
}

// At the fee cap there is no room for a 12.5 % raise: the transaction keeps
// waiting (a transient error) instead of being replaced.
TEST_F(OutboxWorkerTest, NoBumpAboveTheCap) {
  chain_.base_fee = 49'000;  // 2 × base + tip = 99'000, near the 100'000 cap
  const int64_t id = Submit(5);
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(worker_->Step().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Entry(id).transactions.size(), 1u);
  EXPECT_EQ(Entry(id).state, AnchorState::kSent);
}

// The nonce consumed by a transaction that is not ours (no receipt of any
// recorded hash): the entry is queued again and sent with a fresh nonce.
TEST_F(OutboxWorkerTest, NonceTakenElsewhereIsRequeued) {
  const int64_t id = Submit(5);
  ASSERT_TRUE(worker_->Step().ok());
  chain_.pool.clear();
  ++chain_.mined_nonce;  // someone else's transaction with nonce 4
  EXPECT_THAT(worker_->Step(), absl::StatusOr<bool>(true));
  EXPECT_EQ(Entry(id).state, AnchorState::kQueued);
  EXPECT_THAT(Entry(id).error, HasSubstr("nonce 4 was used by another transaction"));
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).nonce, 5u);
  chain_.Mine();
  ASSERT_TRUE(worker_->Step().ok());
  EXPECT_EQ(Entry(id).state, AnchorState::kConfirmed);
}

// Bad requests are refused before anything is stored, naming the field.
TEST_F(OutboxWorkerTest, SubmitValidates) {
  EXPECT_THAT(worker_->Submit("short", 1, kRoot).status().message(), HasSubstr("log_id"));
  EXPECT_THAT(worker_->Submit(kLog, 1, std::string(32, '\0')).status().message(),
              HasSubstr("root_hash"));
  EXPECT_THAT(worker_->Submit(kLog, 0, kRoot).status().message(), HasSubstr("tree_size"));
  EXPECT_EQ(*store_->CountUnfinished(), 0u);
}

// The thread: a submitted request is confirmed without anyone stepping,
// and WaitFinal returns it.
TEST_F(OutboxWorkerTest, ThreadConfirmsAndWaitFinalReturns) {
  chain_.automine = true;
  worker_->Start();
  const int64_t id = Submit(5);
  auto entry = worker_->WaitFinal(id, absl::Now() + absl::Seconds(10));
  worker_->Stop();
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->state, AnchorState::kConfirmed);
  EXPECT_EQ(entry->nonce, 4u);
}

}  // namespace
}  // namespace medvault::signer
