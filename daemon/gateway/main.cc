// medvault-gateway: the public gRPC API (mutual TLS only) in front of the
// internal services.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/secret.h"
#include "daemon/common/service_main.h"
#include "daemon/common/status_macros.h"
#include "daemon/common/users.h"
#include "daemon/gateway/system_service.h"

namespace medvault::gateway {
namespace {

SyscallPolicy GatewayPolicy() {
  return SyscallPolicy::GrpcService()
      .AllowSocketFamilies({AF_INET, AF_INET6}, "the public API listens on TCP")
      .Allow({"bind", "listen"}, "gRPC binds the public port once its threads run");
}

absl::StatusOr<std::string> ReadPublicFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class GatewayProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    config_ = &config;
    // OpenSSL reads its configuration file on first use; do it now, while
    // files outside the process's own can still be opened.
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
      return absl::InternalError("OpenSSL initialisation failed");
    }
    const auto& tls = config.gateway().tls();
    ASSIGN_OR_RETURN(cert_chain_, ReadPublicFile(tls.cert_file()));
    ASSIGN_OR_RETURN(client_ca_, ReadPublicFile(tls.client_ca_file()));
    std::vector<uid_t> owners = {geteuid()};
    if (auto uid = LookupUid(config.gateway().process().user()); uid.ok()) owners.push_back(*uid);
    ASSIGN_OR_RETURN(private_key_, ReadSecretFile(tls.key_file(), owners));
    return absl::OkStatus();
  }

  SyscallPolicy Policy() const override { return GatewayPolicy(); }

  // The gateway's internal socket carries only the health service for now.
  absl::Status Register(InternalServer&) override { return absl::OkStatus(); }

  absl::Status Serve() override {
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = client_ca_;
    options.pem_key_cert_pairs.push_back({std::string(private_key_.view()), cert_chain_});
    auto credentials = grpc::SslServerCredentials(options);
    // gRPC keeps its own copy; this one is wiped now.
    OPENSSL_cleanse(options.pem_key_cert_pairs.front().private_key.data(),
                    options.pem_key_cert_pairs.front().private_key.size());
    private_key_ = SecretData();

    system_ = std::make_unique<SystemService>(*config_);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(config_->gateway().listen_address(), credentials, &port);
    builder.RegisterService(system_.get());
    public_ = builder.BuildAndStart();
    if (public_ == nullptr || port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", config_->gateway().listen_address()));
    }
    public_->GetHealthCheckService()->SetServingStatus(true);
    log::Info(
        "public_api.listening",
        {{"address", config_->gateway().listen_address()}, {"port", port}, {"tls", "mutual"}});
    return absl::OkStatus();
  }

  void Stop() override {
    if (public_ != nullptr) {
      public_->GetHealthCheckService()->SetServingStatus(false);
      public_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
  }

 private:
  const config::v1::Config* config_ = nullptr;
  std::string cert_chain_;
  std::string client_ca_;
  SecretData private_key_;
  std::unique_ptr<SystemService> system_;
  std::unique_ptr<grpc::Server> public_;
};

}  // namespace
}  // namespace medvault::gateway

int main(int argc, char** argv) {
  medvault::gateway::GatewayProcess process;
  return medvault::ServiceMain(medvault::Role::kGateway, argc, argv, process);
}
