// SecretData: the one type that carries secrets (the HSM PIN, database keys,
// data keys) inside medvault.
//
// The bytes live in their own allocation, locked in memory with mlock so
// they are never swapped out, and are wiped with OPENSSL_cleanse when the
// object is destroyed or moved from. The type cannot be printed or logged,
// and comparisons are constant-time. Not thread-safe; move it, do not share.
#ifndef MEDVAULT_DAEMON_COMMON_SECRET_H_
#define MEDVAULT_DAEMON_COMMON_SECRET_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault {

class SecretData {
 public:
  SecretData() = default;
  // Copies `bytes`; the caller wipes its own copy.
  explicit SecretData(absl::string_view bytes);
  ~SecretData();

  SecretData(SecretData&& other) noexcept;
  SecretData& operator=(SecretData&& other) noexcept;
  SecretData(const SecretData&) = delete;
  SecretData& operator=(const SecretData&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // A view for the few APIs that take characters (C_Login). Do not copy it.
  absl::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Constant-time in the length of the shorter input.
  bool ConstantTimeEquals(const SecretData& other) const;

 private:
  void Wipe();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
};

// Reads a secret from a file that must be a regular file owned by one of
// `owners` and readable by nobody else (mode 0400 or 0600). A trailing
// newline is removed. Errors name the file, never the content.
absl::StatusOr<SecretData> ReadSecretFile(const std::string& path,
                                          const std::vector<uid_t>& owners);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_SECRET_H_
