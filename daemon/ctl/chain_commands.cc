#include "daemon/ctl/chain_commands.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "daemon/ctl/rpc.h"
#include "daemon/policy/bundle.h"
#include "daemon/signer/eth_tx.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/internal/v1/signer.grpc.pb.h"

namespace medvault::ctl {
namespace {

using signer::FromHex;
using signer::ParseAddress;
using signer::ToHex;

std::unique_ptr<internal::v1::Signer::Stub> Stub(const config::v1::Config& config) {
  return internal::v1::Signer::NewStub(ProcessChannel(config, Role::kSigner));
}

// Long enough for `transactions` transactions to be confirmed.
absl::Duration TransactionTimeout(const config::v1::Config& config, int transactions) {
  return absl::Milliseconds(config.signer().receipt_timeout_ms()) * transactions +
         absl::Seconds(30);
}

// Reads of the signer's index and of the chain's head.
constexpr absl::Duration kReadTimeout = absl::Seconds(10);

int Usage(absl::string_view message) {
  std::cerr << "medvaultctl: " << message << "\n";
  return 2;
}

// 32 bytes from "0x" and 64 hex digits.
bool ParseBytes32(const std::string& text, absl::string_view what, std::string* out) {
  absl::StatusOr<std::string> bytes = FromHex(text, what);
  if (!bytes.ok() || bytes->size() != 32) {
    std::cerr << "medvaultctl: " << what << ": must be 0x and 64 hex digits\n";
    return false;
  }
  *out = *std::move(bytes);
  return true;
}

std::string Time(uint64_t seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(static_cast<int64_t>(seconds)),
                          absl::UTCTimeZone());
}

std::string StatusName(internal::v1::LicenceStatus status) {
  std::string name = internal::v1::LicenceStatus_Name(status);
  return absl::AsciiStrToLower(std::string(absl::StripPrefix(name, "LICENCE_STATUS_")));
}

void PrintIndex(const internal::v1::IndexStatus& index) {
  std::printf("index:        block %llu of %llu, synced %s%s%s\n",
              static_cast<unsigned long long>(index.indexed_block()),
              static_cast<unsigned long long>(index.head_block()),
              index.synced_ms() == 0
                  ? "never"
                  : absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(index.synced_ms()),
                                     absl::UTCTimeZone())
                        .c_str(),
              index.error().empty() ? "" : ", last error: ", index.error().c_str());
}

void PrintTransaction(const internal::v1::TransactionResult& tx) {
  std::printf("transaction %s (nonce %llu, from %s) in block %llu\n",
              ToHex(tx.transaction_hash()).c_str(), static_cast<unsigned long long>(tx.nonce()),
              ToHex(tx.sender()).c_str(), static_cast<unsigned long long>(tx.block_number()));
}

void PrintLicence(const internal::v1::LicenceEvent& e) {
  std::printf("%s %-9s (was %s) valid until %s evidence %s block %llu tx %s\n",
              ToHex(e.practitioner()).c_str(), StatusName(e.status()).c_str(),
              StatusName(e.previous_status()).c_str(), Time(e.valid_until()).c_str(),
              ToHex(e.evidence_hash()).c_str(),
              static_cast<unsigned long long>(e.position().block_number()),
              ToHex(e.position().transaction_hash()).c_str());
}

int Info(const config::v1::Config& config) {
  auto stub = Stub(config);
  grpc::ClientContext context;
  SetDeadline(context, kReadTimeout);
  internal::v1::GetChainInfoResponse info;
  grpc::Status status = stub->GetChainInfo(&context, {}, &info);
  if (!status.ok()) return Report(status, "signer GetChainInfo");
  std::printf("chain id:     %llu\nlatest block: %llu\n",
              static_cast<unsigned long long>(info.chain_id()),
              static_cast<unsigned long long>(info.latest_block()));
  grpc::ClientContext index_context;
  SetDeadline(index_context, kReadTimeout);
  internal::v1::IndexStatus index;
  status = stub->GetIndexStatus(&index_context, {}, &index);
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    std::printf("index:        off (no contract configured)\n");
  } else if (!status.ok()) {
    return Report(status, "signer GetIndexStatus");
  } else {
    PrintIndex(index);
  }
  return 0;
}

// The keyvault's chain addresses: "operator 0x.." and "regulator 0x.." (or
// the reason it holds none).
int Keys(const config::v1::Config& config) {
  auto stub = internal::v1::KeyVault::NewStub(ProcessChannel(config, Role::kKeyvault));
  for (auto [name, key] : {std::pair{"operator", internal::v1::CHAIN_KEY_OPERATOR},
                           {"regulator", internal::v1::CHAIN_KEY_REGULATOR}}) {
    grpc::ClientContext context;
    SetDeadline(context, kReadTimeout);
    internal::v1::GetChainPublicKeyRequest request;
    request.set_key(key);
    internal::v1::GetChainPublicKeyResponse response;
    grpc::Status status = stub->GetChainPublicKey(&context, request, &response);
    if (status.ok()) {
      std::printf("%-9s %s\n", name, response.address().c_str());
    } else if (key == internal::v1::CHAIN_KEY_REGULATOR &&
               status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      std::fprintf(stderr, "medvaultctl: no regulator key: %s\n", status.error_message().c_str());
    } else {
      return Report(status, "keyvault GetChainPublicKey");
    }
  }
  return 0;
}

// The creation code in the build's artifact "<dir>/<name>.bin" (hex).
bool ReadCreationCode(const std::string& dir, const std::string& name, std::string* code) {
  const std::string path = dir + "/" + name + ".bin";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string hex(absl::StripAsciiWhitespace(text.str()));
  if (!absl::StartsWith(hex, "0x")) hex = "0x" + hex;
  absl::StatusOr<std::string> bytes = FromHex(hex, path);
  if (!in || !bytes.ok() || bytes->empty()) {
    std::cerr << "medvaultctl: cannot read the creation code of " << name << " from " << path
              << " (build the contracts, or pass --artifacts)\n";
    return false;
  }
  *code = *std::move(bytes);
  return true;
}

int Licence(const config::v1::Config& config, const std::string& practitioner) {
  internal::v1::GetLicenceRequest request;
  if (!ParseBytes32(practitioner, "--practitioner", request.mutable_practitioner())) return 2;
  grpc::ClientContext context;
  SetDeadline(context, kReadTimeout);
  internal::v1::GetLicenceResponse response;
  grpc::Status status = Stub(config)->GetLicence(&context, request, &response);
  if (!status.ok()) return Report(status, "signer GetLicence");
  PrintLicence(response.licence());
  PrintIndex(response.index());
  return 0;
}

int LicenceEvents(const config::v1::Config& config, const std::string& after, uint32_t limit) {
  internal::v1::ListLicenceEventsRequest request;
  request.set_after(after);
  request.set_limit(limit);
  grpc::ClientContext context;
  SetDeadline(context, kReadTimeout);
  internal::v1::ListLicenceEventsResponse response;
  grpc::Status status = Stub(config)->ListLicenceEvents(&context, request, &response);
  if (!status.ok()) return Report(status, "signer ListLicenceEvents");
  for (const auto& e : response.events()) PrintLicence(e);
  std::printf("next cursor: %s\n", response.next_cursor().c_str());
  return 0;
}

int Policies(const config::v1::Config& config, uint32_t limit) {
  internal::v1::ListPolicyPublicationsRequest request;
  request.set_limit(limit);
  grpc::ClientContext context;
  SetDeadline(context, kReadTimeout);
  internal::v1::ListPolicyPublicationsResponse response;
  grpc::Status status = Stub(config)->ListPolicyPublications(&context, request, &response);
  if (!status.ok()) return Report(status, "signer ListPolicyPublications");
  for (const auto& p : response.publications()) {
    std::printf("version %llu bundle_hash %s block %llu (%s)\n",
                static_cast<unsigned long long>(p.version()), ToHex(p.bundle_hash()).c_str(),
                static_cast<unsigned long long>(p.position().block_number()),
                Time(p.position().block_timestamp()).c_str());
  }
  PrintIndex(response.index());
  return 0;
}

}  // namespace

ChainCommands::ChainCommands(CLI::App& app, std::string program) : program_(std::move(program)) {
  auto* chain = app.add_subcommand("chain", "the chain behind the signer");
  chain->require_subcommand(1);
  info_ = chain->add_subcommand(
      "info", "chain id and latest block as the signer sees them, and the indexer's position");
  keys_ = chain->add_subcommand(
      "keys", "the chain addresses of the keyvault's operator key (and regulator key, if held)");
  deploy_ = chain->add_subcommand(
      "deploy",
      "deploy AuditAnchor (the keyvault's operator key as admin and operator), LicenceRegistry "
      "and PolicyRegistry; print the signer configuration lines for them");
  deploy_->add_option("--artifacts", artifacts_dir_,
                      "directory of the build's <Contract>.bin files (default: ../contracts "
                      "next to this binary's directory)");
  deploy_->add_option("--regulator", regulator_,
                      "0x address owning the registries (default: the keyvault's regulator key, "
                      "development only)");
  set_licence_ = chain->add_subcommand(
      "set-licence", "LicenceRegistry.setLicence, signed with the regulator's key");
  set_licence_->add_option("--practitioner", practitioner_, "pseudonymous key, 0x + 64 hex")
      ->required();
  set_licence_->add_option("--status", status_, "active | suspended | revoked | expired")
      ->required()
      ->check(CLI::IsMember({"active", "suspended", "revoked", "expired"}));
  set_licence_->add_option("--valid-until", valid_until_, "last second of validity (unix time)")
      ->required();
  set_licence_
      ->add_option("--evidence", evidence_,
                   "hash of the regulator's decision document, 0x + 64 hex")
      ->required();
  licence_ = chain->add_subcommand("licence", "a practitioner's licence, from the signer's index");
  licence_->add_option("--practitioner", practitioner_, "pseudonymous key, 0x + 64 hex")
      ->required();
  licence_events_ = chain->add_subcommand("licence-events", "LicenceChanged events, oldest first");
  licence_events_->add_option("--after", after_, "cursor printed by a previous call");
  licence_events_->add_option("--limit", limit_, "at most this many (default 100)");
  publish_policy_ = chain->add_subcommand(
      "publish-policy", "PolicyRegistry.publish of a bundle's version and hash (regulator's key)");
  publish_policy_->add_option("--bundle", bundle_dir_,
                              "bundle directory: publish its manifest version and bundle hash");
  publish_policy_->add_option("--version", version_, "version (instead of --bundle)");
  publish_policy_->add_option("--bundle-hash", bundle_hash_, "0x + 64 hex (instead of --bundle)");
  policies_ = chain->add_subcommand("policies", "published policy versions, newest first");
  policies_->add_option("--limit", limit_, "at most this many (default 100)");
}

std::optional<int> ChainCommands::Run(const config::v1::Config& config) {
  if (info_->parsed()) return Info(config);
  if (keys_->parsed()) return Keys(config);
  if (deploy_->parsed()) return Deploy(config);
  if (set_licence_->parsed()) return SetLicence(config);
  if (licence_->parsed()) return Licence(config, practitioner_);
  if (licence_events_->parsed()) return LicenceEvents(config, after_, limit_);
  if (publish_policy_->parsed()) return PublishPolicy(config);
  if (policies_->parsed()) return Policies(config, limit_);
  return std::nullopt;
}

int ChainCommands::Deploy(const config::v1::Config& config) {
  std::string dir = artifacts_dir_;
  if (dir.empty()) {
    std::string bin = program_.substr(0, program_.find_last_of('/') + 1);
    dir = (bin.empty() ? std::string("./") : bin) + "../contracts";
  }
  internal::v1::DeployContractsRequest request;
  if (!ReadCreationCode(dir, "AuditAnchor", request.mutable_audit_anchor_code()) ||
      !ReadCreationCode(dir, "LicenceRegistry", request.mutable_licence_registry_code()) ||
      !ReadCreationCode(dir, "PolicyRegistry", request.mutable_policy_registry_code())) {
    return 2;
  }
  if (!regulator_.empty()) {
    absl::StatusOr<std::string> regulator = ParseAddress(regulator_, "--regulator");
    if (!regulator.ok()) return Usage(regulator.status().message());
    request.set_regulator(*regulator);
  }
  std::fprintf(stderr, "medvaultctl: deploying (4 transactions, each waits for its receipt)\n");
  grpc::ClientContext context;
  SetDeadline(context, TransactionTimeout(config, 4));
  internal::v1::DeployContractsResponse response;
  grpc::Status status = Stub(config)->DeployContracts(&context, request, &response);
  if (!status.ok()) return Report(status, "signer DeployContracts");
  std::fprintf(stderr, "medvaultctl: deployed; operator %s, regulator %s\n",
               ToHex(response.operator_address()).c_str(), ToHex(response.regulator()).c_str());
  // On standard output: the lines for the configuration's signer block.
  std::printf(
      "anchor_contract: \"%s\"\nlicence_registry: \"%s\"\npolicy_registry: \"%s\"\n"
      "index_from_block: %llu\n",
      ToHex(response.audit_anchor()).c_str(), ToHex(response.licence_registry()).c_str(),
      ToHex(response.policy_registry()).c_str(),
      static_cast<unsigned long long>(response.first_block()));
  return 0;
}

int ChainCommands::SetLicence(const config::v1::Config& config) {
  internal::v1::SetLicenceRequest request;
  if (!ParseBytes32(practitioner_, "--practitioner", request.mutable_practitioner()) ||
      !ParseBytes32(evidence_, "--evidence", request.mutable_evidence_hash())) {
    return 2;
  }
  internal::v1::LicenceStatus status;
  internal::v1::LicenceStatus_Parse("LICENCE_STATUS_" + absl::AsciiStrToUpper(status_), &status);
  request.set_status(status);
  request.set_valid_until(valid_until_);
  grpc::ClientContext context;
  SetDeadline(context, TransactionTimeout(config, 1));
  internal::v1::TransactionResult response;
  grpc::Status rpc = Stub(config)->SetLicence(&context, request, &response);
  if (!rpc.ok()) return Report(rpc, "signer SetLicence");
  PrintTransaction(response);
  return 0;
}

int ChainCommands::PublishPolicy(const config::v1::Config& config) {
  internal::v1::PublishPolicyRequest request;
  if (!bundle_dir_.empty()) {
    if (version_ != 0 || !bundle_hash_.empty()) {
      return Usage("publish-policy: --bundle, or --version with --bundle-hash, not both");
    }
    absl::StatusOr<policy::BundleFiles> bundle = policy::ReadBundle(bundle_dir_);
    if (!bundle.ok()) return Usage(bundle.status().message());
    request.set_version(bundle->manifest.version());
    request.set_bundle_hash(policy::BundleHash(*bundle));
  } else {
    if (version_ == 0 || bundle_hash_.empty()) {
      return Usage("publish-policy: give --bundle DIR, or --version and --bundle-hash");
    }
    request.set_version(version_);
    if (!ParseBytes32(bundle_hash_, "--bundle-hash", request.mutable_bundle_hash())) return 2;
  }
  grpc::ClientContext context;
  SetDeadline(context, TransactionTimeout(config, 1));
  internal::v1::TransactionResult response;
  grpc::Status rpc = Stub(config)->PublishPolicy(&context, request, &response);
  if (!rpc.ok()) return Report(rpc, "signer PublishPolicy");
  std::printf("published version %llu, bundle hash %s\n",
              static_cast<unsigned long long>(request.version()),
              ToHex(request.bundle_hash()).c_str());
  PrintTransaction(response);
  return 0;
}

}  // namespace medvault::ctl
