// The seccomp allowlist really kills: a forbidden syscall, or a socket of a
// family the policy does not list, ends the process with SIGSYS.
#include "daemon/common/syscall_policy.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "gtest/gtest.h"

namespace medvault {
namespace {

// Runs `body` in a child under `policy`; returns the child's wait status.
int RunSandboxed(const SyscallPolicy& policy, const std::function<void()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(90);
    if (!policy.Install().ok()) _exit(91);
    body();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool KilledBySigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

// Allowed calls run normally under the filter.
TEST(SyscallPolicyTest, AllowedSyscallsRun) {
  int status = RunSandboxed(SyscallPolicy::GrpcService(), [] {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) _exit(1);
    close(fd);
    (void)getpid();
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A syscall outside the allowlist kills the process with SIGSYS.
TEST(SyscallPolicyTest, ForbiddenSyscallKillsWithSigsys) {
  int status = RunSandboxed(SyscallPolicy::GrpcService(),
                            [] { syscall(SYS_mount, nullptr, nullptr, nullptr, 0, nullptr); });
  EXPECT_TRUE(KilledBySigsys(status)) << status;
}

// The base policy allows Unix sockets only; TCP needs an explicit family.
TEST(SyscallPolicyTest, SocketFamilyIsFiltered) {
  EXPECT_TRUE(KilledBySigsys(
      RunSandboxed(SyscallPolicy::GrpcService(), [] { (void)socket(AF_INET, SOCK_STREAM, 0); })));
  SyscallPolicy with_tcp = SyscallPolicy::GrpcService();
  with_tcp.AllowSocketFamilies({AF_INET}, "test");
  int status = RunSandboxed(with_tcp, [] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) _exit(1);
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// prctl is limited to thread names: making the process dumpable again is fatal.
TEST(SyscallPolicyTest, PrctlOnlyForThreadNames) {
  EXPECT_TRUE(WIFEXITED(
      RunSandboxed(SyscallPolicy::GrpcService(), [] { prctl(PR_SET_NAME, "worker", 0, 0, 0); })));
  EXPECT_TRUE(KilledBySigsys(
      RunSandboxed(SyscallPolicy::GrpcService(), [] { prctl(PR_SET_DUMPABLE, 1, 0, 0, 0); })));
}

// A misspelt syscall name is an error before anything is loaded.
TEST(SyscallPolicyTest, UnknownNameIsAnError) {
  SyscallPolicy policy;
  policy.Allow({"not_a_syscall"}, "test");
  absl::Status status = policy.Install();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace medvault
