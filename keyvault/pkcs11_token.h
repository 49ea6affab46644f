// Pkcs11Token: the keyvault's connection to the HSM through a vendor's
// PKCS#11 module (SoftHSM2 in development; Thales, Entrust, YubiHSM or
// CloudHSM in production, chosen by configuration alone). Nothing here is
// specific to one vendor.
//
// It keeps a pool of logged-in read-write sessions. Run() lends one session
// to one caller at a time; when the module reports that sessions or the
// token are gone (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN, ...)
// it reopens every session, logs in again and retries the operation once.
//
// Every failure becomes a status naming the PKCS#11 function and the CKR_*
// code, e.g. "C_Login: CKR_PIN_INCORRECT (0xa0)". The PIN is held as
// SecretData for re-login and never appears in a status or a log line.
//
// Thread-safe. Creating and destroying objects is serialised through
// ObjectLock(): SoftHSM2 (and some other modules) are not safe under
// concurrent key generation.
#ifndef MEDVAULT_KEYVAULT_PKCS11_TOKEN_H_
#define MEDVAULT_KEYVAULT_PKCS11_TOKEN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"
#include "keyvault/pkcs11.h"

namespace medvault::keyvault {

struct TokenDescription {
  std::string library_description;
  std::string library_version;
  std::string label;
  std::string manufacturer;
  std::string model;
  std::string serial_number;
  uint64_t slot_id = 0;
  bool logged_in = false;
};

// Names a CKR_* return value ("CKR_PIN_INCORRECT (0xa0)"); unknown values in hex.
std::string CkrName(CK_RV rv);

// The status for a failed PKCS#11 call: "<function>: <CKR name>", with a
// canonical code (PIN problems PERMISSION_DENIED, lost sessions and devices
// UNAVAILABLE, bad data INVALID_ARGUMENT, the rest INTERNAL). The CKR value
// travels as a payload so callers can tell the cases apart (CkrOf()).
absl::Status CkrStatus(const char* function, CK_RV rv);
// The CKR value of a status made by CkrStatus, or CKR_OK for any other.
CK_RV CkrOf(const absl::Status& status);

// Evaluates a PKCS#11 call and returns its CkrStatus from the enclosing
// function unless it is CKR_OK. `fns` is the CK_FUNCTION_LIST pointer.
#define P11_RETURN_IF_ERROR(fns, fn, ...)                                    \
  do {                                                                       \
    CK_RV medvault_p11_rv_ = (fns)->fn(__VA_ARGS__);                         \
    if (medvault_p11_rv_ != CKR_OK) return CkrStatus(#fn, medvault_p11_rv_); \
  } while (0)

// Every object matching `tmpl` (at most `max`), through C_FindObjectsInit,
// C_FindObjects and C_FindObjectsFinal in `session`.
absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_FUNCTION_LIST* f,
                                                          CK_SESSION_HANDLE session,
                                                          CK_ATTRIBUTE* tmpl, CK_ULONG count,
                                                          size_t max = SIZE_MAX);

// The bytes of one attribute. INTERNAL for an implausible length (over
// 4 KiB, or CK_UNAVAILABLE_INFORMATION): attributes read here are small.
absl::StatusOr<std::string> GetAttribute(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session,
                                         CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

class Pkcs11Token {
 public:
  // Which token to use: by label or by slot id.
  using TokenSelector = std::variant<std::string, uint64_t>;

  struct Options {
    std::string module_path;
    TokenSelector token;
    // Sessions kept open; at most this many operations run at once.
    int sessions = 4;
  };

  // Loads the module (dlopen), initialises it with OS locking, finds the
  // token, opens the sessions and logs in as the normal user. Must run
  // before the sandbox: modules read their configuration on first use.
  static absl::StatusOr<std::unique_ptr<Pkcs11Token>> Open(const Options& options, SecretData pin);
  ~Pkcs11Token();

  Pkcs11Token(const Pkcs11Token&) = delete;
  Pkcs11Token& operator=(const Pkcs11Token&) = delete;

  CK_FUNCTION_LIST* functions() const { return functions_; }

  // Runs `operation` with a logged-in session of its own. When it fails
  // because sessions or the token were lost, reconnects and runs it once
  // more. Blocks while every session is lent out.
  absl::Status Run(absl::FunctionRef<absl::Status(CK_SESSION_HANDLE)> operation);

  // Held by whoever creates or destroys objects (see the header comment).
  absl::Mutex& ObjectLock() { return object_mu_; }

  absl::StatusOr<TokenDescription> Describe();

  // How many times the sessions were reopened since start-up.
  int reconnects() const;

 private:
  Pkcs11Token(const Options& options, SecretData pin, void* library, CK_FUNCTION_LIST* functions);

  // Closes every session, finds the token again (its slot may have
  // changed), opens the pool and logs in.
  absl::Status Reconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CK_SESSION_HANDLE> Borrow(uint64_t* generation);
  void Return(CK_SESSION_HANDLE session, uint64_t generation);

  // Constant after construction.
  const Options options_;
  const SecretData pin_;
  void* const library_;
  CK_FUNCTION_LIST* const functions_;

  mutable absl::Mutex mu_;
  CK_SLOT_ID slot_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<CK_SESSION_HANDLE> idle_ ABSL_GUARDED_BY(mu_);
  int lent_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by Reconnect(): sessions of an older generation are not returned
  // to the pool.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex object_mu_;
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_PKCS11_TOKEN_H_
