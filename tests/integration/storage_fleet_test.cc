// medvault-storage inside the real fleet: objects stored and read over its
// Unix socket by the operator (the test's user), blocks on disk in Kubo's
// flatfs layout owned by the storage user, a block altered on disk refused
// as DATA_LOSS, and the allowlist keeping the operator away from what only
// the gateway may do.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "daemon/common/users.h"
#include "daemon/storage/cid.h"
#include "daemon/storage/flatfs_store.h"
#include "daemon/storage/unixfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/storage.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/integration/test_status.h"
#include "tests/storage/storage_test_util.h"

namespace medvault::integration {
namespace {

namespace fs = std::filesystem;
using storage::CidOf;
using storage::RandomBytes;
using storage::StorageClient;
using ::testing::HasSubstr;
using storage_fleet = Fleet;

TEST_F(storage_fleet, StoresReadsAndVerifiesObjects) {
  StorageClient client(socket_path(Role::kStorage));
  const std::string content = RandomBytes(3 * storage::kChunkSize + 5, 11);

  internal::v1::PutResponse put;
  grpc::Status status = client.Put(content, &put);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(put.cid(), CidOf(content).ToString());
  EXPECT_EQ(put.size(), content.size());

  std::string read;
  status = client.Get(put.cid(), &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(read == content);

  grpc::ClientContext stat_context;
  internal::v1::StatRequest stat_request;
  stat_request.set_cid(put.cid());
  internal::v1::StatResponse stat;
  ASSERT_TRUE(client.stub().Stat(&stat_context, stat_request, &stat).ok());
  EXPECT_EQ(stat.object().size(), content.size());
  EXPECT_TRUE(stat.object().pinned());

  // The blocks are where Kubo's flatfs would keep them, owned by the
  // storage process's user.
  auto cid = storage::Cid::Parse(put.cid());
  MEDVAULT_ASSERT_OK(cid);
  std::string root_block = dir() + "/data/storage/" + storage::FlatfsStore::BlockPath(*cid);
  struct stat st {};
  ASSERT_EQ(::stat(root_block.c_str(), &st), 0) << root_block;
  if (geteuid() == 0) {
    absl::StatusOr<uid_t> storage_uid = LookupUid("medvault-storage");
    MEDVAULT_ASSERT_OK(storage_uid);
    EXPECT_EQ(st.st_uid, *storage_uid);
  }

  // One byte of the second chunk altered on disk: the read stops before
  // it with DATA_LOSS, and the storage log names the block.
  storage::Cid second = storage::Cid::Of(storage::Codec::kRaw,
                                         content.substr(storage::kChunkSize, storage::kChunkSize));
  {
    std::fstream f(dir() + "/data/storage/" + storage::FlatfsStore::BlockPath(second),
                   std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(7);
    f.put('\x5a');
  }
  status = client.Get(put.cid(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_EQ(read.size(), storage::kChunkSize);
  MEDVAULT_EXPECT_OK(WaitForLogLine({"block_corrupt", second.ToString()}, absl::Seconds(5)));
}

TEST_F(storage_fleet, RefusesBadCidsAndCallersOffTheAllowlist) {
  StorageClient client(socket_path(Role::kStorage));
  for (const char* bad : {"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n", "bafy", ""}) {
    std::string read;
    grpc::Status status = client.Get(bad, &read);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(status.error_message(), HasSubstr("cid: ")) << bad;
  }
  // Absent but well-formed.
  std::string read;
  grpc::Status status =
      client.Get(storage::Cid::Of(storage::Codec::kRaw, "absent").ToString(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();

  // Unpinning and removing are the gateway's alone.
  grpc::ClientContext context;
  internal::v1::RemoveRequest remove;
  remove.set_cid(storage::Cid::Of(storage::Codec::kRaw, "x").ToString());
  internal::v1::RemoveResponse removed;
  status = client.stub().Remove(&context, remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
}

TEST_F(storage_fleet, OperatorToolPutsAndGetsFiles) {
  const std::string content = RandomBytes(2 * storage::kChunkSize + 1, 12);
  std::string in = dir() + "/object.in";
  std::string out = dir() + "/object.out";
  std::ofstream(in, std::ios::binary) << content;

  CommandResult put = RunCtl({"storage", "put", in});
  ASSERT_EQ(put.exit_code, 0) << put.output;
  std::string cid = CidOf(content).ToString();
  EXPECT_THAT(put.output, HasSubstr(cid));

  CommandResult get = RunCtl({"storage", "get", cid, "-o", out});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  std::ifstream back(out, std::ios::binary);
  std::string read((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(read == content);

  CommandResult ls = RunCtl({"storage", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_THAT(ls.output, HasSubstr(absl::StrCat(cid, " ", content.size())));

  CommandResult bad = RunCtl({"storage", "get", "not-a-cid", "-o", out});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("multibase prefix"));
  EXPECT_FALSE(fs::exists(out));  // no partial file left

  CommandResult gc = RunCtl({"storage", "gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_THAT(gc.output, HasSubstr("removed 0 blocks"));
}

}  // namespace
}  // namespace medvault::integration
