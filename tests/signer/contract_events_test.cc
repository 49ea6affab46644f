// Decoding of the contracts' events: topics and data produced by cast (an
// independent ABI implementation) decode to the values put in; every shape
// or range the contracts cannot produce is refused, naming the field.
#include "daemon/signer/contract_events.h"

#include <string>
#include <vector>

#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/eth_tx.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/signer/cast_tool.h"

namespace medvault::signer {
namespace {

using ::testing::HasSubstr;

std::string Bytes32(char fill) { return std::string(32, fill); }

// cast's output (hex) as bytes, or a test failure.
std::string CastBytes(const std::vector<std::string>& args) {
  absl::StatusOr<std::string> hex = testing::RunCast(args);
  EXPECT_TRUE(hex.ok()) << hex.status();
  absl::StatusOr<std::string> bytes = FromHex(hex.value_or("0x"));
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.value_or("");
}

EventLog LogOf(std::vector<std::string> topics, std::string data) {
  EventLog log;
  log.address = std::string(20, '\x11');
  log.topics = std::move(topics);
  log.data = std::move(data);
  log.block_number = 77;
  log.block_hash = Bytes32('\xb7');
  log.transaction_hash = Bytes32('\x7e');
  log.log_index = 3;
  return log;
}

// topics[0] is keccak256 of each canonical signature (cast keccak agrees);
// LicenceRegistry.Status appears as uint8, as Solidity writes an enum.
TEST(ContractEventsTest, TopicsAreKeccakOfTheSignatures) {
  const std::pair<const std::string*, const char*> cases[] = {
      {&AnchoredTopic(), "Anchored(bytes32,uint64,bytes32,address)"},
      {&LicenceChangedTopic(), "LicenceChanged(bytes32,uint8,uint8,uint64,bytes32)"},
      {&PolicyPublishedTopic(), "PolicyPublished(uint64,bytes32)"},
  };
  for (const auto& [topic, signature] : cases) {
    EXPECT_EQ(*topic, CastBytes({"keccak", signature})) << signature;
  }
}

// A LicenceChanged log as the contract emits it decodes field by field,
// including validUntil = 2^64 - 1 ("no end").
TEST(ContractEventsTest, DecodesLicenceChanged) {
  const std::string practitioner = Bytes32('\xa1');
  const std::string evidence = Bytes32('\xe5');
  const std::string data = CastBytes({"abi-encode", "f(uint8,uint8,uint64,bytes32)", "1", "3",
                                      "18446744073709551615", ToHex(evidence)});
  absl::StatusOr<LicenceChangedEvent> event =
      DecodeLicenceChanged(LogOf({LicenceChangedTopic(), practitioner}, data));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->practitioner, practitioner);
  EXPECT_EQ(event->previous_status, 1);
  EXPECT_EQ(event->status, 3);
  EXPECT_EQ(event->valid_until, UINT64_MAX);
  EXPECT_EQ(event->evidence_hash, evidence);
  EXPECT_EQ(event->position.block_number, 77u);
  EXPECT_EQ(event->position.block_hash, Bytes32('\xb7'));
  EXPECT_EQ(event->position.transaction_hash, Bytes32('\x7e'));
  EXPECT_EQ(event->position.log_index, 3u);
}

// Anchored: the operator is the address in the second indexed topic.
TEST(ContractEventsTest, DecodesAnchored) {
  const std::string log_id = Bytes32('\x4c');
  const std::string root = Bytes32('\x52');
  const std::string operator_address = std::string(19, '\x0a') + "\x0b";
  const std::string operator_topic =
      CastBytes({"abi-encode", "f(address)", ToHex(operator_address)});
  const std::string data = CastBytes({"abi-encode", "f(uint64,bytes32)", "42", ToHex(root)});
  absl::StatusOr<AnchoredEvent> event =
      DecodeAnchored(LogOf({AnchoredTopic(), log_id, operator_topic}, data));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->log_id, log_id);
  EXPECT_EQ(event->tree_size, 42u);
  EXPECT_EQ(event->root_hash, root);
  EXPECT_EQ(event->operator_address, operator_address);
}

// PolicyPublished: the version is the indexed topic.
TEST(ContractEventsTest, DecodesPolicyPublished) {
  const std::string bundle = Bytes32('\xbb');
  const std::string version = CastBytes({"abi-encode", "f(uint64)", "9"});
  absl::StatusOr<PolicyPublishedEvent> event =
      DecodePolicyPublished(LogOf({PolicyPublishedTopic(), version}, bundle));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->version, 9u);
  EXPECT_EQ(event->bundle_hash, bundle);
}

// Values out of their type's range are errors naming the event and field.
TEST(ContractEventsTest, OutOfRangeValuesNameTheField) {
  const std::string evidence = Bytes32('\xe5');
  auto licence = [&](uint64_t previous, uint64_t status, std::string valid_until) {
    return DecodeLicenceChanged(
        LogOf({LicenceChangedTopic(), Bytes32('\xa1')},
              abi::Uint64Word(previous) + abi::Uint64Word(status) + valid_until + evidence));
  };
  absl::StatusOr<LicenceChangedEvent> bad = licence(1, 5, abi::Uint64Word(1));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("LicenceChanged.status: 5 is not"));
  bad = licence(256, 1, abi::Uint64Word(1));
  EXPECT_THAT(bad.status().message(), HasSubstr("LicenceChanged.previousStatus"));
  std::string wide = abi::Uint64Word(1);
  wide[23] = '\x01';  // bit 64 set
  bad = licence(1, 1, wide);
  EXPECT_THAT(bad.status().message(), HasSubstr("LicenceChanged.validUntil: not a uint64"));

  absl::StatusOr<AnchoredEvent> anchored = DecodeAnchored(
      LogOf({AnchoredTopic(), Bytes32('\x4c'), abi::AddressWord(std::string(20, 'o'))},
            wide + Bytes32('\x52')));
  EXPECT_THAT(anchored.status().message(), HasSubstr("Anchored.treeSize: not a uint64"));
  anchored = DecodeAnchored(LogOf({AnchoredTopic(), Bytes32('\x4c'), Bytes32('\x0a')},
                                  abi::Uint64Word(1) + Bytes32('\x52')));
  EXPECT_THAT(anchored.status().message(), HasSubstr("Anchored.operator: not an address"));

  absl::StatusOr<PolicyPublishedEvent> policy =
      DecodePolicyPublished(LogOf({PolicyPublishedTopic(), wide}, Bytes32('\xbb')));
  EXPECT_THAT(policy.status().message(), HasSubstr("PolicyPublished.version: not a uint64"));
}

// Logs of the wrong shape (topic count, data size, topic sizes, another
// event's topic) are refused.
TEST(ContractEventsTest, WrongShapesAreRefused) {
  const std::string version = abi::Uint64Word(1);
  const std::string bundle = Bytes32('\xbb');
  EXPECT_THAT(DecodePolicyPublished(LogOf({PolicyPublishedTopic()}, bundle)).status().message(),
              HasSubstr("PolicyPublished: 1 topics, expected 2"));
  EXPECT_THAT(DecodePolicyPublished(LogOf({PolicyPublishedTopic(), version}, bundle + "x"))
                  .status()
                  .message(),
              HasSubstr("PolicyPublished: 33 bytes of data, expected 32"));
  EXPECT_THAT(
      DecodePolicyPublished(LogOf({PolicyPublishedTopic(), "short"}, bundle)).status().message(),
      HasSubstr("a topic is not 32 bytes"));
  EXPECT_THAT(
      DecodePolicyPublished(LogOf({LicenceChangedTopic(), version}, bundle)).status().message(),
      HasSubstr("topics[0] is another event's"));
  EXPECT_FALSE(DecodeLicenceChanged(LogOf({LicenceChangedTopic(), Bytes32('\xa1')}, "")).ok());
  EXPECT_FALSE(DecodeAnchored(LogOf({AnchoredTopic(), Bytes32('\x4c')}, bundle + bundle)).ok());
}

}  // namespace
}  // namespace medvault::signer
