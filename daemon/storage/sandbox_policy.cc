#include "daemon/storage/sandbox_policy.h"

#include <sys/socket.h>

namespace medvault::storage {

SyscallPolicy StoragePolicy(bool remote) {
  SyscallPolicy policy = SyscallPolicy::GrpcService();
  policy
      .Allow({"fstatfs"}, "reporting free space of the block directory")
      // The flatfs store: blocks written to a staging directory, synced,
      // renamed into their shard; pins are files; garbage collection lists
      // and unlinks. Every path is relative to the data directory's
      // descriptor, opened before the sandbox.
      .Allow({"mkdirat", "renameat", "renameat2", "unlinkat", "getdents64", "fsync", "fdatasync"},
             "the block store writes, renames, lists and removes its files");
  if (remote) {
    // Only with storage.kubo set: the Kubo RPC API is HTTP over TCP, and
    // libcurl resolves the host name and runs its transfers on a thread.
    policy
        .AllowSocketFamilies({AF_INET, AF_INET6}, "HTTP to the Kubo RPC API")
        // libcurl's global initialisation sizes its caches from the
        // machine's memory (read-only).
        .Allow({"sysinfo"}, "libcurl initialisation reads the memory size");
  }
  return policy;
}

}  // namespace medvault::storage
