// medvaultd: starts and supervises the five medvault service processes on
// machines where systemd does not (development, containers, tests).
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "daemon/common/config.h"
#include "daemon/common/logging.h"
#include "daemon/common/users.h"
#include "daemon/common/version.h"
#include "daemon/medvaultd/supervisor.h"

namespace medvault::supervisor {
namespace {

// The runtime directory holds the sockets: 3770 root:<socket group> when
// root, as systemd-tmpfiles makes it (systemd/medvault-tmpfiles.conf). The
// setgid bit is belt and braces (each process also chowns its socket); the
// sticky bit keeps one process from deleting another's socket and putting
// an impostor in its place. 0700 when not root.
absl::Status PrepareRuntimeDir(const config::v1::Config& config) {
  const std::string& dir = config.runtime_dir();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::FailedPreconditionError(absl::StrCat("runtime_dir ", dir, ": ", ec.message()));
  if (geteuid() == 0) {
    auto gid = LookupGid(config.socket_group());
    if (!gid.ok()) return gid.status();
    if (chown(dir.c_str(), 0, *gid) != 0 || chmod(dir.c_str(), 03770) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("runtime_dir ", dir, ": ", strerror(errno)));
    }
  } else if (chmod(dir.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("runtime_dir ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// medvaultd holds nothing secret but starts processes as root, so it keeps
// only the capabilities they need to demote themselves: switching ids,
// reading their own files and chowning their sockets, and signalling them
// once they run under other users. No core dumps, no ptrace. There is no
// seccomp filter here: filters are inherited across exec, and each child
// installs its own, stricter one.
absl::Status LimitOwnPrivileges() {
  struct rlimit no_core = {0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(absl::StrCat("medvaultd: rlimit/dumpable: ", strerror(errno)));
  }
  if (geteuid() != 0) return absl::OkStatus();
  const cap_value_t keep[] = {CAP_SETUID,       CAP_SETGID,          CAP_SETPCAP, CAP_CHOWN,
                              CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,  CAP_KILL};
  for (cap_value_t cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (std::find(std::begin(keep), std::end(keep), cap) != std::end(keep)) continue;
    if (prctl(PR_CAPBSET_READ, cap) > 0 && cap_drop_bound(cap) != 0) {
      return absl::InternalError(
          absl::StrCat("medvaultd: dropping capability ", cap, ": ", strerror(errno)));
    }
  }
  return absl::OkStatus();
}

std::string DefaultBinDir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

int Main(int argc, char** argv) {
  CLI::App app(absl::StrCat(
      "medvaultd ", kVersion,
      ": starts the medvault processes (keyvault, policy, storage, signer, gateway) in order,\n"
      "waits for each to report SERVING, restarts crashed ones with backoff and stops them all\n"
      "on SIGTERM or Ctrl-C. Under systemd, use the units in systemd/ instead."));
  std::string config_path;
  std::string bin_dir;
  app.add_option("-c,--config", config_path, "configuration file (protobuf text format)")
      ->required();
  app.add_option(
      "--bin-dir", bin_dir,
      "directory of the medvault-* binaries (default: supervisor.bin_dir, else medvaultd's own)");
  app.set_version_flag("--version", std::string(kVersion));
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  log::Init("medvaultd", log::Level::kInfo, log::Format::kLogfmt);
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "medvaultd: " << config.status().message() << "\n";
    return 2;
  }
  log::Init("medvaultd",
            config->logging().level() == config::v1::Logging::DEBUG ? log::Level::kDebug
                                                                    : log::Level::kInfo,
            config->logging().format() == config::v1::Logging::JSON ? log::Format::kJson
                                                                    : log::Format::kLogfmt);
  if (bin_dir.empty()) bin_dir = config->supervisor().bin_dir();
  if (bin_dir.empty()) bin_dir = DefaultBinDir();
  config_path = std::filesystem::absolute(config_path).string();

  if (auto s = LimitOwnPrivileges(); !s.ok()) {
    log::Error("privileges", {{"error", s}});
    return 1;
  }
  if (auto s = PrepareRuntimeDir(*config); !s.ok()) {
    log::Error("runtime_dir", {{"error", s}});
    return 1;
  }
  log::Info("starting", {{"version", kVersion}, {"config", config_path}, {"bin_dir", bin_dir}});
  Supervisor supervisor(*config, config_path, bin_dir);
  if (auto s = supervisor.StartAll(); !s.ok()) {
    log::Error("fleet.start_failed", {{"error", s}});
    supervisor.StopAll();
    return s.code() == absl::StatusCode::kCancelled ? 0 : 1;
  }
  absl::Status result = supervisor.Run();
  log::Info("stopped", {{"result", result}});
  return result.ok() ? 0 : 1;
}

}  // namespace
}  // namespace medvault::supervisor

int main(int argc, char** argv) { return medvault::supervisor::Main(argc, argv); }
