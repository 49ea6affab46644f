#include "daemon/common/syscall_policy.h"

#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace medvault {

SyscallPolicy SyscallPolicy::GrpcService() {
  SyscallPolicy p;
  p.Allow({"brk", "mmap", "munmap", "mprotect", "madvise", "mremap", "mlock", "munlock"},
          "heap and thread stacks; mlock keeps secrets out of swap")
      .Allow(
          {"clone", "clone3", "set_robust_list", "rseq", "futex", "sched_yield",
           "sched_getaffinity", "sched_getparam", "sched_getscheduler", "gettid", "getpid", "exit"},
          "gRPC creates and joins worker threads on demand")
      .Allow({"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "rt_sigtimedwait",
              "restart_syscall", "sigaltstack", "tgkill"},
             "signals stay blocked; the main thread waits for SIGTERM; abort() still aborts")
      .Allow({"clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "clock_getres"},
             "timers, deadlines and log timestamps")
      .Allow({"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "eventfd2", "poll",
              "ppoll", "pipe2"},
             "gRPC's event engine (epoll1) and its wakeup fds")
      .Allow({"read", "write", "readv", "writev", "close", "fcntl", "ioctl", "lseek", "fstat",
              "newfstatat", "openat", "getrandom"},
             "reading its own files, logging to stderr, random numbers")
      .Allow({"accept4", "connect", "getsockopt", "setsockopt", "getsockname", "getpeername",
              "sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown"},
             "internal gRPC over Unix sockets: accept callers, reach the other processes")
      .AllowSocketFamilies({AF_UNIX}, "internal gRPC clients and sd_notify use Unix sockets only")
      .Allow({"uname", "getuid", "geteuid", "getgid", "getegid", "getppid"},
             "identity queries of glibc, gRPC and OpenSSL (read-only)")
      .Allow({"exit_group"}, "orderly exit");
#if defined(MEDVAULT_SANITIZE)
  // Sanitizer builds only (never release): the ASan/UBSan runtime prints its
  // reports with raw syscalls of its own, not glibc's. Without these two, a
  // memory error or undefined behaviour in a sandboxed process is lost: the
  // process dies of SIGSYS before the report is written.
  p.Allow({"open",       // sanitizer runtime: reads /proc/self/maps and the binaries to
                         // symbolize the report's stack traces
           "readlink"},  // sanitizer runtime: resolves /proc/self/exe and library paths
                         // for the report's module names
          "sanitizer builds: AddressSanitizer/UBSan error reports");
#endif
  return p;
}

SyscallPolicy& SyscallPolicy::Allow(std::initializer_list<const char*> names, const char* why) {
  Group g;
  for (const char* n : names) g.names.emplace_back(n);
  g.why = why;
  groups_.push_back(std::move(g));
  return *this;
}

SyscallPolicy& SyscallPolicy::AllowSocketFamilies(std::initializer_list<int> families,
                                                  const char* why) {
  for (int f : families) socket_families_.push_back(f);
  Group g;
  g.names = {absl::StrCat("socket/socketpair(",
                          absl::StrJoin(families, ",",
                                        [](std::string* out, int f) {
                                          out->append(f == AF_UNIX    ? "AF_UNIX"
                                                      : f == AF_INET  ? "AF_INET"
                                                      : f == AF_INET6 ? "AF_INET6"
                                                                      : std::to_string(f));
                                        }),
                          ")")};
  g.why = why;
  groups_.push_back(std::move(g));
  return *this;
}

absl::Status SyscallPolicy::Install() const {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS),
                                                       seccomp_release);
  if (!ctx) return absl::InternalError("seccomp_init failed");
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc != 0) {
    return absl::InternalError(absl::StrCat("seccomp: cannot synchronise threads: ", -rc));
  }
  for (const Group& g : groups_) {
    for (const std::string& name : g.names) {
      if (name.starts_with("socket/")) continue;
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        return absl::InternalError(absl::StrCat("seccomp: unknown syscall \"", name, "\""));
      }
      if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc != 0) {
        return absl::InternalError(absl::StrCat("seccomp: cannot allow ", name, ": ", -rc));
      }
    }
  }
  for (int family : socket_families_) {
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                                    SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
          rc != 0) {
        return absl::InternalError(absl::StrCat("seccomp: cannot allow socket family ", family));
      }
    }
  }
  // Thread names (pthread_setname_np) and nothing else of prctl: in
  // particular a compromised process cannot make itself dumpable again.
  for (int option : {PR_SET_NAME, PR_GET_NAME}) {
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                  SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(option)));
        rc != 0) {
      return absl::InternalError("seccomp: cannot allow prctl(PR_SET_NAME)");
    }
  }
  if (int rc = seccomp_load(ctx.get()); rc != 0) {
    return absl::InternalError(absl::StrCat("seccomp_load failed: ", -rc));
  }
  return absl::OkStatus();
}

std::string SyscallPolicy::Describe() const {
  std::vector<std::string> lines;
  for (const Group& g : groups_) {
    lines.push_back(absl::StrCat(g.why, ": ", absl::StrJoin(g.names, " ")));
  }
  lines.push_back("thread names: prctl(PR_SET_NAME, PR_GET_NAME)");
  return absl::StrJoin(lines, "\n");
}

}  // namespace medvault
