// medvault-gateway: the public gRPC API (mutual TLS only) in front of the
// internal services, and the registry database behind it.
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
#include "daemon/gateway/access_service.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/audit_sealer.h"
#include "daemon/gateway/audit_service.h"
#include "daemon/gateway/authorizer.h"
#include "daemon/gateway/backends.h"
#include "daemon/gateway/client_identity.h"
#include "daemon/gateway/consent_service.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/dispute_service.h"
#include "daemon/gateway/record_service.h"
#include "daemon/gateway/registry_db.h"
#include "daemon/gateway/registry_service.h"
#include "daemon/gateway/research_service.h"
#include "daemon/gateway/system_service.h"
#include "daemon/gateway/vitals_hub.h"
#include "daemon/gateway/vitals_service.h"

namespace medvault::gateway {
namespace {

// How long start-up waits for the keyvault to hand out the database key.
constexpr absl::Duration kDatabaseKeyWait = absl::Seconds(20);

SyscallPolicy GatewayPolicy() {
  return SyscallPolicy::GrpcService()
      .AllowSocketFamilies({AF_INET, AF_INET6}, "the public API listens on TCP")
      .Allow({"bind", "listen"}, "gRPC binds the public port once its threads run")
      // The registry database is SQLite (SQLCipher) in WAL mode, as the
      // signer's outbox: positioned page reads and writes, syncs on commit,
      // the WAL truncated after a checkpoint and removed on close.
      .Allow({"pread64", "pwrite64", "fsync", "fdatasync", "ftruncate", "unlink"},
             "SQLite reads, writes and syncs the registry database and its WAL");
}

absl::StatusOr<std::string> ReadPublicFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The registry database's key, unwrapped by the keyvault for this process
// only (it checks the caller's uid).
absl::StatusOr<SecretData> DatabaseKey(Backends& backends) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kDatabaseKeyWait));
  context.set_wait_for_ready(true);
  internal::v1::UnwrapDatabaseKeyRequest request;
  request.set_name("gateway");
  internal::v1::UnwrapDatabaseKeyResponse response;
  grpc::Status status = backends.keyvault().UnwrapDatabaseKey(&context, request, &response);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("keyvault UnwrapDatabaseKey: ", status.error_message()));
  }
  std::string* key = response.mutable_key();
  SecretData secret(*key);
  OPENSSL_cleanse(key->data(), key->size());
  if (secret.size() != 32) return absl::InternalError("keyvault: database key is not 32 bytes");
  return secret;
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
    ASSIGN_OR_RETURN(revocations_, RevocationList::Create(tls.crl_file(), client_ca_));
    if (absl::Status crl = revocations_->status(); !crl.ok()) {
      // Fail closed but keep running: every client is refused until the
      // operator fixes the list (re-read on the next connection).
      log::Error("tls.crl_unusable", {{"file", tls.crl_file()}, {"error", crl}});
    } else if (revocations_->next_update() < absl::Now()) {
      // Still used (refusing every hospital would be worse), but the
      // operator must publish a fresh one: medvaultctl ca crl.
      log::Warn("tls.crl_expired",
                {{"file", tls.crl_file()},
                 {"next_update", absl::FormatTime(revocations_->next_update())}});
    }
    return absl::OkStatus();
  }

  SyscallPolicy Policy() const override { return GatewayPolicy(); }

  absl::Status Register(InternalServer&) override {
    // After the sandbox: gRPC channels start threads; they connect lazily.
    backends_ = std::make_unique<Backends>(*config_);
    absl::StatusOr<SecretData> key = DatabaseKey(*backends_);
    if (!key.ok()) return key.status();
    ASSIGN_OR_RETURN(db_, RegistryDb::Open(config_->gateway().state_dir(), *key));
    // Events written before the audit tree existed become its first leaves.
    RETURN_IF_ERROR(db_->Write(CatchUpAuditTree));
    RETURN_IF_ERROR(db_->Read(
        [&](sqlite3* db) { return CheckLogName(db, config_->gateway().audit().log_name()); }));
    authorizer_ = std::make_unique<Authorizer>(*backends_, *db_);
    const double rate = config_->gateway().calls_per_second();
    rate_limiter_ = std::make_unique<RateLimiter>(rate, 2 * rate);
    core_ = std::make_unique<GatewayCore>(GatewayCore{config_->gateway(), *db_, *backends_,
                                                      *authorizer_, revocations_.get(),
                                                      rate_limiter_.get()});
    vitals_hub_ = std::make_unique<VitalsHub>(config_->gateway().vitals().max_watch_queue());
    // A revoked grant makes every watch of the patient's devices decide again.
    core_->grant_revoked = [hub = vitals_hub_.get()](const std::string& patient_id) {
      hub->RecheckPatient(patient_id);
    };
    log::Info("registry.opened", {{"schema_version", db_->schema_version()}});
    return absl::OkStatus();
  }

  absl::Status Serve() override {
    ASSIGN_OR_RETURN(
        auto credentials,
        MutualTlsServerCredentials(cert_chain_, std::move(private_key_), client_ca_, revocations_));
    system_ = std::make_unique<SystemService>(*config_);
    registry_ = std::make_unique<RegistryService>(*core_);
    records_ = std::make_unique<RecordService>(*core_);
    access_ = std::make_unique<AccessService>(*core_);
    consent_ = std::make_unique<ConsentService>(*core_);
    disputes_ = std::make_unique<DisputeService>(*core_);
    research_ = std::make_unique<ResearchService>(*core_);
    vitals_ = std::make_unique<VitalsService>(*core_, *vitals_hub_);
    sealer_ = std::make_unique<AuditSealer>(config_->gateway().audit(), *db_, *backends_);
    audit_ = std::make_unique<AuditService>(*core_, sealer_->log_id());
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(config_->gateway().listen_address(), credentials, &port);
    builder.RegisterService(system_.get());
    builder.RegisterService(registry_.get());
    builder.RegisterService(records_.get());
    builder.RegisterService(access_.get());
    builder.RegisterService(consent_.get());
    builder.RegisterService(disputes_.get());
    builder.RegisterService(research_.get());
    builder.RegisterService(vitals_.get());
    builder.RegisterService(audit_.get());
    public_ = builder.BuildAndStart();
    if (public_ == nullptr || port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", config_->gateway().listen_address()));
    }
    sealer_->Start();
    public_->GetHealthCheckService()->SetServingStatus(true);
    log::Info(
        "public_api.listening",
        {{"address", config_->gateway().listen_address()}, {"port", port}, {"tls", "mutual"}});
    return absl::OkStatus();
  }

  void Stop() override {
    // Watches end UNAVAILABLE (retry elsewhere or later), not CANCELLED.
    if (vitals_hub_ != nullptr) {
      vitals_hub_->CloseAll(absl::UnavailableError("the gateway is shutting down"));
    }
    if (vitals_ != nullptr) vitals_->StopPublishing();
    if (public_ != nullptr) {
      public_->GetHealthCheckService()->SetServingStatus(false);
      public_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
    if (sealer_ != nullptr) sealer_->Stop();
  }

 private:
  const config::v1::Config* config_ = nullptr;
  std::string cert_chain_;
  std::string client_ca_;
  SecretData private_key_;
  std::shared_ptr<RevocationList> revocations_;
  std::unique_ptr<Backends> backends_;
  std::unique_ptr<RegistryDb> db_;
  std::unique_ptr<Authorizer> authorizer_;
  std::unique_ptr<RateLimiter> rate_limiter_;
  std::unique_ptr<GatewayCore> core_;
  std::unique_ptr<SystemService> system_;
  std::unique_ptr<RegistryService> registry_;
  std::unique_ptr<RecordService> records_;
  std::unique_ptr<AccessService> access_;
  std::unique_ptr<ConsentService> consent_;
  std::unique_ptr<DisputeService> disputes_;
  std::unique_ptr<ResearchService> research_;
  std::unique_ptr<VitalsHub> vitals_hub_;
  std::unique_ptr<VitalsService> vitals_;
  std::unique_ptr<AuditSealer> sealer_;
  std::unique_ptr<AuditService> audit_;
  std::unique_ptr<grpc::Server> public_;
};

}  // namespace
}  // namespace medvault::gateway

int main(int argc, char** argv) {
  medvault::gateway::GatewayProcess process;
  return medvault::ServiceMain(medvault::Role::kGateway, argc, argv, process);
}
