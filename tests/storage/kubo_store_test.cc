// KuboStore against a real, independent implementation of the Kubo RPC API:
// the pinned js-ipfs daemon (tests/ipfs) on loopback.
#include "daemon/storage/kubo_store.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/storage/unixfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/process_util.h"
#include "tests/storage/fake_kubo.h"
#include "tests/storage/ipfs_daemon.h"
#include "tests/storage/storage_test_util.h"

namespace medvault::storage {
namespace {

using integration::IpfsDaemon;
using ::testing::HasSubstr;

constexpr size_t kPiece = 64 << 10;

KuboStoreOptions Options(const std::string& url) {
  KuboStoreOptions options;
  options.api_url = url;
  options.request_timeout = absl::Seconds(20);
  options.connect_timeout = absl::Seconds(2);
  // js-ipfs ignores offline=true and looks for an absent block until this.
  options.absent_block_timeout = absl::Seconds(1);
  options.max_retries = 2;
  options.initial_backoff = absl::Milliseconds(50);
  return options;
}

absl::StatusOr<ObjectInfo> Put(ObjectStore& store, absl::string_view content) {
  absl::StatusOr<std::unique_ptr<ObjectWriter>> writer = store.NewWriter();
  if (!writer.ok()) return writer.status();
  for (size_t at = 0; at < content.size(); at += kPiece) {
    if (absl::Status s = (*writer)->Write(content.substr(at, kPiece)); !s.ok()) return s;
  }
  return (*writer)->Finish();
}

absl::StatusOr<std::string> ReadAll(ObjectStore& store, const Cid& cid) {
  absl::StatusOr<std::unique_ptr<ObjectReader>> reader = store.Open(cid);
  if (!reader.ok()) return reader.status();
  std::string out;
  std::string piece;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&piece);
    if (!more.ok()) return more.status();
    if (!*more) return out;
    out += piece;
  }
}

bool Listed(ObjectStore& store, const Cid& cid) {
  absl::StatusOr<std::vector<ObjectInfo>> list = store.List();
  EXPECT_TRUE(list.ok()) << list.status();
  if (!list.ok()) return false;
  return std::any_of(list->begin(), list->end(), [&](const ObjectInfo& i) { return i.cid == cid; });
}

// One node per test process (ctest runs each TEST in its own process; run
// by hand, the binary shares one node among all tests).
class KuboStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { node_ = new auto(IpfsDaemon::Start()); }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(node_->ok()) << node_->status();
    absl::StatusOr<std::unique_ptr<KuboStore>> store =
        KuboStore::Create(Options((**node_)->api_url()));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static absl::StatusOr<std::unique_ptr<IpfsDaemon>>* node_;
  std::unique_ptr<KuboStore> store_;
};
absl::StatusOr<std::unique_ptr<IpfsDaemon>>* KuboStoreTest::node_ = nullptr;

// What is put comes back byte for byte, under the CID medvault computes,
// pinned, with its size.
TEST_F(KuboStoreTest, PutThenGetReturnsTheBytesUnderTheLocalCid) {
  for (size_t size : {size_t{0}, size_t{1}, kChunkSize, size_t{3 * kChunkSize + 7}}) {
    SCOPED_TRACE(size);
    const std::string content = RandomBytes(size, size + 1);
    absl::StatusOr<ObjectInfo> info = Put(*store_, content);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->cid, CidOf(content));
    EXPECT_EQ(info->size, size);
    EXPECT_TRUE(info->pinned);
    absl::StatusOr<std::string> back = ReadAll(*store_, info->cid);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(*back == content) << "read back " << back->size() << " bytes";
  }
}

// Has and Stat see a stored object; an absent one is false / NOT_FOUND.
TEST_F(KuboStoreTest, HasAndStat) {
  const std::string content = RandomBytes(kChunkSize + 100, 7);
  absl::StatusOr<ObjectInfo> info = Put(*store_, content);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(store_->Has(info->cid).value_or(false), true);
  absl::StatusOr<ObjectInfo> stat = store_->Stat(info->cid);
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, content.size());
  EXPECT_TRUE(stat->pinned);

  const Cid absent = Cid::Of(Codec::kRaw, "never stored in this node");
  absl::StatusOr<bool> has = store_->Has(absent);
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_FALSE(*has);
  EXPECT_TRUE(absl::IsNotFound(store_->Stat(absent).status())) << store_->Stat(absent).status();
  EXPECT_TRUE(absl::IsNotFound(store_->Open(absent).status()));
}

// Unpin and Pin show in Stat and List; doing either twice is no error.
TEST_F(KuboStoreTest, PinUnpinAndList) {
  absl::StatusOr<ObjectInfo> info = Put(*store_, RandomBytes(2 * kChunkSize, 11));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(Listed(*store_, info->cid));

  ASSERT_TRUE(store_->Unpin(info->cid).ok());
  EXPECT_TRUE(store_->Unpin(info->cid).ok()) << "unpinning an unpinned object";
  EXPECT_FALSE(store_->Stat(info->cid).value().pinned);
  EXPECT_FALSE(Listed(*store_, info->cid));

  ASSERT_TRUE(store_->Pin(info->cid).ok());
  EXPECT_TRUE(store_->Pin(info->cid).ok()) << "pinning twice";
  EXPECT_TRUE(store_->Stat(info->cid).value().pinned);
  EXPECT_TRUE(Listed(*store_, info->cid));

  absl::Status absent = store_->Pin(Cid::Of(Codec::kRaw, "absent object to pin"));
  EXPECT_TRUE(absl::IsNotFound(absent)) << absent;
}

// Remove refuses a pinned object, deletes an unpinned one, and then says
// NOT_FOUND.
TEST_F(KuboStoreTest, RemoveOnlyUnpinned) {
  absl::StatusOr<ObjectInfo> info = Put(*store_, RandomBytes(3 * kChunkSize, 13));
  ASSERT_TRUE(info.ok()) << info.status();
  absl::Status pinned = store_->Remove(info->cid);
  EXPECT_TRUE(absl::IsFailedPrecondition(pinned)) << pinned;

  ASSERT_TRUE(store_->Unpin(info->cid).ok());
  absl::Status removed = store_->Remove(info->cid);
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_EQ(store_->Has(info->cid).value_or(true), false);
  EXPECT_TRUE(absl::IsNotFound(store_->Remove(info->cid)));
}

// Removing an unpinned object keeps the blocks a pinned object shares.
TEST_F(KuboStoreTest, RemoveKeepsBlocksOfPinnedObjects) {
  const std::string shared = RandomBytes(kChunkSize, 17);
  absl::StatusOr<ObjectInfo> kept = Put(*store_, shared + RandomBytes(10, 18));
  absl::StatusOr<ObjectInfo> gone = Put(*store_, shared + RandomBytes(20, 19));
  ASSERT_TRUE(kept.ok() && gone.ok());
  ASSERT_TRUE(store_->Unpin(gone->cid).ok());
  absl::Status removed = store_->Remove(gone->cid);
  ASSERT_TRUE(removed.ok()) << removed;
  absl::StatusOr<std::string> back = ReadAll(*store_, kept->cid);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->size(), kChunkSize + 10);
}

// GC deletes an unpinned object's blocks and reports them.
TEST_F(KuboStoreTest, CollectGarbageRemovesUnpinned) {
  absl::StatusOr<ObjectInfo> info = Put(*store_, RandomBytes(2 * kChunkSize + 1, 23));
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(store_->Unpin(info->cid).ok());
  absl::StatusOr<GcReport> report = store_->CollectGarbage();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GE(report->blocks_removed, 4u);  // three leaves and the root
  EXPECT_EQ(store_->Has(info->cid).value_or(true), false);
}

// A writer destroyed before Finish leaves no pin behind.
TEST_F(KuboStoreTest, AbandonedWriterLeavesNoPin) {
  const size_t before = store_->List().value().size();
  {
    absl::StatusOr<std::unique_ptr<ObjectWriter>> writer = store_->NewWriter();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(RandomBytes(kChunkSize * 2, 29)).ok());
  }
  EXPECT_EQ(store_->List().value().size(), before);
}

// A node that cannot be reached is UNAVAILABLE, naming the endpoint.
TEST(KuboStoreUnreachableTest, ClosedPortIsUnavailable) {
  absl::StatusOr<int> port = integration::PickFreePort();
  ASSERT_TRUE(port.ok());
  auto store = KuboStore::Create(Options(absl::StrCat("http://127.0.0.1:", *port)));
  ASSERT_TRUE(store.ok());
  absl::StatusOr<bool> has = (*store)->Has(Cid::Of(Codec::kRaw, "x"));
  EXPECT_TRUE(absl::IsUnavailable(has.status())) << has.status();
  EXPECT_THAT(std::string(has.status().message()), HasSubstr("block/stat"));
  absl::StatusOr<ObjectInfo> put = Put(**store, "some bytes");
  EXPECT_TRUE(absl::IsUnavailable(put.status())) << put.status();
}

// Options that cannot work are refused up front.
TEST(KuboStoreCreateTest, RefusesBadOptions) {
  EXPECT_TRUE(absl::IsInvalidArgument(KuboStore::Create(Options("127.0.0.1:5001")).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(KuboStore::Create(Options("http://127.0.0.1:5001/api/v0")).status()));
  KuboStoreOptions zero = Options("http://127.0.0.1:5001");
  zero.request_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(KuboStore::Create(zero).status()));
}

// The node dies in the middle of an upload and of a download: the call
// fails with UNAVAILABLE within the timeout, and nothing crashes or hangs.
TEST(KuboStoreNodeDiesTest, KilledMidRequestIsUnavailable) {
  absl::StatusOr<std::unique_ptr<IpfsDaemon>> node = IpfsDaemon::Start();
  ASSERT_TRUE(node.ok()) << node.status();
  KuboStoreOptions options = Options((*node)->api_url());
  auto store = KuboStore::Create(options);
  ASSERT_TRUE(store.ok());

  // A download first, while the node is alive to serve its start.
  const std::string content = RandomBytes(8 * kChunkSize, 31);
  absl::StatusOr<ObjectInfo> info = Put(**store, content);
  ASSERT_TRUE(info.ok()) << info.status();
  absl::StatusOr<std::unique_ptr<ObjectReader>> reader = (*store)->Open(info->cid);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string piece;
  ASSERT_TRUE((*reader)->Next(&piece).value_or(false));

  // An upload under way.
  absl::StatusOr<std::unique_ptr<ObjectWriter>> writer = (*store)->NewWriter();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write(RandomBytes(2 << 20, 37)).ok());

  (*node)->Kill();
  const absl::Time killed = absl::Now();
  const absl::Duration budget = options.request_timeout + absl::Seconds(5);

  absl::Status read = absl::OkStatus();
  while (read.ok()) {
    absl::StatusOr<bool> more = (*reader)->Next(&piece);
    read = more.status();
    if (read.ok() && !*more) break;
  }
  EXPECT_TRUE(absl::IsUnavailable(read)) << read;

  absl::Status upload = absl::OkStatus();
  const std::string more = RandomBytes(kPiece, 41);
  for (int i = 0; i < 1024 && upload.ok(); ++i) upload = (*writer)->Write(more);
  if (upload.ok()) upload = (*writer)->Finish().status();
  EXPECT_TRUE(absl::IsUnavailable(upload)) << upload;
  EXPECT_LT(absl::Now() - killed, budget);
}

// --- What a real node will not do on request: a fake one ------------------

class KuboStoreFakeNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeKubo>> fake = FakeKubo::Start();
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = *std::move(fake);
    KuboStoreOptions options = Options(fake_->api_url());
    options.max_retries = 0;
    auto store = KuboStore::Create(options);
    ASSERT_TRUE(store.ok());
    store_ = *std::move(store);
  }
  bool Requested(absl::string_view prefix) const {
    for (const std::string& r : fake_->Requests()) {
      if (absl::StrContains(r, prefix)) return true;
    }
    return false;
  }

  std::unique_ptr<FakeKubo> fake_;
  std::unique_ptr<KuboStore> store_;
};

// A node that lays the object out differently (another CID) is refused,
// and its pin of that CID removed.
TEST_F(KuboStoreFakeNodeTest, AnotherCidIsRefusedAndUnpinned) {
  const Cid theirs = Cid::Of(Codec::kDagPb, "a layout medvault does not make");
  fake_->Answer("add", {200, absl::StrCat(R"({"Name":"object","Hash":")", theirs.ToString(),
                                          R"(","Size":"20"})", "\n")});
  fake_->Answer("pin/rm", {200, absl::StrCat(R"({"Pins":[")", theirs.ToString(), R"("]})")});
  absl::StatusOr<ObjectInfo> put = Put(*store_, "some bytes of a record");
  EXPECT_TRUE(absl::IsFailedPrecondition(put.status())) << put.status();
  EXPECT_THAT(std::string(put.status().message()), HasSubstr(theirs.ToString()));
  EXPECT_THAT(std::string(put.status().message()),
              HasSubstr(CidOf("some bytes of a record").ToString()));
  EXPECT_TRUE(Requested(absl::StrCat("/api/v0/pin/rm?arg=", theirs.ToString())));
  // The upload asked for exactly the layout medvault computes.
  EXPECT_TRUE(
      Requested("/api/v0/add?cid-version=1&raw-leaves=true&pin=true&cid-base=base32"
                "&chunker=size-262144"));
}

// A block that does not hash to its CID is DATA_LOSS, not content.
TEST_F(KuboStoreFakeNodeTest, CorruptBlockIsDataLoss) {
  fake_->Answer("block/get", {200, "not the bytes that were stored"});
  absl::StatusOr<std::unique_ptr<ObjectReader>> reader =
      store_->Open(Cid::Of(Codec::kRaw, "the bytes that were stored"));
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string out;
  absl::StatusOr<bool> next = (*reader)->Next(&out);
  EXPECT_TRUE(absl::IsDataLoss(next.status())) << next.status();
  EXPECT_TRUE(out.empty());
}

// Malformed answers are errors naming the call, never a crash.
TEST_F(KuboStoreFakeNodeTest, MalformedAnswersAreErrors) {
  const Cid cid = Cid::Of(Codec::kRaw, "x");
  fake_->Answer("add", {200, "{\"Hash\": 12"});
  EXPECT_TRUE(absl::IsInternal(Put(*store_, "x").status()));
  fake_->Answer("add", {200, R"({"Hash":"QmRaaUwTNfwgFZpeUy8qrZwrp2dY4kCKmmB5xEqvH3vtD1"})"});
  EXPECT_TRUE(absl::IsFailedPrecondition(Put(*store_, "x").status())) << "a CIDv0";
  fake_->Answer("add", {200, ""});
  EXPECT_TRUE(absl::IsInternal(Put(*store_, "x").status())) << "no CID";

  fake_->Answer("pin/ls", {200, "[1,2,3]"});
  EXPECT_TRUE(absl::IsInternal(store_->List().status())) << store_->List().status();
  fake_->Answer("pin/ls", {200, R"({"Keys":{"not a cid":{"Type":"recursive"},"Qm":{}}})"});
  ASSERT_TRUE(store_->List().ok()) << store_->List().status();
  EXPECT_TRUE(store_->List()->empty());

  fake_->Answer("repo/stat", {200, R"({"RepoSize":-5})"});
  EXPECT_TRUE(absl::IsInternal(store_->CollectGarbage().status()));

  fake_->Answer("block/stat", {500, "<html>proxy error</html>"});
  absl::StatusOr<bool> has = store_->Has(cid);
  EXPECT_TRUE(absl::IsInternal(has.status())) << has.status();
  EXPECT_THAT(std::string(has.status().message()), HasSubstr("HTTP 500"));
  fake_->Answer("block/stat", {404, "404 page not found"});
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Has(cid).status()));
  fake_->Answer("block/stat", {503, ""});
  EXPECT_TRUE(absl::IsUnavailable(store_->Has(cid).status()));
}

}  // namespace
}  // namespace medvault::storage
