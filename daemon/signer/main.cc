// medvault-signer: the only process that talks to the chain. This first
// version reads the chain's identity; anchoring follows.
#include <curl/curl.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/service_main.h"
#include "daemon/signer/json_rpc_client.h"
#include "medvault/internal/v1/signer.grpc.pb.h"

namespace medvault::signer {
namespace {

SyscallPolicy SignerPolicy() {
  return SyscallPolicy::GrpcService()
      .AllowSocketFamilies({AF_INET, AF_INET6}, "HTTP(S) to the chain's JSON-RPC endpoint")
      .Allow({"bind"}, "libcurl's connection set-up");
}

class SignerService : public Guardable<internal::v1::Signer::Service> {
 public:
  SignerService(ChainClient* chain, uint64_t expected_chain_id)
      : chain_(chain), expected_chain_id_(expected_chain_id) {}

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

 private:
  ChainClient* chain_;
  const uint64_t expected_chain_id_;
};

class SignerProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    // Loads libcurl's TLS back end (and its configuration files) now, while
    // files can still be opened freely.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      return absl::InternalError("curl_global_init failed");
    }
    chain_ = std::make_unique<JsonRpcChainClient>(
        config.signer().rpc_url(), absl::Milliseconds(config.signer().rpc_timeout_ms()));
    service_ = std::make_unique<SignerService>(chain_.get(), config.signer().chain_id());
    return absl::OkStatus();
  }
  SyscallPolicy Policy() const override { return SignerPolicy(); }
  absl::Status Register(InternalServer& internal) override {
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
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<JsonRpcChainClient> chain_;
  std::unique_ptr<SignerService> service_;
};

}  // namespace
}  // namespace medvault::signer

int main(int argc, char** argv) {
  medvault::signer::SignerProcess process;
  return medvault::ServiceMain(medvault::Role::kSigner, argc, argv, process);
}
