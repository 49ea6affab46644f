// The fixture of the signer's integration tests: a real anvil, the real
// keyvault on a SoftHSM2 token (which holds the chain key and signs), and
// the real, sandboxed signer process, talking gRPC over their sockets.
//
// SetUp deploys AuditAnchor from the build's artifact with an anvil dev
// account (the admin), makes the keyvault's chain address an operator and
// funds it, and starts the signer with its outbox under the keyvault
// directory. What the chain holds is checked independently with cast.
// anvil keeps its chain in a state file, so a test can stop it and start it
// again on the same port; tests control mining over its JSON-RPC.
#ifndef MEDVAULT_TESTS_INTEGRATION_SIGNER_FIXTURE_H_
#define MEDVAULT_TESTS_INTEGRATION_SIGNER_FIXTURE_H_
#include <fcntl.h>
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// anvil's first development account: unlocked, funded, used as the
// contract's admin (it deploys, adds the operator and funds it).
inline constexpr char kAdmin[] = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

inline std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// A member "name":"value" of cast's --json output.
inline std::string JsonMember(absl::string_view json, absl::string_view name) {
  std::string key = absl::StrCat("\"", name, "\":\"");
  size_t at = json.find(key);
  if (at == absl::string_view::npos) return "";
  absl::string_view rest = json.substr(at + key.size());
  return std::string(rest.substr(0, rest.find('"')));
}

inline std::string Hex(absl::string_view bytes) { return "0x" + absl::BytesToHexString(bytes); }

class SignerAnchorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartChainAndKeyvault());
    ASSERT_NO_FATAL_FAILURE(DeployAuditAnchor());
    ASSERT_NO_FATAL_FAILURE(WriteSignerConfig());
    ASSERT_NO_FATAL_FAILURE(StartSigner());
  }

  void TearDown() override {
    if (signer_pid_ != 0) StopProcessGroup(signer_pid_, absl::Seconds(5));
    if (anvil_pid_ != 0) StopProcessGroup(anvil_pid_, absl::Seconds(5));
    if (!anvil_state_.empty()) {
      unlink(anvil_state_.c_str());
      rmdir(anvil_state_.substr(0, anvil_state_.rfind('/')).c_str());
    }
    if (HasFailure() && keyvault_ != nullptr) {
      for (const std::string& log : {signer_log(), keyvault_->log_path()}) {
        std::cerr << "----- " << log << " -----\n" << ReadWholeFile(log).value_or("") << "\n";
      }
      keyvault_->KeepDirectory();
    }
  }

  // anvil, and the keyvault on a fresh SoftHSM2 token (its chain address
  // read): what every signer test starts from.
  void StartChainAndKeyvault() {
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

  // The platform binary of a Foundry tool (not node_modules/.bin's npm
  // wrapper, which runs it as a child: stopping the wrapper would kill anvil
  // while it writes its state file).
  static std::string FoundryBinary(const std::string& source_dir, const std::string& tool) {
    std::string dir = source_dir + "/contracts/node_modules/@foundry-rs/";
    for (const char* arch : {"linux-amd64", "linux-arm64"}) {
      std::string path = absl::StrCat(dir, tool, "-", arch, "/bin/", tool);
      if (access(path.c_str(), X_OK) == 0) return path;
    }
    return "";
  }

  void FindCast() {
    cast_ = FoundryBinary(source_dir_, "cast");
    ASSERT_FALSE(cast_.empty())
        << "no cast under contracts/node_modules (run scripts/install-deps)";
  }

  // anvil keeps its chain in a state file (written when it stops, read when
  // it starts), so a test can take the chain away and bring it back.
  void StartAnvil() {
    const std::string anvil = FoundryBinary(source_dir_, "anvil");
    ASSERT_FALSE(anvil.empty())
        << "no anvil under contracts/node_modules (run scripts/install-deps)";
    if (anvil_port_ == 0) {
      absl::StatusOr<int> port = PickFreePort();
      ASSERT_TRUE(port.ok()) << port.status();
      anvil_port_ = *port;
      char state_dir[] = "/tmp/medvault-anvil-XXXXXX";
      ASSERT_NE(mkdtemp(state_dir), nullptr);
      anvil_state_ = std::string(state_dir) + "/state.json";
    }
    SpawnOptions options;
    options.argv = {anvil,      "--host",  "127.0.0.1", "--port", std::to_string(anvil_port_),
                    "--silent", "--state", anvil_state_};
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
      std::optional<int> exited = WaitForExit(anvil_pid_, kPollInterval);
      if (exited.has_value()) anvil_pid_ = 0;  // reaped: nothing for TearDown to stop
      ASSERT_FALSE(exited.has_value()) << "anvil exited: " << supervisor::DescribeExit(*exited);
    }
  }

  void ReadChainAddress() {
    auto stub = keyvault_->NewStub();
    grpc::ClientContext context;
    // A first connection right after start-up can fail once; ride over it.
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
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
    signer->set_rpc_timeout_ms(2000);
    signer->set_state_dir(keyvault_->dir() + "/data/signer");
    // Automining anvil mines every transaction at once; only the tests that
    // stop mining see a bump.
    signer->set_fee_bump_after_ms(2000);
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

  // Anchor; with `wait`, answers when the entry is final.
  grpc::Status Anchor(const std::string& log_id, uint64_t tree_size, const std::string& root,
                      internal::v1::AnchorResponse* response, bool wait = true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    internal::v1::AnchorRequest request;
    request.set_log_id(log_id);
    request.set_tree_size(tree_size);
    request.set_root_hash(root);
    request.set_wait(wait);
    return signer_->Anchor(&context, request, response);
  }

  grpc::Status GetStatus(uint64_t id, internal::v1::AnchorStatus* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    internal::v1::GetAnchorStatusRequest request;
    request.set_outbox_id(id);
    return signer_->GetAnchorStatus(&context, request, response);
  }

  // Polls GetAnchorStatus until `done` holds for the entry; a test failure
  // after `timeout`.
  internal::v1::AnchorStatus AwaitStatus(
      uint64_t id, const std::function<bool(const internal::v1::AnchorStatus&)>& done,
      absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    internal::v1::AnchorStatus status;
    for (;;) {
      grpc::Status rpc = GetStatus(id, &status);
      if (rpc.ok() && done(status)) return status;
      if (absl::Now() >= deadline) {
        ADD_FAILURE() << "outbox entry " << id << " still " << status.ShortDebugString()
                      << (rpc.ok() ? "" : " / " + rpc.error_message());
        return status;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // One JSON-RPC call to anvil; its answer, or a test failure.
  std::string AnvilRpc(absl::string_view method, absl::string_view params = "[]") {
    auto reply = HttpPostJson(anvil_port_,
                              absl::StrCat(R"({"jsonrpc":"2.0","id":1,"method":")", method,
                                           R"(","params":)", params, "}"),
                              absl::Seconds(10));
    EXPECT_TRUE(reply.ok()) << method << ": " << reply.status();
    EXPECT_FALSE(reply.ok() && absl::StrContains(*reply, "\"error\"")) << method << ": " << *reply;
    return reply.value_or("");
  }

  void KillSigner() {
    ASSERT_NE(signer_pid_, 0);
    kill(-signer_pid_, SIGKILL);
    WaitForExit(signer_pid_, absl::Seconds(10));
    signer_pid_ = 0;
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
  std::string anvil_state_;
  pid_t anvil_pid_ = 0;
  pid_t signer_pid_ = 0;
  std::unique_ptr<KeyvaultProcess> keyvault_;
  std::string chain_address_;  // "0x" + 40 lower-case hex digits
  std::string contract_;
  std::unique_ptr<internal::v1::Signer::Stub> signer_;
};

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_SIGNER_FIXTURE_H_
