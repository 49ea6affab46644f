// The seccomp allowlist of medvault-storage, in one place.
#ifndef MEDVAULT_DAEMON_STORAGE_SANDBOX_POLICY_H_
#define MEDVAULT_DAEMON_STORAGE_SANDBOX_POLICY_H_

#include "daemon/common/syscall_policy.h"

namespace medvault::storage {

// `remote`: objects are kept by a Kubo node over HTTP.
SyscallPolicy StoragePolicy(bool remote);

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_SANDBOX_POLICY_H_
