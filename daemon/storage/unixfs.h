// UnixFS v1 files as `ipfs add --cid-version=1 --raw-leaves` lays them out
// with Kubo's defaults, built and read as streams:
//
//   - the content is cut into fixed 262,144-byte chunks, each a raw block;
//   - a file of one chunk (or none: the empty file) is that raw block;
//   - otherwise leaves are grouped under dag-pb nodes of at most 174 links,
//     those nodes under nodes of 174, and so on: a balanced tree whose
//     leaves are all at the same depth, filled left to right;
//   - a dag-pb node is PBNode { repeated PBLink Links = 2; bytes Data = 1 }
//     written Links first, each PBLink { Hash = 1 (binary CID); Name = 2
//     (empty); Tsize = 3 (the child's block plus everything under it) },
//     and Data a UnixFS message { Type = 1 (File = 2); filesize = 3;
//     repeated blocksizes = 4 (each child's content bytes) }.
//
// DagBuilder holds at most one chunk and 174 links per level, so memory is
// bounded whatever the file size; DagReader holds one block and a stack of
// link lists, and checks every block against its CID before using it.
#ifndef MEDVAULT_DAEMON_STORAGE_UNIXFS_H_
#define MEDVAULT_DAEMON_STORAGE_UNIXFS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/storage/cid.h"

namespace medvault::storage {

inline constexpr size_t kChunkSize = 262144;
inline constexpr size_t kMaxLinks = 174;

// Where DagBuilder puts the blocks it makes, leaves first, the root last.
class BlockSink {
 public:
  virtual ~BlockSink() = default;
  virtual absl::Status PutBlock(const Cid& cid, absl::string_view block) = 0;
};

// Where DagReader finds blocks. NOT_FOUND when absent; the reader checks
// what it gets against the CID, so a source need not.
class BlockSource {
 public:
  virtual ~BlockSource() = default;
  virtual absl::StatusOr<std::string> GetBlock(const Cid& cid) = 0;
};

class DagBuilder {
 public:
  explicit DagBuilder(BlockSink& sink) : sink_(sink) {}

  absl::Status Write(absl::string_view data);
  // Writes the last chunk and the nodes above it; returns the root.
  absl::StatusOr<Cid> Finish();
  uint64_t size() const { return size_; }

 private:
  struct Link {
    Cid cid;
    uint64_t content_size;  // file bytes under the link
    uint64_t tree_size;     // Tsize: encoded blocks under the link
  };
  absl::Status FlushChunk();
  absl::Status AddLink(size_t level, Link link);
  absl::StatusOr<Link> WriteNode(const std::vector<Link>& links);

  BlockSink& sink_;
  std::string chunk_;
  uint64_t size_ = 0;
  // levels_[0] holds leaves not yet under a node, levels_[1] nodes of
  // leaves, and so on.
  std::vector<std::vector<Link>> levels_;
  bool finished_ = false;
};

// The encoded dag-pb node of a UnixFS file over `links` (exposed for the
// tests that check the layout byte by byte).
struct UnixFsLink {
  Cid cid;
  uint64_t content_size;
  uint64_t tree_size;
};
std::string EncodeFileNode(const std::vector<UnixFsLink>& links);

// A decoded dag-pb UnixFS file node.
struct FileNode {
  std::vector<UnixFsLink> links;  // tree_size from Tsize, content_size from blocksizes
  std::string inline_data;        // UnixFS Data bytes before the children (others' importers)
  uint64_t file_size = 0;
};
// INVALID_ARGUMENT / DATA_LOSS when `block` is not a UnixFS file node whose
// sizes add up.
absl::StatusOr<FileNode> DecodeFileNode(absl::string_view block);

// `cid`'s block from `source`, DATA_LOSS (logged, naming the CID) unless it
// hashes to the CID.
absl::StatusOr<std::string> FetchVerified(BlockSource& source, const Cid& cid);

// Reads a file back chunk by chunk, depth first, checking every block
// against its CID (DATA_LOSS naming the CID on a mismatch).
class DagReader {
 public:
  DagReader(BlockSource& source, Cid root) : source_(source), root_(std::move(root)) {}

  // The next piece of content in `out`; false at the end.
  absl::StatusOr<bool> Next(std::string* out);
  // The file's size, from the root (reads the root block).
  absl::StatusOr<uint64_t> Size();

 private:
  struct Frame {
    std::vector<UnixFsLink> links;
    size_t next = 0;
  };
  absl::StatusOr<std::string> Fetch(const Cid& cid);

  BlockSource& source_;
  const Cid root_;
  bool started_ = false;
  std::vector<Frame> stack_;
};

// The CIDs of every block of the file at `root`: the root, the nodes, the
// leaves (reads only the dag-pb nodes, never a leaf).
absl::StatusOr<std::vector<Cid>> ListBlocks(BlockSource& source, const Cid& root);

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_UNIXFS_H_
