#include "daemon/medvaultd/supervisor.h"

#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/health_client.h"
#include "daemon/common/logging.h"

extern char** environ;

namespace medvault::supervisor {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(50);
constexpr absl::Duration kProbeTimeout = absl::Milliseconds(500);

// The only variables a child inherits: sanitizer settings of test builds,
// systemd credentials (for the PIN) and locale/time zone.
constexpr const char* kPassedEnv[] = {
    "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "CREDENTIALS_DIRECTORY",
    "TZ",           "LANG",          "LC_ALL"};

std::vector<std::string> ChildEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    for (const char* name : kPassedEnv) {
      if (absl::StartsWith(entry, absl::StrCat(name, "="))) env.emplace_back(entry);
    }
  }
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* name = sigabbrev_np(sig);
    std::string text = absl::StrCat("signal SIG", name != nullptr ? name : std::to_string(sig));
    if (sig == SIGSYS) absl::StrAppend(&text, " (seccomp: a syscall outside its allowlist)");
    return text;
  }
  return absl::StrCat("wait status ", wait_status);
}

Supervisor::Supervisor(const config::v1::Config& config, std::string config_path,
                       std::string bin_dir)
    : config_(config), config_path_(std::move(config_path)), bin_dir_(std::move(bin_dir)) {
  for (Role role : kStartOrder) {
    Child child;
    child.role = role;
    children_.push_back(child);
  }
  sigemptyset(&signals_);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals_, sig);
}

Supervisor::~Supervisor() { StopAll(); }

absl::Status Supervisor::Spawn(Child& child) {
  std::string binary = absl::StrCat(bin_dir_, "/", BinaryName(child.role));
  std::vector<std::string> args = {binary, "--config", config_path_, "--supervisor-pid",
                                   std::to_string(getpid())};
  std::vector<std::string> env = ChildEnvironment();
  std::vector<char*> argv = Pointers(args);
  std::vector<char*> envp = Pointers(env);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // Own process group: a Ctrl-C on the terminal reaches medvaultd only,
  // which then stops the children in order.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot start ", binary, ": ", strerror(rc)));
  }
  child.pid = pid;
  child.state = State::kStarting;
  child.started = absl::Now();
  child.deadline = child.started + absl::Milliseconds(config_.supervisor().start_timeout_ms());
  log::Info("child.started", {{"child", RoleName(child.role)},
                              {"child_pid", static_cast<int64_t>(pid)},
                              {"restarts", child.restarts}});
  return absl::OkStatus();
}

int Supervisor::WaitSignal(absl::Duration timeout) {
  timespec ts = absl::ToTimespec(timeout);
  int sig = sigtimedwait(&signals_, nullptr, &ts);
  return sig < 0 ? 0 : sig;
}

Supervisor::Child* Supervisor::Find(pid_t pid) {
  for (Child& c : children_) {
    if (c.pid == pid) return &c;
  }
  return nullptr;
}

absl::Status Supervisor::Reap(bool starting) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return absl::OkStatus();
    Child* child = Find(pid);
    if (child == nullptr) continue;
    child->pid = 0;
    child->state = State::kStopped;
    std::string how = DescribeExit(status);
    log::Error(
        "child.exited",
        {{"child", RoleName(child->role)}, {"child_pid", static_cast<int64_t>(pid)}, {"how", how}});
    if (starting) {
      return absl::FailedPreconditionError(absl::StrCat(
          BinaryName(child->role), " exited during start-up (", how, "); see its log lines above"));
    }
    absl::Time now = absl::Now();
    absl::Duration window = absl::Milliseconds(config_.supervisor().crash_loop_window_ms());
    child->crashes.push_back(now);
    while (!child->crashes.empty() && now - child->crashes.front() > window) {
      child->crashes.pop_front();
    }
    if (child->crashes.size() > config_.supervisor().crash_loop_restarts()) {
      return absl::AbortedError(
          absl::StrCat(BinaryName(child->role), " is crash-looping: ", child->crashes.size(),
                       " crashes within ", absl::FormatDuration(window), "; last: ", how));
    }
    absl::Duration backoff = absl::Milliseconds(config_.supervisor().initial_backoff_ms()) *
                             (1 << std::min<size_t>(child->crashes.size() - 1, 20));
    backoff = std::min(backoff, absl::Milliseconds(config_.supervisor().max_backoff_ms()));
    child->state = State::kWaitingToRestart;
    child->restart_at = now + backoff;
    log::Warn("child.restart_scheduled",
              {{"child", RoleName(child->role)},
               {"backoff", absl::FormatDuration(backoff)},
               {"recent_crashes", static_cast<uint64_t>(child->crashes.size())}});
  }
}

absl::Status Supervisor::StartAll() {
  for (Child& child : children_) {
    if (auto s = Spawn(child); !s.ok()) return s;
    for (;;) {
      int sig = WaitSignal(kTick);
      if (sig == SIGTERM || sig == SIGINT) return absl::CancelledError("stopped during start-up");
      if (auto s = Reap(/*starting=*/true); !s.ok()) return s;
      HealthReport report = CheckHealth(SocketPath(config_, child.role), kProbeTimeout);
      if (report.health == Health::kServing) {
        child.state = State::kRunning;
        log::Info("child.serving",
                  {{"child", RoleName(child.role)},
                   {"startup", absl::FormatDuration(absl::Now() - child.started)}});
        break;
      }
      if (absl::Now() > child.deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(BinaryName(child.role), " did not report SERVING within ",
                         config_.supervisor().start_timeout_ms(),
                         " ms (last: ", HealthName(report.health), " ", report.detail, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Supervisor::Tick() {
  absl::Time now = absl::Now();
  for (Child& child : children_) {
    switch (child.state) {
      case State::kWaitingToRestart:
        if (now >= child.restart_at) {
          ++child.restarts;
          if (auto s = Spawn(child); !s.ok()) return s;
        }
        break;
      case State::kStarting: {
        HealthReport report = CheckHealth(SocketPath(config_, child.role), kProbeTimeout);
        if (report.health == Health::kServing) {
          child.state = State::kRunning;
          log::Info("child.serving",
                    {{"child", RoleName(child.role)},
                     {"restarts", child.restarts},
                     {"startup", absl::FormatDuration(absl::Now() - child.started)}});
        } else if (now > child.deadline) {
          log::Error("child.start_timeout",
                     {{"child", RoleName(child.role)}, {"health", HealthName(report.health)}});
          kill(child.pid, SIGKILL);  // reaped, and counted, as a crash
        }
        break;
      }
      case State::kRunning:
      case State::kStopped:
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status Supervisor::Run() {
  sd_notify(0, "READY=1\nSTATUS=all processes SERVING");
  log::Info("fleet.serving");
  absl::Status result = absl::OkStatus();
  for (;;) {
    int sig = WaitSignal(kTick);
    if (sig == SIGTERM || sig == SIGINT) {
      log::Info("fleet.stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      break;
    }
    if (sig == SIGHUP) log::Info("sighup_ignored", {{"reason", "restart medvaultd to reload"}});
    result = Reap(/*starting=*/false);
    if (result.ok()) result = Tick();
    if (!result.ok()) {
      log::Error("fleet.giving_up", {{"error", result}});
      sd_notifyf(0, "STATUS=giving up: %s", std::string(result.message()).c_str());
      break;
    }
  }
  StopAll();
  return result;
}

void Supervisor::StopAll() {
  sd_notify(0, "STOPPING=1");
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    Child& child = *it;
    child.state = State::kStopped;
    if (child.pid == 0) continue;
    kill(child.pid, SIGTERM);
    absl::Time deadline = absl::Now() + absl::Milliseconds(config_.supervisor().stop_grace_ms());
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(child.pid, &status, WNOHANG)) == 0 && absl::Now() < deadline) {
      WaitSignal(kTick);
    }
    if (done == 0) {
      log::Warn("child.kill", {{"child", RoleName(child.role)}, {"reason", "stop grace expired"}});
      kill(child.pid, SIGKILL);
      waitpid(child.pid, &status, 0);
    }
    log::Info("child.stopped", {{"child", RoleName(child.role)}, {"how", DescribeExit(status)}});
    child.pid = 0;
  }
}

}  // namespace medvault::supervisor
