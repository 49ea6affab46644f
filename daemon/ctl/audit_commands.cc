#include "daemon/ctl/audit_commands.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/merkle.h"
#include "daemon/common/openssl_util.h"
#include "daemon/common/roles.h"
#include "daemon/common/secret.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/ctl/audit_report.h"
#include "daemon/ctl/audit_verify.h"
#include "daemon/ctl/rpc.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/registry_db.h"
#include "daemon/signer/contract_events.h"
#include "daemon/signer/eth_tx.h"
#include "daemon/signer/json_rpc_client.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/internal/v1/signer.pb.h"

namespace medvault::ctl {
namespace {

constexpr char kOwner[] = "registry database";
constexpr absl::Duration kCallTimeout = absl::Seconds(20);
// eth_getLogs asks for this many blocks at a time.
constexpr uint64_t kLogBlocks = 5000;

int Fail(absl::string_view message) {
  std::cerr << "medvaultctl: " << message << "\n";
  return 1;
}

int Fail(const absl::Status& status) { return Fail(status.message()); }

int Usage(absl::string_view message) {
  std::cerr << "medvaultctl: " << message << "\n";
  return 2;
}

// A proof that cannot be made: bad sizes are the caller's (exit 2), a
// damaged tree is a failure (exit 1).
int ProofError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? Usage(status.message())
                                                             : Fail(status);
}

std::string Time(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to `path` through a temporary file renamed over it, so a
// reader never sees half a file; "" or "-" is standard output.
absl::Status WriteOutput(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? absl::OkStatus()
                                    : absl::DataLossError("cannot write standard output");
  }
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("cannot write ", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::DataLossError(absl::StrCat("cannot rename ", temporary, " to ", path));
  }
  return absl::OkStatus();
}

// The registry database's key: from a file of 64 hex digits, or from the
// keyvault, which hands it only to the gateway's user.
absl::StatusOr<SecretData> DatabaseKey(const config::v1::Config& config,
                                       const std::string& key_file) {
  if (!key_file.empty()) {
    ASSIGN_OR_RETURN(SecretData hex, ReadSecretFile(key_file, {geteuid()}));
    std::string text(reinterpret_cast<const char*>(hex.data()), hex.size());
    const bool ok = text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
                      return absl::ascii_isxdigit(static_cast<unsigned char>(c));
                    });
    std::string bytes = ok ? absl::HexStringToBytes(text) : std::string();
    OPENSSL_cleanse(text.data(), text.size());
    if (!ok) {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      return absl::InvalidArgumentError(
          absl::StrCat("--db-key-file ", key_file, ": must hold 64 hex digits"));
    }
    SecretData key(bytes);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return key;
  }
  auto stub = internal::v1::KeyVault::NewStub(ProcessChannel(config, Role::kKeyvault));
  grpc::ClientContext context;
  SetDeadline(context, kCallTimeout);
  internal::v1::UnwrapDatabaseKeyRequest request;
  request.set_name("gateway");
  internal::v1::UnwrapDatabaseKeyResponse response;
  grpc::Status status = stub->UnwrapDatabaseKey(&context, request, &response);
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the keyvault gives the registry database key only to the gateway's user (",
                     status.error_message(), "); run as that user, or pass --db-key-file"));
  }
  SecretData key(response.key());
  OPENSSL_cleanse(response.mutable_key()->data(), response.key().size());
  return key;
}

// The registry database, opened only if it exists (never created here).
class Database {
 public:
  static absl::StatusOr<Database> Open(const std::string& dir, const SecretData& key) {
    const std::string path = dir + "/registry.db";
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat("no registry database at ", path));
    }
    ASSIGN_OR_RETURN(sqlite3 * db,
                     SqliteOpenEncrypted(path, key, kOwner, gateway::kRegistryPageSizes));
    return Database(db);
  }
  Database(Database&& other) : db_(other.db_) { other.db_ = nullptr; }
  ~Database() {
    if (db_ != nullptr) sqlite3_close(db_);
  }
  sqlite3* get() const { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Calls `row` for each audit entry (leaf index, leaf bytes), in order,
// with progress on standard error for a long log.
absl::Status ForEachEntry(sqlite3* db,
                          absl::FunctionRef<absl::Status(uint64_t, const std::string&)> row) {
  uint64_t n = 0;
  return gateway::ForEachAuditLeaf(db, 0, [&](uint64_t index, const std::string& leaf) {
    if (++n % 100000 == 0) std::cerr << "medvaultctl: read " << n << " audit entries\n";
    return row(index, leaf);
  });
}

// The log's name: --log-name, else the one the database's log is bound to
// (set with its first signed head), else gateway.audit.log_name.
absl::StatusOr<std::string> LogName(sqlite3* db, const config::v1::Config& config,
                                    const std::string& flag) {
  if (!flag.empty()) return flag;
  if (db != nullptr) {
    ASSIGN_OR_RETURN(std::string bound, gateway::BoundLogName(db));
    if (!bound.empty()) return bound;
  }
  return config.gateway().audit().log_name();
}

// The database's signed heads, each named as the log `log_id`'s.
absl::StatusOr<std::vector<v1::SignedTreeHead>> ReadHeads(sqlite3* db, const std::string& log_id) {
  ASSIGN_OR_RETURN(std::vector<v1::SignedTreeHead> heads, gateway::AuditTreeHeads(db));
  for (v1::SignedTreeHead& head : heads) head.set_log_id(log_id);
  return heads;
}

absl::StatusOr<std::vector<merkle::Hash>> ReadStoredLeafHashes(sqlite3* db) {
  SqliteStatement q(db, kOwner, "SELECT idx, hash FROM audit_tree WHERE level = 0 ORDER BY idx");
  RETURN_IF_ERROR(q.status());
  std::vector<merkle::Hash> out;
  while (true) {
    ASSIGN_OR_RETURN(bool more, q.Step());
    if (!more) break;
    absl::StatusOr<merkle::Hash> hash = merkle::FromBytes(q.Blob(1));
    // A stored hash out of place or malformed vouches for nothing.
    if (!hash.ok() || q.Int(0) != static_cast<int64_t>(out.size())) break;
    out.push_back(*hash);
  }
  return out;
}

// The log key: a DER or PEM file, or the keyvault's (GetLogPublicKey).
absl::StatusOr<std::string> LogPublicKey(const config::v1::Config& config,
                                         const std::string& file) {
  if (file.empty()) {
    auto stub = internal::v1::KeyVault::NewStub(ProcessChannel(config, Role::kKeyvault));
    grpc::ClientContext context;
    SetDeadline(context, kCallTimeout);
    internal::v1::GetLogPublicKeyResponse response;
    grpc::Status status =
        stub->GetLogPublicKey(&context, internal::v1::GetLogPublicKeyRequest(), &response);
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "keyvault GetLogPublicKey: ", status.error_message(), "; or pass --public-key"));
    }
    return response.public_key();
  }
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(file));
  if (!absl::StrContains(text, "-----BEGIN")) return text;
  openssl::BioPtr bio = openssl::MemBio(text);
  openssl::KeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a PEM public key"));
  }
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(key.get(), &der);
  if (length <= 0) return absl::InternalError("cannot encode the public key");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::string PublicKeyPem(const std::string& der) {
  std::string b64 = absl::Base64Escape(der);
  std::string out = "-----BEGIN PUBLIC KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) absl::StrAppend(&out, b64.substr(i, 64), "\n");
  absl::StrAppend(&out, "-----END PUBLIC KEY-----\n");
  return out;
}

// Logs of `contract` with first topic `topic`, from `from_block` to the head.
absl::StatusOr<std::vector<signer::EventLog>> ChainLogs(signer::ChainClient& chain,
                                                        const std::string& contract,
                                                        const std::string& topic,
                                                        uint64_t from_block) {
  ASSIGN_OR_RETURN(uint64_t head, chain.BlockNumber());
  std::vector<signer::EventLog> out;
  for (uint64_t from = from_block; from <= head; from += kLogBlocks) {
    signer::LogFilter filter;
    filter.addresses = {contract};
    filter.topic0 = {topic};
    filter.from_block = from;
    filter.to_block = std::min(head, from + kLogBlocks - 1);
    ASSIGN_OR_RETURN(std::vector<signer::EventLog> logs, chain.GetLogs(filter));
    out.insert(out.end(), logs.begin(), logs.end());
  }
  return out;
}

struct ChainSettings {
  std::string url;
  std::string anchor_contract;  // 20 bytes, or empty
  std::string licence_registry;
  std::string policy_registry;
  uint64_t from_block = 0;
  absl::Duration timeout;
};

absl::StatusOr<std::string> Address(const std::string& text, absl::string_view what) {
  if (text.empty()) return std::string();
  absl::StatusOr<std::string> address = ParseEthAddress(text);
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", address.status().message()));
  }
  return address;
}

absl::StatusOr<ChainSettings> Chain(const config::v1::Config& config, const std::string& url,
                                    const std::string& anchor_contract) {
  ChainSettings s;
  s.url = url.empty() ? config.signer().rpc_url() : url;
  if (s.url.empty()) {
    return absl::FailedPreconditionError(
        "no chain node: set signer.rpc_url, pass --rpc-url, or --no-chain");
  }
  ASSIGN_OR_RETURN(
      s.anchor_contract,
      Address(anchor_contract.empty() ? config.signer().anchor_contract() : anchor_contract,
              "anchor contract"));
  ASSIGN_OR_RETURN(s.licence_registry,
                   Address(config.signer().licence_registry(), "signer.licence_registry"));
  ASSIGN_OR_RETURN(s.policy_registry,
                   Address(config.signer().policy_registry(), "signer.policy_registry"));
  s.from_block = config.signer().index_from_block();
  s.timeout = absl::Milliseconds(std::max<uint32_t>(config.signer().rpc_timeout_ms(), 10000));
  return s;
}

absl::StatusOr<std::vector<ChainAnchor>> ReadAnchors(const ChainSettings& settings,
                                                     const std::string& log_id) {
  if (settings.anchor_contract.empty()) {
    return absl::FailedPreconditionError(
        "no AuditAnchor contract: set signer.anchor_contract, pass --anchor-contract, or "
        "--no-chain");
  }
  signer::JsonRpcChainClient chain(settings.url, settings.timeout);
  ASSIGN_OR_RETURN(auto logs, ChainLogs(chain, settings.anchor_contract, signer::AnchoredTopic(),
                                        settings.from_block));
  std::vector<ChainAnchor> anchors;
  for (const signer::EventLog& log : logs) {
    ASSIGN_OR_RETURN(signer::AnchoredEvent event, signer::DecodeAnchored(log));
    if (event.log_id != log_id) continue;
    anchors.push_back({event.tree_size, event.root_hash, event.position.block_number});
  }
  return anchors;
}

absl::StatusOr<std::optional<absl::Time>> ParseTimeFlag(const std::string& text,
                                                        absl::string_view flag) {
  if (text.empty()) return std::nullopt;
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": not an RFC 3339 time (2026-11-22T10:00:00Z): ", error));
  }
  return t;
}

}  // namespace

AuditCommands::AuditCommands(CLI::App& app) {
  auto* audit = app.add_subcommand(
      "audit", "the audit log: verify it, export it, report on it (compliance office)");
  audit->require_subcommand(1);
  auto add_source = [&](CLI::App* c) {
    c->add_option("--db", db_dir_,
                  "directory of registry.db, the gateway's database or a copy "
                  "(default gateway.state_dir)");
    c->add_option("--db-key-file", db_key_file_,
                  "file with the database key in 64 hex digits (default: ask the keyvault, "
                  "which answers only the gateway's user)");
  };
  auto add_chain = [&](CLI::App* c) {
    c->add_option("--rpc-url", rpc_url_, "the chain node (default signer.rpc_url)");
    c->add_option("--anchor-contract", anchor_contract_,
                  "AuditAnchor's address (default signer.anchor_contract)");
    c->add_flag("--no-chain", no_chain_, "do not read the chain");
  };
  auto add_filters = [&](CLI::App* c) {
    c->add_option("--since", since_, "only events at or after this RFC 3339 time");
    c->add_option("--until", until_, "only events before this RFC 3339 time");
    c->add_option("--patient", patient_, "only events about this patient");
    c->add_option("--practitioner", practitioner_, "only events by this practitioner");
    c->add_option("--organization", organization_, "only events by this organisation");
    c->add_option("--action", action_, "only events of this policy action (e.g. record.read)");
  };

  verify_ = audit->add_subcommand(
      "verify",
      "recompute the log from its entries and check every signed tree head, every anchor on "
      "chain and their consistency; exit 1 naming the first entry that no longer matches");
  add_source(verify_);
  verify_->add_option("--export", export_file_,
                      "check an export (audit export --format jsonl, unfiltered) instead");
  verify_->add_option("--public-key", public_key_file_,
                      "the log's public key, PEM or DER (default: the keyvault's; pin a copy "
                      "from `audit public-key`)");
  verify_->add_option("--log-name", log_name_,
                      "the log's name (default: the database's own, else "
                      "gateway.audit.log_name)");
  add_chain(verify_);

  export_ = audit->add_subcommand(
      "export",
      "the audit events as JSON lines (with the signed tree heads) or FHIR R4 "
      "AuditEvent resources (one per line)");
  add_source(export_);
  export_->add_option("--format", format_, "jsonl (default) or fhir")
      ->check(CLI::IsMember({"jsonl", "fhir"}));
  export_->add_option("--output", output_, "file to write (default standard output)");
  export_->add_option("--log-name", log_name_, "the log's name (default gateway.audit.log_name)");
  add_filters(export_);

  report_ = audit->add_subcommand(
      "report",
      "emergency accesses awaiting review, denials by rule, the dispute log, licence "
      "changes and policy versions in force");
  add_source(report_);
  report_->add_option("--html", html_, "also write the report as a self-contained HTML page");
  add_chain(report_);
  add_filters(report_);

  prove_ = audit->add_subcommand(
      "prove",
      "an inclusion proof (--leaf, --size) or a consistency proof (--first, --second) "
      "from the database, hashes in hex");
  add_source(prove_);
  prove_->add_option("--leaf", leaf_, "leaf index for an inclusion proof");
  prove_->add_option("--size", size_, "tree size (default: the whole log)");
  prove_->add_option("--first", first_, "first tree size for a consistency proof");
  prove_->add_option("--second", second_, "second tree size (default: the whole log)");

  public_key_ =
      audit->add_subcommand("public-key", "the log's public key from the keyvault, PEM, to pin");
  public_key_->add_option("--output", output_, "file to write (default standard output)");
}

absl::StatusOr<AuditFilter> AuditCommands::Filter() const {
  AuditFilter filter;
  ASSIGN_OR_RETURN(filter.since, ParseTimeFlag(since_, "--since"));
  ASSIGN_OR_RETURN(filter.until, ParseTimeFlag(until_, "--until"));
  filter.patient_id = patient_;
  filter.practitioner_id = practitioner_;
  filter.organization_id = organization_;
  filter.action = action_;
  return filter;
}

std::optional<int> AuditCommands::Run(const config::v1::Config& config) {
  if (db_dir_.empty()) db_dir_ = config.gateway().state_dir();
  if (verify_->parsed()) return Verify(config);
  if (export_->parsed()) return Export(config);
  if (report_->parsed()) return Report(config);
  if (prove_->parsed()) return Prove(config);
  if (public_key_->parsed()) return PublicKey(config);
  return std::nullopt;
}

int AuditCommands::Verify(const config::v1::Config& config) {
  AuditLogCopy log;
  const std::string flag_log_name = log_name_;
  if (!export_file_.empty()) {
    absl::StatusOr<std::string> name = LogName(nullptr, config, log_name_);
    if (!name.ok()) return Fail(name.status());
    log_name_ = *name;
    std::ifstream in(export_file_);
    if (!in) return Fail(absl::StrCat("cannot read ", export_file_));
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (line.empty()) continue;
      absl::StatusOr<ExportLine> parsed = ParseExportLine(line);
      if (!parsed.ok()) {
        return Fail(absl::StrCat(export_file_, " line ", number, ": ", parsed.status().message()));
      }
      if (auto* entry = std::get_if<ExportedEntry>(&*parsed)) {
        log.leaves.emplace_back(entry->leaf_index, std::move(entry->leaf));
      } else {
        log.heads.push_back(std::get<v1::SignedTreeHead>(*parsed));
      }
    }
    std::cout << "source:      export " << export_file_ << "\n";
  } else {
    absl::StatusOr<SecretData> key = DatabaseKey(config, db_key_file_);
    if (!key.ok()) return Fail(key.status());
    absl::StatusOr<Database> db = Database::Open(db_dir_, *key);
    if (!db.ok()) return Fail(db.status());
    absl::StatusOr<std::string> name = LogName(db->get(), config, log_name_);
    if (!name.ok()) return Fail(name.status());
    log_name_ = *name;
    absl::Status read = ForEachEntry(db->get(), [&](uint64_t index, const std::string& leaf) {
      log.leaves.emplace_back(index, leaf);
      return absl::OkStatus();
    });
    if (!read.ok()) return Fail(read);
    absl::StatusOr<std::vector<v1::SignedTreeHead>> heads =
        ReadHeads(db->get(), merkle::LogId(log_name_));
    if (!heads.ok()) return Fail(heads.status());
    log.heads = *std::move(heads);
    absl::StatusOr<std::vector<merkle::Hash>> stored = ReadStoredLeafHashes(db->get());
    if (!stored.ok()) return Fail(stored.status());
    log.stored_leaf_hashes = *std::move(stored);
    std::cout << "source:      database " << db_dir_ << "/registry.db\n";
  }
  log.log_id = merkle::LogId(log_name_);
  if (!export_file_.empty() && flag_log_name.empty() && !log.heads.empty()) {
    // An export names its log in its heads; the chain is read for that id.
    log.log_id = log.heads.front().log_id();
    log_name_ = "as named by the export's tree heads";
  }
  absl::StatusOr<std::string> key = LogPublicKey(config, public_key_file_);
  if (!key.ok()) return Fail(key.status());
  log.public_key_der = *std::move(key);
  std::cout << "log:         " << log_name_ << " (id 0x" << absl::BytesToHexString(log.log_id)
            << ")\n";
  std::cout << "log key:     " << (public_key_file_.empty() ? "the keyvault's" : public_key_file_)
            << "\n";
  if (!no_chain_) {
    absl::StatusOr<ChainSettings> chain = Chain(config, rpc_url_, anchor_contract_);
    if (!chain.ok()) return Fail(chain.status());
    absl::StatusOr<std::vector<ChainAnchor>> anchors = ReadAnchors(*chain, log.log_id);
    if (!anchors.ok()) return Fail(absl::StrCat("reading anchors: ", anchors.status().message()));
    std::cout << "chain:       " << chain->url << ", AuditAnchor 0x"
              << absl::BytesToHexString(chain->anchor_contract) << "\n";
    log.anchors = *std::move(anchors);
  }
  absl::StatusOr<AuditVerification> result = VerifyAuditLog(log);
  if (!result.ok()) return Fail(result.status());
  std::cout << "entries:     " << result->entries << "\n"
            << "tree heads:  " << result->heads_checked << " checked\n"
            << "anchors:     "
            << (log.anchors.has_value() ? absl::StrCat(result->anchors_checked, " checked")
                                        : std::string("not read (--no-chain)"))
            << "\n"
            << "consistency: " << result->consistency_checked << " proofs checked\n";
  if (result->ok()) {
    if (log.anchors.has_value() && log.anchors->empty() && result->entries > 0) {
      std::cout << "note:        nothing of this log is anchored on chain yet\n";
    }
    std::cout << "verified:    the log matches every signed tree head and anchor\n";
    return 0;
  }
  for (const std::string& problem : result->problems)
    std::cout << "MISMATCH:    " << problem << "\n";
  if (result->first_bad.has_value() && !result->first_bad_end.has_value()) {
    std::cout << "first bad entry: " << *result->first_bad << "\n";
  } else if (result->first_bad.has_value()) {
    std::cout << "first bad entry: among entries " << *result->first_bad << " to "
              << *result->first_bad_end - 1 << "\n";
  }
  return 1;
}

int AuditCommands::Export(const config::v1::Config& config) {
  absl::StatusOr<AuditFilter> filter_or = Filter();
  if (!filter_or.ok()) return Usage(filter_or.status().message());
  const AuditFilter& filter = *filter_or;
  const bool filtered = filter.since || filter.until || !patient_.empty() ||
                        !practitioner_.empty() || !organization_.empty() || !action_.empty();

  absl::StatusOr<SecretData> key = DatabaseKey(config, db_key_file_);
  if (!key.ok()) return Fail(key.status());
  absl::StatusOr<Database> db = Database::Open(db_dir_, *key);
  if (!db.ok()) return Fail(db.status());
  std::string out;
  uint64_t written = 0;
  absl::Status read = ForEachEntry(db->get(), [&](uint64_t index, const std::string& leaf) {
    v1::AuditEvent event;
    if (!event.ParseFromString(leaf)) {
      return absl::DataLossError(absl::StrCat("entry ", index, " does not parse"));
    }
    if (!Matches(filter, event)) return absl::OkStatus();
    absl::StrAppend(
        &out, format_ == "fhir" ? FhirAuditEvent(index, event) : EventJsonLine(index, event, leaf),
        "\n");
    ++written;
    return absl::OkStatus();
  });
  if (!read.ok()) return Fail(read);
  // The heads make a whole export verifiable; a filtered one cannot be.
  if (format_ == "jsonl" && !filtered) {
    absl::StatusOr<std::string> name = LogName(db->get(), config, log_name_);
    if (!name.ok()) return Fail(name.status());
    absl::StatusOr<std::vector<v1::SignedTreeHead>> heads =
        ReadHeads(db->get(), merkle::LogId(*name));
    if (!heads.ok()) return Fail(heads.status());
    for (const v1::SignedTreeHead& head : *heads)
      absl::StrAppend(&out, TreeHeadJsonLine(head), "\n");
  }
  if (absl::Status s = WriteOutput(output_, out); !s.ok()) return Fail(s);
  std::cerr << "medvaultctl: exported " << written << " audit events"
            << (filtered ? " (filtered: not verifiable on its own)" : "") << "\n";
  return 0;
}

int AuditCommands::Report(const config::v1::Config& config) {
  absl::StatusOr<AuditFilter> filter_or = Filter();
  if (!filter_or.ok()) return Usage(filter_or.status().message());
  const AuditFilter& filter = *filter_or;

  absl::StatusOr<SecretData> key = DatabaseKey(config, db_key_file_);
  if (!key.ok()) return Fail(key.status());
  absl::StatusOr<Database> db = Database::Open(db_dir_, *key);
  if (!db.ok()) return Fail(db.status());
  AuditReportInput input;
  input.generated_at = absl::Now();
  uint64_t total = 0;
  absl::Status read = ForEachEntry(db->get(), [&](uint64_t index, const std::string& leaf) {
    ++total;
    v1::AuditEvent event;
    if (!event.ParseFromString(leaf)) {
      return absl::DataLossError(absl::StrCat("entry ", index, " does not parse"));
    }
    if (Matches(filter, event)) input.events.emplace_back(index, std::move(event));
    return absl::OkStatus();
  });
  if (!read.ok()) return Fail(read);
  absl::StatusOr<std::vector<v1::SignedTreeHead>> heads = ReadHeads(db->get(), "");
  if (!heads.ok()) return Fail(heads.status());
  input.log_summary =
      absl::StrCat(total, " events in the log, ", input.events.size(), " in this report; ");
  if (heads->empty()) {
    absl::StrAppend(&input.log_summary, "no signed tree head yet");
  } else {
    absl::StrAppend(&input.log_summary, "latest signed tree head: size ", heads->back().tree_size(),
                    " at ",
                    Time(absl::FromUnixMillis(static_cast<int64_t>(heads->back().timestamp_ms()))),
                    " (run `medvaultctl audit verify` to check it)");
  }

  if (!no_chain_) {
    absl::StatusOr<ChainSettings> settings = Chain(config, rpc_url_, anchor_contract_);
    if (!settings.ok()) return Fail(settings.status());
    signer::JsonRpcChainClient chain(settings->url, settings->timeout);
    std::map<uint64_t, absl::Time> block_times;
    auto block_time = [&](uint64_t number) -> absl::StatusOr<absl::Time> {
      auto it = block_times.find(number);
      if (it != block_times.end()) return it->second;
      ASSIGN_OR_RETURN(std::optional<signer::BlockHeader> header, chain.GetBlockHeader(number));
      const absl::Time t = header.has_value()
                               ? absl::FromUnixSeconds(static_cast<int64_t>(header->timestamp))
                               : absl::InfinitePast();
      block_times[number] = t;
      return t;
    };
    auto read_chain = [&]() -> absl::Status {
      if (!settings->licence_registry.empty()) {
        ASSIGN_OR_RETURN(auto logs, ChainLogs(chain, settings->licence_registry,
                                              signer::LicenceChangedTopic(), settings->from_block));
        for (const signer::EventLog& log : logs) {
          ASSIGN_OR_RETURN(signer::LicenceChangedEvent e, signer::DecodeLicenceChanged(log));
          LicenceChange& change = input.licence_changes.emplace_back();
          change.practitioner_key_hex = absl::StrCat("0x", absl::BytesToHexString(e.practitioner));
          change.status = std::string(absl::StripPrefix(
              internal::v1::LicenceStatus_Name(static_cast<internal::v1::LicenceStatus>(e.status)),
              "LICENCE_STATUS_"));
          change.valid_until = absl::FromUnixSeconds(static_cast<int64_t>(e.valid_until));
          ASSIGN_OR_RETURN(change.changed_at, block_time(e.position.block_number));
          change.block_number = e.position.block_number;
        }
      }
      if (!settings->policy_registry.empty()) {
        ASSIGN_OR_RETURN(auto logs,
                         ChainLogs(chain, settings->policy_registry, signer::PolicyPublishedTopic(),
                                   settings->from_block));
        for (const signer::EventLog& log : logs) {
          ASSIGN_OR_RETURN(signer::PolicyPublishedEvent e, signer::DecodePolicyPublished(log));
          PolicyPublication& p = input.policy_publications.emplace_back();
          p.version = e.version;
          p.bundle_hash_hex = absl::StrCat("0x", absl::BytesToHexString(e.bundle_hash));
          ASSIGN_OR_RETURN(p.published_at, block_time(e.position.block_number));
        }
      }
      return absl::OkStatus();
    };
    if (absl::Status s = read_chain(); !s.ok()) {
      return Fail(absl::StrCat("reading the chain: ", s.message(), " (or pass --no-chain)"));
    }
  }
  if (!html_.empty()) {
    if (absl::Status s = WriteOutput(html_, RenderHtmlReport(input)); !s.ok()) return Fail(s);
    std::cerr << "medvaultctl: wrote " << html_ << "\n";
  }
  if (absl::Status s = WriteOutput("", RenderTextReport(input)); !s.ok()) return Fail(s);
  return 0;
}

int AuditCommands::Prove(const config::v1::Config& config) {
  const bool inclusion = prove_->count("--leaf") > 0;
  const bool consistency = prove_->count("--first") > 0;
  if (inclusion == consistency) {
    return Usage("audit prove: give --leaf (inclusion) or --first (consistency), not both");
  }
  absl::StatusOr<SecretData> key = DatabaseKey(config, db_key_file_);
  if (!key.ok()) return Fail(key.status());
  absl::StatusOr<Database> db = Database::Open(db_dir_, *key);
  if (!db.ok()) return Fail(db.status());
  absl::StatusOr<uint64_t> whole = gateway::AuditTreeSize(db->get());
  if (!whole.ok()) return Fail(whole.status());
  if (inclusion) {
    const uint64_t size = size_ == 0 ? *whole : size_;
    if (size > *whole) return Usage(absl::StrCat("--size: the log has ", *whole, " entries"));
    absl::StatusOr<std::vector<merkle::Hash>> proof =
        gateway::AuditInclusionProof(db->get(), leaf_, size);
    if (!proof.ok()) return ProofError(proof.status());
    absl::StatusOr<merkle::Hash> root = gateway::AuditRoot(db->get(), size);
    if (!root.ok()) return Fail(root.status());
    std::cout << "leaf_index: " << leaf_ << "\ntree_size: " << size
              << "\nroot: " << merkle::ToHex(*root) << "\naudit_path:\n";
    for (const merkle::Hash& h : *proof) std::cout << "  " << merkle::ToHex(h) << "\n";
    return 0;
  }
  const uint64_t second = second_ == 0 ? *whole : second_;
  if (second > *whole) return Usage(absl::StrCat("--second: the log has ", *whole, " entries"));
  absl::StatusOr<std::vector<merkle::Hash>> proof =
      gateway::AuditConsistencyProof(db->get(), first_, second);
  if (!proof.ok()) return ProofError(proof.status());
  absl::StatusOr<merkle::Hash> first_root = gateway::AuditRoot(db->get(), first_);
  absl::StatusOr<merkle::Hash> second_root = gateway::AuditRoot(db->get(), second);
  if (!first_root.ok()) return Fail(first_root.status());
  if (!second_root.ok()) return Fail(second_root.status());
  std::cout << "first_tree_size: " << first_ << "\nfirst_root: " << merkle::ToHex(*first_root)
            << "\nsecond_tree_size: " << second << "\nsecond_root: " << merkle::ToHex(*second_root)
            << "\nproof:\n";
  for (const merkle::Hash& h : *proof) std::cout << "  " << merkle::ToHex(h) << "\n";
  return 0;
}

int AuditCommands::PublicKey(const config::v1::Config& config) {
  absl::StatusOr<std::string> key = LogPublicKey(config, "");
  if (!key.ok()) return Fail(key.status());
  if (absl::Status s = WriteOutput(output_, PublicKeyPem(*key)); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace medvault::ctl
