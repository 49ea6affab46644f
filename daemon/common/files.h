// Small file-system helpers with crash-safe writes. Every path is relative
// to a directory descriptor (AT_FDCWD for the working directory), so a
// process can keep working on the directories it opened before its
// sandbox closed the rest. Errors name the operation and the path:
// NOT_FOUND for ENOENT, RESOURCE_EXHAUSTED for a full disk, INTERNAL for
// the rest.
#ifndef MEDVAULT_DAEMON_COMMON_FILES_H_
#define MEDVAULT_DAEMON_COMMON_FILES_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault {

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_;
};

// The status for the errno of a failed `op` on `path`.
absl::Status ErrnoStatus(absl::string_view op, absl::string_view path);

absl::StatusOr<Fd> OpenDirectory(int dir_fd, const std::string& path);
// mkdir that accepts an existing directory.
absl::Status MakeDirectory(int dir_fd, const std::string& path, int mode = 0700);
// fsync of a directory, which makes the renames and unlinks in it durable.
absl::Status SyncDirectory(int dir_fd, const std::string& path);
// Creates or truncates `path` with exactly `mode` (whatever the umask),
// writes `data`, fsyncs it.
absl::Status WriteAndSync(int dir_fd, const std::string& path, absl::string_view data,
                          mode_t mode = 0600);
// Writes `dir/name` so that it exists either whole or not at all, even
// across a crash: a temporary file in the same directory, fsync, rename,
// fsync of the directory. The file has exactly `mode`.
absl::Status WriteFileAtomically(int dir_fd, const std::string& dir, const std::string& name,
                                 absl::string_view data, mode_t mode = 0600);
absl::StatusOr<std::string> ReadWholeFile(int dir_fd, const std::string& path);
bool PathExists(int dir_fd, const std::string& path);
// Calls `visit` with each entry name of directory `path` except "." and
// ".."; stops at the first error and returns it.
absl::Status ForEachEntry(int dir_fd, const std::string& path,
                          const std::function<absl::Status(const std::string&)>& visit);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_FILES_H_
