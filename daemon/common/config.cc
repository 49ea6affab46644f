#include "daemon/common/config.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/common/roles.h"
#include "daemon/common/users.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace medvault {
namespace {

using config::v1::Config;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;

// Defaults of the signer's fee caps (config.proto), needed by the checks too.
constexpr uint64_t kDefaultMaxFeePerGasWei = 200'000'000'000;        // 200 gwei
constexpr uint64_t kDefaultMaxPriorityFeePerGasWei = 2'000'000'000;  // 2 gwei

// Collects the parser's complaints as "file:line:column: field: message".
// The parser names unknown fields itself but not the field whose value it
// could not read ("Expected string"), so the field is taken from the text:
// the last "name:" before the error on that line.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  ErrorCollector(absl::string_view file, absl::string_view text)
      : file_(file), lines_(absl::StrSplit(text, '\n')) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    std::string field = FieldBefore(line, column);
    errors_.push_back(absl::StrCat(file_, ":", line + 1, ":", column + 1, ": ",
                                   field.empty() ? "" : field + ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, message);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string FieldBefore(int line, int column) const {
    if (line < 0 || static_cast<size_t>(line) >= lines_.size()) return "";
    absl::string_view text = lines_[line].substr(0, static_cast<size_t>(std::max(column, 0)));
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return "";
    size_t end = colon;
    while (end > 0 && text[end - 1] == ' ') --end;
    size_t begin = end;
    while (begin > 0 && (absl::ascii_isalnum(text[begin - 1]) || text[begin - 1] == '_')) --begin;
    return std::string(text.substr(begin, end - begin));
  }

  std::string file_;
  std::vector<absl::string_view> lines_;
  std::vector<std::string> errors_;
};

// Checks values the schema cannot express. A field path is written as in
// the file, with indices for repeated fields: "keyvault.process.allow[1].method".
class Validator {
 public:
  Validator(const Config& config, const TextFormat::ParseInfoTree& tree, absl::string_view file)
      : config_(config), tree_(tree), file_(file) {}

  std::vector<std::string> Run() {
    RequireAbsolute("runtime_dir", config_.runtime_dir());
    if (!config_.socket_group().empty()) {
      RequireGroup("socket_group", config_.socket_group());
    } else if (geteuid() == 0) {
      Fail("socket_group", "required when started as root");
    }
    for (Role role : kStartOrder) CheckProcess(role);
    CheckKeyvault();
    CheckPolicy();
    CheckStorage();
    CheckSigner();
    CheckGateway();
    CheckSupervisor();
    return errors_;
  }

 private:
  void Fail(absl::string_view path, absl::string_view message) {
    int line = LineOf(path);
    errors_.push_back(line > 0 ? absl::StrCat(file_, ":", line, ": ", path, ": ", message)
                               : absl::StrCat(file_, ": ", path, ": ", message));
  }

  // Line (1-based) of the field at `path`, or of its closest ancestor that
  // appears in the file; 0 when none does.
  int LineOf(absl::string_view path) const {
    const Descriptor* desc = Config::descriptor();
    const TextFormat::ParseInfoTree* tree = &tree_;
    int line = 0;
    for (absl::string_view segment : absl::StrSplit(path, '.')) {
      int index = -1;
      if (size_t bracket = segment.find('['); bracket != absl::string_view::npos) {
        if (!absl::SimpleAtoi(segment.substr(bracket + 1, segment.size() - bracket - 2), &index)) {
          return line;
        }
        segment = segment.substr(0, bracket);
      }
      const FieldDescriptor* field =
          desc == nullptr ? nullptr : desc->FindFieldByName(std::string(segment));
      if (field == nullptr || tree == nullptr) return line;
      auto loc = tree->GetLocation(field, index);
      if (loc.line < 0) return line;
      line = loc.line + 1;
      if (field->message_type() == nullptr) return line;
      tree = tree->GetTreeForNested(field, index);
      desc = field->message_type();
    }
    return line;
  }

  void Require(absl::string_view path, const std::string& value) {
    if (value.empty()) Fail(path, "required");
  }

  void RequireAbsolute(absl::string_view path, const std::string& value) {
    if (value.empty()) {
      Fail(path, "required");
    } else if (value.front() != '/') {
      Fail(path, absl::StrCat("must be an absolute path, got \"", value, "\""));
    }
  }

  void RequireUser(absl::string_view path, const std::string& user) {
    if (user.empty()) {
      Fail(path, "required");
    } else if (auto uid = LookupUid(user); !uid.ok()) {
      Fail(path, uid.status().message());
    }
  }

  void RequireGroup(absl::string_view path, const std::string& group) {
    if (group.empty()) {
      Fail(path, "required");
    } else if (auto gid = LookupGid(group); !gid.ok()) {
      Fail(path, gid.status().message());
    }
  }

  void CheckProcess(Role role) {
    std::string section(RoleName(role));
    const Descriptor* desc = Config::descriptor();
    if (!config_.GetReflection()->HasField(config_, desc->FindFieldByName(section))) {
      Fail(section, "section missing");
      return;
    }
    std::string prefix = absl::StrCat(section, ".process");
    const config::v1::Process& process = ProcessConfig(config_, role);
    RequireUser(absl::StrCat(prefix, ".user"), process.user());
    RequireGroup(absl::StrCat(prefix, ".group"), process.group());
    const google::protobuf::ServiceDescriptor* service = InternalService(role);
    absl::flat_hash_set<std::string> seen;
    for (int i = 0; i < process.allow_size(); ++i) {
      const auto& entry = process.allow(i);
      std::string at = absl::StrCat(prefix, ".allow[", i, "]");
      if (service == nullptr || service->FindMethodByName(entry.method()) == nullptr) {
        std::vector<std::string> known;
        for (int m = 0; service != nullptr && m < service->method_count(); ++m) {
          known.push_back(service->method(m)->name());
        }
        Fail(absl::StrCat(at, ".method"),
             absl::StrCat("unknown method \"", entry.method(), "\" (", section, " serves: ",
                          known.empty() ? "no internal methods" : absl::StrJoin(known, ", "), ")"));
      } else if (!seen.insert(entry.method()).second) {
        Fail(absl::StrCat(at, ".method"),
             absl::StrCat("method \"", entry.method(), "\" is listed twice"));
      }
      if (entry.callers().empty())
        Fail(absl::StrCat(at, ".callers"), "at least one caller required");
      for (int c = 0; c < entry.callers_size(); ++c) {
        RequireUser(absl::StrCat(at, ".callers[", c, "]"), entry.callers(c));
      }
    }
  }

  void CheckKeyvault() {
    const auto& p = config_.keyvault().pkcs11();
    RequireAbsolute("keyvault.state_dir", config_.keyvault().state_dir());
    RequireAbsolute("keyvault.pkcs11.module_path", p.module_path());
    if (p.sessions() > 64) Fail("keyvault.pkcs11.sessions", "must be 1 to 64");
    if (p.token_case() == config::v1::Pkcs11::TOKEN_NOT_SET) {
      Fail("keyvault.pkcs11", "token_label or slot_id required");
    } else if (p.token_case() == config::v1::Pkcs11::kTokenLabel &&
               (p.token_label().empty() || p.token_label().size() > 32)) {
      Fail("keyvault.pkcs11.token_label", "must be 1 to 32 characters");
    }
    switch (p.pin_source_case()) {
      case config::v1::Pkcs11::PIN_SOURCE_NOT_SET:
        Fail("keyvault.pkcs11", "pin_file or pin_credential required");
        break;
      case config::v1::Pkcs11::kPinFile:
        RequireAbsolute("keyvault.pkcs11.pin_file", p.pin_file());
        break;
      case config::v1::Pkcs11::kPinCredential:
        if (p.pin_credential().empty() || absl::StrContains(p.pin_credential(), '/')) {
          Fail("keyvault.pkcs11.pin_credential", "must be a credential name without '/'");
        }
        break;
    }
    for (int i = 0; i < p.module_env_size(); ++i) {
      const std::string& name = p.module_env(i).name();
      if (name.empty() || absl::StrContains(name, '=')) {
        Fail(absl::StrCat("keyvault.pkcs11.module_env[", i, "].name"),
             "must be a non-empty name without '='");
      }
    }
  }

  void CheckPolicy() {
    const auto& policy = config_.policy();
    if (!policy.bundle_dir().empty()) {
      RequireAbsolute("policy.bundle_dir", policy.bundle_dir());
      RequireAbsolute("policy.regulator_public_key_file", policy.regulator_public_key_file());
    } else if (!policy.regulator_public_key_file().empty()) {
      RequireAbsolute("policy.regulator_public_key_file", policy.regulator_public_key_file());
      Fail("policy.bundle_dir", "required with regulator_public_key_file");
    }
  }

  void CheckStorage() {
    const auto& storage = config_.storage();
    RequireAbsolute("storage.data_dir", storage.data_dir());
    if (storage.has_kubo()) {
      const std::string& url = storage.kubo().api_url();
      if (url.empty()) {
        Fail("storage.kubo.api_url", "required");
      } else if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
        Fail("storage.kubo.api_url",
             absl::StrCat("must start with http:// or https://, got \"", url, "\""));
      }
      if (storage.kubo().max_retries() > 10) Fail("storage.kubo.max_retries", "must be at most 10");
    }
  }

  void CheckSigner() {
    const std::string& url = config_.signer().rpc_url();
    if (url.empty()) {
      Fail("signer.rpc_url", "required");
    } else if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
      Fail("signer.rpc_url",
           absl::StrCat("must start with http:// or https://, got \"", url, "\""));
    }
    if (config_.signer().rpc_timeout_ms() > 600000) {
      Fail("signer.rpc_timeout_ms", "must be at most 600000");
    }
    const std::string& contract = config_.signer().anchor_contract();
    auto is_address = [](const std::string& s) {
      return s.size() == 42 && absl::StartsWith(s, "0x") &&
             std::all_of(s.begin() + 2, s.end(), [](char c) {
               return absl::ascii_isxdigit(static_cast<unsigned char>(c));
             });
    };
    if (!contract.empty() && !is_address(contract)) {
      Fail("signer.anchor_contract",
           absl::StrCat("must be 0x and 40 hex digits, got \"", contract, "\""));
    }
    for (const auto& [field, address] :
         {std::pair{"licence_registry", &config_.signer().licence_registry()},
          {"policy_registry", &config_.signer().policy_registry()}}) {
      if (!address->empty() && !is_address(*address)) {
        Fail(absl::StrCat("signer.", field),
             absl::StrCat("must be 0x and 40 hex digits, got \"", *address, "\""));
      }
    }
    // The indexer follows whichever contracts are set; its database and the
    // outbox live in state_dir.
    const bool any_contract = !contract.empty() || !config_.signer().licence_registry().empty() ||
                              !config_.signer().policy_registry().empty();
    if (config_.signer().confirmations() > 1000) {
      Fail("signer.confirmations", "must be at most 1000");
    }
    // Compared as they will be used, with their defaults (see ApplyDefaults).
    const uint64_t max_fee = config_.signer().max_fee_per_gas_wei() != 0
                                 ? config_.signer().max_fee_per_gas_wei()
                                 : kDefaultMaxFeePerGasWei;
    const uint64_t max_tip = config_.signer().max_priority_fee_per_gas_wei() != 0
                                 ? config_.signer().max_priority_fee_per_gas_wei()
                                 : kDefaultMaxPriorityFeePerGasWei;
    if (max_tip > max_fee) {
      Fail("signer.max_priority_fee_per_gas_wei",
           absl::StrCat("must not be above max_fee_per_gas_wei (", max_tip, " > ", max_fee, ")"));
    }
    if (config_.signer().receipt_timeout_ms() > 3600000) {
      Fail("signer.receipt_timeout_ms", "must be at most 3600000");
    }
    if (!config_.signer().state_dir().empty()) {
      RequireAbsolute("signer.state_dir", config_.signer().state_dir());
    } else if (!contract.empty()) {
      Fail("signer.state_dir",
           "required when anchor_contract is set (the outbox and the event index live there)");
    } else if (any_contract) {
      Fail("signer.state_dir",
           "required when licence_registry or policy_registry is set (the event index lives "
           "there)");
    }
    if (config_.signer().outbox_capacity() > 10000000) {
      Fail("signer.outbox_capacity", "must be at most 10000000");
    }
    const uint32_t bump = config_.signer().fee_bump_after_ms();
    if (bump != 0 && (bump < 1000 || bump > 3600000)) {
      Fail("signer.fee_bump_after_ms", "must be from 1000 to 3600000");
    }
    // 0 takes the default (ApplyDefaults).
    const uint32_t poll = config_.signer().index_poll_ms();
    if (poll != 0 && (poll < 100 || poll > 600000)) {
      Fail("signer.index_poll_ms", "must be from 100 to 600000");
    }
    if (config_.signer().index_batch_blocks() > 100000) {
      Fail("signer.index_batch_blocks", "must be from 1 to 100000");
    }
  }

  void CheckGateway() {
    const auto& gw = config_.gateway();
    const std::string& addr = gw.listen_address();
    size_t colon = addr.rfind(':');
    int port = 0;
    if (addr.empty()) {
      Fail("gateway.listen_address", "required");
    } else if (colon == std::string::npos || colon == 0 ||
               !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 || port > 65535) {
      Fail("gateway.listen_address",
           absl::StrCat("must be host:port with a port from 0 to 65535, got \"", addr, "\""));
    }
    RequireAbsolute("gateway.tls.cert_file", gw.tls().cert_file());
    RequireAbsolute("gateway.tls.key_file", gw.tls().key_file());
    RequireAbsolute("gateway.tls.client_ca_file", gw.tls().client_ca_file());
    RequireAbsolute("gateway.tls.crl_file", gw.tls().crl_file());
    RequireAbsolute("gateway.state_dir", gw.state_dir());
    if (gw.max_record_bytes() > (uint64_t{4} << 30)) {
      Fail("gateway.max_record_bytes", "must be at most 4294967296 (4 GiB)");
    }
    if (gw.emergency_access_minutes() > 7 * 24 * 60) {
      Fail("gateway.emergency_access_minutes", "must be at most 10080 (7 days)");
    }
    const uint32_t timeout = gw.backend_timeout_ms();
    if (timeout != 0 && (timeout < 100 || timeout > 600000)) {
      Fail("gateway.backend_timeout_ms", "must be from 100 to 600000");
    }
    if (gw.calls_per_second() > 1000000) {
      Fail("gateway.calls_per_second", "must be at most 1000000");
    }
    const auto& audit = gw.audit();
    if (audit.log_name().size() > 64 ||
        !std::all_of(audit.log_name().begin(), audit.log_name().end(),
                     [](char c) { return c > ' ' && c < 127; })) {
      Fail("gateway.audit.log_name", "must be at most 64 printable ASCII characters, no spaces");
    }
    if (const uint32_t ms = audit.tree_head_interval_ms(); ms != 0 && (ms < 100 || ms > 3600000)) {
      Fail("gateway.audit.tree_head_interval_ms", "must be from 100 to 3600000");
    }
    if (const uint32_t ms = audit.anchor_interval_ms(); ms != 0 && (ms < 1000 || ms > 86400000)) {
      Fail("gateway.audit.anchor_interval_ms", "must be from 1000 to 86400000");
    }
    const auto& vitals = gw.vitals();
    if (const uint32_t ms = vitals.segment_ms(); ms != 0 && (ms < 100 || ms > 600000)) {
      Fail("gateway.vitals.segment_ms", "must be from 100 to 600000");
    }
    if (vitals.segment_samples() > 100000) {
      Fail("gateway.vitals.segment_samples", "must be from 1 to 100000");
    }
    if (vitals.max_watch_queue() > 65536) {
      Fail("gateway.vitals.max_watch_queue", "must be from 1 to 65536");
    }
    if (const uint32_t ms = vitals.watch_recheck_ms(); ms != 0 && (ms < 50 || ms > 1000)) {
      Fail("gateway.vitals.watch_recheck_ms", "must be from 50 to 1000");
    }
  }

  void CheckSupervisor() {
    const auto& s = config_.supervisor();
    if (!s.bin_dir().empty()) RequireAbsolute("supervisor.bin_dir", s.bin_dir());
    if (s.max_backoff_ms() != 0 && s.max_backoff_ms() < s.initial_backoff_ms()) {
      Fail("supervisor.max_backoff_ms", "must not be less than initial_backoff_ms");
    }
  }

  const Config& config_;
  const TextFormat::ParseInfoTree& tree_;
  std::string file_;
  std::vector<std::string> errors_;
};

void ApplyDefaults(Config& config) {
  auto* s = config.mutable_supervisor();
  if (s->start_timeout_ms() == 0) s->set_start_timeout_ms(15000);
  if (s->stop_grace_ms() == 0) s->set_stop_grace_ms(10000);
  if (s->initial_backoff_ms() == 0) s->set_initial_backoff_ms(200);
  if (s->max_backoff_ms() == 0) s->set_max_backoff_ms(30000);
  if (s->crash_loop_restarts() == 0) s->set_crash_loop_restarts(5);
  if (s->crash_loop_window_ms() == 0) s->set_crash_loop_window_ms(60000);
  if (config.keyvault().patient_key_cache() == 0) {
    config.mutable_keyvault()->set_patient_key_cache(1024);
  }
  if (config.keyvault().pkcs11().sessions() == 0) {
    config.mutable_keyvault()->mutable_pkcs11()->set_sessions(4);
  }
  auto* storage = config.mutable_storage();
  if (storage->max_object_bytes() == 0) storage->set_max_object_bytes(uint64_t{4} << 30);
  if (storage->has_kubo()) {
    auto* kubo = storage->mutable_kubo();
    if (kubo->timeout_ms() == 0) kubo->set_timeout_ms(30000);
    if (kubo->connect_timeout_ms() == 0) kubo->set_connect_timeout_ms(2000);
    if (kubo->max_retries() == 0) kubo->set_max_retries(3);
  }
  auto* signer = config.mutable_signer();
  if (signer->rpc_timeout_ms() == 0) signer->set_rpc_timeout_ms(5000);
  if (signer->confirmations() == 0) signer->set_confirmations(1);
  if (signer->max_fee_per_gas_wei() == 0) signer->set_max_fee_per_gas_wei(kDefaultMaxFeePerGasWei);
  if (signer->max_priority_fee_per_gas_wei() == 0) {
    signer->set_max_priority_fee_per_gas_wei(kDefaultMaxPriorityFeePerGasWei);
  }
  if (signer->receipt_timeout_ms() == 0) signer->set_receipt_timeout_ms(120000);
  if (signer->outbox_capacity() == 0) signer->set_outbox_capacity(10000);
  if (signer->fee_bump_after_ms() == 0) signer->set_fee_bump_after_ms(60000);
  if (signer->index_poll_ms() == 0) signer->set_index_poll_ms(2000);
  if (signer->index_batch_blocks() == 0) signer->set_index_batch_blocks(2000);
  auto* gateway = config.mutable_gateway();
  if (gateway->max_record_bytes() == 0) gateway->set_max_record_bytes(uint64_t{64} << 20);
  if (gateway->emergency_access_minutes() == 0) gateway->set_emergency_access_minutes(240);
  if (gateway->backend_timeout_ms() == 0) gateway->set_backend_timeout_ms(10000);
  if (gateway->calls_per_second() == 0) gateway->set_calls_per_second(1000);
  auto* audit = gateway->mutable_audit();
  if (audit->log_name().empty()) audit->set_log_name("medvault-gateway");
  if (audit->tree_head_interval_ms() == 0) audit->set_tree_head_interval_ms(1000);
  if (audit->anchor_interval_ms() == 0) audit->set_anchor_interval_ms(60000);
  if (audit->anchor_every_entries() == 0) audit->set_anchor_every_entries(10000);
  auto* vitals = gateway->mutable_vitals();
  if (vitals->segment_ms() == 0) vitals->set_segment_ms(5000);
  if (vitals->segment_samples() == 0) vitals->set_segment_samples(5000);
  if (vitals->max_watch_queue() == 0) vitals->set_max_watch_queue(256);
  if (vitals->watch_recheck_ms() == 0) vitals->set_watch_recheck_ms(500);
}

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view text, absl::string_view filename) {
  Config config;
  TextFormat::Parser parser;
  ErrorCollector collector(filename, text);
  TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrJoin(collector.errors(), "\n"));
  }
  std::vector<std::string> errors = Validator(config, tree, filename).Run();
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  ApplyDefaults(config);
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read configuration file ", path, ": ", strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace medvault
