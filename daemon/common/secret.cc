#include "daemon/common/secret.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace medvault {

SecretData::SecretData(absl::string_view bytes) : size_(bytes.size()) {
  if (size_ == 0) return;
  data_ = new uint8_t[size_];
  // Best effort: failing to lock (RLIMIT_MEMLOCK) must not lose the secret.
  locked_ = mlock(data_, size_) == 0;
  std::memcpy(data_, bytes.data(), size_);
}

SecretData::~SecretData() { Wipe(); }

SecretData::SecretData(SecretData&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

SecretData& SecretData::operator=(SecretData&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

void SecretData::Wipe() {
  if (data_ == nullptr) return;
  OPENSSL_cleanse(data_, size_);
  if (locked_) munlock(data_, size_);
  delete[] data_;
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

bool SecretData::ConstantTimeEquals(const SecretData& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return CRYPTO_memcmp(data_, other.data_, size_) == 0;
}

absl::StatusOr<SecretData> ReadSecretFile(const std::string& path,
                                          const std::vector<uid_t>& owners) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open secret file ", path, ": ", strerror(errno)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", path, " is readable by group or others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777), "); chmod 0600 it"));
  }
  if (std::find(owners.begin(), owners.end(), st.st_uid) == owners.end()) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("secret file ", path, " is owned by uid ",
                                                      st.st_uid, ", not by the process's user"));
  }
  constexpr size_t kMax = 4096;
  if (st.st_size <= 0 || static_cast<size_t>(st.st_size) > kMax) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("secret file ", path, " must hold 1 to ", kMax, " bytes"));
  }
  // Read into locked memory directly, so no unlocked copy exists.
  uint8_t buf[kMax];
  mlock(buf, sizeof(buf));
  size_t n = 0;
  while (n < static_cast<size_t>(st.st_size)) {
    ssize_t r = read(fd, buf + n, static_cast<size_t>(st.st_size) - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) --n;
  SecretData secret(absl::string_view(reinterpret_cast<const char*>(buf), n));
  OPENSSL_cleanse(buf, sizeof(buf));
  munlock(buf, sizeof(buf));
  if (secret.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("secret file ", path, " is empty"));
  }
  return secret;
}

}  // namespace medvault
