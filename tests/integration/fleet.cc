#include "tests/integration/fleet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "daemon/medvaultd/supervisor.h"
#include "grpc/health/v1/health.grpc.pb.h"

extern char** environ;

namespace medvault::integration {
namespace {

// True once the node at `port` answers eth_chainId with anvil's chain id.
bool AnvilAnswers(int port) {
  auto response = HttpPostJson(
      port, R"({"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]})", absl::Seconds(2));
  return response.ok() &&
         absl::StrContains(*response,
                           absl::StrCat("\"result\":\"0x", absl::Hex(kAnvilChainId), "\""));
}

// Lines of a log that belong to an AddressSanitizer, LeakSanitizer or
// UndefinedBehaviorSanitizer report.
std::vector<std::string> SanitizerReportLines(absl::string_view log) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    bool sanitizer = absl::StrContains(line, "Sanitizer") &&
                     (absl::StrContains(line, "ERROR") || absl::StrContains(line, "SUMMARY") ||
                      absl::StrContains(line, "DEADLYSIGNAL"));
    if (sanitizer || absl::StrContains(line, "runtime error:")) out.emplace_back(line);
  }
  return out;
}

}  // namespace

// --- Fleet: set-up and tear-down -------------------------------------------------------

void Fleet::SetUp() {
  absl::Status started = Start();
  ASSERT_TRUE(started.ok()) << "the fleet did not start: " << started;
}

void Fleet::TearDown() {
  StopEverything();
  if (dir_.empty()) return;
  // A sanitizer report from any process fails the test, even if medvaultd
  // restarted the process and the test saw nothing wrong.
  std::vector<std::string> reports = SanitizerReportLines(ReadLog());
  EXPECT_THAT(reports, ::testing::IsEmpty()) << "sanitizer reports in " << log_path();
  if (HasFailure()) {
    for (const char* file : {"medvaultd.log", "anvil.log"}) {
      std::optional<std::string> text = ReadWholeFile(absl::StrCat(dir_, "/", file));
      if (text && !text->empty()) {
        std::cerr << "----- " << dir_ << "/" << file << " -----\n"
                  << *text << "----- end of " << file << " -----\n";
      }
    }
    const char* keep = std::getenv("MEDVAULT_KEEP_FLEET_DIR");
    if (keep != nullptr && std::string(keep) == "1") {
      std::cerr << "kept " << dir_ << " (MEDVAULT_KEEP_FLEET_DIR=1)\n";
      return;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) std::cerr << "cannot remove " << dir_ << ": " << ec.message() << "\n";
}

absl::Status Fleet::Start() {
  if (auto s = LocateBuild(); !s.ok()) return s;
  if (auto s = MakeDirectory(); !s.ok()) return s;
  absl::StatusOr<int> port = PickFreePort();
  if (!port.ok()) return port.status();
  gateway_port_ = *port;
  if (auto s = StartAnvil(); !s.ok()) return s;
  if (auto s = RunDevEnv(dir_, gateway_port_, anvil_port_); !s.ok()) return s;
  if (auto s = StartMedvaultd(); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + kStartTimeout;
  if (auto s = WaitAllServing(kStartTimeout); !s.ok()) return s;
  return WaitSupervising(deadline);
}

absl::Status Fleet::WaitSupervising(absl::Time deadline) {
  for (;;) {
    if (auto s = CheckMedvaultdRunning(); !s.ok()) return s;
    absl::Status logged =
        WaitForLogLine({"proc=medvaultd ", "event=fleet.serving"}, absl::ZeroDuration());
    if (logged.ok() || absl::Now() >= deadline) return logged;
    absl::SleepFor(kPollInterval);
  }
}

absl::Status Fleet::LocateBuild() {
  const char* bin = std::getenv("MEDVAULT_BIN_DIR");
  if (bin == nullptr) {
    return absl::FailedPreconditionError(
        "MEDVAULT_BIN_DIR must be set (ctest sets it; when running the binary by hand, point it "
        "at <build>/bin, and MEDVAULT_SOURCE_DIR at the repository root)");
  }
  bin_dir_ = bin;
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  if (source == nullptr) return absl::FailedPreconditionError("MEDVAULT_SOURCE_DIR must be set");
  source_dir_ = source;
  for (const std::string& path :
       {binary("medvaultd"), binary("medvaultctl"), source_dir_ + "/scripts/dev-env"}) {
    if (access(path.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is not an executable file"));
    }
  }
  return absl::OkStatus();
}

absl::Status Fleet::MakeDirectory() {
  std::string pattern = "/tmp/medvault-fleet.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return Errno("mkdtemp");
  dir_ = pattern;
  // The service users must be able to traverse it to reach their files.
  if (chmod(dir_.c_str(), 0711) != 0) return Errno(absl::StrCat("chmod ", dir_));
  return absl::OkStatus();
}

absl::Status Fleet::StartAnvil() {
  const std::string anvil = source_dir_ + "/contracts/node_modules/.bin/anvil";
  if (access(anvil.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(anvil, " is missing (npm ci in contracts/)"));
  }
  const std::string log = dir_ + "/anvil.log";
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Errno(absl::StrCat("open ", log));
  // The port was free when picked but may be taken before anvil binds it:
  // then anvil exits and another port is tried.
  absl::Status last = absl::UnknownError("anvil was not started");
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) {
      last = port.status();
      continue;
    }
    SpawnOptions options;
    options.argv = {anvil, "--host", "127.0.0.1", "--port", std::to_string(*port), "--silent"};
    options.output_fd = log_fd;
    // The npm wrapper runs the real anvil as its child; a process group of
    // their own lets tear-down signal both.
    options.own_process_group = true;
    absl::StatusOr<pid_t> pid = Spawn(std::move(options));
    if (!pid.ok()) {
      close(log_fd);
      return pid.status();
    }
    anvil_pid_ = *pid;
    anvil_port_ = *port;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (AnvilAnswers(anvil_port_)) {
        close(log_fd);
        return absl::OkStatus();
      }
      if (std::optional<int> status = WaitForExit(anvil_pid_, kPollInterval)) {
        last =
            absl::UnavailableError(absl::StrCat("anvil on port ", anvil_port_, " exited (",
                                                supervisor::DescribeExit(*status), "); see ", log));
        anvil_pid_ = 0;
        break;
      }
    }
    if (anvil_pid_ != 0) {
      last = absl::DeadlineExceededError(
          absl::StrCat("anvil on port ", anvil_port_, " did not answer eth_chainId within 30s"));
      StopAnvil();
    }
  }
  close(log_fd);
  return last;
}

absl::Status Fleet::RunDevEnv(const std::string& env_dir, int gateway_port, int rpc_port) const {
  CommandResult result =
      RunCommand({source_dir_ + "/scripts/dev-env", "--dir", env_dir, "--gateway-port",
                  std::to_string(gateway_port), "--rpc-url",
                  absl::StrCat("http://127.0.0.1:", rpc_port), "--client", kClientName},
                 absl::Seconds(120));
  if (result.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("scripts/dev-env --dir ", env_dir, " failed:\n", result.output));
  }
  return absl::OkStatus();
}

absl::Status Fleet::StartMedvaultd() {
  int log_fd = open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Errno(absl::StrCat("open ", log_path()));
  SpawnOptions options;
  options.argv = {binary("medvaultd"), "--config", config_path(), "--bin-dir", bin_dir_};
  // LeakSanitizer stops the world with ptrace, which the children's seccomp
  // filters forbid (and PR_SET_DUMPABLE=0 prevents); medvaultd passes
  // ASAN_OPTIONS on to them. Only these processes lose leak detection.
  options.env = WithOptionAppended(CurrentEnvironment(), "ASAN_OPTIONS", "detect_leaks=0");
  options.output_fd = log_fd;
  options.own_process_group = true;
  absl::StatusOr<pid_t> pid = Spawn(std::move(options));
  close(log_fd);
  if (!pid.ok()) return pid.status();
  medvaultd_pid_ = *pid;
  return absl::OkStatus();
}

void Fleet::StopEverything() {
  if (medvaultd_pid_ != 0) {
    absl::StatusOr<int> stopped = StopMedvaultd(kStopGrace);
    if (!stopped.ok()) {
      std::cerr << "medvaultd did not stop within " << kStopGrace
                << "; killing its process group\n";
      kill(-medvaultd_pid_, SIGKILL);
      WaitForExit(medvaultd_pid_, absl::InfiniteDuration());
      medvaultd_pid_ = 0;
    }
  }
  // Children of a medvaultd that died abruptly get SIGTERM from the kernel
  // (PR_SET_DEATHSIG) but may still be on their way out.
  if (!dir_.empty()) {
    for (pid_t pid : FleetProcesses()) kill(pid, SIGKILL);
  }
  StopAnvil();
}

void Fleet::StopAnvil() {
  if (anvil_pid_ == 0) return;
  StopProcessGroup(anvil_pid_, absl::Seconds(5));
  anvil_pid_ = 0;
}

// --- Fleet: paths ----------------------------------------------------------------------

std::string Fleet::gateway_address() const { return absl::StrCat("127.0.0.1:", gateway_port_); }

std::string Fleet::socket_path(Role role) const {
  return absl::StrCat(dir_, "/run/", RoleName(role), ".sock");
}

std::string Fleet::binary(absl::string_view name) const {
  return absl::StrCat(bin_dir_, "/", name);
}

// --- Fleet: processes ------------------------------------------------------------------

absl::StatusOr<pid_t> Fleet::ChildPid(Role role) const {
  const std::string name = BinaryName(role);
  std::vector<pid_t> found;
  for (const ProcessEntry& p : ListProcesses()) {
    if (p.ppid == medvaultd_pid_ && !p.argv.empty() && Basename(p.argv[0]) == name) {
      found.push_back(p.pid);
    }
  }
  if (found.empty()) return absl::NotFoundError(absl::StrCat("no ", name, " under medvaultd"));
  if (found.size() > 1) {
    return absl::InternalError(
        absl::StrCat(found.size(), " processes ", name, ": ", absl::StrJoin(found, " ")));
  }
  return found.front();
}

std::vector<pid_t> Fleet::FleetProcesses() const {
  std::vector<pid_t> out;
  const std::string config = config_path();
  for (const ProcessEntry& p : ListProcesses()) {
    for (const std::string& arg : p.argv) {
      if (arg == config) {
        out.push_back(p.pid);
        break;
      }
    }
  }
  return out;
}

absl::Status Fleet::CheckMedvaultdRunning() {
  if (medvaultd_pid_ == 0) return absl::FailedPreconditionError("medvaultd is not running");
  if (std::optional<int> status = WaitForExit(medvaultd_pid_, absl::ZeroDuration())) {
    medvaultd_pid_ = 0;
    return absl::FailedPreconditionError(
        absl::StrCat("medvaultd exited (", supervisor::DescribeExit(*status), "); see its log"));
  }
  return absl::OkStatus();
}

absl::Status Fleet::WaitServing(Role role, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  HealthReport last{Health::kUnreachable, "not probed"};
  for (;;) {
    if (auto s = CheckMedvaultdRunning(); !s.ok()) return s;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    last = CheckHealth(socket_path(role), std::min(left, absl::Seconds(1)));
    if (last.health == Health::kServing) return absl::OkStatus();
    absl::SleepFor(kPollInterval);
  }
  return absl::DeadlineExceededError(
      absl::StrCat(RoleName(role), " not SERVING after ", absl::FormatDuration(timeout),
                   " (last: ", HealthName(last.health), " ", last.detail, ")"));
}

absl::Status Fleet::WaitAllServing(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (Role role : kStartOrder) {
    if (auto s = WaitServing(role, deadline - absl::Now()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> Fleet::WaitRestarted(Role role, pid_t old_pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no new process yet";
  for (;;) {
    if (auto s = CheckMedvaultdRunning(); !s.ok()) return s;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    // medvaultd starts the new process only after reaping the old one, so
    // once a new pid exists only that process can answer on the socket.
    absl::StatusOr<pid_t> pid = ChildPid(role);
    if (pid.ok() && *pid != old_pid) {
      HealthReport report = CheckHealth(socket_path(role), std::min(left, absl::Seconds(1)));
      if (report.health == Health::kServing) return *pid;
      last = absl::StrCat("pid ", *pid, " ", HealthName(report.health), " ", report.detail);
    } else if (pid.ok()) {
      last = absl::StrCat("still the old pid ", old_pid);
    }
    absl::SleepFor(kPollInterval);
  }
  return absl::DeadlineExceededError(absl::StrCat(RoleName(role), " not back SERVING after ",
                                                  absl::FormatDuration(timeout), " (", last, ")"));
}

absl::StatusOr<int> Fleet::StopMedvaultd(absl::Duration grace) {
  if (medvaultd_pid_ == 0) return absl::FailedPreconditionError("medvaultd is not running");
  if (kill(medvaultd_pid_, SIGTERM) != 0) return Errno("kill medvaultd");
  return WaitMedvaultdExit(grace);
}

absl::StatusOr<int> Fleet::WaitMedvaultdExit(absl::Duration timeout) {
  if (medvaultd_pid_ == 0) return absl::FailedPreconditionError("medvaultd is not running");
  std::optional<int> status = WaitForExit(medvaultd_pid_, timeout);
  if (!status.has_value()) {
    return absl::DeadlineExceededError(
        absl::StrCat("medvaultd still running after ", absl::FormatDuration(timeout)));
  }
  medvaultd_pid_ = 0;
  return *status;
}

// --- Fleet: log ------------------------------------------------------------------------

std::string Fleet::ReadLog() const { return ReadWholeFile(log_path()).value_or(""); }

absl::Status Fleet::WaitForLogLine(std::initializer_list<std::string> parts,
                                   absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    std::string log = ReadLog();
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      bool all = true;
      for (const std::string& part : parts) all = all && absl::StrContains(line, part);
      if (all) return absl::OkStatus();
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(kPollInterval);
  }
  return absl::NotFoundError(absl::StrCat("no line of ", log_path(), " contains all of [",
                                          absl::StrJoin(parts, "|"), "] after ",
                                          absl::FormatDuration(timeout)));
}

// --- Fleet: tools ----------------------------------------------------------------------

CommandResult Fleet::RunCtl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {binary("medvaultctl"), "-c", config_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

CommandResult Fleet::RunCtlAs(const std::string& user, const std::vector<std::string>& args) const {
  passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return {-1, absl::StrCat("no user ", user)};
  std::vector<std::string> argv = {"setpriv",
                                   absl::StrCat("--reuid=", pw->pw_uid),
                                   absl::StrCat("--regid=", pw->pw_gid),
                                   "--init-groups",
                                   "--",
                                   binary("medvaultctl"),
                                   "-c",
                                   config_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

absl::Status Fleet::DeployContracts() {
  CommandResult keys = RunCtl({"chain", "keys"});
  if (keys.exit_code != 0) return absl::InternalError("medvaultctl chain keys: " + keys.output);
  // anvil's development chain: 100 ether of gas money for each key.
  for (absl::string_view line : absl::StrSplit(keys.output, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 2 || !absl::StartsWith(fields[1], "0x")) continue;
    auto funded = HttpPostJson(
        anvil_port_,
        absl::StrCat(R"({"jsonrpc":"2.0","id":1,"method":"anvil_setBalance","params":[")",
                     fields[1], R"(","0x56bc75e2d63100000"]})"),
        absl::Seconds(5));
    if (!funded.ok()) return funded.status();
  }
  CommandResult deployed = RunCommand({binary("medvaultctl"), "-c", config_path(), "chain",
                                       "deploy", "--artifacts", bin_dir_ + "/../contracts"},
                                      absl::Seconds(120));
  if (deployed.exit_code != 0) {
    return absl::InternalError("medvaultctl chain deploy: " + deployed.output);
  }
  // Its standard output is the signer block's lines; stderr's are
  // prefixed "medvaultctl:".
  std::string lines;
  for (absl::string_view line : absl::StrSplit(deployed.output, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "medvaultctl:")) absl::StrAppend(&lines, "  ", line, "\n");
  }
  std::optional<std::string> config = ReadWholeFile(config_path());
  if (!config.has_value()) return absl::InternalError("cannot read " + config_path());
  const size_t signer = config->find("\nsigner {\n");
  if (signer == std::string::npos) return absl::InternalError("no signer block in the config");
  config->insert(signer + std::string("\nsigner {\n").size(), lines);
  std::ofstream(config_path(), std::ios::trunc) << *config;

  absl::StatusOr<int> stopped = StopMedvaultd(kStopGrace);
  if (!stopped.ok()) return stopped.status();
  if (auto s = StartMedvaultd(); !s.ok()) return s;
  const absl::Time deadline = absl::Now() + kStartTimeout;
  if (auto s = WaitAllServing(kStartTimeout); !s.ok()) return s;
  return WaitSupervising(deadline);
}

absl::Status Fleet::SetLicence(const std::string& licence_key, const std::string& status,
                               absl::Time valid_until) {
  CommandResult set = RunCtl(
      {"chain", "set-licence", "--practitioner", licence_key, "--status", status, "--valid-until",
       absl::StrCat(absl::ToUnixSeconds(valid_until)), "--evidence", "0x" + std::string(64, 'e')});
  if (set.exit_code != 0)
    return absl::InternalError("medvaultctl chain set-licence: " + set.output);
  // `chain licence` prints "<key> <status> (was ...) ...".
  const std::string shown = absl::StrCat(absl::AsciiStrToLower(licence_key), " ", status, " ");
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
    CommandResult licence = RunCtl({"chain", "licence", "--practitioner", licence_key});
    if (licence.exit_code == 0 && absl::StartsWith(licence.output, shown)) {
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the signer's index never showed licence ",
                                                      licence_key, " as ", status,
                                                      "; last answer: ", licence.output));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<std::string> Fleet::MakeEnvironmentWithAnotherCa() const {
  std::string env_dir = dir_ + "/another-ca";
  if (auto s = RunDevEnv(env_dir, gateway_port_, anvil_port_); !s.ok()) return s;
  return env_dir;
}

}  // namespace medvault::integration
