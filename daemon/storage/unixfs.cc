#include "daemon/storage/unixfs.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "ipfs/unixfs.pb.h"

namespace medvault::storage {
namespace {

// A file deeper than this is not one this store (or Kubo, whose balanced
// layout needs depth 4 for 174^4 chunks, 240 TB) would write; refusing it
// bounds the reader's stack against a hostile DAG.
constexpr size_t kMaxDepth = 16;

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// One length-delimited field of a PBNode: tag, length, bytes.
void AppendField(std::string& out, uint32_t field, const std::string& bytes) {
  AppendVarint(out, (field << 3) | 2);
  AppendVarint(out, bytes.size());
  out += bytes;
}

}  // namespace

std::string EncodeFileNode(const std::vector<UnixFsLink>& links) {
  ipfs::UnixFsData data;
  data.set_type(ipfs::UnixFsData::File);
  uint64_t file_size = 0;
  for (const UnixFsLink& link : links) {
    file_size += link.content_size;
    data.add_blocksizes(link.content_size);
  }
  data.set_filesize(file_size);

  std::string node;
  for (const UnixFsLink& link : links) {
    ipfs::PBLink pb;
    pb.set_hash(link.cid.bytes());
    pb.set_name("");
    pb.set_tsize(link.tree_size);
    AppendField(node, 2, pb.SerializeAsString());
  }
  AppendField(node, 1, data.SerializeAsString());
  return node;
}

absl::StatusOr<FileNode> DecodeFileNode(absl::string_view block) {
  ipfs::PBNode node;
  if (!node.ParseFromArray(block.data(), static_cast<int>(block.size()))) {
    return absl::InvalidArgumentError("dag-pb node does not parse");
  }
  ipfs::UnixFsData data;
  if (!node.has_data() || !data.ParseFromString(node.data())) {
    return absl::InvalidArgumentError("dag-pb node carries no UnixFS data");
  }
  if (data.type() != ipfs::UnixFsData::File && data.type() != ipfs::UnixFsData::Raw) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UnixFS node is a ", ipfs::UnixFsData::DataType_Name(data.type()), ", not a file"));
  }
  if (data.blocksizes_size() != node.links_size()) {
    return absl::InvalidArgumentError(absl::StrCat("UnixFS node has ", node.links_size(),
                                                   " links but ", data.blocksizes_size(),
                                                   " block sizes"));
  }
  FileNode out;
  out.inline_data = data.data();
  uint64_t total = out.inline_data.size();
  out.links.reserve(node.links_size());
  for (int i = 0; i < node.links_size(); ++i) {
    auto cid = Cid::FromBytes(node.links(i).hash());
    if (!cid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("UnixFS link ", i, ": ", cid.status().message()));
    }
    out.links.push_back({*std::move(cid), data.blocksizes(i), node.links(i).tsize()});
    total += data.blocksizes(i);
  }
  out.file_size = data.has_filesize() ? data.filesize() : total;
  if (out.file_size != total) {
    return absl::InvalidArgumentError(
        absl::StrCat("UnixFS node says ", out.file_size, " bytes but its parts add up to ", total));
  }
  return out;
}

// ---------------------------------------------------------------- builder

absl::Status DagBuilder::Write(absl::string_view data) {
  if (finished_) return absl::FailedPreconditionError("DagBuilder: write after Finish");
  while (!data.empty()) {
    size_t take = std::min(data.size(), kChunkSize - chunk_.size());
    chunk_.append(data.data(), take);
    data.remove_prefix(take);
    size_ += take;
    if (chunk_.size() == kChunkSize) RETURN_IF_ERROR(FlushChunk());
  }
  return absl::OkStatus();
}

absl::Status DagBuilder::FlushChunk() {
  Cid cid = Cid::Of(Codec::kRaw, chunk_);
  RETURN_IF_ERROR(sink_.PutBlock(cid, chunk_));
  Link leaf{std::move(cid), chunk_.size(), chunk_.size()};
  chunk_.clear();
  return AddLink(0, std::move(leaf));
}

absl::Status DagBuilder::AddLink(size_t level, Link link) {
  if (levels_.size() <= level) levels_.resize(level + 1);
  levels_[level].push_back(std::move(link));
  if (levels_[level].size() < kMaxLinks) return absl::OkStatus();
  // A full node: write it now so that memory stays bounded, and carry its
  // link one level up. Whether it becomes the root is decided in Finish().
  ASSIGN_OR_RETURN(Link node, WriteNode(levels_[level]));
  levels_[level].clear();
  return AddLink(level + 1, std::move(node));
}

absl::StatusOr<DagBuilder::Link> DagBuilder::WriteNode(const std::vector<Link>& links) {
  std::vector<UnixFsLink> parts;
  parts.reserve(links.size());
  uint64_t content = 0;
  uint64_t tree = 0;
  for (const Link& link : links) {
    parts.push_back({link.cid, link.content_size, link.tree_size});
    content += link.content_size;
    tree += link.tree_size;
  }
  std::string block = EncodeFileNode(parts);
  Cid cid = Cid::Of(Codec::kDagPb, block);
  RETURN_IF_ERROR(sink_.PutBlock(cid, block));
  return Link{std::move(cid), content, tree + block.size()};
}

absl::StatusOr<Cid> DagBuilder::Finish() {
  if (finished_) return absl::FailedPreconditionError("DagBuilder: Finish called twice");
  finished_ = true;
  // The last partial chunk; the empty file is one empty raw block.
  if (!chunk_.empty() || levels_.empty()) RETURN_IF_ERROR(FlushChunk());
  // Close every level from the bottom up. The highest level holding a
  // single link is the root: a lone leaf stays a raw block, a lone full
  // node is not wrapped again.
  for (size_t level = 0;; ++level) {
    const bool top = level + 1 == levels_.size();
    if (top && levels_[level].size() == 1) return levels_[level][0].cid;
    if (levels_[level].empty()) continue;
    ASSIGN_OR_RETURN(Link node, WriteNode(levels_[level]));
    levels_[level].clear();
    if (top) levels_.emplace_back();
    levels_[level + 1].push_back(std::move(node));
  }
}

// ---------------------------------------------------------------- reader

absl::StatusOr<std::string> DagReader::Fetch(const Cid& cid) { return FetchVerified(source_, cid); }

absl::StatusOr<std::string> FetchVerified(BlockSource& source, const Cid& cid) {
  ASSIGN_OR_RETURN(std::string block, source.GetBlock(cid));
  if (!cid.Matches(block)) {
    std::string name = cid.ToString();
    log::Error("block_corrupt", {{"cid", name}, {"size", static_cast<uint64_t>(block.size())}});
    return absl::DataLossError(absl::StrCat("block ", name, " does not match its CID"));
  }
  return block;
}

absl::StatusOr<uint64_t> DagReader::Size() {
  ASSIGN_OR_RETURN(std::string block, Fetch(root_));
  if (root_.codec() == Codec::kRaw) return block.size();
  ASSIGN_OR_RETURN(FileNode node, DecodeFileNode(block));
  return node.file_size;
}

absl::StatusOr<bool> DagReader::Next(std::string* out) {
  out->clear();
  if (!started_) {
    started_ = true;
    ASSIGN_OR_RETURN(std::string block, Fetch(root_));
    if (root_.codec() == Codec::kRaw) {
      *out = std::move(block);
      return true;
    }
    ASSIGN_OR_RETURN(FileNode node, DecodeFileNode(block));
    stack_.push_back({std::move(node.links), 0});
    if (!node.inline_data.empty()) {
      *out = std::move(node.inline_data);
      return true;
    }
  }
  while (!stack_.empty()) {
    Frame& top = stack_.back();
    if (top.next == top.links.size()) {
      stack_.pop_back();
      continue;
    }
    const UnixFsLink link = top.links[top.next++];
    ASSIGN_OR_RETURN(std::string block, Fetch(link.cid));
    if (link.cid.codec() == Codec::kRaw) {
      if (block.size() != link.content_size) {
        return absl::DataLossError(absl::StrCat("block ", link.cid.ToString(), " holds ",
                                                block.size(), " bytes, its parent says ",
                                                link.content_size));
      }
      *out = std::move(block);
      return true;
    }
    ASSIGN_OR_RETURN(FileNode node, DecodeFileNode(block));
    if (node.file_size != link.content_size) {
      return absl::DataLossError(absl::StrCat("node ", link.cid.ToString(), " holds ",
                                              node.file_size, " bytes, its parent says ",
                                              link.content_size));
    }
    if (stack_.size() >= kMaxDepth) {
      return absl::InvalidArgumentError(absl::StrCat("file is deeper than ", kMaxDepth, " levels"));
    }
    stack_.push_back({std::move(node.links), 0});
    if (!node.inline_data.empty()) {
      *out = std::move(node.inline_data);
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<Cid>> ListBlocks(BlockSource& source, const Cid& root) {
  std::vector<Cid> out{root};
  if (root.codec() == Codec::kRaw) return out;
  // Depth first over the dag-pb nodes only; leaves are named, never read.
  std::vector<std::pair<Cid, size_t>> pending{{root, 1}};
  while (!pending.empty()) {
    auto [cid, depth] = std::move(pending.back());
    pending.pop_back();
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError(absl::StrCat("file is deeper than ", kMaxDepth, " levels"));
    }
    ASSIGN_OR_RETURN(std::string block, FetchVerified(source, cid));
    ASSIGN_OR_RETURN(FileNode node, DecodeFileNode(block));
    for (UnixFsLink& link : node.links) {
      if (link.cid.codec() == Codec::kDagPb) pending.push_back({link.cid, depth + 1});
      out.push_back(std::move(link.cid));
    }
  }
  return out;
}

}  // namespace medvault::storage
