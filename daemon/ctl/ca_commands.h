// medvaultctl's CA commands: the deployment's client-certificate authority,
// offline, on a CA directory (no running process, no configuration; see
// daemon/ctl/ca.h for the directory's files):
//   ca init   --dir DIR [--name NAME] [--days N]      create the CA and an empty CRL
//   ca issue  --dir DIR --org ID --role ROLE --out PREFIX [--name NAME] [--days N]
//   ca issue  --dir DIR --org ID --server --dns NAME... --ip ADDR... --out PREFIX
//   ca revoke --dir DIR (--serial HEX | --cert FILE) [--reason REASON]
//   ca crl    --dir DIR                               re-sign the CRL before nextUpdate
// The gateway reads ca.pem (tls.client_ca_file) and crl.pem (tls.crl_file);
// a new crl.pem takes effect at the next handshake, without a restart.
// Exit codes: 0 success, 1 failed or refused, 2 bad usage.
#ifndef MEDVAULT_DAEMON_CTL_CA_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_CA_COMMANDS_H_

#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "daemon/ctl/ca.h"

namespace medvault::ctl {

class CaCommands {
 public:
  // Adds "ca" and its subcommands to `app`.
  explicit CaCommands(CLI::App& app);

  // After parsing: the exit code of a ca subcommand, if one was given.
  std::optional<int> Run();

 private:
  int Init();
  int Issue();
  int Revoke();
  int Crl();

  CLI::App* init_;
  CLI::App* issue_;
  CLI::App* revoke_;
  CLI::App* crl_;
  ca::InitOptions init_options_;
  ca::IssueOptions issue_options_;
  std::string dir_;
  std::string serial_;
  std::string cert_file_;
  std::string reason_ = "unspecified";
  int crl_days_ = 30;
};

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_CA_COMMANDS_H_
