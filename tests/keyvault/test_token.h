// A real SoftHSM2 token in a temporary directory, for keyvault tests: a
// fresh token with a random PIN, opened through Pkcs11Token exactly as the
// keyvault opens it. Removed with the object.
#ifndef MEDVAULT_TESTS_KEYVAULT_TEST_TOKEN_H_
#define MEDVAULT_TESTS_KEYVAULT_TEST_TOKEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "keyvault/pkcs11_token.h"

namespace medvault::keyvault {

class TestToken {
 public:
  // Initialises a token labelled "medvault-test" with softhsm2-util and,
  // unless `sessions` is 0, opens it with that many sessions. (PKCS#11 login
  // state is per process: while one Pkcs11Token is logged in, another
  // opening the same token is logged in too, whatever PIN it gives.)
  static absl::StatusOr<std::unique_ptr<TestToken>> Create(int sessions = 4);
  ~TestToken();

  Pkcs11Token& token() { return *token_; }
  static constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
  static constexpr char kLabel[] = "medvault-test";
  // A directory for the test's other files (removed with the token).
  const std::string& dir() const { return dir_; }
  // Opens the same token again (as a restarted keyvault would).
  absl::StatusOr<std::unique_ptr<Pkcs11Token>> Reopen(int sessions = 4) const;

 private:
  TestToken() = default;
  std::string dir_;
  std::string pin_;
  std::unique_ptr<Pkcs11Token> token_;
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_TESTS_KEYVAULT_TEST_TOKEN_H_
