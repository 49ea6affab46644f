// ObjectStore: what medvault-storage serves, whatever keeps the blocks.
// Two implementations: FlatfsStore (the embedded default, flatfs_store.h)
// and KuboStore (a Kubo node or IPFS Cluster's IPFS proxy over the Kubo RPC
// API, kubo_store.h). Both give the same CID for the same bytes.
//
// Errors: INVALID_ARGUMENT for a malformed request, NOT_FOUND for an absent
// object, FAILED_PRECONDITION for removing a pinned object, DATA_LOSS when a
// block does not match its CID, UNAVAILABLE when a remote node cannot be
// reached (after the configured retries).
#ifndef MEDVAULT_DAEMON_STORAGE_OBJECT_STORE_H_
#define MEDVAULT_DAEMON_STORAGE_OBJECT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/storage/cid.h"

namespace medvault::storage {

struct ObjectInfo {
  Cid cid;
  uint64_t size = 0;  // content bytes
  bool pinned = false;
};

// One object being stored. Write() any number of times, then Finish(),
// which makes the object durable and pinned. Destroying a writer before
// Finish() (a cancelled upload, an object over the size limit) abandons
// it: nothing of it is left under a valid name.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual absl::Status Write(absl::string_view data) = 0;
  virtual absl::StatusOr<ObjectInfo> Finish() = 0;
};

// One object being read: content in order, every block verified against
// its CID before any of it is returned.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // The next piece of content in `out`; false at the end.
  virtual absl::StatusOr<bool> Next(std::string* out) = 0;
};

struct GcReport {
  uint64_t blocks_removed = 0;
  uint64_t bytes_removed = 0;
};

// Writers and readers must not outlive the store that made them.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // "flatfs" or "kubo".
  virtual std::string backend() const = 0;

  virtual absl::StatusOr<std::unique_ptr<ObjectWriter>> NewWriter() = 0;
  // NOT_FOUND when the root block is absent.
  virtual absl::StatusOr<std::unique_ptr<ObjectReader>> Open(const Cid& cid) = 0;
  // Whether the root block is present.
  virtual absl::StatusOr<bool> Has(const Cid& cid) = 0;
  virtual absl::StatusOr<ObjectInfo> Stat(const Cid& cid) = 0;
  // Pin requires every block of the object to be present (NOT_FOUND
  // otherwise). Pinning twice or unpinning an unpinned object is not an
  // error.
  virtual absl::Status Pin(const Cid& cid) = 0;
  virtual absl::Status Unpin(const Cid& cid) = 0;
  // Deletes the blocks of an unpinned object that no pinned object uses;
  // FAILED_PRECONDITION when it is pinned, NOT_FOUND when it is absent.
  virtual absl::Status Remove(const Cid& cid) = 0;
  // The pinned objects.
  virtual absl::StatusOr<std::vector<ObjectInfo>> List() = 0;
  // Deletes every block that no pinned object uses.
  virtual absl::StatusOr<GcReport> CollectGarbage() = 0;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_OBJECT_STORE_H_
