#include "daemon/storage/flatfs_store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/common/files.h"
#include "tests/storage/storage_test_util.h"

namespace medvault::storage {
namespace {

namespace fs = std::filesystem;

class FlatfsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/medvault-flatfs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    dir_fd_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    dir_fd_.reset(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto store = FlatfsStore::Open(dir_fd_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  ObjectInfo Put(absl::string_view content) {
    auto writer = store_->NewWriter();
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->Write(content).ok());
    auto info = (*writer)->Finish();
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }
  std::string Get(const Cid& cid, absl::Status* error = nullptr) {
    auto reader = store_->Open(cid);
    if (!reader.ok()) {
      if (error) *error = reader.status();
      return "";
    }
    std::string out, piece;
    for (;;) {
      auto more = (*reader)->Next(&piece);
      if (!more.ok()) {
        if (error) *error = more.status();
        return out;
      }
      if (!*more) return out;
      out += piece;
    }
  }
  size_t CountBlockFiles() {
    size_t n = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir_ + "/blocks"))
      if (entry.path().extension() == ".data") ++n;
    return n;
  }

  std::string dir_;
  Fd dir_fd_;
  std::unique_ptr<FlatfsStore> store_;
};

TEST_F(FlatfsStoreTest, StoresInKubosFlatfsLayout) {
  ObjectInfo info = Put("hello");
  // Kubo keys a block by its multihash in upper-case base32; the shard is
  // the key's next-to-last two characters.
  EXPECT_EQ(FlatfsStore::BlockPath(info.cid),
            "blocks/QJ/CIQCZ4SNXJP3BIYOE3UDWKWFXHRJ4GYWDZOB7J2CLZZQIM3CSOFZQJA.data")
      << info.cid.ToString();
  EXPECT_TRUE(fs::exists(dir_ + "/" + FlatfsStore::BlockPath(info.cid)));
  std::ifstream sharding(dir_ + "/blocks/SHARDING");
  std::string line;
  std::getline(sharding, line);
  EXPECT_EQ(line, "/repo/flatfs/shard/v1/next-to-last/2");
}

TEST_F(FlatfsStoreTest, PutGetStatListAcrossReopen) {
  std::string content = RandomBytes(3 * kChunkSize + 17, 1);
  ObjectInfo info = Put(content);
  EXPECT_TRUE(info.pinned);
  EXPECT_EQ(info.size, content.size());
  Reopen();
  EXPECT_EQ(Get(info.cid), content);
  auto stat = store_->Stat(info.cid);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, content.size());
  EXPECT_TRUE(stat->pinned);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].cid, info.cid);
}

TEST_F(FlatfsStoreTest, AbandonedUploadLeavesNothing) {
  {
    auto writer = store_->NewWriter();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(RandomBytes(5 * kChunkSize, 2)).ok());
  }
  EXPECT_EQ(CountBlockFiles(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ + "/staging"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/pins"));
}

TEST_F(FlatfsStoreTest, StagingLeftByACrashIsRemovedAtOpen) {
  fs::create_directories(dir_ + "/staging/deadbeef");
  std::ofstream(dir_ + "/staging/deadbeef/X.data") << "partial";
  Reopen();
  EXPECT_TRUE(fs::is_empty(dir_ + "/staging"));
}

TEST_F(FlatfsStoreTest, AlteredBlockOnDiskIsDataLoss) {
  std::string content = RandomBytes(2 * kChunkSize, 3);
  ObjectInfo info = Put(content);
  Cid leaf = Cid::Of(Codec::kRaw, content.substr(kChunkSize));
  std::string path = dir_ + "/" + FlatfsStore::BlockPath(leaf);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x42');
  }
  absl::Status error;
  std::string read = Get(info.cid, &error);
  EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(read.size(), kChunkSize);  // the good first chunk only
}

TEST_F(FlatfsStoreTest, RemoveRefusesPinnedAndKeepsSharedBlocks) {
  std::string shared = RandomBytes(kChunkSize, 4);
  ObjectInfo a = Put(shared + RandomBytes(kChunkSize, 5));
  ObjectInfo b = Put(shared + RandomBytes(kChunkSize, 6));
  EXPECT_EQ(store_->Remove(a.cid).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Unpin(a.cid).ok());
  ASSERT_TRUE(store_->Remove(a.cid).ok());
  auto has = store_->Has(a.cid);
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  EXPECT_EQ(Get(b.cid), shared + RandomBytes(kChunkSize, 6));  // the shared chunk survived
  EXPECT_EQ(CountBlockFiles(), 3u);                            // b's root and two leaves
  EXPECT_EQ(store_->Remove(a.cid).code(), absl::StatusCode::kNotFound);
}

TEST_F(FlatfsStoreTest, GarbageCollectionRemovesOnlyUnpinned) {
  ObjectInfo keep = Put(RandomBytes(2 * kChunkSize, 7));
  ObjectInfo drop = Put(RandomBytes(2 * kChunkSize, 8));
  ASSERT_TRUE(store_->Unpin(drop.cid).ok());
  auto report = store_->CollectGarbage();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->blocks_removed, 3u);
  EXPECT_GT(report->bytes_removed, 2 * kChunkSize);
  EXPECT_EQ(Get(keep.cid), RandomBytes(2 * kChunkSize, 7));
  absl::Status error;
  Get(drop.cid, &error);
  EXPECT_EQ(error.code(), absl::StatusCode::kNotFound);
}

TEST_F(FlatfsStoreTest, PinRequiresEveryBlock) {
  std::string content = RandomBytes(2 * kChunkSize, 9);
  ObjectInfo info = Put(content);
  ASSERT_TRUE(store_->Unpin(info.cid).ok());
  fs::remove(dir_ + "/" +
             FlatfsStore::BlockPath(Cid::Of(Codec::kRaw, content.substr(0, kChunkSize))));
  absl::Status status = store_->Pin(info.cid);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("incomplete"));
}

}  // namespace
}  // namespace medvault::storage
