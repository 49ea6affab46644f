// medvault-signer's event index on a real anvil (signer_fixture.h): the
// regulator's LicenceRegistry and PolicyRegistry deployed and written with
// cast from an anvil account, anchors through the signer's outbox, and the
// index RPCs answering them with the positions the chain reports; then a
// reorganisation (evm_snapshot / evm_revert) replacing a licence change,
// and the index surviving kill -9 of the signer.
#include <fstream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/signer_fixture.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

// Valid until 2100-01-01: an ACTIVE licence must end in the future.
constexpr uint64_t kValidUntil = 4102444800;

// The bytes of "0x..." hex.
std::string Bytes(absl::string_view hex) {
  absl::ConsumePrefix(&hex, "0x");
  return absl::HexStringToBytes(hex);
}

// A decimal or "0x" number as cast prints it.
uint64_t Number(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  uint64_t value = 0;
  bool ok = absl::ConsumePrefix(&text, "0x") ? absl::SimpleHexAtoi(text, &value)
                                             : absl::SimpleAtoi(text, &value);
  EXPECT_TRUE(ok) << "not a number: " << text;
  return value;
}

// Where a transaction's (first) event is, as the chain reports it.
struct Landed {
  uint64_t block = 0;
  std::string block_hash;
  std::string transaction_hash;
  uint32_t log_index = 0;
  uint64_t timestamp = 0;
};

class SignerIndexTest : public SignerAnchorTest {
 protected:
  // As SignerAnchorTest, plus the two registries (regulator: the anvil
  // account kAdmin) and the index settings in the signer's configuration.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartChainAndKeyvault());
    ASSERT_NO_FATAL_FAILURE(DeployRegistries());
    ASSERT_NO_FATAL_FAILURE(DeployAuditAnchor());
    ASSERT_NO_FATAL_FAILURE(WriteSignerConfig());
    ASSERT_NO_FATAL_FAILURE(AddIndexConfig());
    ASSERT_NO_FATAL_FAILURE(StartSigner());
  }

  // Deploys a contract whose constructor takes its owner; its address.
  std::string Deploy(const std::string& contract, uint64_t* block = nullptr) {
    std::optional<std::string> code =
        ReadWholeFile(absl::StrCat(bin_dir_, "/../contracts/", contract, ".bin"));
    EXPECT_TRUE(code.has_value()) << "build the contracts target first";
    std::string deployed = Cast({"send", "--json", "--unlocked", "--from", kAdmin, "--create",
                                 std::string(absl::StripAsciiWhitespace(code.value_or(""))),
                                 "constructor(address)", kAdmin});
    if (block != nullptr) *block = Number(JsonMember(deployed, "blockNumber"));
    return absl::AsciiStrToLower(JsonMember(deployed, "contractAddress"));
  }

  void DeployRegistries() {
    licences_ = Deploy("LicenceRegistry", &from_block_);
    ASSERT_EQ(licences_.size(), 42u);
    policies_ = Deploy("PolicyRegistry");
    ASSERT_EQ(policies_.size(), 42u);
  }

  // The registries, their first block, a quick poll, and the test's user
  // allowed to call the index RPCs.
  void AddIndexConfig() {
    absl::StatusOr<config::v1::Config> config = LoadConfig(signer_config());
    ASSERT_TRUE(config.ok()) << config.status();
    config::v1::Signer* signer = config->mutable_signer();
    signer->set_licence_registry(licences_);
    signer->set_policy_registry(policies_);
    signer->set_index_from_block(from_block_);
    signer->set_index_poll_ms(100);
    signer->set_confirmations(1);
    for (const char* method : {"GetIndexStatus", "ListLicenceEvents", "GetLicence",
                               "ListPolicyPublications", "ListAnchorEvents"}) {
      config::v1::MethodAccess* allow = nullptr;
      for (auto& existing : *signer->mutable_process()->mutable_allow()) {
        if (existing.method() == method) allow = &existing;
      }
      if (allow == nullptr) {
        allow = signer->mutable_process()->add_allow();
        allow->set_method(method);
      }
      if (!absl::c_linear_search(allow->callers(), keyvault_->caller_user())) {
        allow->add_callers(keyvault_->caller_user());
      }
    }
    std::string text;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(*config, &text));
    std::ofstream(signer_config()) << text;
  }

  // A transaction sent with cast as the regulator; where its event landed.
  Landed SendAsRegulator(std::vector<std::string> call) {
    std::vector<std::string> args = {"send", "--json", "--unlocked", "--from", kAdmin};
    args.insert(args.end(), call.begin(), call.end());
    std::string receipt = Cast(args);
    EXPECT_EQ(JsonMember(receipt, "status"), "0x1") << receipt;
    Landed landed;
    landed.block = Number(JsonMember(receipt, "blockNumber"));
    landed.block_hash = Bytes(JsonMember(receipt, "blockHash"));
    landed.transaction_hash = Bytes(JsonMember(receipt, "transactionHash"));
    landed.log_index = static_cast<uint32_t>(Number(JsonMember(receipt, "logIndex")));
    landed.timestamp =
        Number(Cast({"block", std::to_string(landed.block), "--field", "timestamp"}));
    return landed;
  }

  Landed SetLicence(char practitioner, internal::v1::LicenceStatus status) {
    return SendAsRegulator({licences_, "setLicence(bytes32,uint8,uint64,bytes32)",
                            Hex(std::string(32, practitioner)), std::to_string(status),
                            std::to_string(kValidUntil), Hex(std::string(32, '\x45'))});
  }

  Landed Publish(uint64_t version, char hash) {
    return SendAsRegulator({policies_, "publish(uint64,bytes32)", std::to_string(version),
                            Hex(std::string(32, hash))});
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return context;
  }

  internal::v1::IndexStatus IndexStatus() {
    internal::v1::IndexStatus status;
    grpc::Status rpc =
        signer_->GetIndexStatus(Context().get(), internal::v1::GetIndexStatusRequest(), &status);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    return status;
  }

  // Waits until the index has every block up to `block`.
  void AwaitIndexed(uint64_t block) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    internal::v1::IndexStatus status;
    while ((status = IndexStatus()).indexed_block() < block) {
      ASSERT_LT(absl::Now(), deadline) << "index still at " << status.ShortDebugString();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  grpc::Status GetLicence(char practitioner, internal::v1::GetLicenceResponse* response) {
    internal::v1::GetLicenceRequest request;
    request.set_practitioner(std::string(32, practitioner));
    return signer_->GetLicence(Context().get(), request, response);
  }

  grpc::Status ListLicences(const std::string& after, uint32_t limit,
                            internal::v1::ListLicenceEventsResponse* response) {
    internal::v1::ListLicenceEventsRequest request;
    request.set_after(after);
    request.set_limit(limit);
    return signer_->ListLicenceEvents(Context().get(), request, response);
  }

  // Every LicenceChanged event in the index, as (practitioner byte, status).
  std::vector<std::pair<char, int>> AllLicences() {
    internal::v1::ListLicenceEventsResponse response;
    grpc::Status rpc = ListLicences("", 1000, &response);
    EXPECT_TRUE(rpc.ok()) << rpc.error_message();
    std::vector<std::pair<char, int>> out;
    for (const auto& e : response.events()) out.emplace_back(e.practitioner()[0], e.status());
    return out;
  }

  static void ExpectAt(const internal::v1::EventPosition& position, const Landed& landed) {
    EXPECT_EQ(position.block_number(), landed.block);
    EXPECT_EQ(Hex(position.block_hash()), Hex(landed.block_hash));
    EXPECT_EQ(Hex(position.transaction_hash()), Hex(landed.transaction_hash));
    EXPECT_EQ(position.log_index(), landed.log_index);
    EXPECT_EQ(position.block_timestamp(), landed.timestamp);
  }

  std::string licences_;
  std::string policies_;
  uint64_t from_block_ = 0;
};

// Licence changes, policy publications and anchors are served with their
// chain positions; licence events page with the opaque cursor; bad
// requests name the field.
TEST_F(SignerIndexTest, ServesEventsWithTheirPositions) {
  const Landed a1 = SetLicence('a', internal::v1::LICENCE_STATUS_ACTIVE);
  const Landed b1 = SetLicence('b', internal::v1::LICENCE_STATUS_ACTIVE);
  const Landed a2 = SetLicence('a', internal::v1::LICENCE_STATUS_SUSPENDED);
  const Landed v1 = Publish(1, '\x61');
  const Landed v2 = Publish(2, '\x62');
  const std::string log_id(32, '\x4c');
  internal::v1::AnchorResponse anchored;
  grpc::Status rpc = Anchor(log_id, 3, std::string(32, '\x52'), &anchored);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  ASSERT_EQ(anchored.status().state(), internal::v1::ANCHOR_STATE_CONFIRMED);
  ASSERT_NO_FATAL_FAILURE(AwaitIndexed(anchored.status().block_number()));

  internal::v1::IndexStatus status = IndexStatus();
  EXPECT_GE(status.head_block(), anchored.status().block_number());
  EXPECT_GT(status.synced_ms(), 0);
  EXPECT_EQ(status.error(), "");
  EXPECT_EQ(status.reorgs(), 0u);

  internal::v1::GetLicenceResponse licence;
  rpc = GetLicence('a', &licence);
  ASSERT_TRUE(rpc.ok()) << rpc.error_message();
  EXPECT_EQ(licence.licence().practitioner(), std::string(32, 'a'));
  EXPECT_EQ(licence.licence().previous_status(), internal::v1::LICENCE_STATUS_ACTIVE);
  EXPECT_EQ(licence.licence().status(), internal::v1::LICENCE_STATUS_SUSPENDED);
  EXPECT_EQ(licence.licence().valid_until(), kValidUntil);
  EXPECT_EQ(licence.licence().evidence_hash(), std::string(32, '\x45'));
  ExpectAt(licence.licence().position(), a2);
  EXPECT_GT(licence.index().synced_ms(), 0);

  // Paged two at a time, in chain order; the last page is empty and keeps the cursor.
  internal::v1::ListLicenceEventsResponse page;
  ASSERT_TRUE(ListLicences("", 2, &page).ok());
  ASSERT_EQ(page.events_size(), 2);
  ExpectAt(page.events(0).position(), a1);
  ExpectAt(page.events(1).position(), b1);
  const std::string cursor = page.next_cursor();
  ASSERT_TRUE(ListLicences(cursor, 2, &page).ok());
  ASSERT_EQ(page.events_size(), 1);
  ExpectAt(page.events(0).position(), a2);
  const std::string last = page.next_cursor();
  ASSERT_TRUE(ListLicences(last, 2, &page).ok());
  EXPECT_EQ(page.events_size(), 0);
  EXPECT_EQ(page.next_cursor(), last);

  internal::v1::ListPolicyPublicationsRequest policies_request;
  internal::v1::ListPolicyPublicationsResponse policies;
  ASSERT_TRUE(signer_->ListPolicyPublications(Context().get(), policies_request, &policies).ok());
  ASSERT_EQ(policies.publications_size(), 2);
  EXPECT_EQ(policies.publications(0).version(), 2u);
  EXPECT_EQ(policies.publications(0).bundle_hash(), std::string(32, '\x62'));
  ExpectAt(policies.publications(0).position(), v2);
  ExpectAt(policies.publications(1).position(), v1);

  internal::v1::ListAnchorEventsRequest anchors_request;
  anchors_request.set_log_id(log_id);
  internal::v1::ListAnchorEventsResponse anchors;
  ASSERT_TRUE(signer_->ListAnchorEvents(Context().get(), anchors_request, &anchors).ok());
  ASSERT_EQ(anchors.events_size(), 1);
  EXPECT_EQ(anchors.events(0).tree_size(), 3u);
  EXPECT_EQ(anchors.events(0).root_hash(), std::string(32, '\x52'));
  EXPECT_EQ(Hex(anchors.events(0).operator_()), chain_address_);
  EXPECT_EQ(anchors.events(0).position().block_number(), anchored.status().block_number());
  EXPECT_EQ(anchors.events(0).position().transaction_hash(), anchored.status().transaction_hash());

  // Bad requests.
  rpc = ListLicences("", 1001, &page);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rpc.error_message(), HasSubstr("limit"));
  rpc = ListLicences("not-a-cursor", 10, &page);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rpc.error_message(), HasSubstr("after"));
  internal::v1::GetLicenceRequest short_key;
  short_key.set_practitioner(std::string(31, 'a'));
  rpc = signer_->GetLicence(Context().get(), short_key, &licence);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(rpc.error_message(), HasSubstr("practitioner"));
  rpc = GetLicence('z', &licence);
  EXPECT_EQ(rpc.error_code(), grpc::StatusCode::NOT_FOUND);
}

// A reorganisation replaces the block holding a licence change (the chain
// reverted to before it, then another change mined at that height): the
// index drops the old event, serves the new one, and counts the reorg.
TEST_F(SignerIndexTest, FollowsAReorganisation) {
  SetLicence('a', internal::v1::LICENCE_STATUS_ACTIVE);
  const std::string snapshot = JsonMember(AnvilRpc("evm_snapshot"), "result");
  ASSERT_FALSE(snapshot.empty());
  const Landed replaced = SetLicence('b', internal::v1::LICENCE_STATUS_ACTIVE);
  ASSERT_NO_FATAL_FAILURE(AwaitIndexed(replaced.block));
  EXPECT_THAT(AllLicences(), ::testing::ElementsAre(std::pair('a', 1), std::pair('b', 1)));

  AnvilRpc("evm_revert", absl::StrCat("[\"", snapshot, "\"]"));
  const Landed replacement = SetLicence('b', internal::v1::LICENCE_STATUS_REVOKED);
  ASSERT_EQ(replacement.block, replaced.block);
  ASSERT_NE(replacement.block_hash, replaced.block_hash);

  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  internal::v1::GetLicenceResponse licence;
  for (;;) {
    // Between the rewind and the re-read the key is unknown (NOT_FOUND).
    grpc::Status rpc = GetLicence('b', &licence);
    ASSERT_TRUE(rpc.ok() || rpc.error_code() == grpc::StatusCode::NOT_FOUND) << rpc.error_message();
    if (rpc.ok() && licence.licence().status() == internal::v1::LICENCE_STATUS_REVOKED) break;
    ASSERT_LT(absl::Now(), deadline) << "still " << licence.ShortDebugString();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ExpectAt(licence.licence().position(), replacement);
  EXPECT_EQ(licence.licence().previous_status(), internal::v1::LICENCE_STATUS_NONE);
  EXPECT_GE(licence.index().reorgs(), 1u);
  EXPECT_THAT(AllLicences(), ::testing::ElementsAre(std::pair('a', 1), std::pair('b', 3)));
  EXPECT_THAT(ReadWholeFile(signer_log()).value_or(""), HasSubstr("index.reorg"));
}

// kill -9 of the signer: after the restart the index answers at once from
// its database (same events, same cursor) and then follows new blocks.
TEST_F(SignerIndexTest, SurvivesARestartAndResumes) {
  const Landed a = SetLicence('a', internal::v1::LICENCE_STATUS_ACTIVE);
  Publish(1, '\x61');
  ASSERT_NO_FATAL_FAILURE(AwaitIndexed(a.block + 1));
  const uint64_t indexed = IndexStatus().indexed_block();

  ASSERT_NO_FATAL_FAILURE(KillSigner());
  ASSERT_NO_FATAL_FAILURE(StartSigner());
  EXPECT_GE(IndexStatus().indexed_block(), indexed);
  EXPECT_THAT(AllLicences(), ::testing::ElementsAre(std::pair('a', 1)));
  internal::v1::GetLicenceResponse licence;
  ASSERT_TRUE(GetLicence('a', &licence).ok());
  ExpectAt(licence.licence().position(), a);

  const Landed b = SetLicence('b', internal::v1::LICENCE_STATUS_EXPIRED);
  ASSERT_NO_FATAL_FAILURE(AwaitIndexed(b.block));
  EXPECT_THAT(AllLicences(), ::testing::ElementsAre(std::pair('a', 1), std::pair('b', 4)));
  EXPECT_EQ(IndexStatus().reorgs(), 0u);
  EXPECT_THAT(ReadWholeFile(signer_log()).value_or(""), ::testing::Not(HasSubstr("index.reset")));
}

}  // namespace
}  // namespace medvault::integration
