// The SQLite helpers every database uses: encrypted opening and versioned
// migrations, on real (SQLCipher) database files in a temporary directory.
#include "daemon/common/sqlite.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/medvault-sqlite-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/test.db";
  }
  void TearDown() override {
    for (const char* suffix : {"", "-wal", "-shm"}) unlink((path_ + suffix).c_str());
    rmdir(dir_.c_str());
  }

  sqlite3* Open(const SecretData& key) {
    absl::StatusOr<sqlite3*> db = SqliteOpenEncrypted(path_, key, "test db");
    EXPECT_TRUE(db.ok()) << db.status();
    return db.value_or(nullptr);
  }

  static int64_t Version(sqlite3* db) {
    SqliteStatement q(db, "test db", "PRAGMA user_version");
    EXPECT_TRUE(q.Step().value_or(false));
    return q.Int(0);
  }

  static int64_t Rows(sqlite3* db, const char* table) {
    SqliteStatement q(db, "test db", (std::string("SELECT count(*) FROM ") + table).c_str());
    if (!q.status().ok()) return -1;
    EXPECT_TRUE(q.Step().value_or(false));
    return q.Int(0);
  }

  std::string dir_;
  std::string path_;
  const SecretData key_{std::string(32, '\x11')};
};

constexpr const char* kV1 = "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);";
constexpr const char* kV2 = "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (2);";

// A new database gets every step; opening again runs none.
TEST_F(SqliteTest, MigratesStepByStepOnce) {
  sqlite3* db = Open(key_);
  ASSERT_NE(db, nullptr);
  absl::StatusOr<int64_t> before = SqliteMigrate(db, "test db", {kV1});
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0);
  EXPECT_EQ(Version(db), 1);
  // A newer program adds step 2; step 1 is not run again.
  before = SqliteMigrate(db, "test db", {kV1, kV2});
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 1);
  EXPECT_EQ(Version(db), 2);
  EXPECT_EQ(Rows(db, "a"), 1);
  EXPECT_EQ(Rows(db, "b"), 1);
  sqlite3_close(db);
}

// A failing step rolls back with its version; earlier steps stay, and the
// next start resumes at the failed step.
TEST_F(SqliteTest, FailedStepLeavesTheLastCompleteVersion) {
  sqlite3* db = Open(key_);
  ASSERT_NE(db, nullptr);
  const char* broken = "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);";
  absl::StatusOr<int64_t> migrated = SqliteMigrate(db, "test db", {kV1, broken});
  EXPECT_FALSE(migrated.ok());
  EXPECT_THAT(migrated.status().message(), HasSubstr("migrating to schema version 2"));
  EXPECT_EQ(Version(db), 1);
  EXPECT_EQ(Rows(db, "b"), -1);  // the half-done step left nothing
  ASSERT_TRUE(SqliteMigrate(db, "test db", {kV1, kV2}).ok());
  EXPECT_EQ(Version(db), 2);
  sqlite3_close(db);
}

// A database from a newer program is refused, never downgraded.
TEST_F(SqliteTest, NewerSchemaIsRefused) {
  sqlite3* db = Open(key_);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(SqliteMigrate(db, "test db", {kV1, kV2}).ok());
  absl::StatusOr<int64_t> older = SqliteMigrate(db, "test db", {kV1});
  EXPECT_EQ(older.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(older.status().message(), HasSubstr("schema version 2, newer than"));
  EXPECT_EQ(Version(db), 2);
  sqlite3_close(db);
}

// The file is encrypted under its key: another key cannot read it, and a
// key of the wrong size is refused before anything is opened.
TEST_F(SqliteTest, EncryptedUnderItsKey) {
  sqlite3* db = Open(key_);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(SqliteMigrate(db, "test db", {kV1}).ok());
  sqlite3_close(db);
  absl::StatusOr<sqlite3*> other =
      SqliteOpenEncrypted(path_, SecretData(std::string(32, '\x22')), "test db");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("cannot be read with its database key"));
  absl::StatusOr<sqlite3*> short_key =
      SqliteOpenEncrypted(path_, SecretData(std::string(16, '\x22')), "test db");
  EXPECT_THAT(short_key.status().message(), HasSubstr("must be 32 bytes"));
}

}  // namespace
}  // namespace medvault

namespace medvault {
namespace {

// A database keeps the page size it was created with: a new one gets the
// first size offered, an older one (SQLCipher's default) opens with the
// fallback; a wrong key still fails with every size.
TEST_F(SqliteTest, PageSizeFallback) {
  constexpr int kSizes[] = {4096, 1024};
  {
    absl::StatusOr<sqlite3*> old = SqliteOpenEncrypted(path_, key_, "test db");
    ASSERT_TRUE(old.ok()) << old.status();
    ASSERT_TRUE(SqliteExec(*old, "test db", kV1).ok());
    sqlite3_close(*old);
  }
  absl::StatusOr<sqlite3*> reopened = SqliteOpenEncrypted(path_, key_, "test db", kSizes);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened, "a"), 1);
  sqlite3_close(*reopened);
  EXPECT_FALSE(SqliteOpenEncrypted(path_, key_, "test db", 4096).ok());
  EXPECT_FALSE(
      SqliteOpenEncrypted(path_, SecretData(std::string(32, '\x22')), "test db", kSizes).ok());

  const std::string fresh = dir_ + "/fresh.db";
  absl::StatusOr<sqlite3*> created = SqliteOpenEncrypted(fresh, key_, "test db", kSizes);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(SqliteExec(*created, "test db", kV1).ok());
  sqlite3_close(*created);
  absl::StatusOr<sqlite3*> again = SqliteOpenEncrypted(fresh, key_, "test db", 4096);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) sqlite3_close(*again);
  unlink(fresh.c_str());
}

}  // namespace
}  // namespace medvault
