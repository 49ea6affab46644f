// FlatfsStore: the embedded block store, a directory laid out like Kubo's
// flatfs datastore so that its blocks can be handed to a Kubo node as they
// are:
//
//   <dir>/blocks/SHARDING              "/repo/flatfs/shard/v1/next-to-last/2"
//   <dir>/blocks/<XY>/<KEY>.data       one block; KEY is the block's
//                                      multihash in base32 (upper case, no
//                                      padding), XY its next-to-last two
//                                      characters
//   <dir>/pins/<cid>                   one empty file per pinned object
//   <dir>/staging/<random>/            blocks of an upload in progress
//
// Crash safety: an upload writes and fsyncs every block under staging/
// first; Finish() renames them into blocks/ (rename is atomic), fsyncs the
// shard directories, then writes the pin the same way. A crash leaves at
// worst a staging directory (removed at the next start) or complete blocks
// that no pin names (removed by garbage collection): never a partial block
// under a valid name, never a pin over missing blocks.
//
// Concurrency: uploads commit under a shared lock; Remove and
// CollectGarbage take it exclusively, so they never see half of a commit.
#ifndef MEDVAULT_DAEMON_STORAGE_FLATFS_STORE_H_
#define MEDVAULT_DAEMON_STORAGE_FLATFS_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "daemon/storage/object_store.h"
#include "daemon/storage/unixfs.h"

namespace medvault::storage {

class FlatfsStore : public ObjectStore, private BlockSource {
 public:
  // `dir_fd` is an open directory (kept open by the caller for the store's
  // life); every path is resolved relative to it. Creates the layout when
  // it is missing and removes leftovers of interrupted uploads.
  static absl::StatusOr<std::unique_ptr<FlatfsStore>> Open(int dir_fd);
  ~FlatfsStore() override;

  std::string backend() const override { return "flatfs"; }
  absl::StatusOr<std::unique_ptr<ObjectWriter>> NewWriter() override;
  absl::StatusOr<std::unique_ptr<ObjectReader>> Open(const Cid& cid) override;
  absl::StatusOr<bool> Has(const Cid& cid) override;
  absl::StatusOr<ObjectInfo> Stat(const Cid& cid) override;
  absl::Status Pin(const Cid& cid) override;
  absl::Status Unpin(const Cid& cid) override;
  absl::Status Remove(const Cid& cid) override;
  absl::StatusOr<std::vector<ObjectInfo>> List() override;
  absl::StatusOr<GcReport> CollectGarbage() override;

  // "blocks/XY/KEY.data" of a block.
  static std::string BlockPath(const Cid& cid);

 private:
  class Writer;
  class Reader;
  explicit FlatfsStore(int dir_fd) : dir_fd_(dir_fd) {}

  absl::StatusOr<std::string> GetBlock(const Cid& cid) override;
  absl::StatusOr<bool> IsPinned(const Cid& cid);
  // Multihashes of every block of every pinned object.
  absl::StatusOr<absl::flat_hash_set<std::string>> LiveBlocks()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);

  const int dir_fd_;
  // Shared: committing an upload, pinning. Exclusive: deleting blocks.
  absl::Mutex commit_mu_;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_FLATFS_STORE_H_
