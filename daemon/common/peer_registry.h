// Remembers the kernel-reported credentials (SO_PEERCRED) of every
// connection accepted on an internal Unix socket, keyed by descriptor.
//
// The internal servers accept connections themselves and hand each
// descriptor to gRPC (AddInsecureChannelFromFd); gRPC then names the peer
// of every call on that connection "fd:<n>". gRPC keeps the descriptor open
// until the transport is destroyed, which happens only after every call on
// it has finished, so during a call "fd:<n>" names exactly one connection.
// A later connection that reuses the number overwrites the entry before
// gRPC sees it. Thread-safe.
#ifndef MEDVAULT_DAEMON_COMMON_PEER_REGISTRY_H_
#define MEDVAULT_DAEMON_COMMON_PEER_REGISTRY_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace medvault {

struct PeerCredentials {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};

class PeerRegistry {
 public:
  void Record(int fd, const PeerCredentials& creds);
  // Credentials for a gRPC peer string of the form "fd:<n>"; nullopt for
  // any other peer or an unknown descriptor.
  std::optional<PeerCredentials> Lookup(absl::string_view grpc_peer) const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, PeerCredentials> by_fd_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_PEER_REGISTRY_H_
