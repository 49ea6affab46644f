// SyscallPolicy: a seccomp allowlist built from named syscall groups, each
// with the reason it is needed (in the manner of sandbox2's PolicyBuilder).
// Anything not allowed kills the whole process (SECCOMP_RET_KILL_PROCESS,
// the process dies of SIGSYS).
//
// Each process keeps its policy in one place, daemon/<role>/sandbox_policy.cc
// (keyvault/sandbox_policy.cc): a base common to every gRPC service process,
// plus what that process alone needs, with a comment per group.
#ifndef MEDVAULT_DAEMON_COMMON_SYSCALL_POLICY_H_
#define MEDVAULT_DAEMON_COMMON_SYSCALL_POLICY_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace medvault {

class SyscallPolicy {
 public:
  // The syscalls every medvault gRPC service process needs after start-up:
  // threads, memory, time, epoll, Unix sockets, reading its own files,
  // logging to stderr, orderly exit. Network families are not included.
  static SyscallPolicy GrpcService();

  // Allows the named syscalls unconditionally. `why` documents the group at
  // the call site; it is kept for `Describe()`.
  SyscallPolicy& Allow(std::initializer_list<const char*> names, const char* why);
  // Allows socket(2) (and socketpair) only for these address families.
  SyscallPolicy& AllowSocketFamilies(std::initializer_list<int> families, const char* why);

  // Loads the filter into the kernel for every thread of the process
  // (SECCOMP_FILTER_FLAG_TSYNC). Requires no_new_privs to be set already.
  // INTERNAL if a name does not resolve on this architecture.
  absl::Status Install() const;

  // One line per group: "why: name name ...". For --help and logs.
  std::string Describe() const;

 private:
  struct Group {
    std::vector<std::string> names;
    std::string why;
  };
  std::vector<Group> groups_;
  std::vector<int> socket_families_;
};

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_SYSCALL_POLICY_H_
