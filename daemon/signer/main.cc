// medvault-signer: the only process that talks to the chain. It reads the
// chain's identity and anchors audit-log tree heads with the AuditAnchor
// contract, with signatures from the keyvault (it never holds a key).
#include <curl/curl.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/roles.h"
#include "daemon/common/service_main.h"
#include "daemon/signer/anchorer.h"
#include "daemon/signer/json_rpc_client.h"
#include "daemon/signer/keyvault_chain_key.h"
#include "medvault/internal/v1/signer.grpc.pb.h"

namespace medvault::signer {
namespace {

SyscallPolicy SignerPolicy() {
  return SyscallPolicy::GrpcService()
      .AllowSocketFamilies({AF_INET, AF_INET6}, "HTTP(S) to the chain's JSON-RPC endpoint")
      .Allow({"bind"}, "libcurl's connection set-up");
}

// How long a call to the keyvault may take (a signature is ~1 ms).
constexpr absl::Duration kKeyvaultTimeout = absl::Seconds(10);

class SignerService : public Guardable<internal::v1::Signer::Service> {
 public:
  // `anchorer` is null when no anchor contract is configured.
  SignerService(ChainClient* chain, uint64_t expected_chain_id, Anchorer* anchorer)
      : chain_(chain), expected_chain_id_(expected_chain_id), anchorer_(anchorer) {}

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

  grpc::Status Anchor(grpc::ServerContext*, const internal::v1::AnchorRequest* request,
                      internal::v1::AnchorResponse* response) override {
    if (anchorer_ == nullptr) return NotConfigured();
    auto result = anchorer_->Anchor(request->log_id(), request->tree_size(), request->root_hash());
    if (!result.ok()) {
      log::Warn("anchor.failed", {{"tree_size", request->tree_size()}, {"error", result.status()}});
      return ToGrpcStatus(result.status());
    }
    response->set_transaction_hash(result->transaction_hash);
    response->set_block_number(result->block_number);
    response->set_already_anchored(result->already_anchored);
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

 private:
  static grpc::Status NotConfigured() {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "signer.anchor_contract is not configured: no AuditAnchor contract to anchor with"));
  }

  ChainClient* chain_;
  const uint64_t expected_chain_id_;
  Anchorer* const anchorer_;
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
    if (!signer.anchor_contract().empty()) {
      auto contract = ParseAddress(signer.anchor_contract(), "signer.anchor_contract");
      if (!contract.ok()) return contract.status();
      key_ = std::make_unique<KeyvaultChainKey>(SocketPath(config_, Role::kKeyvault),
                                                kKeyvaultTimeout);
      AnchorerOptions options;
      options.contract = *std::move(contract);
      options.expected_chain_id = signer.chain_id();
      options.confirmations = signer.confirmations();
      options.fee_caps = {signer.max_fee_per_gas_wei(), signer.max_priority_fee_per_gas_wei()};
      options.receipt_timeout = absl::Milliseconds(signer.receipt_timeout_ms());
      auto anchorer = Anchorer::Create(chain_.get(), key_.get(), std::move(options));
      if (!anchorer.ok()) return anchorer.status();
      anchorer_ = *std::move(anchorer);
    }
    service_ = std::make_unique<SignerService>(chain_.get(), signer.chain_id(), anchorer_.get());
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
      // The keyvault may still be starting; the first Anchor asks again.
      log::Warn("anchor.key_unavailable", {{"error", address.status()}});
    }
    return absl::OkStatus();
  }

 private:
  config::v1::Config config_;
  std::unique_ptr<JsonRpcChainClient> chain_;
  std::unique_ptr<KeyvaultChainKey> key_;
  std::unique_ptr<Anchorer> anchorer_;
  std::unique_ptr<SignerService> service_;
};

}  // namespace
}  // namespace medvault::signer

int main(int argc, char** argv) {
  medvault::signer::SignerProcess process;
  return medvault::ServiceMain(medvault::Role::kSigner, argc, argv, process);
}
