// Seals the audit log: signs tree heads with the keyvault's log key and
// hands them to the signer for anchoring on chain (gateway.audit).
//
// Runs on its own thread, every tree_head_interval_ms. Nothing here holds
// up an append: events commit with their changes whatever the keyvault or
// the chain are doing; a head that cannot be signed now is signed on a
// later round, and an anchor request the signer refuses (no contract, down)
// is asked again later. The signer's outbox makes an accepted request
// durable; the chain may confirm it much later.
#ifndef MEDVAULT_DAEMON_GATEWAY_AUDIT_SEALER_H_
#define MEDVAULT_DAEMON_GATEWAY_AUDIT_SEALER_H_

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/gateway/backends.h"
#include "daemon/gateway/registry_db.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault::gateway {

class AuditSealer {
 public:
  AuditSealer(const config::v1::AuditLog& config, RegistryDb& db, Backends& backends);
  ~AuditSealer();
  AuditSealer(const AuditSealer&) = delete;
  AuditSealer& operator=(const AuditSealer&) = delete;

  void Start();
  void Stop();

  // One round: sign a head if the log grew (or none exists yet), then
  // anchor the latest head if it is due. Errors are logged by the thread.
  absl::Status SealOnce(absl::Time now);

  const std::string& log_id() const { return log_id_; }

 private:
  absl::Status SignHead(absl::Time now);
  absl::Status AnchorIfDue(absl::Time now);
  void Run();

  const config::v1::AuditLog& config_;
  RegistryDb& db_;
  Backends& backends_;
  const std::string log_id_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  // What was last logged, so that a lasting failure is logged once.
  std::string last_error_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_AUDIT_SEALER_H_
