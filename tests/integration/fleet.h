// Fleet: a GoogleTest fixture that runs the real medvault fleet for one
// test: a fresh environment made by scripts/dev-env in a temporary
// directory (SoftHSM2 token, development CA, configuration), a local anvil
// chain, and medvaultd starting the five service processes from the build.
//
// Every TEST_F gets its own fleet (own directory, own ports, own anvil), so
// CTest can run the cases in parallel. The build's binaries and the source
// tree are found through MEDVAULT_BIN_DIR and MEDVAULT_SOURCE_DIR, which
// gtest_discover_tests sets for each case.
//
// medvaultd's stdout and stderr, which its children inherit, go to
// <dir>/medvaultd.log; the log is printed when a test fails. Set
// MEDVAULT_KEEP_FLEET_DIR=1 to keep the directory of a failed test.
#ifndef MEDVAULT_TESTS_INTEGRATION_FLEET_H_
#define MEDVAULT_TESTS_INTEGRATION_FLEET_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/common/health_client.h"
#include "daemon/common/roles.h"
#include "tests/integration/process_util.h"

namespace medvault::integration {

// The chain id of an anvil started with default settings.
inline constexpr uint64_t kAnvilChainId = 31337;

class Fleet : public ::testing::Test {
 protected:
  // Budget for the whole fleet to come up; sanitizer builds are slow.
  static constexpr absl::Duration kStartTimeout = absl::Seconds(60);
  // How long medvaultd may take to stop its children on SIGTERM.
  static constexpr absl::Duration kStopGrace = absl::Seconds(20);

  void SetUp() override;
  void TearDown() override;

  // --- Where things are --------------------------------------------------
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/medvault.textproto"; }
  std::string log_path() const { return dir_ + "/medvaultd.log"; }
  std::string ca_cert() const { return dir_ + "/pki/ca.pem"; }
  std::string client_cert() const { return dir_ + "/pki/client.pem"; }
  std::string client_key() const { return dir_ + "/pki/client.key"; }
  // Subject CN (and O) of the client certificate dev-env issued.
  static constexpr char kClientName[] = "fleet-test-clinic";
  // "127.0.0.1:<port>" of the gateway's public mTLS API.
  std::string gateway_address() const;
  std::string socket_path(Role role) const;
  // A binary of the build, e.g. "medvaultctl".
  std::string binary(absl::string_view name) const;
  pid_t medvaultd_pid() const { return medvaultd_pid_; }

  // --- The processes -----------------------------------------------------
  // The running process of `role`: a child of medvaultd whose argv[0] is
  // medvault-<role>. NOT_FOUND while there is none (e.g. during a restart).
  absl::StatusOr<pid_t> ChildPid(Role role) const;
  // Every live process whose command line names this fleet's configuration
  // (medvaultd and its children, wherever they were reparented to).
  std::vector<pid_t> FleetProcesses() const;

  absl::Status WaitServing(Role role, absl::Duration timeout);
  absl::Status WaitAllServing(absl::Duration timeout);
  // Waits until `role` runs as a process other than `old_pid` and its socket
  // reports SERVING; returns the new pid.
  absl::StatusOr<pid_t> WaitRestarted(Role role, pid_t old_pid, absl::Duration timeout);

  // Sends SIGTERM to medvaultd and reaps it; returns its wait status.
  // DEADLINE_EXCEEDED (and medvaultd is left running) if it takes longer.
  absl::StatusOr<int> StopMedvaultd(absl::Duration grace);
  // Waits for medvaultd to exit by itself and reaps it; returns its wait
  // status. DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::StatusOr<int> WaitMedvaultdExit(absl::Duration timeout);

  // --- medvaultd's log (with every child's lines) ------------------------
  std::string ReadLog() const;
  // Waits for a line of the log that contains every one of `parts`.
  absl::Status WaitForLogLine(std::initializer_list<std::string> parts,
                              absl::Duration timeout) const;

  // --- Tools -------------------------------------------------------------
  // medvaultctl -c <config> args...
  CommandResult RunCtl(const std::vector<std::string>& args) const;
  // The same, as `user` (its uid, gid and supplementary groups) via setpriv.
  CommandResult RunCtlAs(const std::string& user, const std::vector<std::string>& args) const;
  // What scripts/run does on a new chain: funds the keyvault's chain keys on
  // anvil, deploys AuditAnchor, LicenceRegistry and PolicyRegistry
  // (`medvaultctl chain deploy`), writes their addresses into the signer's
  // configuration and restarts medvaultd with it. Afterwards the signer
  // indexes licences, so the gateway's policy sees them.
  absl::Status DeployContracts();
  // `medvaultctl chain set-licence` as the development regulator, for the
  // licence key (0x + 64 hex), then waits until the signer's index shows
  // that status ("active", "suspended", "revoked", "expired").
  absl::Status SetLicence(const std::string& licence_key, const std::string& status,
                          absl::Time valid_until = absl::Now() + absl::Hours(24 * 365));
  // Runs scripts/dev-env again into a new directory below dir(): a complete
  // environment with a CA of its own. Nothing is started there. Returns the
  // environment's directory.
  absl::StatusOr<std::string> MakeEnvironmentWithAnotherCa() const;

 private:
  absl::Status Start();
  absl::Status LocateBuild();
  absl::Status MakeDirectory();
  absl::Status StartAnvil();
  absl::Status RunDevEnv(const std::string& env_dir, int gateway_port, int rpc_port) const;
  absl::Status StartMedvaultd();
  // Waits for medvaultd to log fleet.serving. Sockets SERVING is not
  // enough: until medvaultd itself has seen the last one SERVING it is
  // still starting up, and a crash then (which a test may cause at once)
  // makes it give up instead of restarting the process.
  absl::Status WaitSupervising(absl::Time deadline);
  // Kills whatever is left: medvaultd (after SIGTERM and the grace), its
  // children, anvil. Safe to call on a half-started fleet.
  void StopEverything();
  void StopAnvil();
  // FAILED_PRECONDITION (with how it ended) once medvaultd has exited; reaps it.
  absl::Status CheckMedvaultdRunning();

  std::string bin_dir_;
  std::string source_dir_;
  std::string dir_;
  int gateway_port_ = 0;
  int anvil_port_ = 0;
  pid_t anvil_pid_ = 0;
  pid_t medvaultd_pid_ = 0;
};

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_FLEET_H_
