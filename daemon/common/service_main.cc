#include "daemon/common/service_main.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/config.h"
#include "daemon/common/logging.h"
#include "daemon/common/sandbox.h"
#include "daemon/common/version.h"
#include "google/protobuf/descriptor.h"

namespace medvault {
namespace {

log::Level LevelOf(const config::v1::Logging& logging) {
  switch (logging.level()) {
    case config::v1::Logging::DEBUG:
      return log::Level::kDebug;
    case config::v1::Logging::WARNING:
      return log::Level::kWarning;
    case config::v1::Logging::ERROR:
      return log::Level::kError;
    default:
      return log::Level::kInfo;
  }
}

// The signals the main thread waits for. They are blocked in every thread
// (gRPC's threads inherit the mask), so only sigwaitinfo sees them.
sigset_t WaitedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
#ifdef MEDVAULT_TEST_HOOKS
  sigaddset(&set, SIGUSR2);
#endif
  return set;
}

#ifdef MEDVAULT_TEST_HOOKS
// Test builds only: SIGUSR2 makes the process call a syscall that no
// medvault allowlist contains, so tests can watch seccomp kill it.
void BreakSeccompPolicy() {
  log::Warn("test_hook.forbidden_syscall", {{"syscall", "mount"}});
  long rc = syscall(SYS_mount, nullptr, nullptr, nullptr, 0, nullptr);
  log::Error("test_hook.seccomp_did_not_kill", {{"rc", static_cast<int64_t>(rc)}});
}
#endif

int Fail(absl::string_view event, const absl::Status& status) {
  log::Error(event, {{"error", status}});
  return 1;
}

}  // namespace

absl::StatusOr<MethodAllowlist> AllowlistFor(const config::v1::Config& config, Role role) {
  const google::protobuf::ServiceDescriptor* service = InternalService(role);
  if (service == nullptr) return MethodAllowlist();
  return MethodAllowlist::FromConfig(ProcessConfig(config, role), *service);
}

int ServiceMain(Role role, int argc, char** argv, ServiceProcess& process) {
  const std::string name = BinaryName(role);
  sigset_t waited = WaitedSignals();
  pthread_sigmask(SIG_BLOCK, &waited, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Whatever a process creates (databases, key files, token objects) is its
  // own alone; sockets are opened up explicitly where they are bound.
  umask(0077);
#ifdef NDEBUG
  // abseil's Mutex records every lock order to find cycles unless told
  // not to, and Debian's abseil is built with it on: a few percent of the
  // gateway's CPU under load. Debug and test builds keep it (they abort on
  // a lock-order cycle); release builds, whose lock orders those builds
  // have exercised, do not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  CLI::App app(absl::StrCat(name, " ", kVersion, ": the ", RoleName(role),
                            " process of medvault. Normally started by medvaultd or systemd."));
  std::string config_path;
  bool check_only = false;
  bool print_policy = false;
  pid_t supervisor_pid = 0;
  app.add_option("-c,--config", config_path,
                 "configuration file (protobuf text format); required except with --print-policy");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.add_flag("--print-policy", print_policy, "print the seccomp allowlist and exit");
  app.add_option("--supervisor-pid", supervisor_pid,
                 "pid of medvaultd; the process exits when it dies");
  app.set_version_flag("--version", std::string(kVersion));
  CLI11_PARSE(app, argc, argv);

  log::Init(RoleName(role), log::Level::kInfo, log::Format::kLogfmt);
  if (print_policy) {
    std::cout << process.Policy().Describe() << "\n";
    return 0;
  }
  if (config_path.empty()) {
    std::cerr << name << ": --config is required\n" << app.help();
    return 2;
  }
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << name << ": " << config.status().message() << "\n";
    return 2;
  }
  log::Init(RoleName(role), LevelOf(config->logging()),
            config->logging().format() == config::v1::Logging::JSON ? log::Format::kJson
                                                                    : log::Format::kLogfmt);
  if (check_only) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  log::Info("starting", {{"version", kVersion}, {"config", config_path}});

  if (auto s = process.Prepare(*config); !s.ok()) return Fail("prepare_failed", s);
  auto allowlist = AllowlistFor(*config, role);
  if (!allowlist.ok()) return Fail("allowlist_invalid", allowlist.status());
  auto internal = InternalServer::Bind(SocketPath(*config, role), config->socket_group(),
                                       *std::move(allowlist));
  if (!internal.ok()) return Fail("bind_failed", internal.status());

  const config::v1::Process& pc = ProcessConfig(*config, role);
  SandboxOptions sandbox{pc.user(), pc.group(), config->socket_group(), process.KeepFds(),
                         supervisor_pid};
  sandbox.keep_fds.push_back((*internal)->listen_fd());
  if (auto s = EnterSandbox(sandbox, process.Policy()); !s.ok()) return Fail("sandbox_failed", s);

  if (auto s = process.Register(**internal); !s.ok()) return Fail("register_failed", s);
  if (auto s = (*internal)->Start(); !s.ok()) return Fail("start_failed", s);
  if (auto s = process.Serve(); !s.ok()) return Fail("serve_failed", s);
  (*internal)->SetServing(true);
  sd_notify(0, "READY=1");
  log::Info("serving", {{"socket", (*internal)->path()}});

  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&waited, &info);
    if (sig == SIGTERM || sig == SIGINT) {
      log::Info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      break;
    }
    if (sig == SIGHUP && !process.Reload()) {
      log::Info("sighup_ignored", {{"reason", "nothing to reload"}});
    }
#ifdef MEDVAULT_TEST_HOOKS
    if (sig == SIGUSR2) BreakSeccompPolicy();
#endif
  }
  (*internal)->SetServing(false);
  sd_notify(0, "STOPPING=1");
  process.Stop();
  (*internal)->Shutdown();
  log::Info("stopped");
  return 0;
}

}  // namespace medvault
