#include "daemon/policy/policy_engine.h"

#include "absl/strings/str_cat.h"
#include "daemon/policy/bundle.h"

namespace medvault::policy {

absl::StatusOr<PolicyEngine::ReloadResult> PolicyEngine::Reload(absl::Time now) {
  absl::MutexLock reload_lock(&reload_mu_);
  auto loaded = LoadSignedBundle(bundle_dir_, public_key_pem_, now);
  std::shared_ptr<const CompiledPolicy> current = Current();
  absl::Status refused;
  if (!loaded.ok()) {
    refused = loaded.status();
  } else if (current != nullptr && (*loaded)->version < current->version) {
    refused = absl::FailedPreconditionError(
        absl::StrCat("bundle version ", (*loaded)->version, " is older than version ",
                     current->version, " in force"));
  } else if (current != nullptr && (*loaded)->version == current->version) {
    if ((*loaded)->bundle_hash != current->bundle_hash) {
      refused = absl::FailedPreconditionError(
          absl::StrCat("bundle version ", current->version,
                       " is already in force with another hash; a change needs a new version"));
    } else {
      absl::MutexLock lock(&mu_);
      last_error_.clear();
      return ReloadResult{false, current};
    }
  }
  absl::MutexLock lock(&mu_);
  if (!refused.ok()) {
    last_error_ = std::string(refused.message());
    return refused;
  }
  current_ = *std::move(loaded);
  last_error_.clear();
  loaded_time_ = now;
  return ReloadResult{true, current_};
}

std::shared_ptr<const CompiledPolicy> PolicyEngine::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::string PolicyEngine::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

absl::Time PolicyEngine::loaded_time() const {
  absl::MutexLock lock(&mu_);
  return loaded_time_;
}

}  // namespace medvault::policy
