#include "daemon/storage/unixfs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "ipfs/unixfs.pb.h"
#include "tests/storage/storage_test_util.h"

namespace medvault::storage {
namespace {

// Blocks in memory: a sink and a source at once.
class MemoryBlocks : public BlockSink, public BlockSource {
 public:
  absl::Status PutBlock(const Cid& cid, absl::string_view block) override {
    blocks_[cid.ToString()] = std::string(block);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> GetBlock(const Cid& cid) override {
    auto it = blocks_.find(cid.ToString());
    if (it == blocks_.end()) return absl::NotFoundError(cid.ToString());
    return it->second;
  }
  std::map<std::string, std::string>& blocks() { return blocks_; }

 private:
  std::map<std::string, std::string> blocks_;
};

Cid Build(MemoryBlocks& blocks, absl::string_view content, size_t piece = 100000) {
  DagBuilder builder(blocks);
  for (size_t at = 0; at < content.size(); at += piece) {
    EXPECT_TRUE(builder.Write(content.substr(at, piece)).ok());
  }
  auto root = builder.Finish();
  EXPECT_TRUE(root.ok()) << root.status();
  return *root;
}

std::string ReadAll(BlockSource& source, const Cid& root, absl::Status* error = nullptr) {
  DagReader reader(source, root);
  std::string out, piece;
  for (;;) {
    auto more = reader.Next(&piece);
    if (!more.ok()) {
      if (error != nullptr) *error = more.status();
      return out;
    }
    if (!*more) return out;
    out += piece;
  }
}

TEST(UnixFsTest, OneChunkOrLessIsARawBlock) {
  for (size_t size : {size_t{0}, size_t{1}, kChunkSize}) {
    MemoryBlocks blocks;
    std::string content = RandomBytes(size, 1);
    Cid root = Build(blocks, content);
    EXPECT_EQ(root.codec(), Codec::kRaw) << size;
    EXPECT_EQ(root, Cid::Of(Codec::kRaw, content));
    EXPECT_EQ(blocks.blocks().size(), 1u);
    EXPECT_EQ(ReadAll(blocks, root), content);
  }
}

TEST(UnixFsTest, TwoChunksMakeOneNodeWithSizesAndLinksInOrder) {
  MemoryBlocks blocks;
  std::string content = RandomBytes(kChunkSize + 1, 1);
  Cid root = Build(blocks, content);
  ASSERT_EQ(root.codec(), Codec::kDagPb);
  std::string node = blocks.blocks()[root.ToString()];
  // dag-pb canonical order: links (field 2, 0x12) before data (field 1, 0x0a).
  EXPECT_EQ(static_cast<uint8_t>(node[0]), 0x12);
  auto decoded = DecodeFileNode(node);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->links.size(), 2u);
  EXPECT_EQ(decoded->file_size, kChunkSize + 1);
  EXPECT_EQ(decoded->links[0].content_size, kChunkSize);
  EXPECT_EQ(decoded->links[1].content_size, 1u);
  EXPECT_EQ(decoded->links[0].cid, Cid::Of(Codec::kRaw, content.substr(0, kChunkSize)));
  EXPECT_EQ(decoded->links[1].tree_size, 1u);
  EXPECT_EQ(ReadAll(blocks, root), content);
  auto size = DagReader(blocks, root).Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, content.size());
}

TEST(UnixFsTest, LinksCarryAnEmptyNameLikeKubo) {
  std::vector<UnixFsLink> links = {{Cid::Of(Codec::kRaw, "a"), 1, 1}};
  ipfs::PBNode node;
  ASSERT_TRUE(node.ParseFromString(EncodeFileNode(links)));
  ASSERT_EQ(node.links_size(), 1);
  EXPECT_TRUE(node.links(0).has_name());
  EXPECT_EQ(node.links(0).name(), "");
}

TEST(UnixFsTest, BalancedTreeGrowsALevelAfter174Chunks) {
  {
    MemoryBlocks blocks;
    std::string content = RandomBytes(kMaxLinks * kChunkSize, 2);
    Cid root = Build(blocks, content, 1 << 20);
    auto node = DecodeFileNode(blocks.blocks()[root.ToString()]);
    ASSERT_TRUE(node.ok());
    EXPECT_EQ(node->links.size(), kMaxLinks);  // one level, full
    EXPECT_EQ(node->links[0].cid.codec(), Codec::kRaw);
  }
  MemoryBlocks blocks;
  std::string content = RandomBytes(kMaxLinks * kChunkSize + 1, 3);
  Cid root = Build(blocks, content, 1 << 20);
  auto node = DecodeFileNode(blocks.blocks()[root.ToString()]);
  ASSERT_TRUE(node.ok());
  ASSERT_EQ(node->links.size(), 2u);  // a full subtree and one holding the last byte
  EXPECT_EQ(node->links[0].cid.codec(), Codec::kDagPb);
  EXPECT_EQ(node->links[0].content_size, kMaxLinks * kChunkSize);
  EXPECT_EQ(node->links[1].cid.codec(), Codec::kDagPb);
  EXPECT_EQ(node->links[1].content_size, 1u);
  EXPECT_EQ(ReadAll(blocks, root), content);
  auto all = ListBlocks(blocks, root);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), blocks.blocks().size());
}

TEST(UnixFsTest, AlteredBlockIsDataLossAndNotReturned) {
  MemoryBlocks blocks;
  std::string content = RandomBytes(3 * kChunkSize, 1);
  Cid root = Build(blocks, content);
  Cid second = Cid::Of(Codec::kRaw, content.substr(kChunkSize, kChunkSize));
  blocks.blocks()[second.ToString()][10] ^= 1;
  absl::Status error;
  std::string read = ReadAll(blocks, root, &error);
  EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(error.message(), ::testing::HasSubstr(second.ToString()));
  EXPECT_EQ(read, content.substr(0, kChunkSize));  // only what came before
}

TEST(UnixFsTest, MissingBlockIsNotFound) {
  MemoryBlocks blocks;
  std::string content = RandomBytes(2 * kChunkSize, 1);
  Cid root = Build(blocks, content);
  blocks.blocks().erase(Cid::Of(Codec::kRaw, content.substr(kChunkSize)).ToString());
  absl::Status error;
  ReadAll(blocks, root, &error);
  EXPECT_EQ(error.code(), absl::StatusCode::kNotFound);
}

TEST(UnixFsTest, NodeWhoseSizesDisagreeIsRefused) {
  ipfs::UnixFsData data;
  data.set_type(ipfs::UnixFsData::File);
  data.set_filesize(10);
  data.add_blocksizes(4);
  ipfs::PBNode node;
  auto* link = node.add_links();
  link->set_hash(Cid::Of(Codec::kRaw, "abcd").bytes());
  link->set_tsize(4);
  node.set_data(data.SerializeAsString());
  auto decoded = DecodeFileNode(node.SerializeAsString());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeFileNode("\xff\xff garbage").ok());
}

}  // namespace
}  // namespace medvault::storage
