#include "tests/integration/process_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/status_macros.h"
#include "daemon/medvaultd/supervisor.h"

extern char** environ;

namespace medvault::integration {
namespace {

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// --- Starting processes ------------------------------------------------------

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

// `env` with NAME set to `value`, or, when NAME is set already, with
// `value` appended after a ':' (the separator of the sanitizer options).
std::vector<std::string> WithOptionAppended(std::vector<std::string> env, absl::string_view name,
                                            absl::string_view value) {
  const std::string prefix = absl::StrCat(name, "=");
  for (std::string& entry : env) {
    if (absl::StartsWith(entry, prefix)) {
      absl::StrAppend(&entry, entry.size() > prefix.size() ? ":" : "", value);
      return env;
    }
  }
  env.push_back(absl::StrCat(prefix, value));
  return env;
}

// posix_spawnp: argv[0] is looked up in PATH. The child gets no descriptor
// of the test process besides 0, 1 and 2.
absl::StatusOr<pid_t> Spawn(SpawnOptions options) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (options.output_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, options.output_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, options.output_fd, STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  if (options.own_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);

  std::vector<char*> argv = Pointers(options.argv);
  std::vector<char*> envp = Pointers(options.env);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", options.argv[0], ": ", strerror(rc)));
  }
  return pid;
}

// Reaps `pid` (a child of the test) if it exits within `timeout`; returns
// its wait status, or nullopt if it is still running.
std::optional<int> WaitForExit(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    int status = 0;
    pid_t reaped = waitpid(pid, &status, WNOHANG);
    if (reaped == pid) {
      if (pidfd >= 0) close(pidfd);
      return status;
    }
    if (reaped < 0 && errno == ECHILD) break;  // reaped already, or never ours: nothing to wait for
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    if (pidfd >= 0) {
      // Readable once the process has exited.
      pollfd p = {pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    } else {
      absl::SleepFor(std::min(left, kPollInterval));
    }
  }
  if (pidfd >= 0) close(pidfd);
  return std::nullopt;
}

// SIGTERM to a process group, SIGKILL after `grace`; reaps its leader.
void StopProcessGroup(pid_t leader, absl::Duration grace) {
  kill(-leader, SIGTERM);
  if (WaitForExit(leader, grace).has_value()) {
    kill(-leader, SIGKILL);  // whatever the leader left behind
    return;
  }
  kill(-leader, SIGKILL);
  WaitForExit(leader, absl::InfiniteDuration());
}

// --- Looking at processes ------------------------------------------------------

// A snapshot of /proc. Processes that vanish while it is read are left out;
// zombies have no command line.
std::vector<ProcessEntry> ListProcesses() {
  std::vector<ProcessEntry> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    ProcessEntry p;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &p.pid)) continue;
    std::optional<std::string> stat = ReadWholeFile(absl::StrCat("/proc/", p.pid, "/stat"));
    std::optional<std::string> cmdline = ReadWholeFile(absl::StrCat("/proc/", p.pid, "/cmdline"));
    if (!stat || !cmdline) continue;
    // "pid (comm) state ppid ...": comm may contain anything, so parse
    // after the last ')'.
    size_t close_paren = stat->rfind(')');
    char state = 0;
    if (close_paren == std::string::npos ||
        std::sscanf(stat->c_str() + close_paren + 1, " %c %d", &state, &p.ppid) != 2) {
      continue;
    }
    p.argv = absl::StrSplit(absl::StripSuffix(*cmdline, absl::string_view("\0", 1)), '\0',
                            absl::SkipEmpty());
    out.push_back(std::move(p));
  }
  return out;
}

std::string Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

// --- Ports and anvil -------------------------------------------------------------

// A loopback TCP port that was free a moment ago.
namespace {

// Binds 127.0.0.1:port (0: any) to see whether it is free; returns the port
// bound, or 0 when it is taken.
absl::StatusOr<int> TryBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    close(fd);
    if (error == EADDRINUSE && port != 0) return 0;
    errno = error;
    return Errno("picking a free port");
  }
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status s = Errno("picking a free port");
    close(fd);
    return s;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  // Below Linux's default ephemeral range (32768-60999): a port picked
  // there cannot be taken, before the server binds it, by the outgoing
  // connection of a test running beside this one, as a port the kernel
  // handed out for port 0 can.
  static std::mt19937 random{std::random_device{}()};
  static absl::Mutex mu(absl::kConstInit);
  for (int attempt = 0; attempt < 64; ++attempt) {
    int port;
    {
      absl::MutexLock lock(&mu);
      port = std::uniform_int_distribution<int>(20000, 32767)(random);
    }
    ASSIGN_OR_RETURN(int bound, TryBind(port));
    if (bound != 0) return bound;
  }
  return TryBind(0);
}

// One HTTP/1.1 POST of a JSON body to 127.0.0.1:port; returns the whole
// response (status line, headers, body).
absl::StatusOr<std::string> HttpPostJson(int port, absl::string_view body, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
    close(fd);
    return s;
  }
  std::string request =
      absl::StrCat("POST / HTTP/1.1\r\nHost: 127.0.0.1:", port,
                   "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                   "\r\nConnection: close\r\n\r\n", body);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    absl::Status s = absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    close(fd);
    return s;
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = absl::StrCat("pipe2: ", strerror(errno));
    return result;
  }
  SpawnOptions options;
  options.argv = argv;
  options.output_fd = pipe_fds[1];
  absl::StatusOr<pid_t> pid = Spawn(std::move(options));
  close(pipe_fds[1]);
  if (!pid.ok()) {
    close(pipe_fds[0]);
    result.output = pid.status().ToString();
    return result;
  }
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[4096];
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p = {pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output
    result.output.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  std::optional<int> status =
      WaitForExit(*pid, std::max(deadline - absl::Now(), absl::ZeroDuration()));
  if (!status.has_value()) {
    kill(*pid, SIGKILL);
    WaitForExit(*pid, absl::InfiniteDuration());
    absl::StrAppend(&result.output, "\n[killed: still running after ",
                    absl::FormatDuration(timeout), "]");
    return result;
  }
  if (WIFEXITED(*status)) {
    result.exit_code = WEXITSTATUS(*status);
  } else {
    absl::StrAppend(&result.output, "\n[", supervisor::DescribeExit(*status), "]");
  }
  return result;
}

absl::StatusOr<std::map<std::string, std::string>> ReadProcStatus(pid_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/status");
  std::optional<std::string> text = ReadWholeFile(path);
  if (!text) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    fields[std::string(kv.first)] = std::string(absl::StripAsciiWhitespace(kv.second));
  }
  return fields;
}

}  // namespace medvault::integration
