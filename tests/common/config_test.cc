// Configuration loading: every error names the file, the line and the field.
#include "daemon/common/config.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/common/users.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::HasSubstr;

std::string Me() { return UserName(geteuid()); }

std::string MyGroup() {
  struct group* g = getgrgid(getegid());
  return g != nullptr ? g->gr_name : std::to_string(getegid());
}

// A complete, valid configuration whose users and groups exist on this
// machine (the running user), so tests do not depend on system users.
std::string ValidConfig() {
  return absl::StrReplaceAll(R"(
runtime_dir: "/run/medvault"
socket_group: "@G@"
keyvault {
  process { user: "@U@" group: "@G@" allow { method: "GetTokenInfo" callers: "@U@" } }
  pkcs11 {
    module_path: "/usr/lib/softhsm/libsofthsm2.so"
    token_label: "medvault"
    pin_file: "/etc/medvault/hsm-pin"
  }
  state_dir: "/var/lib/medvault/keyvault"
}
policy { process { user: "@U@" group: "@G@" } }
storage { process { user: "@U@" group: "@G@" } data_dir: "/var/lib/medvault/storage" }
signer { process { user: "@U@" group: "@G@" } rpc_url: "http://127.0.0.1:8545" }
gateway {
  process { user: "@U@" group: "@G@" }
  listen_address: "0.0.0.0:8443"
  tls { cert_file: "/etc/medvault/tls.pem" key_file: "/etc/medvault/tls.key" client_ca_file: "/etc/medvault/ca.pem" crl_file: "/etc/medvault/crl.pem" }
  state_dir: "/var/lib/medvault/gateway"
}
)",
                             {{"@U@", Me()}, {"@G@", MyGroup()}});
}

// Line of the first occurrence of `needle` in the valid configuration.
int LineOf(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

// A valid file loads and gets the documented defaults.
TEST(ConfigTest, ValidConfigLoadsWithDefaults) {
  auto config = ParseConfig(ValidConfig(), "medvault.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->supervisor().initial_backoff_ms(), 200u);
  EXPECT_EQ(config->supervisor().stop_grace_ms(), 10000u);
  EXPECT_EQ(config->signer().rpc_timeout_ms(), 5000u);
}

// A file that does not exist is NOT_FOUND and names the path.
TEST(ConfigTest, MissingFileIsNotFound) {
  auto config = LoadConfig("/nonexistent/medvault.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("/nonexistent/medvault.textproto"));
}

// An unknown field is refused with file, line, column and the field's name.
TEST(ConfigTest, UnknownFieldNamesFileLineAndField) {
  std::string text =
      absl::StrReplaceAll(ValidConfig(), {{"data_dir:", "colour: \"blue\"\n  data_dir:"}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  int line = LineOf(text, "colour");
  EXPECT_THAT(config.status().message(), HasSubstr(absl::StrCat("site.textproto:", line, ":")));
  EXPECT_THAT(config.status().message(), HasSubstr("colour"));
}

// A value of the wrong type is a parse error naming the field.
TEST(ConfigTest, WrongTypeNamesField) {
  std::string text =
      absl::StrReplaceAll(ValidConfig(), {{"rpc_url: \"http://127.0.0.1:8545\"", "rpc_url: 8545"}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr(absl::StrCat("site.textproto:", LineOf(text, "rpc_url"))));
  EXPECT_THAT(config.status().message(), HasSubstr("rpc_url"));
}

// A negative number for an unsigned field is refused.
TEST(ConfigTest, NegativeTimeoutIsRefused) {
  std::string text = ValidConfig() + "supervisor { stop_grace_ms: -5 }\n";
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr(absl::StrCat("site.textproto:", LineOf(text, "stop_grace_ms"))));
}

// A bad value that parses is caught by validation with its line and path.
TEST(ConfigTest, RelativePathNamesLineAndFieldPath) {
  std::string text = absl::StrReplaceAll(
      ValidConfig(),
      {{"module_path: \"/usr/lib/softhsm/libsofthsm2.so\"", "module_path: \"libsofthsm2.so\""}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr(absl::StrCat("site.textproto:", LineOf(text, "module_path"),
                                     ": keyvault.pkcs11.module_path: must be an absolute path")));
}

// An allowlist entry naming a method the service does not have is refused,
// and the error lists the methods it does have.
TEST(ConfigTest, UnknownAllowlistMethodListsKnownMethods) {
  std::string text =
      absl::StrReplaceAll(ValidConfig(), {{"method: \"GetTokenInfo\"", "method: \"ExportKey\""}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("keyvault.process.allow[0].method"));
  EXPECT_THAT(config.status().message(), HasSubstr("unknown method \"ExportKey\""));
  EXPECT_THAT(config.status().message(), HasSubstr("GetTokenInfo"));
}

// A caller that is not a user of this machine is refused.
TEST(ConfigTest, UnknownCallerUserIsRefused) {
  std::string text = absl::StrReplaceAll(
      ValidConfig(), {{absl::StrCat("callers: \"", Me(), "\""), "callers: \"no-such-user-xyz\""}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(
      config.status().message(),
      HasSubstr("keyvault.process.allow[0].callers[0]: no user named \"no-such-user-xyz\""));
}

// A missing section is reported by name; every problem is reported at once.
TEST(ConfigTest, MissingSectionAndBadPortReportedTogether) {
  std::string text = ValidConfig();
  text = absl::StrReplaceAll(
      text, {{"listen_address: \"0.0.0.0:8443\"", "listen_address: \"0.0.0.0:99999\""}});
  text.erase(text.find("policy {"), text.find("storage {") - text.find("policy {"));
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("site.textproto: policy: section missing"));
  EXPECT_THAT(config.status().message(), HasSubstr("gateway.listen_address: must be host:port"));
}

// The signer only speaks HTTP(S) to the chain.
TEST(ConfigTest, RpcUrlMustBeHttp) {
  std::string text =
      absl::StrReplaceAll(ValidConfig(), {{"http://127.0.0.1:8545", "ws://127.0.0.1:8545"}});
  auto config = ParseConfig(text, "site.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              HasSubstr("signer.rpc_url: must start with http:// or https://"));
}

}  // namespace
}  // namespace medvault
