// The bundle in force in medvault-policy, and its reloads.
//
// Evaluations take a snapshot (a shared_ptr to an immutable
// CompiledPolicy) and decide on it; a reload builds the new policy aside
// and swaps the pointer under a mutex, so an evaluation in flight finishes
// on the bundle it started with and the old bundle is freed by whoever
// drops the last reference. A refused bundle changes nothing but
// last_error(). Thread-safe.
#ifndef MEDVAULT_DAEMON_POLICY_POLICY_ENGINE_H_
#define MEDVAULT_DAEMON_POLICY_POLICY_ENGINE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/policy/compiled_policy.h"

namespace medvault::policy {

class PolicyEngine {
 public:
  PolicyEngine(std::string bundle_dir, std::string public_key_pem)
      : bundle_dir_(std::move(bundle_dir)), public_key_pem_(std::move(public_key_pem)) {}

  struct ReloadResult {
    bool changed = false;
    std::shared_ptr<const CompiledPolicy> policy;
  };

  // Loads the signed bundle from the directory (bundle.h: LoadSignedBundle)
  // and swaps it in. Besides LoadSignedBundle's errors: FAILED_PRECONDITION
  // for a version lower than the one in force, or the same version with a
  // different hash (a change needs a new version). The same version and
  // hash again is OK with changed = false.
  absl::StatusOr<ReloadResult> Reload(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // The bundle in force; null before the first successful load.
  std::shared_ptr<const CompiledPolicy> Current() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string last_error() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time loaded_time() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Constant after construction.
  const std::string bundle_dir_;
  const std::string public_key_pem_;

  // Serializes reloads, so two cannot race past the version check.
  absl::Mutex reload_mu_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const CompiledPolicy> current_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time loaded_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_POLICY_ENGINE_H_
