// Pkcs11Module: the keyvault's one connection to the HSM through a vendor's
// PKCS#11 module (SoftHSM2 in development; Thales, Entrust, YubiHSM or
// CloudHSM in production, chosen by configuration alone). Nothing here is
// specific to one vendor.
//
// Every failure becomes a status naming the PKCS#11 function and the CKR_*
// code, e.g. "C_Login: CKR_PIN_INCORRECT (0xa0)". Thread-safe: calls on the
// session are serialised, since some modules (SoftHSM2 among them) are not
// safe under concurrent use of one session.
#ifndef MEDVAULT_KEYVAULT_PKCS11_MODULE_H_
#define MEDVAULT_KEYVAULT_PKCS11_MODULE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/secret.h"

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

// Names a CKR_* return value ("CKR_PIN_INCORRECT"); unknown values as hex.
std::string CkrName(unsigned long rv);

class Pkcs11Module {
 public:
  // Which token to use: by label or by slot id.
  using TokenSelector = std::variant<std::string, uint64_t>;

  // Loads the module (dlopen), initialises it with OS locking, finds the
  // token, opens a read-write session and logs in as the normal user.
  // Must run before the sandbox: modules read their configuration and
  // token files on first use.
  static absl::StatusOr<std::unique_ptr<Pkcs11Module>> Open(const std::string& module_path,
                                                            const TokenSelector& token,
                                                            const SecretData& pin);
  ~Pkcs11Module();

  absl::StatusOr<TokenDescription> Describe() const;

 private:
  struct Impl;
  explicit Pkcs11Module(std::unique_ptr<Impl> impl);
  mutable absl::Mutex mu_;
  std::unique_ptr<Impl> impl_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_PKCS11_MODULE_H_
