#include "tests/integration/keyvault_process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/common/config.h"
#include "daemon/common/health_client.h"
#include "daemon/common/roles.h"
#include "daemon/common/users.h"
#include "daemon/medvaultd/supervisor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "tests/integration/process_util.h"

namespace medvault::integration {
namespace {

std::string FromEnv(const std::string& given, const char* name) {
  if (!given.empty()) return given;
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Adds `user` to the callers of every method of the keyvault's service,
// keeping the callers the configuration already names.
void AllowEverywhere(config::v1::Process& process, const std::string& user) {
  const google::protobuf::ServiceDescriptor* service = InternalService(Role::kKeyvault);
  for (int m = 0; m < service->method_count(); ++m) {
    const std::string& method = service->method(m)->name();
    config::v1::MethodAccess* entry = nullptr;
    for (auto& existing : *process.mutable_allow()) {
      if (existing.method() == method) entry = &existing;
    }
    if (entry == nullptr) {
      entry = process.add_allow();
      entry->set_method(method);
    }
    bool present = false;
    for (const std::string& caller : entry->callers()) present |= caller == user;
    if (!present) entry->add_callers(user);
  }
}

std::string PrimaryGroupName(uid_t uid) {
  passwd* pw = getpwuid(uid);
  if (pw == nullptr) return "";
  group* gr = getgrgid(pw->pw_gid);
  return gr != nullptr ? gr->gr_name : "";
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyvaultProcess>> KeyvaultProcess::Create(const Options& options) {
  std::unique_ptr<KeyvaultProcess> p(new KeyvaultProcess());
  p->bin_dir_ = FromEnv(options.bin_dir, "MEDVAULT_BIN_DIR");
  p->source_dir_ = FromEnv(options.source_dir, "MEDVAULT_SOURCE_DIR");
  if (p->bin_dir_.empty() || p->source_dir_.empty()) {
    return absl::FailedPreconditionError(
        "MEDVAULT_BIN_DIR and MEDVAULT_SOURCE_DIR must be set (ctest sets them; by hand: "
        "<build>/bin and the repository root)");
  }
  for (const std::string& path :
       {p->bin_dir_ + "/medvault-keyvault", p->source_dir_ + "/scripts/dev-env"}) {
    if (access(path.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is not an executable file"));
    }
  }
  std::string pattern = "/tmp/medvault-keyvault.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return Errno("mkdtemp");
  p->dir_ = pattern;
  // The keyvault's user must be able to traverse it to reach its files.
  if (chmod(p->dir_.c_str(), 0711) != 0) return Errno(absl::StrCat("chmod ", p->dir_));
  if (auto s = p->RunDevEnv(); !s.ok()) return s;
  if (auto s = p->WriteConfig(options); !s.ok()) return s;
  return p;
}

absl::Status KeyvaultProcess::RunDevEnv() {
  // The keyvault serves no TCP port and calls no chain; dev-env requires
  // both values all the same. Port 1 and a closed URL are never used.
  CommandResult result = RunCommand({source_dir_ + "/scripts/dev-env", "--dir", dir_,
                                     "--gateway-port", "1", "--rpc-url", "http://127.0.0.1:1"},
                                    absl::Seconds(120));
  if (result.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("scripts/dev-env --dir ", dir_, " failed:\n", result.output));
  }
  return absl::OkStatus();
}

absl::Status KeyvaultProcess::WriteConfig(const Options& options) {
  absl::StatusOr<config::v1::Config> config = LoadConfig(dir_ + "/medvault.textproto");
  if (!config.ok()) return config.status();
  caller_user_ = UserName(geteuid());
  AllowEverywhere(*config->mutable_keyvault()->mutable_process(), caller_user_);
  if (options.gateway_is_caller) {
    config::v1::Process* gateway = config->mutable_gateway()->mutable_process();
    gateway->set_user(caller_user_);
    gateway->set_group(PrimaryGroupName(geteuid()));
  }
  signer_user_ = config->signer().process().user();
  if (options.sessions > 0) {
    config->mutable_keyvault()->mutable_pkcs11()->set_sessions(options.sessions);
  }
  if (options.patient_key_cache > 0) {
    config->mutable_keyvault()->set_patient_key_cache(options.patient_key_cache);
  }
  if (options.quiet) config->mutable_logging()->set_level(config::v1::Logging::WARNING);
  config->mutable_keyvault()->set_hold_regulator_key(options.hold_regulator_key);

  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(*config, &text)) {
    return absl::InternalError("cannot print the keyvault's configuration");
  }
  std::ofstream out(config_path());
  out << "# Written by tests/integration/keyvault_process.cc from medvault.textproto.\n" << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", config_path()));
  chmod(config_path().c_str(), 0644);
  // Check the result as the keyvault will read it.
  return LoadConfig(config_path()).status();
}

KeyvaultProcess::~KeyvaultProcess() {
  Kill();
  if (dir_.empty()) return;
  const char* keep = std::getenv("MEDVAULT_KEEP_KEYVAULT_DIR");
  if (keep_ && keep != nullptr && std::string(keep) == "1") {
    std::cerr << "kept " << dir_ << " (MEDVAULT_KEEP_KEYVAULT_DIR=1)\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) std::cerr << "cannot remove " << dir_ << ": " << ec.message() << "\n";
}

absl::Status KeyvaultProcess::Start(absl::Duration timeout) {
  if (pid_ != 0) return absl::FailedPreconditionError("the keyvault is already running");
  int log_fd = open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Errno(absl::StrCat("open ", log_path()));
  SpawnOptions spawn;
  spawn.argv = {bin_dir_ + "/medvault-keyvault", "--config", config_path()};
#if defined(MEDVAULT_SANITIZE)
  // LeakSanitizer stops the world with ptrace, which the keyvault's seccomp
  // filter forbids (and PR_SET_DUMPABLE=0 prevents). Only the keyvault
  // loses leak detection; the test process keeps it.
  spawn.env = WithOptionAppended(CurrentEnvironment(), "ASAN_OPTIONS", "detect_leaks=0");
#endif
  spawn.output_fd = log_fd;
  // A group of its own, so that Kill() also reaches whatever a wrapper
  // (strace, valgrind) put between the test and the keyvault.
  spawn.own_process_group = true;
  absl::StatusOr<pid_t> pid = Spawn(std::move(spawn));
  close(log_fd);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;

  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (std::optional<int> status = Exited()) {
      return absl::FailedPreconditionError(absl::StrCat("medvault-keyvault exited before serving (",
                                                        supervisor::DescribeExit(*status),
                                                        "); see ", log_path()));
    }
    HealthReport report = CheckHealth(socket_path(), absl::Seconds(1));
    if (report.health == Health::kServing) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      Kill();
      return absl::DeadlineExceededError(
          absl::StrCat("medvault-keyvault not SERVING after ", absl::FormatDuration(timeout), " (",
                       HealthName(report.health), ": ", report.detail, "); see ", log_path()));
    }
    absl::SleepFor(kPollInterval);
  }
}

void KeyvaultProcess::Kill() {
  if (pid_ == 0) return;
  kill(-pid_, SIGKILL);
  WaitForExit(pid_, absl::InfiniteDuration());
  pid_ = 0;
}

absl::Status KeyvaultProcess::Restart(absl::Duration timeout) {
  Kill();
  return Start(timeout);
}

absl::StatusOr<int> KeyvaultProcess::Stop(absl::Duration grace) {
  if (pid_ == 0) return absl::FailedPreconditionError("the keyvault is not running");
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitForExit(pid_, grace);
  if (!status.has_value()) {
    Kill();
    return absl::DeadlineExceededError(absl::StrCat(
        "medvault-keyvault still running ", absl::FormatDuration(grace), " after SIGTERM; killed"));
  }
  pid_ = 0;
  return *status;
}

std::optional<int> KeyvaultProcess::Exited() {
  if (pid_ == 0) return std::nullopt;
  std::optional<int> status = WaitForExit(pid_, absl::ZeroDuration());
  if (status.has_value()) pid_ = 0;
  return status;
}

bool KeyvaultProcess::Serving() const {
  return CheckHealth(socket_path(), absl::Seconds(2)).health == Health::kServing;
}

std::shared_ptr<grpc::Channel> KeyvaultProcess::NewChannel(bool own_connection) const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("unix:" + socket_path(), grpc::InsecureChannelCredentials(),
                                   args);
}

std::unique_ptr<internal::v1::KeyVault::Stub> KeyvaultProcess::NewStub(bool own_connection) const {
  return internal::v1::KeyVault::NewStub(NewChannel(own_connection));
}

std::string KeyvaultProcess::ReadLog() const { return ReadWholeFile(log_path()).value_or(""); }

std::vector<std::string> KeyvaultProcess::SanitizerReports() const {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(ReadLog(), '\n')) {
    bool sanitizer = absl::StrContains(line, "Sanitizer") &&
                     (absl::StrContains(line, "ERROR") || absl::StrContains(line, "SUMMARY") ||
                      absl::StrContains(line, "DEADLYSIGNAL"));
    if (sanitizer || absl::StrContains(line, "runtime error:")) out.emplace_back(line);
  }
  return out;
}

}  // namespace medvault::integration
