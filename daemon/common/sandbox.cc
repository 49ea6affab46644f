#include "daemon/common/sandbox.h"

#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/common/users.h"

namespace medvault {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat("sandbox: ", what, ": ", strerror(errno)));
}

// Closes every descriptor above 2 that is not in `keep`.
absl::Status CloseStrayFds(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned first = 3;
  for (int fd : keep) {
    if (fd < static_cast<int>(first)) continue;
    if (static_cast<unsigned>(fd) > first &&
        close_range(first, static_cast<unsigned>(fd) - 1, 0) != 0) {
      return Errno("close_range");
    }
    first = static_cast<unsigned>(fd) + 1;
  }
  if (close_range(first, ~0U, 0) != 0) return Errno("close_range");
  return absl::OkStatus();
}

absl::Status DropBoundingSet() {
  // Without CAP_SETPCAP the bounding set cannot shrink; no_new_privs and the
  // empty capability sets below still keep the process from gaining any.
  if (!CAP_IS_SUPPORTED(CAP_SETPCAP)) return absl::OkStatus();
  for (cap_value_t cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap) <= 0) continue;
    if (cap_drop_bound(cap) != 0)
      return Errno(absl::StrCat("dropping capability ", cap, " from the bounding set"));
  }
  return absl::OkStatus();
}

absl::Status SwitchUser(const SandboxOptions& options) {
  ASSIGN_OR_RETURN(uid_t uid, LookupUid(options.user));
  ASSIGN_OR_RETURN(gid_t gid, LookupGid(options.group));
  std::vector<gid_t> groups;
  if (!options.socket_group.empty()) {
    ASSIGN_OR_RETURN(gid_t socket_gid, LookupGid(options.socket_group));
    groups.push_back(socket_gid);
  }
  if (uid == 0 || gid == 0) {
    return absl::FailedPreconditionError(absl::StrCat("sandbox: refusing to run as ", options.user,
                                                      ":", options.group, " (uid or gid 0)"));
  }
  RETURN_IF_ERROR(DropBoundingSet());
  if (setgroups(groups.size(), groups.data()) != 0) return Errno("setgroups");
  if (setresgid(gid, gid, gid) != 0) return Errno("setresgid");
  if (setresuid(uid, uid, uid) != 0) return Errno("setresuid");
  // Regaining root must now be impossible.
  if (setuid(0) == 0 || seteuid(0) == 0) {
    return absl::InternalError("sandbox: root could be regained after the uid switch");
  }
  log::Info("sandbox.user", {{"user", options.user},
                             {"uid", static_cast<uint64_t>(uid)},
                             {"group", options.group},
                             {"gid", static_cast<uint64_t>(gid)}});
  return absl::OkStatus();
}

absl::Status ClearCapabilities() {
  cap_t caps = cap_init();  // all sets empty
  if (caps == nullptr) return Errno("cap_init");
  int rc = cap_set_proc(caps);
  cap_free(caps);
  if (rc != 0) return Errno("cap_set_proc");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return Errno("clearing ambient capabilities");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnterSandbox(const SandboxOptions& options, const SyscallPolicy& policy) {
  RETURN_IF_ERROR(CloseStrayFds(options.keep_fds));

  if (geteuid() == 0) {
    RETURN_IF_ERROR(SwitchUser(options));
  } else {
    auto want = LookupUid(options.user);
    if (!want.ok() || *want != geteuid()) {
      log::Warn("sandbox.user_switch_skipped", {{"reason", "not started as root"},
                                                {"uid", static_cast<uint64_t>(geteuid())},
                                                {"configured_user", options.user}});
    }
  }

  if (options.supervisor_pid > 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return Errno("PR_SET_PDEATHSIG");
    if (getppid() != options.supervisor_pid) {
      return absl::AbortedError("sandbox: the supervisor is gone");
    }
  }

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("PR_SET_NO_NEW_PRIVS");
  RETURN_IF_ERROR(ClearCapabilities());

  struct rlimit no_core = {0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) return Errno("RLIMIT_CORE");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("PR_SET_DUMPABLE");

  RETURN_IF_ERROR(policy.Install());
  log::Info("sandbox.entered", {{"no_new_privs", true}, {"seccomp", "filter"}});
  return absl::OkStatus();
}

}  // namespace medvault
