// The audit log in the registry database: appends in the caller's
// transaction build the RFC 6962 tree (checked against the tree recomputed
// from the leaves), events of a schema-1 database are caught up, a tree
// behind its events refuses appends, and the log keeps its name.
#include "daemon/gateway/audit_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/merkle.h"
#include "daemon/common/secret.h"
#include "daemon/common/sqlite.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

class AuditLogDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/medvault-audit-log.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto db = RegistryDb::Open(dir_, SecretData(std::string(32, '\x42')));
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  static v1::AuditEvent Event(int i) {
    v1::AuditEvent e;
    e.mutable_time()->set_seconds(1760000000 + i);
    e.set_action(i % 3 == 0 ? "record.read" : "record.write");
    e.set_patient_id(absl::StrCat("patient-", i % 4));
    e.set_request_id(absl::StrCat("req-", i));
    return e;
  }

  // Appends events [from, to) in one transaction; each leaf also goes to
  // `expected`, the tree as the verifier recomputes it.
  void Append(int from, int to) {
    ASSERT_TRUE(db_->Write([&](sqlite3* db) -> absl::Status {
                     AuditAppender appender(db);
                     for (int i = from; i < to; ++i) {
                       absl::StatusOr<int64_t> seq = appender.Append(Event(i));
                       if (!seq.ok()) return seq.status();
                       EXPECT_EQ(*seq, i + 1);
                       leaves_.push_back(merkle::LeafHash(CanonicalEvent(Event(i))));
                     }
                     return absl::OkStatus();
                   })
                    .ok());
  }

  merkle::Hash Expected(uint64_t size) const {
    merkle::CompactRange range;
    for (uint64_t i = 0; i < size; ++i) range.Append(leaves_[i]);
    return range.Root();
  }

  std::string dir_;
  std::unique_ptr<RegistryDb> db_;
  std::vector<merkle::Hash> leaves_;
};

TEST_F(AuditLogDbTest, AppendsBuildTheTreeAndItsProofsVerify) {
  Append(0, 1);
  Append(1, 37);
  ASSERT_TRUE(db_->Read([&](sqlite3* db) -> absl::Status {
                   EXPECT_EQ(*AuditTreeSize(db), 37u);
                   for (uint64_t size = 1; size <= 37; ++size) {
                     const merkle::Hash root = *AuditRoot(db, size);
                     EXPECT_EQ(root, Expected(size)) << size;
                     for (uint64_t i = 0; i < size; i += 5) {
                       auto proof = AuditInclusionProof(db, i, size);
                       EXPECT_TRUE(proof.ok()) << proof.status();
                       EXPECT_TRUE(merkle::VerifyInclusion(i, size, leaves_[i], *proof, root).ok());
                     }
                     auto consistency = AuditConsistencyProof(db, 1 + size / 2, 37);
                     EXPECT_TRUE(merkle::VerifyConsistency(1 + size / 2, 37, Expected(1 + size / 2),
                                                           Expected(37), *consistency)
                                     .ok());
                   }
                   EXPECT_EQ(AuditRoot(db, 38).status().code(), absl::StatusCode::kInvalidArgument);
                   auto leaves = AuditLeaves(db, 35, 10);
                   EXPECT_EQ(leaves->size(), 2u);
                   EXPECT_EQ(leaves->front().first, 35u);
                   return absl::OkStatus();
                 })
                  .ok());
}

// A change that fails rolls its event and tree nodes back with it.
TEST_F(AuditLogDbTest, RolledBackWithTheChange) {
  Append(0, 3);
  EXPECT_FALSE(db_->Write([&](sqlite3* db) -> absl::Status {
                    EXPECT_TRUE(AppendAuditEvent(db, Event(3)).ok());
                    return absl::AbortedError("the change failed");
                  })
                   .ok());
  Append(3, 5);
  ASSERT_TRUE(db_->Read([&](sqlite3* db) -> absl::Status {
                   EXPECT_EQ(*AuditRoot(db, 5), Expected(5));
                   return absl::OkStatus();
                 })
                  .ok());
}

// Events written before the tree existed (schema 1) become its leaves;
// until then appends refuse (fail closed).
TEST_F(AuditLogDbTest, CatchUpAndTreeBehind) {
  Append(0, 4);
  ASSERT_TRUE(db_->Write([&](sqlite3* db) -> absl::Status {
                   for (int i = 4; i < 9; ++i) {
                     SqliteStatement q(db, "test",
                                       "INSERT INTO audit_events (seq, time, action, patient_id, "
                                       "event) VALUES (?, 0, 'x', 'p', ?)");
                     q.Bind(1, i + 1).BindBlob(2, CanonicalEvent(Event(i)));
                     EXPECT_TRUE(q.Step().ok());
                     leaves_.push_back(merkle::LeafHash(CanonicalEvent(Event(i))));
                   }
                   return absl::OkStatus();
                 })
                  .ok());
  absl::Status behind =
      db_->Write([&](sqlite3* db) { return AppendAuditEvent(db, Event(9)).status(); });
  EXPECT_EQ(behind.code(), absl::StatusCode::kDataLoss) << behind;
  ASSERT_TRUE(db_->Write(CatchUpAuditTree).ok());
  ASSERT_TRUE(db_->Write(CatchUpAuditTree).ok());  // nothing left to do
  Append(9, 12);
  ASSERT_TRUE(db_->Read([&](sqlite3* db) -> absl::Status {
                   EXPECT_EQ(*AuditRoot(db, 12), Expected(12));
                   return absl::OkStatus();
                 })
                  .ok());
}

// Concurrent writers share transactions (group commit); a write that
// fails is rolled back alone, and the tree still matches its events.
TEST_F(AuditLogDbTest, ConcurrentWritersShareCommits) {
  constexpr int kThreads = 8;
  constexpr int kWrites = 60;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        const bool fail = i % 10 == 3;
        absl::Status s = db_->Write([&](sqlite3*) -> absl::Status {
          absl::StatusOr<int64_t> seq = db_->audit_appender().Append(Event(t * 1000 + i));
          if (!seq.ok()) return seq.status();
          if (fail) return absl::AbortedError("this change failed after its event");
          return absl::OkStatus();
        });
        if (fail) {
          EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
        } else {
          EXPECT_TRUE(s.ok()) << s;
          ++committed;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(committed.load(), kThreads * kWrites * 9 / 10);
  EXPECT_EQ(db_->writes(), static_cast<uint64_t>(kThreads * kWrites));
  EXPECT_LT(db_->transactions(), db_->writes()) << "no two writes shared a commit";
  ASSERT_TRUE(db_->Read([&](sqlite3* db) -> absl::Status {
                   const uint64_t size = *AuditTreeSize(db);
                   EXPECT_EQ(size, static_cast<uint64_t>(committed.load()));
                   auto leaves = AuditLeaves(db, 0, size);
                   merkle::CompactRange range;
                   for (const auto& [index, leaf] : *leaves) range.Append(merkle::LeafHash(leaf));
                   EXPECT_EQ(range.size(), size);
                   EXPECT_EQ(*AuditRoot(db, size), range.Root());
                   return absl::OkStatus();
                 })
                  .ok());
}

TEST_F(AuditLogDbTest, TheLogKeepsItsName) {
  Append(0, 2);
  v1::SignedTreeHead head;
  head.set_tree_size(2);
  head.set_root_hash(merkle::ToBytes(Expected(2)));
  head.set_timestamp_ms(1);
  head.set_signature("sig");
  ASSERT_TRUE(db_->Read([](sqlite3* db) { return CheckLogName(db, "first"); }).ok());
  ASSERT_TRUE(db_->Write([&](sqlite3* db) { return StoreTreeHead(db, "first", head); }).ok());
  EXPECT_TRUE(db_->Read([](sqlite3* db) { return CheckLogName(db, "first"); }).ok());
  absl::Status renamed = db_->Read([](sqlite3* db) { return CheckLogName(db, "second"); });
  EXPECT_EQ(renamed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(renamed.message().find("\"first\""), std::string::npos) << renamed;
  ASSERT_TRUE(db_->Read([&](sqlite3* db) -> absl::Status {
                   auto latest = LatestTreeHead(db);
                   EXPECT_EQ((*latest)->tree_size(), 2u);
                   return absl::OkStatus();
                 })
                  .ok());
}

}  // namespace
}  // namespace medvault::gateway
