// The event index on a real SQLCipher file: a batch is all or nothing,
// the cursor only moves from where it is, an index of other contracts
// starts again, the key is required, and the queries' orders.
#include "daemon/signer/event_index.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Bytes32(char fill) { return std::string(32, fill); }

EventPosition At(uint64_t block, uint32_t log_index) {
  EventPosition p;
  p.block_number = block;
  p.block_hash = Bytes32(static_cast<char>(block));
  p.transaction_hash = Bytes32('t');
  p.log_index = log_index;
  p.block_timestamp = 1'700'000'000 + block;
  return p;
}

LicenceChangedEvent Licence(char practitioner, uint8_t status, EventPosition position) {
  LicenceChangedEvent e;
  e.practitioner = Bytes32(practitioner);
  e.status = status;
  e.valid_until = UINT64_MAX;  // "no end": above INT64_MAX on disk
  e.evidence_hash = Bytes32('e');
  e.position = std::move(position);
  return e;
}

// A batch of blocks from..to with the last block's hash.
IndexBatch Batch(uint64_t from, uint64_t to) {
  IndexBatch batch;
  batch.from_block = from;
  batch.to_block = to;
  batch.block_hashes = {{to, Bytes32(static_cast<char>(to))}};
  return batch;
}

class EventIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/event-index-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<std::unique_ptr<EventIndex>> Open(EventIndexScope scope = {"c1", 5},
                                                   char key_byte = '\x11') {
    return EventIndex::Open(dir_ + "/index.db", SecretData(std::string(32, key_byte)), scope);
  }

  std::string dir_;
};

// A new index starts at from_block; batches move the cursor and survive
// reopening, with uint64 values above 2^63 intact.
TEST_F(EventIndexTest, BatchesMoveTheCursorAndSurviveReopening) {
  {
    auto index = Open();
    ASSERT_TRUE(index.ok()) << index.status();
    auto cursor = (*index)->Cursor();
    ASSERT_TRUE(cursor.ok());
    EXPECT_EQ(cursor->from_block, 5u);
    EXPECT_EQ(cursor->next_block, 5u);
    IndexBatch batch = Batch(5, 9);
    batch.licences = {Licence('a', 1, At(6, 0)), Licence('b', 1, At(6, 1))};
    ASSERT_TRUE((*index)->Commit(batch).ok());
  }
  auto index = Open({"c1", 0});  // a from_block given later is not used
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_FALSE((*index)->dropped_other_scope());
  auto cursor = (*index)->Cursor();
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(cursor->from_block, 5u);
  EXPECT_EQ(cursor->next_block, 10u);
  auto events = (*index)->LicenceEventsAfter(0, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].second.valid_until, UINT64_MAX);
  EXPECT_EQ((*events)[0].second.position.block_timestamp, 1'700'000'006u);
  EXPECT_EQ((*events)[1].second.practitioner, Bytes32('b'));
  // After the first id only the second.
  auto rest = (*index)->LicenceEventsAfter((*events)[0].first, 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].first, (*events)[1].first);
}

// A batch that fails half way (a duplicate position) leaves nothing behind:
// no event, no hash, the cursor where it was.
TEST_F(EventIndexTest, BatchIsAllOrNothing) {
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status();
  IndexBatch batch = Batch(5, 9);
  batch.licences = {Licence('a', 1, At(6, 0)), Licence('b', 1, At(6, 0))};
  EXPECT_FALSE((*index)->Commit(batch).ok());
  EXPECT_EQ((*index)->Cursor()->next_block, 5u);
  EXPECT_TRUE((*index)->LicenceEventsAfter(0, 10)->empty());
  EXPECT_TRUE((*index)->BlockHashes()->empty());
}

// Batches must start at the cursor and carry their last block's hash; a
// rewind must stay within what is indexed.
TEST_F(EventIndexTest, CursorOnlyMovesFromWhereItIs) {
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ((*index)->Commit(Batch(6, 9)).code(), absl::StatusCode::kFailedPrecondition);
  IndexBatch no_hash = Batch(5, 9);
  no_hash.block_hashes.clear();
  EXPECT_EQ((*index)->Commit(no_hash).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*index)->Commit(Batch(5, 9)).ok());
  EXPECT_EQ((*index)->Rewind(9).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*index)->Rewind(4).code(), absl::StatusCode::kFailedPrecondition);
}

// Rewind drops what is after the fork and counts a reorganisation; Reset
// drops everything and goes back to from_block. Hashes are forgotten below
// the batch's bound, never the last block's.
TEST_F(EventIndexTest, RewindAndReset) {
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status();
  IndexBatch first = Batch(5, 9);
  first.block_hashes = {{8, Bytes32(8)}, {9, Bytes32(9)}};
  first.licences = {Licence('a', 1, At(7, 0))};
  ASSERT_TRUE((*index)->Commit(first).ok());
  IndexBatch second = Batch(10, 12);
  second.block_hashes = {{11, Bytes32(11)}, {12, Bytes32(12)}};
  second.licences = {Licence('b', 1, At(11, 0))};
  second.forget_hashes_below = 9;
  ASSERT_TRUE((*index)->Commit(second).ok());
  auto hashes = (*index)->BlockHashes();
  ASSERT_TRUE(hashes.ok());
  ASSERT_EQ(hashes->size(), 3u);
  EXPECT_EQ(hashes->front().first, 12u);
  EXPECT_EQ(hashes->back().first, 9u);

  ASSERT_TRUE((*index)->Rewind(9).ok());
  EXPECT_EQ((*index)->Cursor()->next_block, 10u);
  EXPECT_EQ((*index)->Cursor()->reorgs, 1u);
  EXPECT_EQ((*index)->LicenceEventsAfter(0, 10)->size(), 1u);
  EXPECT_EQ((*index)->BlockHashes()->size(), 1u);

  ASSERT_TRUE((*index)->Reset().ok());
  EXPECT_EQ((*index)->Cursor()->next_block, 5u);
  EXPECT_EQ((*index)->Cursor()->reorgs, 2u);
  EXPECT_TRUE((*index)->LicenceEventsAfter(0, 10)->empty());
  EXPECT_TRUE((*index)->BlockHashes()->empty());
}

// An index of other contracts is emptied and starts at the new from_block.
TEST_F(EventIndexTest, OtherContractsStartAgain) {
  {
    auto index = Open({"c1", 5});
    ASSERT_TRUE(index.ok()) << index.status();
    IndexBatch batch = Batch(5, 9);
    batch.licences = {Licence('a', 1, At(6, 0))};
    ASSERT_TRUE((*index)->Commit(batch).ok());
  }
  auto index = Open({"c2", 7});
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_TRUE((*index)->dropped_other_scope());
  EXPECT_EQ((*index)->Cursor()->from_block, 7u);
  EXPECT_EQ((*index)->Cursor()->next_block, 7u);
  EXPECT_TRUE((*index)->LicenceEventsAfter(0, 10)->empty());
}

// Without the key the file does not open, and the error has no key in it.
TEST_F(EventIndexTest, EncryptedUnderItsKey) {
  ASSERT_TRUE(Open().ok());
  auto other = Open({"c1", 5}, '\x22');
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("cannot be read with its database key"));
  EXPECT_THAT(other.status().message(),
              Not(HasSubstr(absl::BytesToHexString(std::string(32, '\x22')))));
}

// The latest licence of a key, policies newest first, anchors of one log
// newest first, each bounded by the limit.
TEST_F(EventIndexTest, QueriesAndTheirOrder) {
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status();
  IndexBatch batch = Batch(5, 20);
  batch.licences = {Licence('a', 1, At(6, 0)), Licence('a', 2, At(8, 3)),
                    Licence('b', 3, At(8, 4))};
  for (uint64_t v : {1, 2, 3}) {
    PolicyPublishedEvent p;
    p.version = v;
    p.bundle_hash = Bytes32('h');
    p.position = At(10 + v, 0);
    batch.policies.push_back(p);
  }
  for (uint64_t size : {4, 9}) {
    AnchoredEvent a;
    a.log_id = Bytes32('l');
    a.tree_size = size;
    a.root_hash = Bytes32('r');
    a.operator_address = std::string(20, 'o');
    a.position = At(14 + size, 1);
    batch.anchors.push_back(a);
  }
  ASSERT_TRUE((*index)->Commit(batch).ok());

  auto a = (*index)->LatestLicence(Bytes32('a'));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->status, 2);
  EXPECT_EQ((*a)->position.log_index, 3u);
  EXPECT_FALSE((*index)->LatestLicence(Bytes32('z'))->has_value());

  auto policies = (*index)->PolicyPublications(2);
  ASSERT_TRUE(policies.ok());
  ASSERT_EQ(policies->size(), 2u);
  EXPECT_EQ((*policies)[0].version, 3u);
  EXPECT_EQ((*policies)[1].version, 2u);

  auto anchors = (*index)->AnchorEvents(Bytes32('l'), 10);
  ASSERT_TRUE(anchors.ok());
  ASSERT_EQ(anchors->size(), 2u);
  EXPECT_EQ((*anchors)[0].tree_size, 9u);
  EXPECT_EQ((*anchors)[0].operator_address, std::string(20, 'o'));
  EXPECT_TRUE((*index)->AnchorEvents(Bytes32('m'), 10)->empty());
}

}  // namespace
}  // namespace medvault::signer
