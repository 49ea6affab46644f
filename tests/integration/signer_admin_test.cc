// medvault-signer's interactive transactions on a real anvil, signed by the
// real keyvault on SoftHSM2 (signer_fixture.h): DeployContracts with the
// operator key, then SetLicence and PublishPolicy with the development
// keyvault's regulator key. What lands is read back independently with
// cast; refusals carry the contract's reason.
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/signer_fixture.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

class SignerAdminTest : public SignerAnchorTest {
 protected:
  // As SignerAnchorTest, but nothing is deployed: the signer starts without
  // contracts, and the keys it signs with are funded by an anvil account.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartChainAndKeyvault());
    regulator_address_ = KeyAddress(internal::v1::CHAIN_KEY_REGULATOR);
    ASSERT_EQ(regulator_address_.size(), 42u);
    ASSERT_NE(regulator_address_, chain_address_);
    for (const std::string& address : {chain_address_, regulator_address_}) {
      Cast({"send", "--unlocked", "--from", kAdmin, "--value", "10ether", address});
    }
    ASSERT_NO_FATAL_FAILURE(WriteSignerConfig());
    ASSERT_NO_FATAL_FAILURE(StartSigner());
  }

  std::string KeyAddress(internal::v1::ChainKeyName name) {
    auto stub = keyvault_->NewStub();
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    internal::v1::GetChainPublicKeyRequest request;
    request.set_key(name);
    internal::v1::GetChainPublicKeyResponse response;
    grpc::Status status = stub->GetChainPublicKey(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.address();
  }

  std::string CreationCode(const std::string& contract) {
    std::optional<std::string> hex =
        ReadWholeFile(absl::StrCat(bin_dir_, "/../contracts/", contract, ".bin"));
    EXPECT_TRUE(hex.has_value()) << "build the contracts target first";
    return absl::HexStringToBytes(absl::StripAsciiWhitespace(hex.value_or("")));
  }

  // Deploys the three contracts through the signer; `regulator` (20 bytes)
  // owns the registries, or the keyvault's regulator key when empty.
  grpc::Status Deploy(internal::v1::DeployContractsResponse* response,
                      const std::string& regulator = "") {
    internal::v1::DeployContractsRequest request;
    request.set_regulator(regulator);
    request.set_audit_anchor_code(CreationCode("AuditAnchor"));
    request.set_licence_registry_code(CreationCode("LicenceRegistry"));
    request.set_policy_registry_code(CreationCode("PolicyRegistry"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    return signer_->DeployContracts(&context, request, response);
  }

  // The signer's configuration with the deployed addresses, and the signer
  // started again with it (what `scripts/run` does after `chain deploy`).
  void RestartWithContracts(const internal::v1::DeployContractsResponse& deployed) {
    absl::StatusOr<config::v1::Config> config = LoadConfig(signer_config());
    ASSERT_TRUE(config.ok()) << config.status();
    config->mutable_signer()->set_anchor_contract(Hex(deployed.audit_anchor()));
    config->mutable_signer()->set_licence_registry(Hex(deployed.licence_registry()));
    config->mutable_signer()->set_policy_registry(Hex(deployed.policy_registry()));
    config->mutable_signer()->set_index_from_block(deployed.first_block());
    std::string text;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(*config, &text));
    std::ofstream(signer_config()) << text;
    ASSERT_NO_FATAL_FAILURE(KillSigner());
    ASSERT_NO_FATAL_FAILURE(StartSigner());
  }

  grpc::Status SetLicence(const std::string& practitioner, internal::v1::LicenceStatus status,
                          uint64_t valid_until, internal::v1::TransactionResult* result) {
    internal::v1::SetLicenceRequest request;
    request.set_practitioner(practitioner);
    request.set_status(status);
    request.set_valid_until(valid_until);
    request.set_evidence_hash(std::string(32, '\x45'));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return signer_->SetLicence(&context, request, result);
  }

  grpc::Status Publish(uint64_t version, const std::string& hash,
                       internal::v1::TransactionResult* result) {
    internal::v1::PublishPolicyRequest request;
    request.set_version(version);
    request.set_bundle_hash(hash);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return signer_->PublishPolicy(&context, request, result);
  }

  // The index's licence of `practitioner` once it has one (a test failure
  // after 30 s).
  internal::v1::GetLicenceResponse AwaitLicence(const std::string& practitioner) {
    internal::v1::GetLicenceResponse licence;
    internal::v1::GetLicenceRequest request;
    request.set_practitioner(practitioner);
    for (const absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      if (signer_->GetLicence(&context, request, &licence).ok()) return licence;
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "the index never showed the licence";
        return licence;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  std::string regulator_address_;
};

// Deployment: three contracts whose owners are the keyvault's keys, the
// operator allowed to anchor; then a regulator's licence and policy
// publication land, signed by the regulator key, and read back with cast.
TEST_F(SignerAdminTest, DeploysAndActsAsRegulator) {
  internal::v1::DeployContractsResponse deployed;
  grpc::Status status = Deploy(&deployed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Hex(deployed.operator_address()), chain_address_);
  EXPECT_EQ(Hex(deployed.regulator()), regulator_address_);
  EXPECT_GT(deployed.first_block(), 0u);
  const std::string anchor = Hex(deployed.audit_anchor());
  const std::string licences = Hex(deployed.licence_registry());
  const std::string policies = Hex(deployed.policy_registry());
  EXPECT_EQ(absl::AsciiStrToLower(Cast({"call", anchor, "admin()(address)"})), chain_address_);
  EXPECT_EQ(Cast({"call", anchor, "isOperator(address)(bool)", chain_address_}), "true");
  EXPECT_EQ(absl::AsciiStrToLower(Cast({"call", licences, "regulator()(address)"})),
            regulator_address_);
  EXPECT_EQ(absl::AsciiStrToLower(Cast({"call", policies, "regulator()(address)"})),
            regulator_address_);

  // Refused while the signer has no registry configured.
  internal::v1::TransactionResult result;
  status =
      SetLicence(std::string(32, '\x50'), internal::v1::LICENCE_STATUS_ACTIVE, 4102444800, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("licence_registry"));

  ASSERT_NO_FATAL_FAILURE(RestartWithContracts(deployed));
  // Deploying again would compete with the anchoring outbox for nonces.
  internal::v1::DeployContractsResponse again;
  status = Deploy(&again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("already configured"));

  const std::string practitioner(32, '\x50');
  status = SetLicence(practitioner, internal::v1::LICENCE_STATUS_ACTIVE, 4102444800, &result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Hex(result.sender()), regulator_address_);
  std::string receipt = Cast({"receipt", "--json", Hex(result.transaction_hash())});
  EXPECT_EQ(JsonMember(receipt, "status"), "0x1") << receipt;
  EXPECT_EQ(absl::AsciiStrToLower(JsonMember(receipt, "from")), regulator_address_);
  EXPECT_EQ(Cast({"call", licences, "effectiveStatus(bytes32)(uint8)", Hex(practitioner)}), "1");
  // The index serves it (what the rest of the system reads).
  internal::v1::GetLicenceResponse licence = AwaitLicence(practitioner);
  EXPECT_EQ(licence.licence().status(), internal::v1::LICENCE_STATUS_ACTIVE);
  EXPECT_EQ(licence.licence().position().transaction_hash(), result.transaction_hash());

  const std::string bundle_hash(32, '\x42');
  status = Publish(3, bundle_hash, &result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Cast({"call", policies, "latest()(uint64,bytes32,uint64)"}).substr(0, 1), "3");
  EXPECT_THAT(Cast({"call", policies, "latest()(uint64,bytes32,uint64)"}),
              HasSubstr(Hex(bundle_hash)));

  // Anchoring works with the deployed AuditAnchor: the operator key is an operator.
  internal::v1::AnchorResponse anchored;
  status = Anchor(std::string(32, '\x4c'), 1, std::string(32, '\x52'), &anchored);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(anchored.status().state(), internal::v1::ANCHOR_STATE_CONFIRMED);
}

// What the contracts refuse comes back as FAILED_PRECONDITION with their
// reason, before anything is sent; bad fields are INVALID_ARGUMENT naming them.
TEST_F(SignerAdminTest, RefusalsCarryTheContractsReason) {
  internal::v1::DeployContractsResponse deployed;
  grpc::Status status = Deploy(&deployed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_NO_FATAL_FAILURE(RestartWithContracts(deployed));
  const std::string regulator = regulator_address_;
  const std::string nonce_before = Cast({"nonce", regulator});

  internal::v1::TransactionResult result;
  // An ACTIVE licence that has already ended.
  status = SetLicence(std::string(32, '\x50'), internal::v1::LICENCE_STATUS_ACTIVE, 1000, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("ValidUntilNotInFuture(valid until 1000"));

  ASSERT_TRUE(Publish(2, std::string(32, '\x42'), &result).ok());
  const std::string nonce_after_publish = Cast({"nonce", regulator});
  status = Publish(2, std::string(32, '\x43'), &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("VersionNotIncreasing(latest 2, given 2)"));
  // Refusals cost no transaction: only the one publication used a nonce.
  EXPECT_EQ(std::stoull(nonce_after_publish), std::stoull(nonce_before) + 1);
  EXPECT_EQ(Cast({"nonce", regulator}), nonce_after_publish);

  status =
      SetLicence(std::string(31, '\x50'), internal::v1::LICENCE_STATUS_ACTIVE, 4102444800, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("practitioner"));
  status =
      SetLicence(std::string(32, '\x50'), internal::v1::LICENCE_STATUS_NONE, 4102444800, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("status"));
  status = Publish(0, std::string(32, '\x42'), &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("version"));
}

// Registries owned by another regulator (an anvil account): the keyvault's
// regulator key is refused by the contract, and nothing is sent.
TEST_F(SignerAdminTest, OnlyTheRegulatorKeyWritesTheRegistry) {
  internal::v1::DeployContractsResponse deployed;
  grpc::Status status = Deploy(&deployed, absl::HexStringToBytes(std::string(kAdmin).substr(2)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Hex(deployed.regulator()), kAdmin);
  ASSERT_NO_FATAL_FAILURE(RestartWithContracts(deployed));
  const std::string nonce_before = Cast({"nonce", regulator_address_});
  internal::v1::TransactionResult result;
  status =
      SetLicence(std::string(32, '\x50'), internal::v1::LICENCE_STATUS_ACTIVE, 4102444800, &result);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("NotOwner(" + regulator_address_ + ")"));
  EXPECT_EQ(Cast({"nonce", regulator_address_}), nonce_before);
  // The real regulator's change lands and the index shows it.
  Cast({"send", "--unlocked", "--from", kAdmin, Hex(deployed.licence_registry()),
        "setLicence(bytes32,uint8,uint64,bytes32)", Hex(std::string(32, '\x50')), "2", "4102444800",
        Hex(std::string(32, '\x45'))});
  internal::v1::GetLicenceResponse licence = AwaitLicence(std::string(32, '\x50'));
  EXPECT_EQ(licence.licence().status(), internal::v1::LICENCE_STATUS_SUSPENDED);
}

}  // namespace
}  // namespace medvault::integration
