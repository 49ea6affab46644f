// medvaultctl's chain commands, all through the running medvault-signer
// (which holds no key itself: the keyvault signs):
//   chain info                  chain id, latest block, the indexer's position
//   chain keys                  the keyvault's chain addresses (operator, regulator)
//   chain deploy                deploy AuditAnchor, LicenceRegistry and
//                               PolicyRegistry from the build's artifacts and
//                               print the signer configuration lines for them
//   chain set-licence           LicenceRegistry.setLicence (the regulator's key)
//   chain licence               a practitioner's licence, from the index
//   chain licence-events        LicenceChanged events, from the index
//   chain publish-policy        PolicyRegistry.publish of a bundle's hash
//   chain policies              the published policy versions, from the index
// Exit codes: 0 success, 1 failed or refused, 2 bad usage.
#ifndef MEDVAULT_DAEMON_CTL_CHAIN_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_CHAIN_COMMANDS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

class ChainCommands {
 public:
  // Adds "chain" and its subcommands to `app`. `program` is argv[0], to
  // find the build's contract artifacts next to the binary.
  ChainCommands(CLI::App& app, std::string program);

  // After the configuration is loaded: the exit code of a chain
  // subcommand, if one was given.
  std::optional<int> Run(const config::v1::Config& config);

 private:
  int Deploy(const config::v1::Config& config);
  int SetLicence(const config::v1::Config& config);
  int PublishPolicy(const config::v1::Config& config);

  const std::string program_;
  CLI::App* info_;
  CLI::App* keys_;
  CLI::App* deploy_;
  CLI::App* set_licence_;
  CLI::App* licence_;
  CLI::App* licence_events_;
  CLI::App* publish_policy_;
  CLI::App* policies_;
  std::string artifacts_dir_;
  std::string regulator_;
  std::string practitioner_;
  std::string status_;
  uint64_t valid_until_ = 0;
  std::string evidence_;
  std::string bundle_dir_;
  uint64_t version_ = 0;
  std::string bundle_hash_;
  std::string after_;
  uint32_t limit_ = 0;
};

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_CHAIN_COMMANDS_H_
