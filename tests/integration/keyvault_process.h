// KeyvaultProcess: the real medvault-keyvault, alone (no medvaultd), for
// the keyvault's socket-level tests and its benchmark.
//
// Create() runs scripts/dev-env into a fresh temporary directory (SoftHSM2
// token, PIN, state directory, configuration) and writes a configuration of
// its own next to the generated one, <dir>/keyvault.textproto, in which:
//   - the caller of every KeyVault method is the user running the test
//     (root in CI), on top of whatever dev-env allowed;
//   - with Options::gateway_is_caller, the gateway's user is the test's
//     user as well, so that UnwrapDatabaseKey("gateway") is the caller's own
//     database key. The signer keeps dev-env's user (medvault-signer when
//     run as root), whose key the test user may not unwrap.
// Start() runs <bin_dir>/medvault-keyvault --config <that file> and waits
// until its socket reports SERVING. dev-env's configuration has
// initialize_missing_keys, so the first start creates the deployment's keys.
// Started as root, the keyvault drops to medvault-keyvault; dev-env hands it
// the token and state directories.
//
// Every start appends the process's stdout and stderr to <dir>/keyvault.log.
// In sanitizer builds the keyvault runs with ASAN_OPTIONS=detect_leaks=0:
// LeakSanitizer needs ptrace, which the keyvault's seccomp filter forbids.
//
// The destructor kills the process and removes the directory, unless
// MEDVAULT_KEEP_KEYVAULT_DIR=1 and KeepDirectory() was called (tests call it
// on failure). Not thread-safe: one thread drives the process; any number
// of threads may use the channels it hands out.
#ifndef MEDVAULT_TESTS_INTEGRATION_KEYVAULT_PROCESS_H_
#define MEDVAULT_TESTS_INTEGRATION_KEYVAULT_PROCESS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::integration {

class KeyvaultProcess {
 public:
  struct Options {
    // Where medvault-keyvault is, and the source tree (for scripts/dev-env).
    // Empty: $MEDVAULT_BIN_DIR and $MEDVAULT_SOURCE_DIR, as ctest sets them.
    std::string bin_dir;
    std::string source_dir;
    // Make the test's user the gateway's user (see the file comment).
    bool gateway_is_caller = true;
    // keyvault.pkcs11.sessions and keyvault.patient_key_cache; 0 keeps the
    // configuration's default.
    int sessions = 0;
    int patient_key_cache = 0;
    // keyvault.logging level WARNING instead of INFO (benchmarks).
    bool quiet = false;
    // keyvault.hold_regulator_key (dev-env sets it): false for a keyvault
    // as production runs it, without the regulator's key.
    bool hold_regulator_key = true;
  };

  // Prepares the directory and the configuration; starts nothing.
  static absl::StatusOr<std::unique_ptr<KeyvaultProcess>> Create(const Options& options);
  static absl::StatusOr<std::unique_ptr<KeyvaultProcess>> Create() { return Create(Options()); }
  ~KeyvaultProcess();

  KeyvaultProcess(const KeyvaultProcess&) = delete;
  KeyvaultProcess& operator=(const KeyvaultProcess&) = delete;

  // Budget for a start; the first one creates keys and sanitizer builds are slow.
  static constexpr absl::Duration kStartTimeout = absl::Seconds(60);

  // Starts the process and waits until it reports SERVING. FAILED_PRECONDITION
  // (with how it ended) if it exits first, DEADLINE_EXCEEDED if it is still
  // not serving after `timeout` (it is then killed).
  absl::Status Start(absl::Duration timeout = kStartTimeout);
  // SIGKILL to its process group, and reaps it. No-op when not running.
  void Kill();
  // Kill() then Start().
  absl::Status Restart(absl::Duration timeout = kStartTimeout);
  // SIGTERM; returns its wait status, or DEADLINE_EXCEEDED (and kills it)
  // if it does not exit within `grace`.
  absl::StatusOr<int> Stop(absl::Duration grace = absl::Seconds(20));

  // The pid of the running process; 0 when none was started or it was
  // reaped. Does not notice a crash by itself: see Exited().
  pid_t pid() const { return pid_; }
  // If the process has exited: reaps it and returns its wait status.
  std::optional<int> Exited();
  // SERVING on the health service right now (a fresh connection).
  bool Serving() const;

  // --- Talking to it ------------------------------------------------------
  std::string socket_path() const { return dir_ + "/run/keyvault.sock"; }
  // A channel to the socket. With `own_connection`, the channel does not
  // share its connection with other channels (gRPC pools them by default),
  // so each client thread can have a connection of its own. Reconnects
  // after a restart within about 100 ms (not gRPC's default backoff of 1 s
  // growing to 120 s).
  std::shared_ptr<grpc::Channel> NewChannel(bool own_connection = false) const;
  std::unique_ptr<internal::v1::KeyVault::Stub> NewStub(bool own_connection = false) const;

  // --- Files ---------------------------------------------------------------
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/keyvault.textproto"; }
  std::string log_path() const { return dir_ + "/keyvault.log"; }
  // Everything the process (all its starts) printed.
  std::string ReadLog() const;
  // Lines of the log that belong to an ASan/LSan/UBSan report.
  std::vector<std::string> SanitizerReports() const;
  // User names from the configuration the tests compare against.
  const std::string& caller_user() const { return caller_user_; }
  const std::string& signer_user() const { return signer_user_; }
  // Keep the directory when destroyed if MEDVAULT_KEEP_KEYVAULT_DIR=1.
  void KeepDirectory() { keep_ = true; }

 private:
  KeyvaultProcess() = default;
  absl::Status RunDevEnv();
  absl::Status WriteConfig(const Options& options);

  std::string bin_dir_;
  std::string source_dir_;
  std::string dir_;
  std::string caller_user_;
  std::string signer_user_;
  pid_t pid_ = 0;
  bool keep_ = false;
};

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_KEYVAULT_PROCESS_H_
