#ifndef MEDVAULT_KEYVAULT_SANDBOX_POLICY_H_
#define MEDVAULT_KEYVAULT_SANDBOX_POLICY_H_

#include "daemon/common/syscall_policy.h"

namespace medvault::keyvault {

SyscallPolicy KeyvaultPolicy();

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_SANDBOX_POLICY_H_
