// medvaultctl's audit commands, the compliance officer's tools. They read
// the registry database itself (a copy will do), never the running
// gateway, and the chain directly from its node:
//   audit verify       recompute the log's Merkle tree from its entries;
//                      check every signed tree head (signature and root),
//                      every anchor on chain, consistency between
//                      consecutive heads and anchors; name the first entry
//                      that no longer matches. Exit 1 on any mismatch.
//   audit export       the entries as JSON lines (with the signed heads, so
//                      that `audit verify --export` can check them) or as
//                      FHIR R4 AuditEvent resources, filtered
//   audit report       emergency accesses awaiting review, denials by rule,
//                      the dispute log, licence changes and policy versions;
//                      as text, and as a self-contained HTML page
//   audit prove        an inclusion or consistency proof from the database
//   audit public-key   the log's public key from the keyvault, to pin
//
// The database key: --db-key-file (64 hex digits), or asked of the keyvault,
// which gives it only to the gateway's own user (run as that user on the
// host). Exit codes: 0 success, 1 a mismatch or a failure, 2 bad usage.
#ifndef MEDVAULT_DAEMON_CTL_AUDIT_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_AUDIT_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "daemon/ctl/audit_report.h"
#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

class AuditCommands {
 public:
  explicit AuditCommands(CLI::App& app);

  // After the configuration is loaded: the exit code of an audit
  // subcommand, if one was given.
  std::optional<int> Run(const config::v1::Config& config);

 private:
  int Verify(const config::v1::Config& config);
  int Export(const config::v1::Config& config);
  int Report(const config::v1::Config& config);
  int Prove(const config::v1::Config& config);
  int PublicKey(const config::v1::Config& config);
  // --since, --until and the ids, as a filter; INVALID_ARGUMENT for a bad time.
  absl::StatusOr<AuditFilter> Filter() const;

  CLI::App* verify_;
  CLI::App* export_;
  CLI::App* report_;
  CLI::App* prove_;
  CLI::App* public_key_;
  // Where the log is.
  std::string db_dir_;
  std::string db_key_file_;
  std::string export_file_;
  std::string log_name_;
  std::string public_key_file_;
  // The chain.
  std::string rpc_url_;
  std::string anchor_contract_;
  bool no_chain_ = false;
  // export and report.
  std::string format_ = "jsonl";
  std::string output_;
  std::string html_;
  std::string since_;
  std::string until_;
  std::string patient_;
  std::string practitioner_;
  std::string organization_;
  std::string action_;
  // prove.
  uint64_t leaf_ = 0;
  uint64_t size_ = 0;
  uint64_t first_ = 0;
  uint64_t second_ = 0;
};

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_AUDIT_COMMANDS_H_
