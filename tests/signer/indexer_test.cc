// The indexer against a fake chain of blocks (hashes chained through their
// parents, logs placed in blocks) and a real SQLCipher index: progress in
// batches, confirmations, reorganisations within and beyond the remembered
// hashes, the node failing, the chain moving while a range is read, and a
// restart between batches.
#include "daemon/signer/indexer.h"

#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/contract_events.h"
#include "daemon/signer/eth_tx.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const std::string kAnchor(20, 'A');
const std::string kLicence(20, 'L');
const std::string kPolicy(20, 'P');

std::string Bytes32(char fill) { return std::string(32, fill); }

EventLog LicenceLog(char practitioner, uint64_t previous, uint64_t status) {
  EventLog log;
  log.address = kLicence;
  log.topics = {LicenceChangedTopic(), Bytes32(practitioner)};
  log.data = abi::Uint64Word(previous) + abi::Uint64Word(status) + abi::Uint64Word(2'000'000'000) +
             Bytes32('e');
  return log;
}

EventLog PolicyLog(uint64_t version) {
  EventLog log;
  log.address = kPolicy;
  log.topics = {PolicyPublishedTopic(), abi::Uint64Word(version)};
  log.data = Bytes32('b');
  return log;
}

EventLog AnchoredLog(char log_id, uint64_t tree_size) {
  EventLog log;
  log.address = kAnchor;
  log.topics = {AnchoredTopic(), Bytes32(log_id), abi::AddressWord(std::string(20, 'o'))};
  log.data = abi::Uint64Word(tree_size) + Bytes32('r');
  return log;
}

// A node's chain: block n's hash covers its parent, its number, a salt
// (another fork) and its logs; eth_getLogs filters as a node does.
class FakeChain : public ChainClient {
 public:
  FakeChain() { Mine(); }  // the genesis block

  // Appends a block holding `logs`; returns its number.
  uint64_t Mine(std::vector<EventLog> logs = {}, const std::string& salt = "") {
    Block block;
    block.header.number = blocks.size();
    block.header.parent_hash = blocks.empty() ? Bytes32('\0') : blocks.back().header.hash;
    block.header.timestamp = 1'700'000'000 + 12 * block.header.number;
    std::string content = absl::StrCat(block.header.parent_hash, block.header.number, salt);
    for (const EventLog& log : logs) absl::StrAppend(&content, log.address, log.data);
    for (const EventLog& log : logs) {
      for (const std::string& topic : log.topics) content += topic;
    }
    block.header.hash = Keccak256(content);
    for (size_t i = 0; i < logs.size(); ++i) {
      logs[i].block_number = block.header.number;
      logs[i].block_hash = block.header.hash;
      logs[i].transaction_hash = Keccak256(absl::StrCat(block.header.hash, i));
      logs[i].log_index = static_cast<uint32_t>(i);
    }
    block.logs = std::move(logs);
    blocks.push_back(std::move(block));
    return blocks.size() - 1;
  }
  void MineEmpty(int count, const std::string& salt = "") {
    for (int i = 0; i < count; ++i) Mine({}, salt);
  }
  // The chain keeps blocks up to `number`; later ones are gone (a fork
  // replaces them with whatever is mined next).
  void KeepUpTo(uint64_t number) { blocks.resize(number + 1); }
  const BlockHeader& header(uint64_t number) const { return blocks.at(number).header; }

  absl::StatusOr<uint64_t> ChainId() override { return Up(31337); }
  absl::StatusOr<uint64_t> BlockNumber() override { return Up(blocks.size() - 1); }
  absl::StatusOr<std::vector<EventLog>> GetLogs(const LogFilter& filter) override {
    if (!up) return absl::UnavailableError("node down");
    if (!get_logs_errors.empty()) {
      absl::Status error = get_logs_errors.front();
      get_logs_errors.pop_front();
      return error;
    }
    ranges.emplace_back(filter.from_block, filter.to_block);
    EXPECT_EQ(filter.addresses.size(), 3u);
    EXPECT_EQ(filter.topic0.size(), 3u);
    std::vector<EventLog> logs;
    for (uint64_t n = filter.from_block; n <= filter.to_block && n < blocks.size(); ++n) {
      for (const EventLog& log : blocks[n].logs) {
        const bool address = absl::c_linear_search(filter.addresses, log.address);
        const bool topic = absl::c_linear_search(filter.topic0, log.topics.at(0));
        if (address && topic) logs.push_back(log);
      }
    }
    if (after_get_logs) std::exchange(after_get_logs, nullptr)();
    return logs;
  }
  absl::StatusOr<std::optional<BlockHeader>> GetBlockHeader(uint64_t number) override {
    if (!up) return absl::UnavailableError("node down");
    if (number >= blocks.size()) return std::optional<BlockHeader>();
    return std::optional<BlockHeader>(blocks[number].header);
  }

  // Not used by the indexer.
  absl::StatusOr<uint64_t> PendingNonce(absl::string_view) override { return Unused(); }
  absl::StatusOr<uint64_t> MinedNonce(absl::string_view) override { return Unused(); }
  absl::StatusOr<uint64_t> MaxPriorityFeePerGas() override { return Unused(); }
  absl::StatusOr<uint64_t> NextBaseFee() override { return Unused(); }
  absl::StatusOr<uint64_t> EstimateGas(const CallRequest&) override { return Unused(); }
  absl::StatusOr<CallOutcome> EthCall(const CallRequest&, absl::string_view) override {
    return Unused();
  }
  absl::StatusOr<std::string> SendRawTransaction(absl::string_view) override { return Unused(); }
  absl::StatusOr<std::optional<TransactionReceipt>> GetTransactionReceipt(
      absl::string_view) override {
    return Unused();
  }

  struct Block {
    BlockHeader header;
    std::vector<EventLog> logs;
  };
  std::vector<Block> blocks;
  bool up = true;
  std::deque<absl::Status> get_logs_errors;           // returned first, in order
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // of each eth_getLogs answered
  std::function<void()> after_get_logs;               // runs once, after the next answer

 private:
  absl::StatusOr<uint64_t> Up(uint64_t value) {
    if (!up) return absl::UnavailableError("node down");
    return value;
  }
  static absl::Status Unused() { return absl::UnimplementedError("not used by the indexer"); }
};

// (practitioner's first byte, status, block number) of a LicenceChanged event.
using Licence = std::tuple<char, int, uint64_t>;
Licence L(char practitioner, int status, uint64_t block) { return {practitioner, status, block}; }

class IndexerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/indexer-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    indexer_.reset();
    index_.reset();
    std::filesystem::remove_all(dir_);
  }

  IndexerOptions Options() {
    IndexerOptions options;
    options.audit_anchor = kAnchor;
    options.licence_registry = kLicence;
    options.policy_registry = kPolicy;
    options.expected_chain_id = 31337;
    options.confirmations = 1;
    options.batch_blocks = 10;
    options.reorg_depth = 4;
    options.clock = [this] { return now_; };
    return options;
  }

  // Opens the index under the test's directory and an indexer on the fake chain.
  void Open(IndexerOptions options) {
    indexer_.reset();
    index_.reset();
    absl::StatusOr<std::unique_ptr<EventIndex>> index = EventIndex::Open(
        dir_ + "/index.db", SecretData(std::string(32, '\x11')), Indexer::ScopeOf(options));
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = *std::move(index);
    absl::StatusOr<std::unique_ptr<Indexer>> indexer =
        Indexer::Create(index_.get(), &chain_, std::move(options));
    ASSERT_TRUE(indexer.ok()) << indexer.status();
    indexer_ = *std::move(indexer);
  }

  // (practitioner byte, status, block) of every indexed LicenceChanged event after `after_id`.
  std::vector<Licence> Licences(int64_t after_id = 0) {
    auto events = index_->LicenceEventsAfter(after_id, 1000);
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<Licence> out;
    if (!events.ok()) return out;
    for (const auto& [id, e] : *events) {
      out.emplace_back(e.practitioner[0], e.status, e.position.block_number);
    }
    return out;
  }

  FakeChain chain_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  std::string dir_;
  std::unique_ptr<EventIndex> index_;
  std::unique_ptr<Indexer> indexer_;
};

// Blocks are read from the start in ranges of batch_blocks up to the head,
// each event with its block's position and timestamp; a poll with nothing
// new reads no logs.
TEST_F(IndexerTest, ReadsInBatchesUpToTheHead) {
  chain_.MineEmpty(2);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 3
  chain_.MineEmpty(8);
  chain_.Mine({PolicyLog(1)});  // 12
  chain_.MineEmpty(7);
  chain_.Mine({AnchoredLog('l', 5), LicenceLog('b', 0, 1)});  // 20
  chain_.MineEmpty(4);
  chain_.Mine({LicenceLog('a', 1, 2)});  // 25
  ASSERT_NO_FATAL_FAILURE(Open(Options()));

  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_THAT(chain_.ranges, ElementsAre(Pair(0u, 9u), Pair(10u, 19u), Pair(20u, 25u)));
  IndexerStatus status = indexer_->status();
  EXPECT_EQ(status.indexed_block, 25u);
  EXPECT_EQ(status.head_block, 25u);
  EXPECT_EQ(status.synced_at, now_);
  EXPECT_EQ(status.error, "");
  EXPECT_EQ(status.reorgs, 0u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 3), L('b', 1, 20), L('a', 2, 25)));

  auto latest = index_->LatestLicence(Bytes32('a'));
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->previous_status, 1);
  EXPECT_EQ((*latest)->status, 2);
  EXPECT_EQ((*latest)->valid_until, 2'000'000'000u);
  EXPECT_EQ((*latest)->evidence_hash, Bytes32('e'));
  EXPECT_EQ((*latest)->position.block_hash, chain_.header(25).hash);
  EXPECT_EQ((*latest)->position.block_timestamp, chain_.header(25).timestamp);
  EXPECT_EQ((*latest)->position.transaction_hash, chain_.blocks[25].logs[0].transaction_hash);

  auto policies = index_->PolicyPublications(10);
  ASSERT_TRUE(policies.ok());
  ASSERT_EQ(policies->size(), 1u);
  EXPECT_EQ((*policies)[0].version, 1u);
  EXPECT_EQ((*policies)[0].position.block_number, 12u);
  auto anchors = index_->AnchorEvents(Bytes32('l'), 10);
  ASSERT_TRUE(anchors.ok());
  ASSERT_EQ(anchors->size(), 1u);
  EXPECT_EQ((*anchors)[0].tree_size, 5u);
  EXPECT_EQ((*anchors)[0].operator_address, std::string(20, 'o'));
  EXPECT_EQ((*anchors)[0].position.log_index, 0u);

  now_ += absl::Seconds(2);
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(chain_.ranges.size(), 3u);
  EXPECT_EQ(indexer_->status().synced_at, now_);
}

// A block is indexed only once it is `confirmations` deep.
TEST_F(IndexerTest, WaitsForConfirmations) {
  chain_.MineEmpty(8);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 9
  chain_.MineEmpty(1);                   // head 10
  IndexerOptions options = Options();
  options.confirmations = 3;
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));

  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(indexer_->status().indexed_block, 8u);
  EXPECT_EQ(indexer_->status().head_block, 10u);
  EXPECT_THAT(Licences(), ElementsAre());

  chain_.MineEmpty(1);
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(indexer_->status().indexed_block, 9u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 9)));
}

// Two indexed blocks are replaced by a fork: their events disappear, the
// fork's appear, and a ListLicenceEvents cursor from before continues with
// the replacements.
TEST_F(IndexerTest, FollowsAReorgWithinTheRememberedBlocks) {
  chain_.MineEmpty(8);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 9
  chain_.Mine({LicenceLog('b', 0, 1)});  // 10
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  ASSERT_TRUE(indexer_->PollOnce().ok());
  auto before = index_->LicenceEventsAfter(0, 10);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 2u);
  const int64_t cursor = before->back().first;

  chain_.KeepUpTo(8);
  chain_.Mine({LicenceLog('a', 0, 3)}, "fork");  // 9'
  chain_.Mine({}, "fork");                       // 10'
  chain_.Mine({LicenceLog('c', 0, 1)}, "fork");  // 11'
  ASSERT_TRUE(indexer_->PollOnce().ok());

  EXPECT_EQ(indexer_->status().reorgs, 1u);
  EXPECT_EQ(indexer_->status().indexed_block, 11u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 3, 9), L('c', 1, 11)));
  EXPECT_THAT(Licences(cursor), ElementsAre(L('a', 3, 9), L('c', 1, 11)));
  auto b = index_->LatestLicence(Bytes32('b'));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->has_value());
  auto a = index_->LatestLicence(Bytes32('a'));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->position.block_hash, chain_.header(9).hash);
  // The remembered hashes are the new chain's.
  auto hashes = index_->BlockHashes();
  ASSERT_TRUE(hashes.ok());
  EXPECT_EQ(hashes->front(), std::pair(uint64_t{11}, chain_.header(11).hash));
}

// The chain falls back below the cursor (anvil's evm_revert): the index
// goes back to the fork point at once, then follows the new blocks.
TEST_F(IndexerTest, FollowsAChainThatGotShorter) {
  chain_.MineEmpty(8);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 9
  chain_.Mine({LicenceLog('b', 0, 1)});  // 10
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  ASSERT_TRUE(indexer_->PollOnce().ok());

  chain_.KeepUpTo(8);
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(indexer_->status().indexed_block, 8u);
  EXPECT_EQ(indexer_->status().reorgs, 1u);
  EXPECT_THAT(Licences(), ElementsAre());

  chain_.Mine({LicenceLog('a', 0, 4)}, "fork");
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(indexer_->status().indexed_block, 9u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 4, 9)));
}

// A fork below every remembered hash: the index is dropped and read again
// from the start, ending consistent with the new chain.
TEST_F(IndexerTest, DeepReorgReadsEverythingAgain) {
  chain_.MineEmpty(4);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 5
  chain_.MineEmpty(12);
  chain_.Mine({LicenceLog('b', 0, 1)});  // 18
  chain_.MineEmpty(2);                   // head 20
  IndexerOptions options = Options();
  options.reorg_depth = 2;  // hashes of 3 blocks (18 to 20)
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));
  ASSERT_TRUE(indexer_->PollOnce().ok());
  auto hashes = index_->BlockHashes();
  ASSERT_TRUE(hashes.ok());
  EXPECT_EQ(hashes->size(), 3u);
  EXPECT_EQ(hashes->back().first, 18u);

  chain_.KeepUpTo(10);
  chain_.MineEmpty(4, "fork");
  chain_.Mine({LicenceLog('c', 0, 1)}, "fork");  // 15'
  chain_.MineEmpty(6, "fork");                   // head 21'
  chain_.ranges.clear();
  ASSERT_TRUE(indexer_->PollOnce().ok());

  EXPECT_EQ(indexer_->status().reorgs, 1u);
  EXPECT_EQ(indexer_->status().indexed_block, 21u);
  EXPECT_EQ(chain_.ranges.front(), std::pair(uint64_t{0}, uint64_t{9}));
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 5), L('c', 1, 15)));
}

// The node down: the poll fails, the status says why, nothing moves; once
// it is back the next poll catches up and the error is cleared.
TEST_F(IndexerTest, NodeErrorIsRecordedThenRecovered) {
  chain_.MineEmpty(4);
  chain_.Mine({PolicyLog(1)});  // 5
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  chain_.up = false;
  absl::Status polled = indexer_->PollOnce();
  EXPECT_EQ(polled.code(), absl::StatusCode::kUnavailable);
  IndexerStatus status = indexer_->status();
  EXPECT_THAT(status.error, HasSubstr("node down"));
  EXPECT_EQ(status.indexed_block, 0u);
  EXPECT_FALSE(status.synced_at.has_value());

  chain_.up = true;
  ASSERT_TRUE(indexer_->PollOnce().ok());
  status = indexer_->status();
  EXPECT_EQ(status.error, "");
  EXPECT_EQ(status.indexed_block, 5u);
  EXPECT_EQ(status.synced_at, now_);
}

// eth_getLogs refused (a node's cap on the answer): the next attempt reads
// half the range, and the range grows back afterwards.
TEST_F(IndexerTest, RefusedGetLogsHalvesTheRange) {
  chain_.MineEmpty(30);
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  chain_.get_logs_errors.push_back(
      absl::FailedPreconditionError("eth_getLogs: query returned more than 10000 results"));
  EXPECT_EQ(indexer_->PollOnce().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(indexer_->status().error, HasSubstr("more than 10000 results"));
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_THAT(chain_.ranges,
              ElementsAre(Pair(0u, 4u), Pair(5u, 14u), Pair(15u, 24u), Pair(25u, 30u)));
}

// A restart between two batches (the second never read): the reopened
// index has exactly the first batch and its cursor, and resumes there
// without duplicating anything.
TEST_F(IndexerTest, ResumesAfterARestartBetweenBatches) {
  chain_.MineEmpty(2);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 3
  chain_.MineEmpty(11);
  chain_.Mine({LicenceLog('b', 0, 1)});  // 15
  chain_.MineEmpty(6);
  chain_.Mine({LicenceLog('c', 0, 1)});  // 22
  chain_.MineEmpty(3);                   // head 25
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  // The second range fails after the first was committed.
  chain_.after_get_logs = [this] {
    chain_.get_logs_errors.push_back(absl::UnavailableError("node down"));
  };
  EXPECT_EQ(indexer_->PollOnce().code(), absl::StatusCode::kUnavailable);

  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  auto cursor = index_->Cursor();
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(cursor->next_block, 10u);
  EXPECT_EQ(indexer_->status().indexed_block, 9u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 3)));

  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_EQ(indexer_->status().indexed_block, 25u);
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 3), L('b', 1, 15), L('c', 1, 22)));
}

// The chain reorganised between eth_getLogs and the header reads: nothing
// of the range is committed, and the next poll reads the new chain.
TEST_F(IndexerTest, ChainMovingWhileARangeIsReadIsReadAgain) {
  chain_.MineEmpty(9);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 10
  IndexerOptions options = Options();
  options.batch_blocks = 20;
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));
  chain_.after_get_logs = [this] {
    chain_.KeepUpTo(8);
    chain_.Mine({}, "fork");
    chain_.Mine({LicenceLog('a', 0, 2)}, "fork");
  };
  absl::Status polled = indexer_->PollOnce();
  EXPECT_EQ(polled.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(polled.message(), HasSubstr("the chain changed"));
  EXPECT_EQ(indexer_->status().indexed_block, 0u);
  EXPECT_THAT(Licences(), ElementsAre());

  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_THAT(Licences(), ElementsAre(L('a', 2, 10)));
  EXPECT_EQ(indexer_->status().reorgs, 0u);  // nothing indexed had changed
}

// A log that is not the contract's event holds the index before its block
// (never skipped), with the reason in the status.
TEST_F(IndexerTest, UndecodableEventHoldsTheIndex) {
  chain_.MineEmpty(2);
  chain_.Mine({LicenceLog('a', 0, 1)});  // 3
  chain_.MineEmpty(3);
  chain_.Mine({LicenceLog('b', 0, 9)});  // 7: status 9 is no Status
  IndexerOptions options = Options();
  options.batch_blocks = 5;
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));
  absl::Status polled = indexer_->PollOnce();
  EXPECT_EQ(polled.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(polled.message(), HasSubstr("block 7 log 0: LicenceChanged.status: 9 is not"));
  EXPECT_EQ(indexer_->status().indexed_block, 4u);
  EXPECT_THAT(indexer_->status().error, HasSubstr("LicenceChanged.status"));
  EXPECT_THAT(Licences(), ElementsAre(L('a', 1, 3)));
}

// Logs marked removed are not indexed.
TEST_F(IndexerTest, RemovedLogsAreIgnored) {
  EventLog removed = LicenceLog('a', 0, 1);
  removed.removed = true;
  chain_.Mine({removed, LicenceLog('b', 0, 1)});
  ASSERT_NO_FATAL_FAILURE(Open(Options()));
  ASSERT_TRUE(indexer_->PollOnce().ok());
  EXPECT_THAT(Licences(), ElementsAre(L('b', 1, 1)));
}

// A node of another chain is refused before anything is read.
TEST_F(IndexerTest, OtherChainIsRefused) {
  chain_.MineEmpty(3);
  IndexerOptions options = Options();
  options.expected_chain_id = 1;
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));
  absl::Status polled = indexer_->PollOnce();
  EXPECT_EQ(polled.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(polled.message(), HasSubstr("chain id 31337"));
  EXPECT_TRUE(chain_.ranges.empty());
}

// Options that cannot work are refused at creation.
TEST_F(IndexerTest, BadOptionsAreRefused) {
  auto index = EventIndex::Open(dir_ + "/index.db", SecretData(std::string(32, '\x11')), {});
  ASSERT_TRUE(index.ok()) << index.status();
  IndexerOptions none;
  EXPECT_EQ(Indexer::Create(index->get(), &chain_, none).status().code(),
            absl::StatusCode::kInvalidArgument);
  IndexerOptions bad = Options();
  bad.licence_registry = "short";
  EXPECT_THAT(Indexer::Create(index->get(), &chain_, bad).status().message(),
              HasSubstr("licence_registry must be 20 bytes"));
  bad = Options();
  bad.batch_blocks = 0;
  EXPECT_FALSE(Indexer::Create(index->get(), &chain_, bad).ok());
}

// The thread polls on its own and stops promptly.
TEST_F(IndexerTest, ThreadPollsUntilStopped) {
  chain_.MineEmpty(3);
  chain_.Mine({PolicyLog(2)});
  IndexerOptions options = Options();
  options.poll_interval = absl::Milliseconds(10);
  options.clock = [] { return absl::Now(); };
  ASSERT_NO_FATAL_FAILURE(Open(std::move(options)));
  indexer_->Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (indexer_->status().indexed_block < 4 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  indexer_->Stop();
  EXPECT_EQ(indexer_->status().indexed_block, 4u);
}

}  // namespace
}  // namespace medvault::signer
