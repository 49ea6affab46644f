#include "tests/storage/fake_kubo.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace medvault::storage {
namespace {

// Reads until the request (headers and body) is complete or the peer
// stops; the body may be chunked (uploads) or sized.
std::string ReadRequest(int fd) {
  std::string in;
  char buffer[65536];
  for (;;) {
    size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string headers = absl::AsciiStrToLower(in.substr(0, end));
      absl::string_view body = absl::string_view(in).substr(end + 4);
      if (absl::StrContains(headers, "transfer-encoding: chunked")) {
        if (absl::StrContains(body, "\r\n0\r\n\r\n") || absl::StartsWith(body, "0\r\n\r\n")) {
          return in;
        }
      } else {
        size_t length = 0;
        size_t at = headers.find("content-length:");
        if (at != std::string::npos) {
          absl::string_view rest = absl::string_view(headers).substr(at + 15);
          rest = rest.substr(0, rest.find("\r\n"));
          if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &length)) length = 0;
        }
        if (body.size() >= length) return in;
      }
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return in;
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return in;
    in.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeKubo>> FakeKubo::Start() {
  std::unique_ptr<FakeKubo> server(new FakeKubo());
  server->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server->listen_fd_ < 0) return absl::InternalError(strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(server->listen_fd_, 16) != 0 ||
      getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return absl::InternalError(absl::StrCat("fake kubo: ", strerror(errno)));
  }
  server->port_ = ntohs(addr.sin_port);
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  return server;
}

FakeKubo::~FakeKubo() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string FakeKubo::api_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeKubo::Answer(const std::string& command, Reply reply) {
  absl::MutexLock lock(&mu_);
  replies_[command] = std::move(reply);
}

std::vector<std::string> FakeKubo::Requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakeKubo::Serve() {
  while (!stopping_) {
    pollfd p = {listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Handle(fd);
    close(fd);
  }
}

void FakeKubo::Handle(int fd) {
  std::string request = ReadRequest(fd);
  std::string line = request.substr(0, request.find("\r\n"));
  // "POST /api/v0/<command>?query HTTP/1.1"
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  std::string command;
  if (parts.size() >= 2) {
    absl::string_view path = parts[1];
    path = path.substr(0, path.find('?'));
    absl::ConsumePrefix(&path, "/api/v0/");
    command = std::string(path);
  }
  Reply reply{500, R"({"Message":"fake kubo: no reply for this command","Code":0,"Type":"error"})"};
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(line);
    if (auto it = replies_.find(command); it != replies_.end()) reply = it->second;
  }
  std::string response =
      absl::StrCat("HTTP/1.1 ", reply.status, " X\r\nContent-Length: ", reply.body.size(),
                   "\r\nConnection: close\r\n\r\n", reply.body);
  for (size_t at = 0; at < response.size();) {
    ssize_t n = send(fd, response.data() + at, response.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

}  // namespace medvault::storage
