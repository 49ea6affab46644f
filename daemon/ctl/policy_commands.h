// medvaultctl's policy commands.
//
// Offline, on a bundle directory (no running process, no configuration):
//   policy lint    DIR                 compile the bundle; errors with file:line
//   policy test    DIR [--tests TDIR]  run the policy's tests (policies/tests)
//   policy explain DIR REQUEST         decide a request (text format) and say
//                                      how each rule of its action fared
//   policy hash    DIR                 the version and bundle hash to publish
//   policy sign    DIR --key KEY       write DIR/bundle.sig with the
//                                      regulator's private key (PEM)
// Against the running medvault-policy (needs the configuration):
//   policy info | reload
// Exit codes: 0 success, 1 failed or refused, 2 bad usage.
#ifndef MEDVAULT_DAEMON_CTL_POLICY_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_POLICY_COMMANDS_H_

#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

class PolicyCommands {
 public:
  // Adds "policy" and its subcommands to `app`.
  explicit PolicyCommands(CLI::App& app);

  // After parsing: the exit code of an offline subcommand, if one was given.
  std::optional<int> RunOffline();
  // After the configuration is loaded: the exit code of info or reload.
  std::optional<int> RunOnline(const config::v1::Config& config);

 private:
  CLI::App* lint_;
  CLI::App* test_;
  CLI::App* explain_;
  CLI::App* hash_;
  CLI::App* sign_;
  CLI::App* info_;
  CLI::App* reload_;
  std::string dir_;
  std::string tests_dir_;
  std::string request_file_;
  std::string key_file_;
  std::string output_;
  bool verbose_ = false;
};

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_POLICY_COMMANDS_H_
