// KuboStore: an ObjectStore over the Kubo RPC HTTP API (a Kubo node, or the
// IPFS proxy of IPFS Cluster, which speaks the same API), with libcurl.
//
// The node is trusted to keep blocks, never to say what they are:
//   - Put streams the object to /api/v0/add (CIDv1, raw leaves, 256 KiB
//     chunks, pinned) and builds the same DAG locally with DagBuilder over
//     the same bytes. If the node answers another CID (a node configured
//     with another chunker, layout or hash), the object is unpinned and
//     Finish() fails with FAILED_PRECONDITION naming both CIDs, so a
//     reference medvault could not recompute never gets out.
//   - Open walks the DAG with DagReader over /api/v0/block/get, so every
//     block is hashed and checked against its CID (DATA_LOSS otherwise).
//
// Calls that only read or that can be repeated safely (everything but add)
// are retried with exponential backoff when the node cannot be reached or a
// proxy in front of it answers 502/503/504; add is never retried, since the
// bytes it streamed are gone. Once the retries are spent the call fails
// with UNAVAILABLE naming the endpoint and the curl error.
//
// Reads pass offline=true: on Kubo that makes a missing block NOT_FOUND at
// once instead of a search of the network that lasts until the timeout.
//
// Known limitations:
//   - Remove deletes the object's blocks one by one with /api/v0/block/rm.
//     Blocks that a pinned object also uses are refused by the node and
//     kept; blocks shared with another *unpinned* object are deleted, which
//     leaves that object incomplete (unpinned objects carry no promise).
//   - List reads every pinned root block to report the object's size, one
//     request per pin; pins that are not CIDs this store can verify (CIDv0,
//     other codecs) are left out, and so are pins that are not UnixFS files.
//   - An abandoned writer (destroyed before Finish) leaves the blocks the
//     node received unpinned until the next CollectGarbage.
//   - A node that ignores offline=true and times a lookup out is taken at
//     its word: the block is reported absent (NOT_FOUND).
//   - Errors Kubo sends in an HTTP trailer (X-Stream-Error) after a 200 are
//     not read; a failed add then shows as an answer without a CID.
//
// Thread safety: a KuboStore may be used from any number of threads; each
// call makes its own connection. A writer or reader is used by one thread.
#ifndef MEDVAULT_DAEMON_STORAGE_KUBO_STORE_H_
#define MEDVAULT_DAEMON_STORAGE_KUBO_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/storage/cid.h"
#include "daemon/storage/object_store.h"

namespace medvault::storage {

namespace kubo {
class Rpc;  // kubo_rpc.h
}  // namespace kubo

struct KuboStoreOptions {
  // Base URL of the RPC API, without the /api/v0 path:
  // "http://127.0.0.1:5001". http or https only.
  std::string api_url;
  // Budget of one call that is not an upload (a block, a pin, a GC). An
  // upload has no total budget, since it goes at the writer's pace; it
  // fails when no byte moves for this long.
  absl::Duration request_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(5);
  // How long a node may look for a block before the block counts as
  // absent (NOT_FOUND). Kubo honours the offline=true the store sends and
  // answers at once; js-ipfs ignores it and searches until this timeout,
  // which it then reports as a timed-out request.
  absl::Duration absent_block_timeout = absl::Seconds(5);
  // Retries after the first attempt of an idempotent call, waiting
  // initial_backoff, then twice that, and so on up to max_backoff.
  int max_retries = 3;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // Bytes of an upload that Write() may queue ahead of the connection;
  // Write() blocks beyond that, which bounds the memory of an upload.
  size_t upload_buffer_bytes = 1 << 20;
};

class KuboStore final : public ObjectStore {
 public:
  // INVALID_ARGUMENT when the options are unusable. Does not contact the
  // node (it may come up later); see Ping().
  static absl::StatusOr<std::unique_ptr<KuboStore>> Create(KuboStoreOptions options);

  // Whether the node answers (/api/v0/version); UNAVAILABLE otherwise.
  absl::Status Ping();

  std::string backend() const override { return "kubo"; }
  absl::StatusOr<std::unique_ptr<ObjectWriter>> NewWriter() override;
  absl::StatusOr<std::unique_ptr<ObjectReader>> Open(const Cid& cid) override;
  absl::StatusOr<bool> Has(const Cid& cid) override;
  absl::StatusOr<ObjectInfo> Stat(const Cid& cid) override;
  absl::Status Pin(const Cid& cid) override;
  absl::Status Unpin(const Cid& cid) override;
  absl::Status Remove(const Cid& cid) override;
  absl::StatusOr<std::vector<ObjectInfo>> List() override;
  absl::StatusOr<GcReport> CollectGarbage() override;

 private:
  explicit KuboStore(std::shared_ptr<const kubo::Rpc> rpc) : rpc_(std::move(rpc)) {}

  absl::StatusOr<bool> IsPinned(const Cid& cid);
  // The content size from the root block, verified (DagReader::Size).
  absl::StatusOr<uint64_t> ContentSize(const Cid& cid);
  absl::StatusOr<uint64_t> RepoSize();

  // Shared with the writers and readers, which may outlive the store.
  const std::shared_ptr<const kubo::Rpc> rpc_;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_KUBO_STORE_H_
