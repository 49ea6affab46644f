// The real medvault-storage process, sandboxed (as its own user when the
// test runs as root), configured with the Kubo backend and pointed at a
// real js-ipfs node on loopback: objects go through the process to the node
// and back, verified, and a node that goes away is UNAVAILABLE, not a crash.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/common/health_client.h"
#include "daemon/storage/unixfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/storage.grpc.pb.h"
#include "tests/integration/process_util.h"
#include "tests/integration/test_status.h"
#include "tests/storage/ipfs_daemon.h"
#include "tests/storage/storage_test_util.h"

namespace medvault::storage {
namespace {

namespace fs = std::filesystem;
using integration::CommandResult;
using integration::IpfsDaemon;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

class StorageProcessKuboTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Env("MEDVAULT_BIN_DIR").empty()) << "run through ctest (MEDVAULT_BIN_DIR)";
    auto ipfs = IpfsDaemon::Start();
    MEDVAULT_ASSERT_OK(ipfs);
    ipfs_ = *std::move(ipfs);

    char tmpl[] = "/tmp/medvault-storage-kubo-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    CommandResult env = integration::RunCommand({Env("MEDVAULT_SOURCE_DIR") + "/scripts/dev-env",
                                                 "--dir", dir_ + "/env", "--gateway-port", "1",
                                                 "--rpc-url", "http://127.0.0.1:1"});
    ASSERT_EQ(env.exit_code, 0) << env.output;
    config_ = dir_ + "/env/medvault.textproto";
    std::stringstream text;
    text << std::ifstream(config_).rdbuf();
    std::string data_dir = absl::StrCat("  data_dir: \"", dir_, "/env/data/storage\"\n");
    std::string config = text.str();
    ASSERT_NE(config.find(data_dir), std::string::npos) << config;
    absl::StrReplaceAll(
        {{data_dir,
          absl::StrCat(data_dir, "  kubo { api_url: \"", ipfs_->api_url(),
                       "\" timeout_ms: 5000 connect_timeout_ms: 500 max_retries: 1 }\n")}},
        &config);
    std::ofstream(config_, std::ios::trunc) << config;

    log_fd_ =
        open((dir_ + "/storage.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    integration::SpawnOptions spawn;
    spawn.argv = {Env("MEDVAULT_BIN_DIR") + "/medvault-storage", "--config", config_};
    spawn.env = integration::WithOptionAppended(integration::CurrentEnvironment(), "ASAN_OPTIONS",
                                                "detect_leaks=0");
    spawn.output_fd = log_fd_;
    spawn.own_process_group = true;
    auto pid = integration::Spawn(std::move(spawn));
    MEDVAULT_ASSERT_OK(pid);
    pid_ = *pid;
    socket_ = dir_ + "/env/run/storage.sock";
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (CheckHealth(socket_, absl::Seconds(1)).health != Health::kServing) {
      ASSERT_LT(absl::Now(), deadline) << "medvault-storage not SERVING:\n" << Log();
      absl::SleepFor(absl::Milliseconds(50));
    }
    client_ = std::make_unique<StorageClient>(socket_);
  }

  void TearDown() override {
    if (pid_ > 0) integration::StopProcessGroup(pid_, absl::Seconds(5));
    if (log_fd_ >= 0) close(log_fd_);
    if (HasFailure()) std::cerr << "storage log:\n" << Log();
    ipfs_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string Log() const {
    return integration::ReadWholeFile(dir_ + "/storage.log").value_or("(no log)");
  }

  std::unique_ptr<IpfsDaemon> ipfs_;
  std::string dir_, config_, socket_;
  int log_fd_ = -1;
  pid_t pid_ = -1;
  std::unique_ptr<StorageClient> client_;
};

TEST_F(StorageProcessKuboTest, SandboxedProcessKeepsObjectsOnTheNode) {
  grpc::ClientContext info_context;
  internal::v1::GetStoreInfoResponse info;
  ASSERT_TRUE(client_->stub().GetStoreInfo(&info_context, {}, &info).ok());
  EXPECT_EQ(info.backend(), "kubo");

  const std::string content = RandomBytes(3 * kChunkSize + 3, 21);
  internal::v1::PutResponse put;
  grpc::Status status = client_->Put(content, &put);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(put.cid(), CidOf(content).ToString());

  std::string read;
  status = client_->Get(put.cid(), &read);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(read == content);

  // Nothing was written to the embedded store's directory.
  EXPECT_FALSE(fs::exists(dir_ + "/env/data/storage/blocks"));

  // The node goes away: the call fails as UNAVAILABLE and the process
  // keeps serving.
  ipfs_->Kill();
  status = client_->Get(put.cid(), &read);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(CheckHealth(socket_, absl::Seconds(2)).health, Health::kServing);
}

}  // namespace
}  // namespace medvault::storage
