#include "daemon/storage/flatfs_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/files.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"

namespace medvault::storage {
namespace {

constexpr char kBlocksDir[] = "blocks";
constexpr char kPinsDir[] = "pins";
constexpr char kStagingDir[] = "staging";
constexpr char kShardingFile[] = "blocks/SHARDING";
constexpr char kSharding[] = "/repo/flatfs/shard/v1/next-to-last/2\n";
constexpr char kBlockSuffix[] = ".data";
constexpr char kTempPrefix[] = ".tmp-";

// Removes `path` and the files in it (one level: staging directories hold
// only files).
absl::Status RemoveFlatDir(int dir_fd, const std::string& path) {
  absl::Status status = ForEachEntry(dir_fd, path, [&](const std::string& name) {
    std::string file = absl::StrCat(path, "/", name);
    if (unlinkat(dir_fd, file.c_str(), 0) != 0 && errno != ENOENT)
      return ErrnoStatus("unlink", file);
    return absl::OkStatus();
  });
  if (!status.ok() && !absl::IsNotFound(status)) return status;
  if (unlinkat(dir_fd, path.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("rmdir", path);
  }
  return absl::OkStatus();
}

// The flatfs key of a block: its multihash in unpadded upper-case base32.
std::string BlockKey(const Cid& cid) {
  return absl::AsciiStrToUpper(Base32Encode(cid.multihash()));
}

std::string ShardOf(const std::string& key) { return key.substr(key.size() - 3, 2); }

std::string PinsPath(const Cid& cid) { return absl::StrCat(kPinsDir, "/", cid.ToString()); }

}  // namespace

std::string FlatfsStore::BlockPath(const Cid& cid) {
  std::string key = BlockKey(cid);
  return absl::StrCat(kBlocksDir, "/", ShardOf(key), "/", key, kBlockSuffix);
}

// ---------------------------------------------------------------- writer

class FlatfsStore::Writer : public ObjectWriter, private BlockSink {
 public:
  Writer(FlatfsStore& store, std::string staging, Fd staging_fd)
      : store_(store),
        staging_(std::move(staging)),
        staging_fd_(std::move(staging_fd)),
        builder_(*this) {}

  ~Writer() override {
    if (committed_) return;
    // Abandoned: nothing of this upload may stay behind.
    staging_fd_.reset();
    if (absl::Status status = RemoveFlatDir(store_.dir_fd_, staging_); !status.ok()) {
      log::Warn("staging_cleanup_failed", {{"dir", staging_}, {"error", status}});
    }
  }

  absl::Status Write(absl::string_view data) override { return builder_.Write(data); }

  absl::StatusOr<ObjectInfo> Finish() override {
    ASSIGN_OR_RETURN(Cid root, builder_.Finish());
    {
      absl::ReaderMutexLock lock(&store_.commit_mu_);
      absl::flat_hash_set<std::string> shards;
      for (const std::string& key : staged_order_) {
        std::string shard = absl::StrCat(kBlocksDir, "/", ShardOf(key));
        if (shards.insert(shard).second) RETURN_IF_ERROR(MakeDirectory(store_.dir_fd_, shard));
        std::string from = key + kBlockSuffix;
        std::string to = absl::StrCat(shard, "/", key, kBlockSuffix);
        if (renameat(staging_fd_.get(), from.c_str(), store_.dir_fd_, to.c_str()) != 0) {
          return ErrnoStatus("rename", to);
        }
      }
      for (const std::string& shard : shards) RETURN_IF_ERROR(SyncDirectory(store_.dir_fd_, shard));
      RETURN_IF_ERROR(SyncDirectory(store_.dir_fd_, kBlocksDir));
      RETURN_IF_ERROR(WriteFileAtomically(store_.dir_fd_, kPinsDir, root.ToString(), ""));
      committed_ = true;
    }
    staging_fd_.reset();
    if (absl::Status status = RemoveFlatDir(store_.dir_fd_, staging_); !status.ok()) {
      log::Warn("staging_cleanup_failed", {{"dir", staging_}, {"error", status}});
    }
    return ObjectInfo{std::move(root), builder_.size(), true};
  }

 private:
  absl::Status PutBlock(const Cid& cid, absl::string_view block) override {
    std::string key = BlockKey(cid);
    if (!staged_.insert(key).second) return absl::OkStatus();  // the same chunk again
    RETURN_IF_ERROR(WriteAndSync(staging_fd_.get(), key + kBlockSuffix, block));
    staged_order_.push_back(std::move(key));
    return absl::OkStatus();
  }

  FlatfsStore& store_;
  const std::string staging_;
  Fd staging_fd_;
  DagBuilder builder_;
  absl::flat_hash_set<std::string> staged_;
  std::vector<std::string> staged_order_;
  bool committed_ = false;
};

// ---------------------------------------------------------------- reader

class FlatfsStore::Reader : public ObjectReader {
 public:
  Reader(FlatfsStore& store, const Cid& cid) : reader_(store, cid) {}
  absl::StatusOr<bool> Next(std::string* out) override { return reader_.Next(out); }

 private:
  DagReader reader_;
};

// ---------------------------------------------------------------- store

absl::StatusOr<std::unique_ptr<FlatfsStore>> FlatfsStore::Open(int dir_fd) {
  RETURN_IF_ERROR(MakeDirectory(dir_fd, kBlocksDir));
  RETURN_IF_ERROR(MakeDirectory(dir_fd, kPinsDir));
  RETURN_IF_ERROR(MakeDirectory(dir_fd, kStagingDir));
  auto sharding = ReadWholeFile(dir_fd, kShardingFile);
  if (absl::IsNotFound(sharding.status())) {
    RETURN_IF_ERROR(WriteFileAtomically(dir_fd, kBlocksDir, "SHARDING", kSharding));
  } else if (!sharding.ok()) {
    return sharding.status();
  } else if (*sharding != kSharding) {
    return absl::FailedPreconditionError(absl::StrCat(
        kShardingFile,
        " names another sharding scheme: ", absl::StripTrailingAsciiWhitespace(*sharding)));
  }
  // Uploads interrupted by a crash or a restart.
  int removed = 0;
  RETURN_IF_ERROR(ForEachEntry(dir_fd, kStagingDir, [&](const std::string& name) {
    ++removed;
    return RemoveFlatDir(dir_fd, absl::StrCat(kStagingDir, "/", name));
  }));
  if (removed > 0) log::Info("staging_cleaned", {{"uploads", removed}});
  return std::unique_ptr<FlatfsStore>(new FlatfsStore(dir_fd));
}

FlatfsStore::~FlatfsStore() = default;

absl::StatusOr<std::string> FlatfsStore::GetBlock(const Cid& cid) {
  auto block = ReadWholeFile(dir_fd_, BlockPath(cid));
  if (absl::IsNotFound(block.status())) {
    return absl::NotFoundError(absl::StrCat("block ", cid.ToString(), " is not in the store"));
  }
  return block;
}

absl::StatusOr<std::unique_ptr<ObjectWriter>> FlatfsStore::NewWriter() {
  uint8_t random[8];
  if (RAND_bytes(random, sizeof(random)) != 1) return absl::InternalError("RAND_bytes failed");
  std::string staging = absl::StrCat(kStagingDir, "/",
                                     absl::BytesToHexString(absl::string_view(
                                         reinterpret_cast<const char*>(random), sizeof(random))));
  if (mkdirat(dir_fd_, staging.c_str(), 0700) != 0) return ErrnoStatus("mkdir", staging);
  auto fd = OpenDirectory(dir_fd_, staging);
  if (!fd.ok()) {
    unlinkat(dir_fd_, staging.c_str(), AT_REMOVEDIR);
    return fd.status();
  }
  return std::make_unique<Writer>(*this, std::move(staging), *std::move(fd));
}

absl::StatusOr<std::unique_ptr<ObjectReader>> FlatfsStore::Open(const Cid& cid) {
  ASSIGN_OR_RETURN(bool present, Has(cid));
  if (!present) return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " not found"));
  return std::make_unique<Reader>(*this, cid);
}

absl::StatusOr<bool> FlatfsStore::Has(const Cid& cid) {
  return PathExists(dir_fd_, BlockPath(cid));
}

absl::StatusOr<bool> FlatfsStore::IsPinned(const Cid& cid) {
  return PathExists(dir_fd_, PinsPath(cid));
}

absl::StatusOr<ObjectInfo> FlatfsStore::Stat(const Cid& cid) {
  auto size = DagReader(*this, cid).Size();
  if (absl::IsNotFound(size.status())) {
    return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " not found"));
  }
  if (!size.ok()) return size.status();
  ASSIGN_OR_RETURN(bool pinned, IsPinned(cid));
  return ObjectInfo{cid, *size, pinned};
}

absl::Status FlatfsStore::Pin(const Cid& cid) {
  absl::ReaderMutexLock lock(&commit_mu_);
  ASSIGN_OR_RETURN(std::vector<Cid> blocks, ListBlocks(*this, cid));
  for (const Cid& block : blocks) {
    if (!PathExists(dir_fd_, BlockPath(block))) {
      return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " is incomplete: block ",
                                              block.ToString(), " is missing"));
    }
  }
  return WriteFileAtomically(dir_fd_, kPinsDir, cid.ToString(), "");
}

absl::Status FlatfsStore::Unpin(const Cid& cid) {
  std::string path = PinsPath(cid);
  if (unlinkat(dir_fd_, path.c_str(), 0) != 0 && errno != ENOENT)
    return ErrnoStatus("unlink", path);
  return SyncDirectory(dir_fd_, kPinsDir);
}

absl::StatusOr<absl::flat_hash_set<std::string>> FlatfsStore::LiveBlocks() {
  absl::flat_hash_set<std::string> live;
  RETURN_IF_ERROR(ForEachEntry(dir_fd_, kPinsDir, [&](const std::string& name) -> absl::Status {
    if (absl::StartsWith(name, kTempPrefix)) return absl::OkStatus();
    auto cid = Cid::Parse(name);
    if (!cid.ok()) {
      log::Warn("pin_ignored", {{"name", name}, {"error", cid.status()}});
      return absl::OkStatus();
    }
    auto blocks = ListBlocks(*this, *cid);
    if (!blocks.ok()) {
      // Deleting anything now could finish off a damaged pinned object.
      return absl::DataLossError(
          absl::StrCat("pinned object ", name, " cannot be walked: ", blocks.status().message()));
    }
    for (const Cid& block : *blocks) live.insert(block.multihash());
    return absl::OkStatus();
  }));
  return live;
}

absl::Status FlatfsStore::Remove(const Cid& cid) {
  absl::WriterMutexLock lock(&commit_mu_);
  ASSIGN_OR_RETURN(bool pinned, IsPinned(cid));
  if (pinned) {
    return absl::FailedPreconditionError(
        absl::StrCat("object ", cid.ToString(), " is pinned; unpin it before removing it"));
  }
  if (!PathExists(dir_fd_, BlockPath(cid))) {
    return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " not found"));
  }
  ASSIGN_OR_RETURN(std::vector<Cid> blocks, ListBlocks(*this, cid));
  ASSIGN_OR_RETURN(auto live, LiveBlocks());
  // Leaves first, then the nodes bottom-up with the root last, so that an
  // interrupted Remove can be run again: the nodes that name the rest stay
  // until the end.
  std::vector<const Cid*> order;
  for (const Cid& block : blocks)
    if (block.codec() == Codec::kRaw) order.push_back(&block);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    if (it->codec() == Codec::kDagPb) order.push_back(&*it);
  uint64_t removed = 0;
  for (const Cid* block : order) {
    if (live.contains(block->multihash())) continue;
    std::string path = BlockPath(*block);
    if (unlinkat(dir_fd_, path.c_str(), 0) == 0) {
      ++removed;
    } else if (errno != ENOENT) {
      return ErrnoStatus("unlink", path);
    }
  }
  log::Info("object_removed", {{"cid", cid.ToString()}, {"blocks", removed}});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ObjectInfo>> FlatfsStore::List() {
  std::vector<Cid> pins;
  RETURN_IF_ERROR(ForEachEntry(dir_fd_, kPinsDir, [&](const std::string& name) {
    if (auto cid = Cid::Parse(name); cid.ok()) pins.push_back(*std::move(cid));
    return absl::OkStatus();
  }));
  std::vector<ObjectInfo> out;
  out.reserve(pins.size());
  for (const Cid& cid : pins) {
    auto info = Stat(cid);
    if (absl::IsNotFound(info.status())) continue;  // unpinned and removed meanwhile
    if (!info.ok()) return info.status();
    out.push_back(*std::move(info));
  }
  return out;
}

absl::StatusOr<GcReport> FlatfsStore::CollectGarbage() {
  absl::WriterMutexLock lock(&commit_mu_);
  ASSIGN_OR_RETURN(auto live, LiveBlocks());
  GcReport report;
  RETURN_IF_ERROR(ForEachEntry(dir_fd_, kBlocksDir, [&](const std::string& shard) {
    std::string shard_path = absl::StrCat(kBlocksDir, "/", shard);
    struct stat st {};
    if (fstatat(dir_fd_, shard_path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      return absl::OkStatus();  // SHARDING and anything else that is not a shard
    }
    return ForEachEntry(dir_fd_, shard_path, [&](const std::string& name) -> absl::Status {
      if (!absl::EndsWith(name, kBlockSuffix)) return absl::OkStatus();
      absl::string_view key(name);
      key.remove_suffix(sizeof(kBlockSuffix) - 1);
      auto multihash = Base32Decode(key);
      if (multihash.ok() && live.contains(*multihash)) return absl::OkStatus();
      std::string path = absl::StrCat(shard_path, "/", name);
      struct stat block {};
      if (fstatat(dir_fd_, path.c_str(), &block, 0) != 0) return absl::OkStatus();
      if (unlinkat(dir_fd_, path.c_str(), 0) != 0) return ErrnoStatus("unlink", path);
      ++report.blocks_removed;
      report.bytes_removed += static_cast<uint64_t>(block.st_size);
      return absl::OkStatus();
    });
  }));
  log::Info("garbage_collected",
            {{"blocks", report.blocks_removed}, {"bytes", report.bytes_removed}});
  return report;
}

}  // namespace medvault::storage
