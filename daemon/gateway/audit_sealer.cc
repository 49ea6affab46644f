#include "daemon/gateway/audit_sealer.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/merkle.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"

namespace medvault::gateway {

AuditSealer::AuditSealer(const config::v1::AuditLog& config, RegistryDb& db, Backends& backends)
    : config_(config), db_(db), backends_(backends), log_id_(merkle::LogId(config.log_name())) {}

AuditSealer::~AuditSealer() { Stop(); }

void AuditSealer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void AuditSealer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void AuditSealer::Run() {
  const absl::Duration interval = absl::Milliseconds(config_.tree_head_interval_ms());
  while (true) {
    absl::Status status = SealOnce(absl::Now());
    const std::string error = status.ok() ? "" : status.ToString();
    if (error != last_error_) {
      if (status.ok()) {
        log::Info("audit.sealing_resumed", {});
      } else {
        log::Warn("audit.sealing_failed", {{"error", status}});
      }
      last_error_ = error;
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval)) return;
  }
}

absl::Status AuditSealer::SealOnce(absl::Time now) {
  RETURN_IF_ERROR(SignHead(now));
  return AnchorIfDue(now);
}

absl::Status AuditSealer::SignHead(absl::Time now) {
  uint64_t size = 0;
  merkle::Hash root;
  bool due = false;
  RETURN_IF_ERROR(db_.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(size, AuditTreeSize(db));
    ASSIGN_OR_RETURN(std::optional<v1::SignedTreeHead> latest, LatestTreeHead(db));
    // The empty log has nothing to vouch for: its first head comes with
    // its first entry.
    due = size > 0 && (!latest.has_value() || latest->tree_size() < size);
    if (!due) return absl::OkStatus();
    ASSIGN_OR_RETURN(root, AuditRoot(db, size));
    return absl::OkStatus();
  }));
  if (!due) return absl::OkStatus();

  v1::SignedTreeHead head;
  head.set_log_id(log_id_);
  head.set_tree_size(size);
  head.set_root_hash(merkle::ToBytes(root));
  head.set_timestamp_ms(static_cast<uint64_t>(absl::ToUnixMillis(now)));
  internal::v1::SignLogMessageRequest request;
  request.set_message(merkle::TreeHeadMessage(log_id_, size, head.timestamp_ms(), root));
  internal::v1::SignLogMessageResponse response;
  grpc::ClientContext context;
  backends_.SetDeadline(context);
  grpc::Status signed_ = backends_.keyvault().SignLogMessage(&context, request, &response);
  if (!signed_.ok()) return BackendError("keyvault", "SignLogMessage", signed_);
  head.set_signature(response.signature());
  RETURN_IF_ERROR(
      db_.Write([&](sqlite3* db) { return StoreTreeHead(db, config_.log_name(), head); }));
  log::Debug("audit.tree_head_signed", {{"tree_size", size}, {"root", merkle::ToHex(root)}});
  return absl::OkStatus();
}

absl::Status AuditSealer::AnchorIfDue(absl::Time now) {
  std::optional<v1::SignedTreeHead> head;
  AnchorRequestRow last;
  RETURN_IF_ERROR(db_.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(head, LatestTreeHead(db));
    ASSIGN_OR_RETURN(last, LatestAnchorRequest(db));
    return absl::OkStatus();
  }));
  if (!head.has_value() || head->tree_size() <= last.tree_size) return absl::OkStatus();
  const bool by_count = head->tree_size() - last.tree_size >= config_.anchor_every_entries();
  const bool by_time =
      absl::ToUnixMillis(now) - last.requested_at_ms >= int64_t{config_.anchor_interval_ms()};
  if (!by_count && !by_time) return absl::OkStatus();

  internal::v1::AnchorRequest request;
  request.set_log_id(log_id_);
  request.set_tree_size(head->tree_size());
  request.set_root_hash(head->root_hash());
  internal::v1::AnchorResponse response;
  grpc::ClientContext context;
  backends_.SetDeadline(context);
  grpc::Status queued = backends_.signer().Anchor(&context, request, &response);
  if (!queued.ok()) return BackendError("signer", "Anchor", queued);
  RETURN_IF_ERROR(db_.Write([&](sqlite3* db) {
    return StoreAnchorRequest(db, head->tree_size(), response.status().outbox_id(),
                              absl::ToUnixMillis(now));
  }));
  log::Info("audit.anchor_requested",
            {{"tree_size", head->tree_size()}, {"outbox_id", response.status().outbox_id()}});
  return absl::OkStatus();
}

}  // namespace medvault::gateway
