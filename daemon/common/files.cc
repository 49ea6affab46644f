#include "daemon/common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"

namespace medvault {
namespace {

constexpr char kTempPrefix[] = ".tmp-";

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

absl::Status ErrnoStatus(absl::string_view op, absl::string_view path) {
  int err = errno;
  std::string message = absl::StrCat(op, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::StatusOr<Fd> OpenDirectory(int dir_fd, const std::string& path) {
  int fd = openat(dir_fd, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path);
  return Fd(fd);
}

absl::Status MakeDirectory(int dir_fd, const std::string& path, int mode) {
  if (mkdirat(dir_fd, path.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir", path);
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(int dir_fd, const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, OpenDirectory(dir_fd, path));
  if (fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
  return absl::OkStatus();
}

absl::Status WriteAndSync(int dir_fd, const std::string& path, absl::string_view data,
                          mode_t mode) {
  Fd fd(openat(dir_fd, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (fd.get() < 0) return ErrnoStatus("create", path);
  // The creation mode is masked by the umask (and ignored for an existing
  // file). Changed only when it differs, so that sandboxed callers writing
  // their own 0600 files need no fchmod.
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", path);
  if ((st.st_mode & 07777) != mode && fchmod(fd.get(), mode) != 0) {
    return ErrnoStatus("chmod", path);
  }
  RETURN_IF_ERROR(WriteAll(fd.get(), data, path));
  if (fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(int dir_fd, const std::string& dir, const std::string& name,
                                 absl::string_view data, mode_t mode) {
  std::string temp = absl::StrCat(dir, "/", kTempPrefix, name);
  std::string path = absl::StrCat(dir, "/", name);
  if (absl::Status status = WriteAndSync(dir_fd, temp, data, mode); !status.ok()) {
    unlinkat(dir_fd, temp.c_str(), 0);
    return status;
  }
  if (renameat(dir_fd, temp.c_str(), dir_fd, path.c_str()) != 0) {
    absl::Status status = ErrnoStatus("rename", path);
    unlinkat(dir_fd, temp.c_str(), 0);
    return status;
  }
  return SyncDirectory(dir_fd, dir);
}

absl::StatusOr<std::string> ReadWholeFile(int dir_fd, const std::string& path) {
  Fd fd(openat(dir_fd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open", path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", path);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

bool PathExists(int dir_fd, const std::string& path) {
  struct stat st {};
  return fstatat(dir_fd, path.c_str(), &st, 0) == 0;
}

absl::Status ForEachEntry(int dir_fd, const std::string& path,
                          const std::function<absl::Status(const std::string&)>& visit) {
  ASSIGN_OR_RETURN(Fd fd, OpenDirectory(dir_fd, path));
  DIR* dir = fdopendir(fd.get());
  if (dir == nullptr) return ErrnoStatus("opendir", path);
  fd.release();
  absl::Status status;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    status = visit(name);
    if (!status.ok()) break;
    errno = 0;
  }
  if (status.ok() && errno != 0) status = ErrnoStatus("readdir", path);
  closedir(dir);
  return status;
}

}  // namespace medvault
