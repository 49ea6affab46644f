// medvault-signer: the only process that talks to the chain. It reads the
// chain's identity and anchors audit-log tree heads with the AuditAnchor
// contract, with signatures from the keyvault (it never holds a key).
// Anchoring requests go through a durable outbox (outbox_worker.h) in its
// own SQLCipher database, keyed with the database key the keyvault unwraps
// for it at start-up.
#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/roles.h"
#include "daemon/common/service_main.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/anchorer.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/chain_admin.h"
#include "daemon/signer/event_index.h"
#include "daemon/signer/index_rpcs.h"
#include "daemon/signer/indexer.h"
#include "daemon/signer/json_rpc_client.h"
#include "daemon/signer/keyvault_chain_key.h"
#include "daemon/signer/outbox_store.h"
#include "daemon/signer/outbox_worker.h"
#include "medvault/internal/v1/signer.grpc.pb.h"

namespace medvault::signer {
namespace {

SyscallPolicy SignerPolicy() {
  return SyscallPolicy::GrpcService()
      .AllowSocketFamilies({AF_INET, AF_INET6}, "HTTP(S) to the chain's JSON-RPC endpoint")
      .Allow({"bind"}, "libcurl's connection set-up")
      // The outbox is SQLite (SQLCipher) in WAL mode: positioned page reads
      // and writes, a sync before a request is acknowledged (fdatasync; fsync
      // for the directory when a file is created), the WAL truncated after a
      // checkpoint and removed when the database is closed. Found necessary
      // by the integration tests (SIGSYS without ftruncate); access and
      // fchmod turned out not to be needed and stay forbidden.
      .Allow({"pread64", "pwrite64", "fsync", "fdatasync", "ftruncate", "unlink"},
             "SQLite reads, writes and syncs the outbox database and its WAL");
}

// How long start-up waits for the keyvault to hand out the database key.
constexpr absl::Duration kDatabaseKeyWait = absl::Seconds(20);

void ToProto(const OutboxEntry& entry, internal::v1::AnchorStatus* out) {
  out->set_outbox_id(static_cast<uint64_t>(entry.id));
  out->set_log_id(entry.log_id);
  out->set_tree_size(entry.tree_size);
  out->set_root_hash(entry.root_hash);
  out->set_state(static_cast<internal::v1::AnchorState>(entry.state));
  if (entry.state == AnchorState::kConfirmed) {
    out->set_transaction_hash(entry.transaction_hash);
    out->set_block_number(entry.block_number);
    out->set_already_anchored(entry.already_anchored);
  } else if (!entry.transactions.empty()) {
    out->set_transaction_hash(entry.transactions.back().hash);
  }
  if (entry.nonce.has_value()) out->set_nonce(*entry.nonce);
  out->set_transactions(static_cast<uint32_t>(entry.transactions.size()));
  out->set_error(entry.error);
  out->set_attempts(entry.attempts);
  out->set_created_ms(absl::ToUnixMillis(entry.created_at));
  out->set_updated_ms(absl::ToUnixMillis(entry.updated_at));
}

// How long a call to the keyvault may take (a signature is ~1 ms).
constexpr absl::Duration kKeyvaultTimeout = absl::Seconds(10);

class SignerService : public Guardable<internal::v1::Signer::Service> {
 public:
  // `anchorer` and `outbox` are null when no anchor contract is configured.
  SignerService(ChainClient* chain, uint64_t expected_chain_id, Anchorer* anchorer,
                OutboxWorker* outbox, OutboxStore* store, absl::Duration max_wait)
      : chain_(chain),
        expected_chain_id_(expected_chain_id),
        anchorer_(anchorer),
        outbox_(outbox),
        store_(store),
        max_wait_(max_wait) {}

  // The deployment and regulator transactions (ChainAdmin); `registries`
  // are the configured LicenceRegistry and PolicyRegistry (20 bytes, or
  // empty when not configured). Set once before serving.
  void set_admin(ChainAdmin* admin, std::string licence_registry, std::string policy_registry) {
    admin_ = admin;
    licence_registry_ = std::move(licence_registry);
    policy_registry_ = std::move(policy_registry);
  }

  grpc::Status GetChainInfo(grpc::ServerContext*, const internal::v1::GetChainInfoRequest*,
                            internal::v1::GetChainInfoResponse* response) override {
    auto chain_id = chain_->ChainId();
    if (!chain_id.ok()) return ToGrpcStatus(chain_id.status());
    if (expected_chain_id_ != 0 && *chain_id != expected_chain_id_) {
      return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
          "node reports chain id ", *chain_id, ", configuration expects ", expected_chain_id_)));
    }
    auto block = chain_->BlockNumber();
    if (!block.ok()) return ToGrpcStatus(block.status());
    response->set_chain_id(*chain_id);
    response->set_latest_block(*block);
    return grpc::Status::OK;
  }

  grpc::Status Anchor(grpc::ServerContext* context, const internal::v1::AnchorRequest* request,
                      internal::v1::AnchorResponse* response) override {
    if (outbox_ == nullptr) return NotConfigured();
    auto enqueued = outbox_->Submit(request->log_id(), request->tree_size(), request->root_hash());
    if (!enqueued.ok()) {
      log::Warn("anchor.refused",
                {{"tree_size", request->tree_size()}, {"error", enqueued.status()}});
      return ToGrpcStatus(enqueued.status());
    }
    if (enqueued->created) {
      log::Info("anchor.queued",
                {{"outbox_id", enqueued->entry.id}, {"tree_size", request->tree_size()}});
    }
    response->set_created(enqueued->created);
    OutboxEntry entry = std::move(enqueued->entry);
    if (request->wait()) {
      absl::Time deadline = absl::Now() + max_wait_;
      // Answers a little before the caller gives up, so it gets the state.
      deadline = std::min(deadline, absl::FromChrono(context->deadline()) - absl::Seconds(1));
      auto final_entry = outbox_->WaitFinal(entry.id, deadline);
      if (!final_entry.ok()) return ToGrpcStatus(final_entry.status());
      entry = *std::move(final_entry);
      if (entry.state == AnchorState::kFailed) {
        return ToGrpcStatus(absl::FailedPreconditionError(entry.error));
      }
    }
    ToProto(entry, response->mutable_status());
    return grpc::Status::OK;
  }

  grpc::Status GetAnchorStatus(grpc::ServerContext*,
                               const internal::v1::GetAnchorStatusRequest* request,
                               internal::v1::AnchorStatus* response) override {
    if (store_ == nullptr) return NotConfigured();
    if (request->outbox_id() == 0 || request->outbox_id() > static_cast<uint64_t>(INT64_MAX)) {
      return ToGrpcStatus(absl::InvalidArgumentError("outbox_id: must be an id from Anchor"));
    }
    auto entry = store_->Get(static_cast<int64_t>(request->outbox_id()));
    if (!entry.ok()) return ToGrpcStatus(entry.status());
    ToProto(*entry, response);
    return grpc::Status::OK;
  }

  grpc::Status ListAnchorStatus(grpc::ServerContext*,
                                const internal::v1::ListAnchorStatusRequest* request,
                                internal::v1::ListAnchorStatusResponse* response) override {
    if (store_ == nullptr) return NotConfigured();
    if (request->log_id().size() != 32) {
      return ToGrpcStatus(absl::InvalidArgumentError("log_id: must be 32 bytes"));
    }
    if (request->limit() > 1000) {
      return ToGrpcStatus(absl::InvalidArgumentError("limit: must be at most 1000"));
    }
    auto entries =
        store_->ListByLog(request->log_id(), request->limit() == 0 ? 100 : request->limit());
    if (!entries.ok()) return ToGrpcStatus(entries.status());
    for (const OutboxEntry& entry : *entries) ToProto(entry, response->add_entries());
    return grpc::Status::OK;
  }

  grpc::Status GetAnchor(grpc::ServerContext*, const internal::v1::GetAnchorRequest* request,
                         internal::v1::GetAnchorResponse* response) override {
    if (anchorer_ == nullptr) return NotConfigured();
    auto checkpoint = anchorer_->GetAnchor(request->log_id());
    if (!checkpoint.ok()) return ToGrpcStatus(checkpoint.status());
    response->set_tree_size(checkpoint->tree_size);
    response->set_root_hash(checkpoint->root_hash);
    response->set_timestamp(checkpoint->timestamp);
    response->set_block_number(checkpoint->block_number);
    return grpc::Status::OK;
  }

  // --- The event index (Indexer; the bodies are in index_rpcs.cc) ----------

  // Set once before serving; null when no contract is configured.
  void set_indexer(Indexer* indexer) { indexer_ = indexer; }

  grpc::Status GetIndexStatus(grpc::ServerContext*, const internal::v1::GetIndexStatusRequest*,
                              internal::v1::IndexStatus* response) override {
    return ToGrpcStatus(::medvault::signer::GetIndexStatus(indexer_, response));
  }

  grpc::Status ListLicenceEvents(grpc::ServerContext*,
                                 const internal::v1::ListLicenceEventsRequest* request,
                                 internal::v1::ListLicenceEventsResponse* response) override {
    return ToGrpcStatus(::medvault::signer::ListLicenceEvents(indexer_, *request, response));
  }

  grpc::Status GetLicence(grpc::ServerContext*, const internal::v1::GetLicenceRequest* request,
                          internal::v1::GetLicenceResponse* response) override {
    return ToGrpcStatus(::medvault::signer::GetLicence(indexer_, *request, response));
  }

  grpc::Status ListPolicyPublications(
      grpc::ServerContext*, const internal::v1::ListPolicyPublicationsRequest* request,
      internal::v1::ListPolicyPublicationsResponse* response) override {
    return ToGrpcStatus(::medvault::signer::ListPolicyPublications(indexer_, *request, response));
  }

  grpc::Status ListAnchorEvents(grpc::ServerContext*,
                                const internal::v1::ListAnchorEventsRequest* request,
                                internal::v1::ListAnchorEventsResponse* response) override {
    return ToGrpcStatus(::medvault::signer::ListAnchorEvents(indexer_, *request, response));
  }

  // --- Deployment and the regulator's transactions (ChainAdmin) -------------

  grpc::Status DeployContracts(grpc::ServerContext*,
                               const internal::v1::DeployContractsRequest* request,
                               internal::v1::DeployContractsResponse* response) override {
    if (outbox_ != nullptr) {
      // The outbox signs with the same key and keeps its own nonces.
      return ToGrpcStatus(absl::FailedPreconditionError(
          "signer.anchor_contract is already configured: the contracts are deployed (remove "
          "the contract addresses from the configuration to deploy a new set)"));
    }
    ContractCode code{request->audit_anchor_code(), request->licence_registry_code(),
                      request->policy_registry_code()};
    auto deployed = admin_->Deploy(code, request->regulator());
    if (!deployed.ok()) return ToGrpcStatus(deployed.status());
    response->set_audit_anchor(deployed->audit_anchor);
    response->set_licence_registry(deployed->licence_registry);
    response->set_policy_registry(deployed->policy_registry);
    response->set_first_block(deployed->first_block);
    response->set_operator_address(deployed->operator_address);
    response->set_regulator(deployed->regulator);
    return grpc::Status::OK;
  }

  grpc::Status SetLicence(grpc::ServerContext*, const internal::v1::SetLicenceRequest* request,
                          internal::v1::TransactionResult* response) override {
    if (licence_registry_.empty()) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          "signer.licence_registry is not configured: no LicenceRegistry to write"));
    }
    if (request->status() == internal::v1::LICENCE_STATUS_NONE ||
        !internal::v1::LicenceStatus_IsValid(request->status())) {
      return ToGrpcStatus(
          absl::InvalidArgumentError("status: must be ACTIVE, SUSPENDED, REVOKED or EXPIRED"));
    }
    for (const auto& [field, value] : {std::pair{"practitioner", &request->practitioner()},
                                       {"evidence_hash", &request->evidence_hash()}}) {
      if (absl::Status bad = abi::CheckNonZero32(*value, field); !bad.ok()) {
        return ToGrpcStatus(bad);
      }
    }
    auto mined = admin_->SetLicence(licence_registry_, request->practitioner(),
                                    static_cast<uint8_t>(request->status()), request->valid_until(),
                                    request->evidence_hash());
    return Answer(mined, response);
  }

  grpc::Status PublishPolicy(grpc::ServerContext*,
                             const internal::v1::PublishPolicyRequest* request,
                             internal::v1::TransactionResult* response) override {
    if (policy_registry_.empty()) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          "signer.policy_registry is not configured: no PolicyRegistry to publish to"));
    }
    if (request->version() == 0) {
      return ToGrpcStatus(absl::InvalidArgumentError("version: must be above 0"));
    }
    if (absl::Status bad = abi::CheckNonZero32(request->bundle_hash(), "bundle_hash"); !bad.ok()) {
      return ToGrpcStatus(bad);
    }
    auto mined =
        admin_->PublishPolicy(policy_registry_, request->version(), request->bundle_hash());
    return Answer(mined, response);
  }

 private:
  static grpc::Status Answer(const absl::StatusOr<MinedTransaction>& mined,
                             internal::v1::TransactionResult* response) {
    if (!mined.ok()) return ToGrpcStatus(mined.status());
    response->set_transaction_hash(mined->hash);
    response->set_block_number(mined->block_number);
    response->set_nonce(mined->nonce);
    response->set_sender(mined->sender);
    return grpc::Status::OK;
  }

  static grpc::Status NotConfigured() {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "signer.anchor_contract is not configured: no AuditAnchor contract to anchor with"));
  }

  ChainClient* chain_;
  const uint64_t expected_chain_id_;
  Anchorer* const anchorer_;
  OutboxWorker* const outbox_;
  OutboxStore* const store_;
  const absl::Duration max_wait_;
  ChainAdmin* admin_ = nullptr;
  std::string licence_registry_;
  std::string policy_registry_;
  Indexer* indexer_ = nullptr;
};

class SignerProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    // Loads libcurl's TLS back end (and its configuration files) now, while
    // files can still be opened freely.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      return absl::InternalError("curl_global_init failed");
    }
    config_ = config;
    chain_ = std::make_unique<JsonRpcChainClient>(
        config.signer().rpc_url(), absl::Milliseconds(config.signer().rpc_timeout_ms()));
    return absl::OkStatus();
  }
  SyscallPolicy Policy() const override { return SignerPolicy(); }
  absl::Status Register(InternalServer& internal) override {
    // After the sandbox: a gRPC channel starts threads. It connects lazily.
    const auto& signer = config_.signer();
    key_ =
        std::make_unique<KeyvaultChainKey>(SocketPath(config_, Role::kKeyvault), kKeyvaultTimeout);
    regulator_key_ = std::make_unique<KeyvaultChainKey>(
        SocketPath(config_, Role::kKeyvault), kKeyvaultTimeout, internal::v1::CHAIN_KEY_REGULATOR);
    TransactionSenderOptions sending;
    sending.expected_chain_id = signer.chain_id();
    sending.confirmations = signer.confirmations();
    sending.fee_caps = {signer.max_fee_per_gas_wei(), signer.max_priority_fee_per_gas_wei()};
    sending.receipt_timeout = absl::Milliseconds(signer.receipt_timeout_ms());
    admin_ = std::make_unique<ChainAdmin>(chain_.get(), key_.get(), regulator_key_.get(), sending);
    // The contracts' addresses (20 bytes; empty when not configured).
    IndexerOptions contracts;
    for (const auto& [value, key, out] :
         {std::tuple{&signer.anchor_contract(), "signer.anchor_contract", &contracts.audit_anchor},
          {&signer.licence_registry(), "signer.licence_registry", &contracts.licence_registry},
          {&signer.policy_registry(), "signer.policy_registry", &contracts.policy_registry}}) {
      if (!value->empty()) {
        ASSIGN_OR_RETURN(*out, ParseAddress(*value, key));
      }
    }
    if (!contracts.audit_anchor.empty()) {
      AnchorerOptions options{sending, contracts.audit_anchor};
      auto anchorer = Anchorer::Create(chain_.get(), key_.get(), std::move(options));
      if (!anchorer.ok()) return anchorer.status();
      anchorer_ = *std::move(anchorer);
      RETURN_IF_ERROR(OpenOutbox());
    }
    RETURN_IF_ERROR(OpenIndex(contracts));
    service_ = std::make_unique<SignerService>(chain_.get(), signer.chain_id(), anchorer_.get(),
                                               outbox_.get(), store_.get(),
                                               absl::Milliseconds(signer.receipt_timeout_ms()));
    service_->set_admin(admin_.get(), contracts.licence_registry, contracts.policy_registry);
    service_->set_indexer(indexer_.get());
    internal.AddService(service_.get(), *InternalService(Role::kSigner));
    return absl::OkStatus();
  }
  absl::Status Serve() override {
    // The chain being down is not fatal: anchoring waits for it. Say so.
    if (auto id = chain_->ChainId(); id.ok()) {
      log::Info("chain.connected", {{"chain_id", *id}});
    } else {
      log::Warn("chain.unreachable", {{"error", id.status()}});
    }
    if (anchorer_ == nullptr) {
      log::Warn("anchor.disabled", {{"reason", "signer.anchor_contract is not configured"}});
    } else if (auto address = key_->Address(); address.ok()) {
      log::Info("anchor.enabled",
                {{"contract", config_.signer().anchor_contract()}, {"operator", ToHex(*address)}});
    } else {
      // The keyvault may still be starting; the worker asks again.
      log::Warn("anchor.key_unavailable", {{"error", address.status()}});
    }
    if (outbox_ != nullptr) {
      auto waiting = store_->CountUnfinished();
      log::Info("outbox.started", {{"unfinished", waiting.ok() ? *waiting : 0}});
      outbox_->Start();
    }
    if (indexer_ != nullptr) {
      log::Info("index.started", {{"indexed_block", indexer_->status().indexed_block},
                                  {"reorgs", indexer_->status().reorgs}});
      indexer_->Start();
    }
    return absl::OkStatus();
  }
  void Stop() override {
    if (outbox_ != nullptr) outbox_->Stop();
    if (indexer_ != nullptr) indexer_->Stop();
  }

 private:
  // The outbox database, keyed with the keyvault's database key "signer".
  // The key lives only in this function (SecretData, wiped on return).
  absl::Status OpenOutbox() {
    const auto& signer = config_.signer();
    absl::StatusOr<SecretData> key = key_->DatabaseKey(kDatabaseKeyWait);
    if (!key.ok()) return key.status();
    auto store = OutboxStore::Open(signer.state_dir() + "/outbox.db", *key);
    if (!store.ok()) return store.status();
    store_ = *std::move(store);
    OutboxWorkerOptions options;
    options.capacity = signer.outbox_capacity();
    options.bump_after = absl::Milliseconds(signer.fee_bump_after_ms());
    outbox_ = std::make_unique<OutboxWorker>(store_.get(), anchorer_.get(), chain_.get(), options);
    return absl::OkStatus();
  }

  // The event index (index.db beside the outbox, same key) and its indexer,
  // when any contract is configured (`options` has their addresses). The
  // key lives only in this function.
  absl::Status OpenIndex(IndexerOptions options) {
    const auto& signer = config_.signer();
    if (options.audit_anchor.empty() && options.licence_registry.empty() &&
        options.policy_registry.empty()) {
      log::Warn("index.disabled", {{"reason", "no contract is configured"}});
      return absl::OkStatus();
    }
    options.from_block = signer.index_from_block();
    options.expected_chain_id = signer.chain_id();
    options.confirmations = signer.confirmations();
    options.batch_blocks = signer.index_batch_blocks();
    options.poll_interval = absl::Milliseconds(signer.index_poll_ms());
    absl::StatusOr<SecretData> key = key_->DatabaseKey(kDatabaseKeyWait);
    if (!key.ok()) return key.status();
    ASSIGN_OR_RETURN(index_, EventIndex::Open(signer.state_dir() + "/index.db", *key,
                                              Indexer::ScopeOf(options)));
    if (index_->dropped_other_scope()) {
      log::Warn("index.reset", {{"reason",
                                 "the configured contracts changed: read again from "
                                 "signer.index_from_block"}});
    }
    ASSIGN_OR_RETURN(indexer_, Indexer::Create(index_.get(), chain_.get(), std::move(options)));
    return absl::OkStatus();
  }

  config::v1::Config config_;
  std::unique_ptr<JsonRpcChainClient> chain_;
  std::unique_ptr<KeyvaultChainKey> key_;            // the operator's
  std::unique_ptr<KeyvaultChainKey> regulator_key_;  // held by a development keyvault only
  std::unique_ptr<ChainAdmin> admin_;
  std::unique_ptr<Anchorer> anchorer_;
  std::unique_ptr<OutboxStore> store_;
  std::unique_ptr<OutboxWorker> outbox_;  // declared after what it uses: destroyed first
  std::unique_ptr<EventIndex> index_;
  std::unique_ptr<Indexer> indexer_;  // after its index: destroyed first
  std::unique_ptr<SignerService> service_;
};

}  // namespace
}  // namespace medvault::signer

int main(int argc, char** argv) {
  medvault::signer::SignerProcess process;
  return medvault::ServiceMain(medvault::Role::kSigner, argc, argv, process);
}
