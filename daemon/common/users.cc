#include "daemon/common/users.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace medvault {

absl::StatusOr<uid_t> LookupUid(const std::string& user) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* result = nullptr;
  int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0 || result == nullptr) {
    return absl::NotFoundError(absl::StrCat("no user named \"", user, "\""));
  }
  return pw.pw_uid;
}

absl::StatusOr<gid_t> LookupGid(const std::string& group) {
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* result = nullptr;
  int rc = getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &result);
  if (rc != 0 || result == nullptr) {
    return absl::NotFoundError(absl::StrCat("no group named \"", group, "\""));
  }
  return gr.gr_gid;
}

std::string UserName(uid_t uid) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* result = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return std::to_string(uid);
  }
  return pw.pw_name;
}

}  // namespace medvault
