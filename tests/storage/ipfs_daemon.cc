#include "tests/storage/ipfs_daemon.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/medvaultd/supervisor.h"
#include "tests/integration/process_util.h"

namespace medvault::integration {
namespace {

// Ports are picked free but may be taken before node binds them; js-ipfs
// then exits with EADDRINUSE and another pair is tried.
constexpr int kAttempts = 3;

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

absl::StatusOr<std::unique_ptr<IpfsDaemon>> IpfsDaemon::Start(absl::Duration timeout) {
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  if (source == nullptr) {
    return absl::FailedPreconditionError(
        "MEDVAULT_SOURCE_DIR must be set (ctest sets it; by hand: the repository root)");
  }
  const std::string package = absl::StrCat(source, "/tests/ipfs");
  if (access((package + "/node_modules/ipfs/src/cli.js").c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the js-ipfs test node is not installed (", package,
                     "/node_modules/ipfs is missing): run scripts/install-deps"));
  }
  std::unique_ptr<IpfsDaemon> daemon(new IpfsDaemon());
  std::string pattern = "/tmp/medvault-ipfs.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return Errno("mkdtemp");
  daemon->dir_ = pattern;

  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    last = daemon->StartOnce(package + "/start-daemon", deadline);
    if (last.ok()) return daemon;
    // Only a port taken in the meantime is worth another try.
    if (!absl::IsAborted(last)) break;
  }
  return absl::Status(last.code(),
                      absl::StrCat(last.message(), "\n--- node's output:\n", daemon->ReadLog()));
}

absl::Status IpfsDaemon::StartOnce(const std::string& launcher, absl::Time deadline) {
  absl::StatusOr<int> api = PickFreePort();
  if (!api.ok()) return api.status();
  absl::StatusOr<int> gateway = PickFreePort();
  if (!gateway.ok()) return gateway.status();
  if (*api == *gateway) return absl::AbortedError("picked the same port twice");
  api_port_ = *api;
  gateway_port_ = *gateway;

  const std::string log = dir_ + "/node.log";
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Errno(absl::StrCat("open ", log));
  SpawnOptions options;
  // A repository per attempt: its ports are fixed when it is created.
  options.argv = {launcher,
                  "--repo",
                  absl::StrCat(dir_, "/repo-", api_port_),
                  "--api-port",
                  std::to_string(api_port_),
                  "--gateway-port",
                  std::to_string(gateway_port_)};
  options.output_fd = log_fd;
  options.own_process_group = true;
  absl::StatusOr<pid_t> pid = Spawn(std::move(options));
  close(log_fd);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;

  while (absl::Now() < deadline) {
    if (Answers()) return absl::OkStatus();
    if (std::optional<int> status = WaitForExit(pid_, absl::Milliseconds(100))) {
      pid_ = 0;
      std::string why = absl::StrCat("js-ipfs daemon exited (", supervisor::DescribeExit(*status),
                                     ") before its API answered on port ", api_port_);
      if (absl::StrContains(ReadLog(), "EADDRINUSE")) return absl::AbortedError(why);
      return absl::FailedPreconditionError(why);
    }
  }
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("js-ipfs daemon's API did not answer on port ", api_port_, " in time"));
}

bool IpfsDaemon::Answers() const {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return false;
  const std::string url = api_url() + "/api/v0/version";
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Discard);
  if (curl_easy_perform(curl.get()) != CURLE_OK) return false;
  long http = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
  return http == 200;
}

std::string IpfsDaemon::api_url() const { return absl::StrCat("http://127.0.0.1:", api_port_); }

void IpfsDaemon::Kill() {
  if (pid_ == 0) return;
  kill(-pid_, SIGKILL);
  WaitForExit(pid_, absl::InfiniteDuration());
  pid_ = 0;
}

void IpfsDaemon::Stop(absl::Duration grace) {
  if (pid_ == 0) return;
  StopProcessGroup(pid_, grace);
  pid_ = 0;
}

std::string IpfsDaemon::ReadLog() const { return ReadWholeFile(dir_ + "/node.log").value_or(""); }

IpfsDaemon::~IpfsDaemon() {
  Kill();
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace medvault::integration
