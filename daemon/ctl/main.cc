// medvaultctl: the operator's command-line tool.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/common/config.h"
#include "daemon/common/health_client.h"
#include "daemon/common/roles.h"
#include "daemon/common/version.h"
#include "daemon/ctl/audit_commands.h"
#include "daemon/ctl/ca_commands.h"
#include "daemon/ctl/chain_commands.h"
#include "daemon/ctl/keyvault_commands.h"
#include "daemon/ctl/policy_commands.h"
#include "daemon/ctl/storage_commands.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/v1/system.grpc.pb.h"

namespace medvault::ctl {
namespace {

constexpr char kDefaultConfig[] = "/etc/medvault/medvault.textproto";

// Exit codes: 0 success, 1 a component is unhealthy or refused the call,
// 2 bad usage or configuration.

int Health(const config::v1::Config& config) {
  bool all_serving = true;
  std::printf("%-10s %-12s %s\n", "COMPONENT", "STATUS", "DETAIL");
  for (Role role : kStartOrder) {
    HealthReport r = CheckHealth(SocketPath(config, role), absl::Seconds(2));
    all_serving &= r.health == medvault::Health::kServing;
    std::printf("%-10s %-12s %s\n", std::string(RoleName(role)).c_str(), HealthName(r.health),
                r.detail.c_str());
  }
  return all_serving ? 0 : 1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct GatewayOptions {
  std::string address;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// One call to the public API over mutual TLS, as an organisation makes it.
int GatewayInfo(const GatewayOptions& o) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(o.ca_file);
  if (tls.pem_root_certs.empty()) {
    std::cerr << "medvaultctl: cannot read CA certificate " << o.ca_file << "\n";
    return 2;
  }
  if (!o.cert_file.empty()) {
    tls.pem_cert_chain = ReadFile(o.cert_file);
    tls.pem_private_key = ReadFile(o.key_file);
    if (tls.pem_cert_chain.empty() || tls.pem_private_key.empty()) {
      std::cerr << "medvaultctl: cannot read client certificate or key\n";
      return 2;
    }
  }
  auto stub = v1::SystemService::NewStub(grpc::CreateChannel(o.address, grpc::SslCredentials(tls)));
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  v1::GetSystemInfoResponse info;
  grpc::Status status = stub->GetSystemInfo(&context, {}, &info);
  if (!status.ok()) return Report(status, "gateway GetSystemInfo");
  std::printf("medvault %s at %s\nyou are:  %s\nchain id: %llu\n", info.version().c_str(),
              o.address.c_str(), info.caller_subject().c_str(),
              static_cast<unsigned long long>(info.chain_id()));
  bool all_serving = true;
  for (const auto& c : info.components()) {
    all_serving &= c.status() == v1::ComponentStatus::SERVING;
    std::printf("  %-10s %-12s %s\n", c.name().c_str(),
                v1::ComponentStatus::Status_Name(c.status()).c_str(), c.detail().c_str());
  }
  return all_serving ? 0 : 1;
}

int Main(int argc, char** argv) {
  CLI::App app(absl::StrCat("medvaultctl ", kVersion, ": operate a medvault deployment."));
  app.require_subcommand(1);
  std::string config_path = kDefaultConfig;
  app.add_option("-c,--config", config_path, "configuration file")
      ->capture_default_str()
      ->envname("MEDVAULT_CONFIG");
  app.set_version_flag("--version", std::string(kVersion));

  auto* health = app.add_subcommand("health",
                                    "print each component's status (SERVING, NOT_SERVING, "
                                    "UNREACHABLE); exit 1 unless all SERVING");
  auto* hsm = app.add_subcommand("hsm", "the HSM behind the keyvault");
  hsm->require_subcommand(1);
  auto* hsm_info = hsm->add_subcommand("info", "describe the PKCS#11 token (never a secret)");
  bool create_token = false;
  auto* hsm_init = hsm->add_subcommand(
      "init", "create whichever of the deployment's keys are missing (needs the keyvault running)");
  hsm_init->add_flag("--create-token", create_token,
                     "development: first create the SoftHSM2 token the configuration names");
  auto* keys = app.add_subcommand("keys", "the deployment's keys in the HSM");
  keys->require_subcommand(1);
  auto* keys_list =
      keys->add_subcommand("list", "key ids, versions, types and attributes (never values)");
  auto* keys_rotate = keys->add_subcommand(
      "rotate", "create master key version n+1; new data keys use it, old ones still open");
  ChainCommands chain(app, argv[0]);
  AuditCommands audit(app);
  auto* storage = app.add_subcommand("storage", "the ciphertext store (IPFS objects)");
  storage->require_subcommand(1);
  auto* storage_info = storage->add_subcommand("info", "backend, size limit and free space");
  std::string storage_path = "-";
  std::string storage_cid;
  bool storage_progress = false;
  auto* storage_put =
      storage->add_subcommand("put", "store a file as one object and print its CID");
  storage_put->add_option("file", storage_path, "file to store (\"-\": standard input)")
      ->capture_default_str();
  storage_put->add_flag("--progress", storage_progress, "report every 64 MiB on standard error");
  auto* storage_get = storage->add_subcommand(
      "get", "write an object's content, every block checked against its CID");
  storage_get->add_option("cid", storage_cid, "CIDv1 in base32 (bafy.../bafk...)")->required();
  storage_get->add_option("-o,--output", storage_path, "file to write (\"-\": standard output)")
      ->capture_default_str();
  auto* storage_stat = storage->add_subcommand("stat", "size and pin state of an object");
  storage_stat->add_option("cid", storage_cid, "CIDv1 in base32")->required();
  auto* storage_ls = storage->add_subcommand("ls", "the pinned objects: CID and size");
  auto* storage_gc = storage->add_subcommand("gc", "delete every block that no pinned object uses");
  auto* gateway = app.add_subcommand("gateway", "the public API, as an organisation sees it");
  gateway->require_subcommand(1);
  GatewayOptions gw;
  auto* gateway_info = gateway->add_subcommand(
      "info", "call SystemService.GetSystemInfo over mutual TLS; exit 1 unless all SERVING");
  gateway_info->add_option("--address", gw.address, "host:port of the gateway")->required();
  gateway_info
      ->add_option("--ca", gw.ca_file, "CA certificate that issued the gateway's certificate")
      ->required();
  gateway_info->add_option("--cert", gw.cert_file, "client certificate (PEM)");
  gateway_info->add_option("--key", gw.key_file, "client private key (PEM)");
  auto* check = app.add_subcommand("check-config", "validate the configuration file and exit");
  PolicyCommands policy(app);
  CaCommands ca(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; any other parse error is bad usage (2),
    // as promised above, rather than CLI11's own codes (105, 106, ...).
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (gateway_info->parsed()) return GatewayInfo(gw);
  if (auto rc = policy.RunOffline()) return *rc;
  if (auto rc = ca.Run()) return *rc;

  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "medvaultctl: " << config.status().message() << "\n";
    return 2;
  }
  if (check->parsed()) {
    std::cout << config_path << ": OK\n";
    return 0;
  }
  if (health->parsed()) return Health(*config);
  if (hsm_info->parsed()) return HsmInfo(*config);
  if (hsm_init->parsed()) return HsmInit(*config, create_token);
  if (keys_list->parsed()) return KeysList(*config);
  if (keys_rotate->parsed()) return KeysRotate(*config);
  if (auto rc = chain.Run(*config)) return *rc;
  if (auto rc = audit.Run(*config)) return *rc;
  if (storage_info->parsed()) return StorageInfo(*config);
  if (storage_put->parsed()) return StoragePut(*config, storage_path, storage_progress);
  if (storage_get->parsed()) return StorageGet(*config, storage_cid, storage_path);
  if (storage_stat->parsed()) return StorageStat(*config, storage_cid);
  if (storage_ls->parsed()) return StorageList(*config);
  if (storage_gc->parsed()) return StorageGc(*config);
  if (auto rc = policy.RunOnline(*config)) return *rc;
  return 2;
}

}  // namespace
}  // namespace medvault::ctl

int main(int argc, char** argv) { return medvault::ctl::Main(argc, argv); }
