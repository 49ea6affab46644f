#include "daemon/common/peer_registry.h"

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace medvault {

void PeerRegistry::Record(int fd, const PeerCredentials& creds) {
  absl::MutexLock lock(&mu_);
  by_fd_[fd] = creds;
}

std::optional<PeerCredentials> PeerRegistry::Lookup(absl::string_view grpc_peer) const {
  int fd = -1;
  if (!absl::ConsumePrefix(&grpc_peer, "fd:") || !absl::SimpleAtoi(grpc_peer, &fd)) {
    return std::nullopt;
  }
  absl::MutexLock lock(&mu_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return it->second;
}

}  // namespace medvault
