// medvault-keyvault: the only process that loads the PKCS#11 module and
// knows the HSM PIN.
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/secret.h"
#include "daemon/common/service_main.h"
#include "daemon/common/status_macros.h"
#include "daemon/common/users.h"
#include "keyvault/data_keys.h"
#include "keyvault/keyvault_service.h"
#include "keyvault/pkcs11_token.h"
#include "keyvault/sandbox_policy.h"

namespace medvault::keyvault {
namespace {

absl::StatusOr<SecretData> ReadPin(const config::v1::Config& config) {
  const auto& p = config.keyvault().pkcs11();
  std::string path = p.pin_file();
  if (p.pin_source_case() == config::v1::Pkcs11::kPinCredential) {
    const char* dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("keyvault.pkcs11.pin_credential is \"", p.pin_credential(),
                       "\" but $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)"));
    }
    path = absl::StrCat(dir, "/", p.pin_credential());
  }
  // The PIN file belongs to the keyvault's user (or to root, who starts it).
  std::vector<uid_t> owners = {geteuid()};
  if (auto uid = LookupUid(config.keyvault().process().user()); uid.ok()) owners.push_back(*uid);
  return ReadSecretFile(path, owners);
}

// The largest request the keyvault accepts: a log message to sign (64 KiB)
// with room for framing. Anything larger is refused by gRPC unread.
constexpr int kMaxRequestBytes = 128 * 1024;

class KeyvaultProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    const auto& p = config.keyvault().pkcs11();
    for (const auto& env : p.module_env()) setenv(env.name().c_str(), env.value().c_str(), 1);
    ASSIGN_OR_RETURN(SecretData pin, ReadPin(config));
    Pkcs11Token::Options options;
    options.module_path = p.module_path();
    options.sessions = static_cast<int>(p.sessions());
    if (p.token_case() == config::v1::Pkcs11::kSlotId) {
      options.token = p.slot_id();
    } else {
      options.token = p.token_label();
    }
    ASSIGN_OR_RETURN(token_, Pkcs11Token::Open(options, std::move(pin)));
    ASSIGN_OR_RETURN(auto description, token_->Describe());
    log::Info("hsm.logged_in", {{"token", description.label},
                                {"slot", description.slot_id},
                                {"module", p.module_path()},
                                {"sessions", options.sessions}});

    // The database-key owners are looked up now, while the user database
    // can still be read.
    for (Role role : {Role::kGateway, Role::kSigner}) {
      ASSIGN_OR_RETURN(uid_t uid, LookupUid(ProcessConfig(config, role).user()));
      owners_[std::string(RoleName(role))] = uid;
    }
    state_dir_ = config.keyvault().state_dir();
    patient_key_cache_ = config.keyvault().patient_key_cache();
    initialize_missing_keys_ = config.keyvault().initialize_missing_keys();
    hold_regulator_key_ = config.keyvault().hold_regulator_key();
    if (hold_regulator_key_) {
      log::Warn("keyvault.regulator_key_held",
                {{"note", "development only: this keyvault signs as the regulator"}});
    }
    return absl::OkStatus();
  }

  SyscallPolicy Policy() const override { return KeyvaultPolicy(); }

  // After the sandbox, as the keyvault's own user: the keys it creates and
  // the patient store are files that user must own.
  absl::Status Register(InternalServer& internal) override {
    ASSIGN_OR_RETURN(keys_, KeyHierarchy::Open(*token_, {state_dir_, patient_key_cache_}));
    service_ =
        std::make_unique<KeyVaultService>(token_.get(), keys_.get(), owners_, hold_regulator_key_);
    if (initialize_missing_keys_) {
      ASSIGN_OR_RETURN(std::vector<std::string> created, service_->InitializeMissing());
      log::Info("keys.ready", {{"created", static_cast<uint64_t>(created.size())},
                               {"master_version", keys_->latest_master_version()}});
    } else {
      service_->LoadSigningKeys();
      if (keys_->latest_master_version() == 0) {
        log::Warn("keys.missing", {{"hint", "run medvaultctl hsm init"}});
      }
    }
    service_->set_peers(&internal.peers());
    internal.set_max_request_bytes(kMaxRequestBytes);
    internal.AddService(service_.get(), *InternalService(Role::kKeyvault));
    return absl::OkStatus();
  }

 private:
  DatabaseKeyOwners owners_;
  std::string state_dir_;
  size_t patient_key_cache_ = 0;
  bool initialize_missing_keys_ = false;
  bool hold_regulator_key_ = false;
  std::unique_ptr<Pkcs11Token> token_;
  std::unique_ptr<KeyHierarchy> keys_;
  std::unique_ptr<KeyVaultService> service_;
};

}  // namespace
}  // namespace medvault::keyvault

int main(int argc, char** argv) {
  medvault::keyvault::KeyvaultProcess process;
  return medvault::ServiceMain(medvault::Role::kKeyvault, argc, argv, process);
}
