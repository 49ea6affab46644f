// InternalServer: the gRPC server of a process on its Unix socket in the
// runtime directory.
//
// Life cycle, matching the sandbox's demands:
//   Bind()  before the sandbox: creates the socket (mode 0660, owned by the
//           socket group when root) so nothing needs filesystem rights later;
//   Start() after the sandbox: builds the gRPC server, whose threads are
//           then born inside the seccomp filter, and starts accepting;
//   Shutdown() stops accepting and finishes calls in flight.
// Every accepted connection's SO_PEERCRED credentials are recorded before
// gRPC sees it; services registered with AddService() are wrapped in the
// per-method allowlist (method_guard.h). The standard grpc.health.v1 service
// is always present and open to anyone who can open the socket; it reports
// NOT_SERVING until SetServing(true).
#ifndef MEDVAULT_DAEMON_COMMON_INTERNAL_SERVER_H_
#define MEDVAULT_DAEMON_COMMON_INTERNAL_SERVER_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/common/method_guard.h"
#include "daemon/common/peer_registry.h"

namespace medvault {

class InternalServer {
 public:
  // Replaces a stale socket file at `path`. `socket_group` may be empty.
  // `allowlist` guards every service added later; it is resolved before the
  // sandbox so no user database is read afterwards.
  static absl::StatusOr<std::unique_ptr<InternalServer>> Bind(const std::string& path,
                                                              const std::string& socket_group,
                                                              MethodAllowlist allowlist);
  ~InternalServer();

  int listen_fd() const { return listen_fd_; }
  // Credentials of the connections accepted so far (see peer_registry.h);
  // services use it when a decision depends on who calls, beyond the
  // per-method allowlist.
  const PeerRegistry& peers() const { return peers_; }
  // Largest request message accepted (gRPC refuses larger ones with
  // RESOURCE_EXHAUSTED before any handler runs). Before Start(); default 4 MiB.
  void set_max_request_bytes(int bytes) { max_request_bytes_ = bytes; }
  const std::string& path() const { return path_; }

  // Before Start(). `service` must outlive this server.
  void AddService(GuardableService* service, const google::protobuf::ServiceDescriptor& descriptor);

  absl::Status Start();
  void SetServing(bool serving);
  void Shutdown();

 private:
  InternalServer(std::string path, int listen_fd, MethodAllowlist allowlist)
      : path_(std::move(path)), listen_fd_(listen_fd), allowlist_(std::move(allowlist)) {}
  void AcceptLoop();

  const std::string path_;
  const int listen_fd_;
  const MethodAllowlist allowlist_;
  int wake_fd_ = -1;
  int max_request_bytes_ = 4 << 20;  // eventfd made by Start(): wakes the accept loop for shutdown
  PeerRegistry peers_;
  std::vector<std::unique_ptr<GuardedService>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::thread acceptor_;
};

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_INTERNAL_SERVER_H_
