// Supervisor: starts the five service processes in dependency order, waits
// for each to report SERVING on gRPC health, restarts a crashed one with
// exponential backoff, gives up (and stops everything) when one
// crash-loops, and stops them all cleanly, in reverse order, on request.
//
// Single-threaded: every method runs on the thread that owns the
// supervisor, which must have SIGCHLD, SIGTERM and SIGINT blocked.
#ifndef MEDVAULT_DAEMON_MEDVAULTD_SUPERVISOR_H_
#define MEDVAULT_DAEMON_MEDVAULTD_SUPERVISOR_H_

#include <signal.h>
#include <sys/types.h>

#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault::supervisor {

class Supervisor {
 public:
  // `config` must outlive the supervisor; `config_path` is passed to the
  // children, which read and validate the same file.
  Supervisor(const config::v1::Config& config, std::string config_path, std::string bin_dir);
  ~Supervisor();

  // Starts every process in order, each only once the previous one is
  // SERVING. A process that exits or misses start_timeout_ms fails the
  // start: everything started so far is stopped and the error returned.
  // CANCELLED if SIGTERM/SIGINT arrives meanwhile.
  absl::Status StartAll();

  // Supervises until SIGTERM or SIGINT (returns OK) or until a process
  // crash-loops (returns ABORTED). Stops everything before returning.
  absl::Status Run();

  // Stops every running process: SIGTERM in reverse start order, SIGKILL
  // after stop_grace_ms. Idempotent.
  void StopAll();

 private:
  enum class State { kStopped, kStarting, kRunning, kWaitingToRestart };
  struct Child {
    Role role;
    pid_t pid = 0;
    State state = State::kStopped;
    absl::Time started;
    absl::Time deadline;             // of kStarting
    absl::Time restart_at;           // of kWaitingToRestart
    std::deque<absl::Time> crashes;  // within the crash-loop window
    int restarts = 0;
  };

  absl::Status Spawn(Child& child);
  // Waits up to `timeout` for one of the blocked signals; returns it, or 0.
  int WaitSignal(absl::Duration timeout);
  // Reaps exited children; returns ABORTED on a crash loop. When
  // `starting` is true any exit is an error (no restarts during start-up).
  absl::Status Reap(bool starting);
  absl::Status Tick();
  Child* Find(pid_t pid);

  const config::v1::Config& config_;
  const std::string config_path_;
  const std::string bin_dir_;
  std::vector<Child> children_;
  sigset_t signals_;
};

// "exit code 3", "signal SIGSYS (seccomp: a syscall outside the allowlist)".
std::string DescribeExit(int wait_status);

}  // namespace medvault::supervisor

#endif  // MEDVAULT_DAEMON_MEDVAULTD_SUPERVISOR_H_
