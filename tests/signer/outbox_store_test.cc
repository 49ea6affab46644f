// The signer's outbox on a real SQLCipher file: durable across reopening,
// encrypted under the given key, idempotent, bounded.
#include "daemon/signer/outbox_store.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kLog(32, '\x4c');
const std::string kRoot(32, '\x52');

class OutboxStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/outbox-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path() const { return dir_ + "/outbox.db"; }
  std::unique_ptr<OutboxStore> Open(char key_byte = '\x11') {
    auto store = OutboxStore::Open(path(), SecretData(std::string(32, key_byte)));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
};

// An entry written is there after the database is closed and reopened,
// with every field as written.
TEST_F(OutboxStoreTest, EntriesSurviveReopening) {
  int64_t id;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    auto enqueued = store->Enqueue(kLog, 5, kRoot, 10);
    ASSERT_TRUE(enqueued.ok()) << enqueued.status();
    EXPECT_TRUE(enqueued->created);
    id = enqueued->entry.id;
    SentTransaction tx{std::string(32, '\x01'), "raw", 7, 50'000, {2'000, 100}, absl::Now()};
    ASSERT_TRUE(store->RecordTransaction(id, tx).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto entry = store->Get(id);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->log_id, kLog);
  EXPECT_EQ(entry->tree_size, 5u);
  EXPECT_EQ(entry->root_hash, kRoot);
  EXPECT_EQ(entry->state, AnchorState::kSent);
  EXPECT_EQ(entry->nonce, 7u);
  ASSERT_EQ(entry->transactions.size(), 1u);
  EXPECT_EQ(entry->transactions[0].raw, "raw");
  EXPECT_EQ(entry->transactions[0].gas_limit, 50'000u);
  EXPECT_EQ(entry->transactions[0].fees.max_fee_per_gas, 2'000u);
  EXPECT_EQ(entry->transactions[0].fees.max_priority_fee_per_gas, 100u);
  auto next = store->NextUnfinished();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->id, id);
}

// The file is encrypted: the log id is not in it in clear, and another key
// cannot open it (and the error does not show either key).
TEST_F(OutboxStoreTest, EncryptedUnderItsKey) {
  {
    auto store = Open('\x11');
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Enqueue(kLog, 5, kRoot, 10).ok());
  }
  for (const std::string& file : {path(), path() + "-wal"}) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_THAT(bytes, Not(HasSubstr(kLog))) << file;
  }
  auto other = OutboxStore::Open(path(), SecretData(std::string(32, '\x22')));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("cannot be read with its database key"));
  EXPECT_THAT(other.status().message(), Not(HasSubstr("2222")));
  EXPECT_THAT(other.status().message(), Not(HasSubstr("1111")));
  EXPECT_EQ(OutboxStore::Open(path(), SecretData("short")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// The same request again is the same entry; another root for the same tree
// size is refused unless the first failed; a failed entry asked for again
// is queued again.
TEST_F(OutboxStoreTest, EnqueueIsIdempotent) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto first = store->Enqueue(kLog, 5, kRoot, 10);
  ASSERT_TRUE(first.ok());
  auto again = store->Enqueue(kLog, 5, kRoot, 10);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->entry.id, first->entry.id);
  auto other = store->Enqueue(kLog, 5, std::string(32, '\x53'), 10);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("with a different root_hash"));

  ASSERT_TRUE(store->MarkFailed(first->entry.id, "TreeSizeNotIncreasing").ok());
  auto retried = store->Enqueue(kLog, 5, std::string(32, '\x53'), 10);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->entry.id, first->entry.id);
  EXPECT_EQ(retried->entry.state, AnchorState::kQueued);
  EXPECT_EQ(retried->entry.root_hash, std::string(32, '\x53'));
  EXPECT_EQ(retried->entry.attempts, 1u);
  EXPECT_EQ(retried->entry.error, "");
}

// Unfinished entries are bounded by the capacity; finished ones do not count.
TEST_F(OutboxStoreTest, FullOutboxIsUnavailable) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto a = store->Enqueue(kLog, 1, kRoot, 2);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store->Enqueue(kLog, 2, kRoot, 2).ok());
  auto full = store->Enqueue(kLog, 3, kRoot, 2);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(full.status().message(), HasSubstr("outbox is full"));
  ASSERT_TRUE(store->MarkConfirmed(a->entry.id, std::string(32, '\x01'), 9, false).ok());
  EXPECT_TRUE(store->Enqueue(kLog, 3, kRoot, 2).ok());
  auto count = store->CountUnfinished();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2u);
}

// Entries are handed out oldest first; a requeued one loses its nonce,
// a forgotten transaction is gone, a confirmed one is no longer unfinished.
TEST_F(OutboxStoreTest, StateTransitions) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto a = store->Enqueue(kLog, 1, kRoot, 10);
  auto b = store->Enqueue(kLog, 2, kRoot, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  const int64_t id = a->entry.id;
  SentTransaction first{std::string(32, '\x01'), "r1", 3, 21'000, {1'000, 10}, absl::Now()};
  SentTransaction bump{std::string(32, '\x02'),       "r2", 3, 21'000, {1'125, 12},
                       absl::Now() + absl::Seconds(1)};
  ASSERT_TRUE(store->RecordTransaction(id, first).ok());
  ASSERT_TRUE(store->RecordTransaction(id, bump).ok());
  auto entry = store->Get(id);
  ASSERT_TRUE(entry.ok());
  ASSERT_EQ(entry->transactions.size(), 2u);
  EXPECT_EQ(entry->transactions.back().hash, bump.hash);
  ASSERT_TRUE(store->ForgetTransaction(bump.hash).ok());
  entry = store->Get(id);
  ASSERT_EQ(entry->transactions.size(), 1u);

  ASSERT_TRUE(store->Requeue(id, "nonce too low").ok());
  entry = store->Get(id);
  EXPECT_EQ(entry->state, AnchorState::kQueued);
  EXPECT_FALSE(entry->nonce.has_value());
  EXPECT_EQ(entry->error, "nonce too low");

  ASSERT_TRUE(store->MarkConfirmed(id, first.hash, 12, false).ok());
  auto next = store->NextUnfinished();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->id, b->entry.id);
  auto listed = store->ListByLog(kLog, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].tree_size, 2u);
  EXPECT_EQ((*listed)[1].state, AnchorState::kConfirmed);
  EXPECT_EQ((*listed)[1].transaction_hash, first.hash);
  EXPECT_EQ(store->Get(999).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace medvault::signer
