// The signer's chain settings in the configuration: defaults, and each bad
// value reported with the file, the line and the field.
#include <grp.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_replace.h"
#include "daemon/common/config.h"
#include "daemon/common/users.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::HasSubstr;

// A complete configuration (users and groups of the running user) with
// `signer` as the signer section's extra fields, on line 7.
std::string Config(const std::string& signer) {
  struct group* g = getgrgid(getegid());
  std::string group = g != nullptr ? g->gr_name : std::to_string(getegid());
  return absl::StrReplaceAll(R"(runtime_dir: "/run/medvault"
socket_group: "@G@"
keyvault { process { user: "@U@" group: "@G@" } pkcs11 { module_path: "/usr/lib/softhsm/libsofthsm2.so" token_label: "medvault" pin_file: "/etc/medvault/hsm-pin" } state_dir: "/var/lib/medvault/keyvault" }
policy { process { user: "@U@" group: "@G@" } }
storage { process { user: "@U@" group: "@G@" } data_dir: "/var/lib/medvault/storage" }
signer { process { user: "@U@" group: "@G@" } rpc_url: "http://127.0.0.1:8545"
@S@
}
gateway { process { user: "@U@" group: "@G@" } listen_address: "0.0.0.0:8443" tls { cert_file: "/etc/medvault/tls.pem" key_file: "/etc/medvault/tls.key" client_ca_file: "/etc/medvault/ca.pem" crl_file: "/etc/medvault/crl.pem" } state_dir: "/var/lib/medvault/gateway" }
)",
                             {{"@U@", UserName(geteuid())}, {"@G@", group}, {"@S@", signer}});
}

// Without the new fields the file is valid and the defaults apply.
TEST(SignerConfigTest, Defaults) {
  absl::StatusOr<config::v1::Config> config = ParseConfig(Config(""), "m.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->signer().anchor_contract(), "");
  EXPECT_EQ(config->signer().confirmations(), 1u);
  EXPECT_EQ(config->signer().max_fee_per_gas_wei(), 200'000'000'000u);
  EXPECT_EQ(config->signer().max_priority_fee_per_gas_wei(), 2'000'000'000u);
  EXPECT_EQ(config->signer().receipt_timeout_ms(), 120000u);
  EXPECT_EQ(config->signer().state_dir(), "");
  EXPECT_EQ(config->signer().outbox_capacity(), 10000u);
  EXPECT_EQ(config->signer().fee_bump_after_ms(), 60000u);
  EXPECT_EQ(config->signer().licence_registry(), "");
  EXPECT_EQ(config->signer().policy_registry(), "");
  EXPECT_EQ(config->signer().index_from_block(), 0u);
  EXPECT_EQ(config->signer().index_poll_ms(), 2000u);
  EXPECT_EQ(config->signer().index_batch_blocks(), 2000u);
}

// The registries alone (no anchor contract) need only a state directory;
// the indexer's limits are accepted at both ends.
TEST(SignerConfigTest, AcceptsRegistriesAndIndexLimits) {
  for (const char* fields : {
           R"(licence_registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
policy_registry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512" state_dir: "/var/lib/s"
index_from_block: 12 index_poll_ms: 100 index_batch_blocks: 1)",
           R"(licence_registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
state_dir: "/var/lib/s" index_poll_ms: 600000 index_batch_blocks: 100000)",
       }) {
    absl::StatusOr<config::v1::Config> config = ParseConfig(Config(fields), "m.textproto");
    EXPECT_TRUE(config.ok()) << fields << ": " << config.status();
  }
}

// A well-formed contract address and caps are accepted as given.
TEST(SignerConfigTest, AcceptsValidValues) {
  absl::StatusOr<config::v1::Config> config = ParseConfig(
      Config(R"(anchor_contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" confirmations: 12
max_fee_per_gas_wei: 1000 max_priority_fee_per_gas_wei: 1000 receipt_timeout_ms: 600000
state_dir: "/var/lib/medvault/signer" outbox_capacity: 5 fee_bump_after_ms: 1000)"),
      "m.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->signer().confirmations(), 12u);
  EXPECT_EQ(config->signer().outbox_capacity(), 5u);
  EXPECT_EQ(config->signer().fee_bump_after_ms(), 1000u);
}

// Each bad value names the file, the line and the field.
TEST(SignerConfigTest, BadValuesNameFileLineAndField) {
  struct Case {
    std::string fields;
    std::string error;
  };
  const Case cases[] = {
      {R"(anchor_contract: "0x1234")",
       "m.textproto:7: signer.anchor_contract: must be 0x and 40 hex digits"},
      {R"(anchor_contract: "5FbDB2315678afecb367f032d93F642f64180aa3ab")",
       "signer.anchor_contract: must be 0x and 40 hex digits"},
      {R"(anchor_contract: "0x5FbDB2315678afecb367f032d93F642f64180aaZ")",
       "signer.anchor_contract: must be 0x and 40 hex digits"},
      {"confirmations: 1001", "m.textproto:7: signer.confirmations: must be at most 1000"},
      {"max_fee_per_gas_wei: 1000 max_priority_fee_per_gas_wei: 1001",
       "m.textproto:7: signer.max_priority_fee_per_gas_wei: must not be above max_fee_per_gas_wei"},
      // The default tip (2 gwei) is above a cap of 1 gwei.
      {"max_fee_per_gas_wei: 1000000000",
       "signer.max_priority_fee_per_gas_wei: must not be above max_fee_per_gas_wei"},
      {"receipt_timeout_ms: 3600001", "m.textproto:7: signer.receipt_timeout_ms: must be at most"},
      // The outbox needs a place once there is something to anchor.
      {R"(anchor_contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3")",
       "m.textproto:6: signer.state_dir: required when anchor_contract is set"},
      {R"(state_dir: "var/lib/signer")",
       "m.textproto:7: signer.state_dir: must be an absolute path"},
      {"outbox_capacity: 10000001", "m.textproto:7: signer.outbox_capacity: must be at most"},
      {"fee_bump_after_ms: 999", "m.textproto:7: signer.fee_bump_after_ms: must be from 1000"},
      {"fee_bump_after_ms: 3600001", "m.textproto:7: signer.fee_bump_after_ms: must be from 1000"},
      // The registries and the indexer.
      {R"(licence_registry: "0x1234" state_dir: "/s")",
       "m.textproto:7: signer.licence_registry: must be 0x and 40 hex digits"},
      {R"(policy_registry: "0x5FbDB2315678afecb367f032d93F642f64180aaZ" state_dir: "/s")",
       "m.textproto:7: signer.policy_registry: must be 0x and 40 hex digits"},
      {R"(policy_registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3")",
       "m.textproto:6: signer.state_dir: required when licence_registry or policy_registry is "
       "set"},
      {"index_poll_ms: 99", "m.textproto:7: signer.index_poll_ms: must be from 100 to 600000"},
      {"index_poll_ms: 600001", "m.textproto:7: signer.index_poll_ms: must be from 100 to 600000"},
      {"index_batch_blocks: 100001",
       "m.textproto:7: signer.index_batch_blocks: must be from 1 to 100000"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<config::v1::Config> config = ParseConfig(Config(c.fields), "m.textproto");
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.fields;
    EXPECT_THAT(config.status().message(), HasSubstr(c.error)) << c.fields;
  }
}

}  // namespace
}  // namespace medvault
