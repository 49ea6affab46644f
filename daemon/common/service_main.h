// The start-up, sandboxing and shutdown sequence shared by the five service
// processes. A process's main.cc builds its ServiceProcess and hands it to
// ServiceMain, which:
//   1. parses the command line (--config, --check-config, --print-policy);
//   2. loads and validates the configuration (exit 2 on error);
//   3. calls Prepare() as the starting user, binds the internal socket;
//   4. enters the sandbox (sandbox.h) with the process's Policy();
//   5. starts the internal server, calls Serve(), reports SERVING on
//      gRPC health and READY=1 to systemd;
//   6. waits for SIGTERM or SIGINT, reports NOT_SERVING and STOPPING=1,
//      calls Stop() and shuts the server down, exit 0.
// Any failure before serving is logged and exits 1.
#ifndef MEDVAULT_DAEMON_COMMON_SERVICE_MAIN_H_
#define MEDVAULT_DAEMON_COMMON_SERVICE_MAIN_H_

#include <vector>

#include "absl/status/status.h"
#include "daemon/common/internal_server.h"
#include "daemon/common/roles.h"
#include "daemon/common/syscall_policy.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault {

class ServiceProcess {
 public:
  virtual ~ServiceProcess() = default;
  // Before the sandbox, as the starting user (root in production): open
  // whatever the process cannot open afterwards. Must not start threads.
  virtual absl::Status Prepare(const config::v1::Config& config) = 0;
  // Descriptors opened by Prepare() that must survive the sandbox.
  virtual std::vector<int> KeepFds() const { return {}; }
  // The seccomp allowlist (see daemon/<role>/sandbox_policy.cc).
  virtual SyscallPolicy Policy() const = 0;
  // After the sandbox: register services on `internal` (AddService) and
  // start anything else the process serves. Called before internal.Start().
  virtual absl::Status Register(InternalServer& internal) = 0;
  // After the internal server started; last step before SERVING.
  virtual absl::Status Serve() { return absl::OkStatus(); }
  // On SIGHUP, on the main thread while the services keep serving: re-read
  // whatever can change without a restart. False when the process has
  // nothing to reload (the signal is then logged and ignored).
  virtual bool Reload() { return false; }
  // On SIGTERM, before the internal server shuts down.
  virtual void Stop() {}
};

int ServiceMain(Role role, int argc, char** argv, ServiceProcess& process);

// Builds the allowlist of `role`'s internal service from the configuration.
absl::StatusOr<MethodAllowlist> AllowlistFor(const config::v1::Config& config, Role role);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_SERVICE_MAIN_H_
