// medvault-signer anchoring on a real chain: a real anvil, the real
// keyvault on a SoftHSM2 token (which holds the chain key and signs), and
// the real, sandboxed signer process, talking gRPC over their sockets.
//
// Each test deploys AuditAnchor from the build's artifact with an anvil dev
// account (the admin), makes the keyvault's chain address an operator and
// funds it, then drives the signer's Anchor and GetAnchor. What the chain
// holds is checked independently with cast.
#include <fcntl.h>
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "daemon/common/config.h"
#include "daemon/common/health_client.h"
#include "daemon/common/users.h"
#include "daemon/medvaultd/supervisor.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/internal/v1/signer.grpc.pb.h"
#include "tests/integration/keyvault_process.h"
#include "tests/integration/process_util.h"

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

// anvil's first development account: unlocked, funded, used as the
// contract's admin (it deploys, adds the operator and funds it).
constexpr char kAdmin[] = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// A member "name":"value" of cast's --json output.
std::string JsonMember(absl::string_view json, absl::string_view name) {
  std::string key = absl::StrCat("\"", name, "\":\"");
  size_t at = json.find(key);
  if (at == absl::string_view::npos) return "";
  absl::string_view rest = json.substr(at + key.size());
  return std::string(rest.substr(0, rest.find('"')));
}

std::string Hex(absl::string_view bytes) { return "0x" + absl::BytesToHexString(bytes); }

class SignerAnchorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_dir_ = Env("MEDVAULT_SOURCE_DIR");
    bin_dir_ = Env("MEDVAULT_BIN_DIR");
    ASSERT_FALSE(source_dir_.empty() || bin_dir_.empty()) << "run under ctest";
    ASSERT_NO_FATAL_FAILURE(FindCast());
    ASSERT_NO_FATAL_FAILURE(StartAnvil());
    absl::StatusOr<std::unique_ptr<KeyvaultProcess>> keyvault = KeyvaultProcess::Create();
    ASSERT_TRUE(keyvault.ok()) << keyvault.status();
    keyvault_ = *std::move(keyvault);
    absl::Status started = keyvault_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_NO_FATAL_FAILURE(ReadChainAddress());
    ASSERT_NO_FATAL_FAILURE(DeployAuditAnchor());
    ASSERT_NO_FATAL_FAILURE(WriteSignerConfig());
    ASSERT_NO_FATAL_FAILURE(StartSigner());
  }

  void TearDown() override {
    if (signer_pid_ != 0) StopProcessGroup(signer_pid_, absl::Seconds(5));
    if (anvil_pid_ != 0) StopProcessGroup(anvil_pid_, absl::Seconds(5));
    if (HasFailure() && keyvault_ != nullptr) {
      for (const std::string& log : {signer_log(), keyvault_->log_path()}) {
        std::cerr << "----- " << log << " -----\n" << ReadWholeFile(log).value_or("") << "\n";
      }
      keyvault_->KeepDirectory();
    }
  }

  std::string signer_log() const { return keyvault_->dir() + "/signer.log"; }
  std::string signer_config() const { return keyvault_->dir() + "/signer.textproto"; }
  std::string signer_socket() const { return keyvault_->dir() + "/run/signer.sock"; }
  std::string rpc_url() const { return absl::StrCat("http://127.0.0.1:", anvil_port_); }

  // cast SUBCOMMAND [--rpc-url URL] ARGS...; its trimmed output, or a test failure.
  std::string Cast(std::vector<std::string> args, bool rpc = true) {
    if (rpc) args.insert(args.begin() + 1, {"--rpc-url", rpc_url()});
    args.insert(args.begin(), cast_);
    CommandResult r = RunCommand(args, absl::Seconds(60));
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ":\n" << r.output;
    return std::string(absl::StripAsciiWhitespace(r.output));
  }

  void FindCast() {
    std::string dir = source_dir_ + "/contracts/node_modules/@foundry-rs/";
    for (const char* platform : {"cast-linux-amd64", "cast-linux-arm64"}) {
      std::string path = dir + platform + "/bin/cast";
      if (access(path.c_str(), X_OK) == 0) cast_ = path;
    }
    ASSERT_FALSE(cast_.empty()) << "no cast under " << dir << " (run scripts/install-deps)";
  }

  void StartAnvil() {
    const std::string anvil = source_dir_ + "/contracts/node_modules/.bin/anvil";
    absl::StatusOr<int> port = PickFreePort();
    ASSERT_TRUE(port.ok()) << port.status();
    anvil_port_ = *port;
    SpawnOptions options;
    options.argv = {anvil,     "--host", "127.0.0.1", "--port", std::to_string(anvil_port_),
                    "--silent"};
    options.own_process_group = true;
    absl::StatusOr<pid_t> pid = Spawn(std::move(options));
    ASSERT_TRUE(pid.ok()) << pid.status();
    anvil_pid_ = *pid;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      auto reply = HttpPostJson(anvil_port_,
                                R"({"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]})",
                                absl::Seconds(2));
      if (reply.ok() && absl::StrContains(*reply, "\"0x7a69\"")) return;
      ASSERT_LT(absl::Now(), deadline) << "anvil did not answer on port " << anvil_port_;
      ASSERT_FALSE(WaitForExit(anvil_pid_, kPollInterval).has_value()) << "anvil exited";
    }
  }

  void ReadChainAddress() {
    auto stub = keyvault_->NewStub();
    grpc::ClientContext context;
    internal::v1::GetChainPublicKeyResponse response;
    grpc::Status status =
        stub->GetChainPublicKey(&context, internal::v1::GetChainPublicKeyRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    chain_address_ = response.address();
    ASSERT_EQ(chain_address_.size(), 42u);
  }

  void DeployAuditAnchor() {
    std::optional<std::string> bytecode = ReadWholeFile(bin_dir_ + "/../contracts/AuditAnchor.bin");
    ASSERT_TRUE(bytecode.has_value()) << "build the contracts target first";
    std::string deployed =
        Cast({"send", "--json", "--unlocked", "--from", kAdmin, "--create",
              std::string(absl::StripAsciiWhitespace(*bytecode)), "constructor(address)", kAdmin});
    contract_ = absl::AsciiStrToLower(JsonMember(deployed, "contractAddress"));
    ASSERT_EQ(contract_.size(), 42u) << deployed;
    Cast({"send", "--unlocked", "--from", kAdmin, contract_, "addOperator(address)",
          chain_address_});
    Cast({"send", "--unlocked", "--from", kAdmin, "--value", "10ether", chain_address_});
  }

  // The keyvault's configuration plus the signer's chain settings, and the
  // test's user allowed to call the signer.
  void WriteSignerConfig() {
    absl::StatusOr<config::v1::Config> config = LoadConfig(keyvault_->config_path());
    ASSERT_TRUE(config.ok()) << config.status();
    config::v1::Signer* signer = config->mutable_signer();
    signer->set_rpc_url(rpc_url());
    signer->set_chain_id(31337);
    signer->set_anchor_contract(contract_);
    signer->set_receipt_timeout_ms(30000);
    for (config::v1::MethodAccess& allow : *signer->mutable_process()->mutable_allow()) {
      bool present = false;
      for (const std::string& caller : allow.callers())
        present |= caller == keyvault_->caller_user();
      if (!present) allow.add_callers(keyvault_->caller_user());
    }
    std::string text;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(*config, &text));
    std::ofstream(signer_config()) << text;
    chmod(signer_config().c_str(), 0644);
    absl::Status loaded = LoadConfig(signer_config()).status();
    ASSERT_TRUE(loaded.ok()) << loaded;
    // As medvaultd does for the runtime directory: the service users reach
    // each other's sockets through the socket group.
    if (geteuid() == 0) {
      const std::string run = keyvault_->dir() + "/run";
      group* gr = getgrnam(config->socket_group().c_str());
      ASSERT_NE(gr, nullptr);
      ASSERT_EQ(chown(run.c_str(), 0, gr->gr_gid), 0);
      ASSERT_EQ(chmod(run.c_str(), 03770), 0);
    }
  }

  void StartSigner() {
    int log_fd = open(signer_log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0);
    SpawnOptions options;
    options.argv = {bin_dir_ + "/medvault-signer", "--config", signer_config()};
    options.env = WithOptionAppended(CurrentEnvironment(), "ASAN_OPTIONS", "detect_leaks=0");
    options.output_fd = log_fd;
    options.own_process_group = true;
    absl::StatusOr<pid_t> pid = Spawn(std::move(options));
    close(log_fd);
    ASSERT_TRUE(pid.ok()) << pid.status();
    signer_pid_ = *pid;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      std::optional<int> exited = WaitForExit(signer_pid_, absl::ZeroDuration());
      if (exited.has_value()) signer_pid_ = 0;
      ASSERT_FALSE(exited.has_value())
          << "medvault-signer exited: " << supervisor::DescribeExit(*exited);
      if (CheckHealth(signer_socket(), absl::Seconds(1)).health == Health::kServing) break;
      ASSERT_LT(absl::Now(), deadline) << "medvault-signer not SERVING";
      absl::SleepFor(kPollInterval);
    }
    signer_ = internal::v1::Signer::NewStub(
        grpc::CreateChannel("unix:" + signer_socket(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Anchor(const std::string& log_id, uint64_t tree_size, const std::string& root,
                      internal::v1::AnchorResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    internal::v1::AnchorRequest request;
    request.set_log_id(log_id);
    request.set_tree_size(tree_size);
    request.set_root_hash(root);
    return signer_->Anchor(&context, request, response);
  }

  grpc::Status GetAnchor(const std::string& log_id, internal::v1::GetAnchorResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    internal::v1::GetAnchorRequest request;
    request.set_log_id(log_id);
    return signer_->GetAnchor(&context, request, response);
  }

  std::string source_dir_;
  std::string bin_dir_;
  std::string cast_;
  int anvil_port_ = 0;
  pid_t anvil_pid_ = 0;
  pid_t signer_pid_ = 0;
  std::unique_ptr<KeyvaultProcess> keyvault_;
  std::string chain_address_;  // "0x" + 40 lower-case hex digits
  std::string contract_;
  std::unique_ptr<internal::v1::Signer::Stub> signer_;
};

// An anchor lands with a transaction sent from the keyvault's address, and
// GetAnchor, cast call and the receipt all agree on what was anchored.
TEST_F(SignerAnchorTest, AnchorLandsAndReadsBack) {
  const std::string log_id(32, '\x4c');
  const std::string root(32, '\x52');
  internal::v1::AnchorResponse anchored;
  grpc::Status status = Anchor(log_id, 5, root, &anchored);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(anchored.already_anchored());
  ASSERT_EQ(anchored.transaction_hash().size(), 32u);

  // The receipt: success, and the sender recovered from the signature is
  // the keyvault's chain address.
  std::string receipt = Cast({"receipt", "--json", Hex(anchored.transaction_hash())});
  EXPECT_EQ(JsonMember(receipt, "status"), "0x1") << receipt;
  EXPECT_EQ(absl::AsciiStrToLower(JsonMember(receipt, "from")), chain_address_) << receipt;
  EXPECT_EQ(JsonMember(receipt, "type"), "0x2") << receipt;
  EXPECT_EQ(Cast({"to-dec", JsonMember(receipt, "blockNumber")}, /*rpc=*/false),
            std::to_string(anchored.block_number()));

  internal::v1::GetAnchorResponse latest;
  status = GetAnchor(log_id, &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 5u);
  EXPECT_EQ(latest.root_hash(), root);
  EXPECT_EQ(latest.block_number(), anchored.block_number());
  EXPECT_GT(latest.timestamp(), 0u);

  // An independent reader sees the same checkpoint.
  std::string call =
      Cast({"call", contract_, "latest(bytes32)(uint64,bytes32,uint64,uint64)", Hex(log_id)});
  EXPECT_THAT(call, HasSubstr(absl::StrCat("5\n", Hex(root))));

  // A log never anchored reads as zero.
  status = GetAnchor(std::string(32, '\x01'), &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 0u);
}

// The same tree head again is a harmless success without a transaction; a
// smaller tree size, or the same size with another root, is refused with
// the contract's reason; the nonce stays continuous throughout.
TEST_F(SignerAnchorTest, RetriesAreHarmlessAndRollbacksRefused) {
  const std::string log_id(32, '\x4c');
  const std::string root(32, '\x52');
  internal::v1::AnchorResponse first;
  grpc::Status status = Anchor(log_id, 5, root, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();

  internal::v1::AnchorResponse again;
  status = Anchor(log_id, 5, root, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(again.already_anchored());
  EXPECT_TRUE(again.transaction_hash().empty());
  EXPECT_EQ(again.block_number(), first.block_number());

  internal::v1::AnchorResponse refused;
  status = Anchor(log_id, 3, root, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr("tree_size: 3 is not above the latest anchored tree size 5"));
  status = Anchor(log_id, 5, std::string(32, '\x53'), &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("with a different root_hash"));

  internal::v1::AnchorResponse next;
  status = Anchor(log_id, 9, std::string(32, '\x54'), &next);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(next.already_anchored());
  EXPECT_GT(next.block_number(), first.block_number());
  // Two transactions sent, nonces 0 and 1: nothing for the refused ones.
  EXPECT_EQ(Cast({"nonce", chain_address_}), "2");

  internal::v1::GetAnchorResponse latest;
  status = GetAnchor(log_id, &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.tree_size(), 9u);
}

// Malformed requests are refused before anything reaches the chain,
// naming the field.
TEST_F(SignerAnchorTest, BadRequestsNameTheField) {
  internal::v1::AnchorResponse response;
  grpc::Status status = Anchor("short", 1, std::string(32, '\x01'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("log_id"));
  status = Anchor(std::string(32, '\x01'), 1, std::string(32, '\0'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("root_hash"));
  status = Anchor(std::string(32, '\x01'), 0, std::string(32, '\x02'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("tree_size"));
  EXPECT_EQ(Cast({"nonce", chain_address_}), "0");
}

}  // namespace
}  // namespace medvault::integration
