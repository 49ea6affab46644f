// medvault-policy inside the real fleet with the development bundle that
// scripts/dev-env signs: served at start, SIGHUP reloads it, an altered
// bundle is refused while the last good one keeps serving, and a newer
// bundle signed by the regulator's key is picked up.
#include <signal.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/fleet.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;
using policy_fleet = Fleet;

std::string Slurp(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

TEST_F(policy_fleet, SighupReloadsKeepingTheLastGoodBundle) {
  const std::string bundle = dir() + "/policy-bundle";
  CommandResult info = RunCtl({"policy", "info"});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("version:   1"));

  absl::StatusOr<pid_t> pid = ChildPid(Role::kPolicy);
  MEDVAULT_ASSERT_OK(pid);

  // One byte of a signed file changed: refused, version 1 still served.
  const std::string licence = bundle + "/licence.textproto";
  const std::string original = Slurp(licence);
  std::ofstream(licence, std::ios::trunc) << original << "\n# altered\n";
  ASSERT_EQ(kill(*pid, SIGHUP), 0);
  MEDVAULT_ASSERT_OK(WaitForLogLine({"policy.reload_refused"}, absl::Seconds(10)));
  info = RunCtl({"policy", "info"});
  EXPECT_THAT(info.output, HasSubstr("version:   1"));
  EXPECT_THAT(info.output, HasSubstr("last load refused"));

  // Version 2 signed with the regulator's (development) key: loaded.
  std::ofstream(licence, std::ios::trunc) << original;
  const std::string manifest = bundle + "/manifest.textproto";
  std::string text = Slurp(manifest);
  ASSERT_THAT(text, HasSubstr("version: 1\n"));
  absl::StrReplaceAll({{"version: 1\n", "version: 2\n"}}, &text);
  std::ofstream(manifest, std::ios::trunc) << text;
  CommandResult sign = RunCtl(
      {"policy", "sign", bundle, "--key", dir() + "/regulator/policy-regulator.key"});
  ASSERT_EQ(sign.exit_code, 0) << sign.output;
  ASSERT_EQ(kill(*pid, SIGHUP), 0);
  MEDVAULT_ASSERT_OK(WaitForLogLine({"policy.bundle_loaded", "version=2"}, absl::Seconds(10)));
  info = RunCtl({"policy", "info"});
  EXPECT_THAT(info.output, HasSubstr("version:   2"));

  // The process was not restarted by any of this.
  absl::StatusOr<pid_t> after = ChildPid(Role::kPolicy);
  MEDVAULT_ASSERT_OK(after);
  EXPECT_EQ(*after, *pid);
}

}  // namespace
}  // namespace medvault::integration
