// The configuration's policy section: bundle directory and regulator key,
// checked with file:line like every other section.
#include <grp.h>
#include <unistd.h>

#include "absl/strings/str_replace.h"
#include "daemon/common/config.h"
#include "daemon/common/users.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::HasSubstr;

// A valid configuration (running user and group) with `policy` as the
// policy section's extra fields.
std::string Config(const std::string& policy) {
  struct group* g = getgrgid(getegid());
  return absl::StrReplaceAll(R"(runtime_dir: "/run/medvault"
socket_group: "@G@"
keyvault {
  process { user: "@U@" group: "@G@" }
  pkcs11 { module_path: "/usr/lib/softhsm/libsofthsm2.so" token_label: "t" pin_file: "/etc/pin" }
  state_dir: "/var/lib/medvault/keyvault"
}
policy {
  process { user: "@U@" group: "@G@" }
@P@
}
storage { process { user: "@U@" group: "@G@" } data_dir: "/var/lib/medvault/storage" }
signer { process { user: "@U@" group: "@G@" } rpc_url: "http://127.0.0.1:8545" }
gateway {
  process { user: "@U@" group: "@G@" }
  listen_address: "0.0.0.0:8443"
  tls { cert_file: "/etc/tls.pem" key_file: "/etc/tls.key" client_ca_file: "/etc/ca.pem" crl_file: "/etc/crl.pem" }
  state_dir: "/var/lib/medvault/gateway"
}
)",
                             {{"@U@", UserName(geteuid())},
                              {"@G@", g != nullptr ? g->gr_name : std::to_string(getegid())},
                              {"@P@", policy}});
}

// A bundle directory with its key loads; no bundle at all is also valid.
TEST(PolicyConfigTest, BundleDirWithKeyIsValid) {
  auto c = ParseConfig(Config(R"(  bundle_dir: "/etc/medvault/policy"
  regulator_public_key_file: "/etc/medvault/regulator.pub")"),
                       "m.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->policy().bundle_dir(), "/etc/medvault/policy");
  EXPECT_TRUE(ParseConfig(Config(""), "m.textproto").ok());
}

// A bundle without the regulator's key, or relative paths: file:line errors.
TEST(PolicyConfigTest, MissingKeyAndRelativePathsNameTheLine) {
  auto c = ParseConfig(Config(R"(  bundle_dir: "policy")"), "m.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(
      c.status().message(),
      HasSubstr("m.textproto:10: policy.bundle_dir: must be an absolute path, got \"policy\""));
  EXPECT_THAT(c.status().message(),
              HasSubstr("m.textproto:8: policy.regulator_public_key_file: required"));
}

// A key without a bundle directory is a mistake, not a silent no-op.
TEST(PolicyConfigTest, KeyWithoutBundleDir) {
  auto c = ParseConfig(Config(R"(  regulator_public_key_file: "/etc/medvault/regulator.pub")"),
                       "m.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("policy.bundle_dir: required with regulator_public_key_file"));
}

}  // namespace
}  // namespace medvault
