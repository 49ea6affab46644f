#include "keyvault/keyvault_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "keyvault/key_listing.h"

namespace medvault::keyvault {
namespace {

using internal::v1::DataKeyContext;

keyvault::DataKeyContext FromProto(const DataKeyContext& c) {
  return {c.patient_id(), c.record_id(), c.purpose()};
}

// "field: problem" as INVALID_ARGUMENT, with a google.rpc.BadRequest naming
// the field (grpc_status.h).
grpc::Status Invalid(absl::string_view message) {
  return ToGrpcStatus(absl::InvalidArgumentError(message));
}

void SetKey(const SecretData& key, std::string* field) {
  field->assign(reinterpret_cast<const char*>(key.data()), key.size());
}

}  // namespace

// What a keyvault without the regulator's key answers when asked for it.
constexpr char kNoRegulatorKey[] =
    "this keyvault does not hold the regulator's chain key (keyvault.hold_regulator_key is "
    "false; the regulator signs with its own HSM)";

KeyVaultService::KeyVaultService(Pkcs11Token* token, KeyHierarchy* keys, DatabaseKeyOwners owners,
                                 bool hold_regulator_key)
    : token_(token),
      keys_(keys),
      owners_(std::move(owners)),
      hold_regulator_key_(hold_regulator_key),
      chain_(absl::FailedPreconditionError("chain key not loaded")),
      regulator_(absl::FailedPreconditionError(kNoRegulatorKey)),
      log_(absl::FailedPreconditionError("log key not loaded")) {}

void KeyVaultService::LoadSigningKeys() {
  auto chain = ChainKey::Load(*token_);
  auto log = LogKey::Load(*token_);
  absl::StatusOr<std::unique_ptr<ChainKey>> regulator =
      hold_regulator_key_ ? ChainKey::Load(*token_, ChainKeyRole::kRegulator)
                          : absl::FailedPreconditionError(kNoRegulatorKey);
  for (const absl::Status& s : {chain.status(), log.status()}) {
    if (!s.ok()) log::Warn("key.unavailable", {{"error", s}});
  }
  if (hold_regulator_key_ && !regulator.ok()) {
    log::Warn("key.unavailable", {{"error", regulator.status()}});
  }
  absl::MutexLock lock(&mu_);
  chain_ = std::move(chain);
  log_ = std::move(log);
  regulator_ = std::move(regulator);
}

absl::StatusOr<const ChainKey*> KeyVaultService::Chain(internal::v1::ChainKeyName name) {
  absl::MutexLock lock(&mu_);
  const auto& key = name == internal::v1::CHAIN_KEY_REGULATOR ? regulator_ : chain_;
  if (!key.ok()) return key.status();
  return key->get();
}

absl::StatusOr<const LogKey*> KeyVaultService::Log() {
  absl::MutexLock lock(&mu_);
  if (!log_.ok()) return log_.status();
  return log_->get();
}

absl::StatusOr<std::vector<std::string>> KeyVaultService::InitializeMissing() {
  std::vector<std::string> names;
  for (const auto& [name, uid] : owners_) names.push_back(name);
  std::sort(names.begin(), names.end());
  ASSIGN_OR_RETURN(std::vector<std::string> created, keys_->InitializeMissing(names));
  ASSIGN_OR_RETURN(bool chain_created, ChainKey::Create(*token_));
  if (chain_created) created.push_back(ChainKey::kLabel);
  if (hold_regulator_key_) {
    ASSIGN_OR_RETURN(bool regulator_created, ChainKey::Create(*token_, ChainKeyRole::kRegulator));
    if (regulator_created) created.push_back(ChainKey::kRegulatorLabel);
  }
  ASSIGN_OR_RETURN(bool log_created, LogKey::Create(*token_));
  if (log_created) created.push_back(LogKey::kLabel);
  LoadSigningKeys();
  for (const std::string& label : created) log::Info("key.initialized", {{"label", label}});
  return created;
}

grpc::Status KeyVaultService::GetTokenInfo(grpc::ServerContext*,
                                           const internal::v1::GetTokenInfoRequest*,
                                           internal::v1::GetTokenInfoResponse* response) {
  auto token = token_->Describe();
  if (!token.ok()) return ToGrpcStatus(token.status());
  response->set_library_description(token->library_description);
  response->set_library_version(token->library_version);
  response->set_token_label(token->label);
  response->set_manufacturer(token->manufacturer);
  response->set_model(token->model);
  response->set_serial_number(token->serial_number);
  response->set_slot_id(token->slot_id);
  response->set_logged_in(token->logged_in);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::ListKeys(grpc::ServerContext*, const internal::v1::ListKeysRequest*,
                                       internal::v1::ListKeysResponse* response) {
  auto keys = ListTokenKeys(*token_);
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  for (auto& key : *keys) *response->add_keys() = std::move(key);
  auto counts = keys_->store().Count();
  if (!counts.ok()) return ToGrpcStatus(counts.status());
  response->set_patients(counts->patients);
  response->set_shredded_patients(counts->shredded);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::InitializeKeys(grpc::ServerContext*,
                                             const internal::v1::InitializeKeysRequest*,
                                             internal::v1::InitializeKeysResponse* response) {
  auto created = InitializeMissing();
  if (!created.ok()) return ToGrpcStatus(created.status());
  for (const std::string& label : *created) response->add_created(label);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::RotateMasterKey(grpc::ServerContext*,
                                              const internal::v1::RotateMasterKeyRequest*,
                                              internal::v1::RotateMasterKeyResponse* response) {
  auto version = keys_->RotateMaster();
  if (!version.ok()) return ToGrpcStatus(version.status());
  log::Info("key.rotated", {{"master_version", *version}});
  response->set_new_version(*version);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::GenerateDataKey(grpc::ServerContext*,
                                              const internal::v1::GenerateDataKeyRequest* request,
                                              internal::v1::GenerateDataKeyResponse* response) {
  if (!request->has_context()) return Invalid("context: required");
  auto key = keys_->Generate(FromProto(request->context()));
  if (!key.ok()) return ToGrpcStatus(key.status());
  SetKey(key->plaintext, response->mutable_plaintext_key());
  response->set_wrapped_key(key->blob);
  response->set_master_version(key->master_version);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::Decrypt(grpc::ServerContext*,
                                      const internal::v1::DecryptRequest* request,
                                      internal::v1::DecryptResponse* response) {
  if (request->wrapped_key().size() != KeyHierarchy::kBlobSize) {
    return Invalid(absl::StrCat("wrapped_key: must be ", KeyHierarchy::kBlobSize, " bytes"));
  }
  if (!request->has_context()) return Invalid("context: required");
  auto key = keys_->Decrypt(request->wrapped_key(), FromProto(request->context()));
  if (!key.ok()) return ToGrpcStatus(key.status());
  SetKey(*key, response->mutable_plaintext_key());
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::RewrapDataKey(grpc::ServerContext*,
                                            const internal::v1::RewrapDataKeyRequest* request,
                                            internal::v1::RewrapDataKeyResponse* response) {
  if (request->wrapped_key().size() != KeyHierarchy::kBlobSize) {
    return Invalid(absl::StrCat("wrapped_key: must be ", KeyHierarchy::kBlobSize, " bytes"));
  }
  if (!request->has_context()) return Invalid("context: required");
  auto key = keys_->Rewrap(request->wrapped_key(), FromProto(request->context()));
  if (!key.ok()) return ToGrpcStatus(key.status());
  response->set_wrapped_key(key->blob);
  response->set_master_version(key->master_version);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::ShredPatient(grpc::ServerContext*,
                                           const internal::v1::ShredPatientRequest* request,
                                           internal::v1::ShredPatientResponse* response) {
  auto destroyed = keys_->Shred(request->patient_id());
  if (!destroyed.ok()) return ToGrpcStatus(destroyed.status());
  response->set_destroyed_generations(*destroyed);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::SignDigest(grpc::ServerContext*,
                                         const internal::v1::SignDigestRequest* request,
                                         internal::v1::SignDigestResponse* response) {
  if (request->digest().size() != 32) return Invalid("digest: must be exactly 32 bytes");
  if (!internal::v1::ChainKeyName_IsValid(request->key())) return Invalid("key: unknown chain key");
  auto chain = Chain(request->key());
  if (!chain.ok()) return ToGrpcStatus(chain.status());
  auto signature = (*chain)->SignDigest(request->digest());
  if (!signature.ok()) return ToGrpcStatus(signature.status());
  response->set_r(signature->r.data(), signature->r.size());
  response->set_s(signature->s.data(), signature->s.size());
  response->set_recovery_id(signature->recovery_id);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::GetChainPublicKey(
    grpc::ServerContext*, const internal::v1::GetChainPublicKeyRequest* request,
    internal::v1::GetChainPublicKeyResponse* response) {
  if (!internal::v1::ChainKeyName_IsValid(request->key())) return Invalid("key: unknown chain key");
  auto chain = Chain(request->key());
  if (!chain.ok()) return ToGrpcStatus(chain.status());
  response->set_public_key((*chain)->public_key().data(), (*chain)->public_key().size());
  response->set_address((*chain)->address());
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::SignLogMessage(grpc::ServerContext*,
                                             const internal::v1::SignLogMessageRequest* request,
                                             internal::v1::SignLogMessageResponse* response) {
  if (request->message().size() > LogKey::kMaxMessageSize) {
    return Invalid(absl::StrCat("message: at most ", LogKey::kMaxMessageSize, " bytes"));
  }
  auto log = Log();
  if (!log.ok()) return ToGrpcStatus(log.status());
  auto signature = (*log)->Sign(request->message());
  if (!signature.ok()) return ToGrpcStatus(signature.status());
  response->set_signature(*signature);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::GetLogPublicKey(grpc::ServerContext*,
                                              const internal::v1::GetLogPublicKeyRequest*,
                                              internal::v1::GetLogPublicKeyResponse* response) {
  auto log = Log();
  if (!log.ok()) return ToGrpcStatus(log.status());
  auto der = (*log)->PublicKeyDer();
  if (!der.ok()) return ToGrpcStatus(der.status());
  response->set_public_key(*der);
  return grpc::Status::OK;
}

grpc::Status KeyVaultService::UnwrapDatabaseKey(
    grpc::ServerContext* context, const internal::v1::UnwrapDatabaseKeyRequest* request,
    internal::v1::UnwrapDatabaseKeyResponse* response) {
  auto owner = owners_.find(request->name());
  if (owner == owners_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("name: no database key \"", request->name(), "\""));
  }
  // The allowlist admits both database-key owners; each gets only its own.
  std::optional<PeerCredentials> caller =
      peers_ != nullptr ? peers_->Lookup(context->peer()) : std::nullopt;
  if (!caller.has_value() || caller->uid != owner->second) {
    log::Warn("rpc.denied", {{"method", "UnwrapDatabaseKey"},
                             {"uid", caller ? static_cast<uint64_t>(caller->uid) : ~0ULL},
                             {"name", request->name()},
                             {"reason", "database key of another role"}});
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "caller may only unwrap its own database key");
  }
  auto key = keys_->DatabaseKey(request->name());
  if (!key.ok()) return ToGrpcStatus(key.status());
  SetKey(*key, response->mutable_key());
  return grpc::Status::OK;
}

}  // namespace medvault::keyvault
