// Look-ups in the user and group databases (getpwnam_r / getgrnam_r).
#ifndef MEDVAULT_DAEMON_COMMON_USERS_H_
#define MEDVAULT_DAEMON_COMMON_USERS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace medvault {

// NOT_FOUND when no such user or group exists.
absl::StatusOr<uid_t> LookupUid(const std::string& user);
absl::StatusOr<gid_t> LookupGid(const std::string& group);
// Name of a uid, or the number as text when it has no name.
std::string UserName(uid_t uid);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_USERS_H_
