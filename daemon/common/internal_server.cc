#include "daemon/common/internal_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/users.h"

namespace medvault {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<InternalServer>> InternalServer::Bind(
    const std::string& path, const std::string& socket_group, MethodAllowlist allowlist) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a socket"));
    }
    unlink(path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket for", path);
  // Created 0600 and widened only after the owner is right, so the socket
  // is never reachable by the wrong group, even for an instant.
  mode_t old_umask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old_umask);
  if (rc != 0) {
    close(fd);
    return Errno("bind", path);
  }
  if (geteuid() == 0 && !socket_group.empty()) {
    auto gid = LookupGid(socket_group);
    if (!gid.ok() || chown(path.c_str(), 0, *gid) != 0) {
      close(fd);
      return gid.ok() ? Errno("chown", path) : gid.status();
    }
  }
  if (chmod(path.c_str(), 0660) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return Errno("listen on", path);
  }
  return std::unique_ptr<InternalServer>(new InternalServer(path, fd, std::move(allowlist)));
}

InternalServer::~InternalServer() {
  Shutdown();
  close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void InternalServer::AddService(GuardableService* service,
                                const google::protobuf::ServiceDescriptor& descriptor) {
  services_.push_back(std::make_unique<GuardedService>(service, descriptor, allowlist_, &peers_));
}

absl::Status InternalServer::Start() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Errno("eventfd for", path_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(max_request_bytes_);
  for (auto& service : services_) builder.RegisterService(service.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr)
    return absl::InternalError(absl::StrCat("cannot start gRPC server for ", path_));
  SetServing(false);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  log::Info("internal_server.listening", {{"socket", path_}});
  return absl::OkStatus();
}

void InternalServer::SetServing(bool serving) {
  if (server_ != nullptr && server_->GetHealthCheckService() != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(serving);
  }
}

void InternalServer::Shutdown() {
  if (acceptor_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    acceptor_.join();
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
}

void InternalServer::AcceptLoop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error("internal_server.poll_failed", {{"socket", path_}, {"error", strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        log::Warn("internal_server.accept_failed", {{"socket", path_}, {"error", strerror(errno)}});
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log::Warn("internal_server.peercred_failed", {{"socket", path_}, {"error", strerror(errno)}});
      close(fd);
      continue;
    }
    peers_.Record(fd, {cred.pid, cred.uid, cred.gid});
    log::Debug("internal_server.accepted", {{"fd", fd},
                                            {"uid", static_cast<uint64_t>(cred.uid)},
                                            {"pid", static_cast<int64_t>(cred.pid)}});
    grpc::AddInsecureChannelFromFd(server_.get(), fd);
  }
}

}  // namespace medvault
