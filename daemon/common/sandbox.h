// Self-sandboxing, applied by every service process once it has opened what
// it needs and before it creates any thread, in the demotion order of
// OpenSSH's privilege separation:
//   1. close every file descriptor it did not ask to keep;
//   2. when started as root: drop the capability bounding set, then switch
//      to its own group, the shared socket group and its own user (and
//      check that root cannot be regained); otherwise warn and go on;
//   3. PR_SET_NO_NEW_PRIVS;
//   4. clear every capability set (effective, permitted, inheritable,
//      ambient);
//   5. RLIMIT_CORE = 0 and PR_SET_DUMPABLE = 0 (no core dumps, no ptrace,
//      /proc/<pid>/mem closed to others);
//   6. install the process's seccomp allowlist, default action kill.
// Any failure is returned and the process must exit: it never runs with
// half a sandbox.
#ifndef MEDVAULT_DAEMON_COMMON_SANDBOX_H_
#define MEDVAULT_DAEMON_COMMON_SANDBOX_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "daemon/common/syscall_policy.h"

namespace medvault {

struct SandboxOptions {
  // User and primary group to switch to when running as root.
  std::string user;
  std::string group;
  // Supplementary group that owns the internal sockets; may be empty.
  std::string socket_group;
  // Descriptors to keep open besides 0, 1 and 2.
  std::vector<int> keep_fds;
  // When non-zero: the supervisor's pid. The process asks for SIGTERM if its
  // parent dies (after the uid switch, which would clear the request) and
  // exits at once if the parent is already gone.
  pid_t supervisor_pid = 0;
};

absl::Status EnterSandbox(const SandboxOptions& options, const SyscallPolicy& policy);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_SANDBOX_H_
