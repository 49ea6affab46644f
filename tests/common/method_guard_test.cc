// The per-method allowlist of internal servers, over a real Unix socket:
// allowed callers reach the handler, others get PERMISSION_DENIED and the
// handler never runs; the health service stays open.
#include "daemon/common/method_guard.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "daemon/common/health_client.h"
#include "daemon/common/internal_server.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault {
namespace {

class CountingKeyVault : public Guardable<internal::v1::KeyVault::Service> {
 public:
  grpc::Status GetTokenInfo(grpc::ServerContext*, const internal::v1::GetTokenInfoRequest*,
                            internal::v1::GetTokenInfoResponse* response) override {
    ++calls;
    response->set_token_label("test-token");
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

class MethodGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/medvault-guard-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/keyvault.sock";
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  void Serve(MethodAllowlist allowlist) {
    auto server = InternalServer::Bind(socket_, "", std::move(allowlist));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->AddService(
        &service_,
        *internal::v1::GetTokenInfoRequest::descriptor()->file()->FindServiceByName("KeyVault"));
    ASSERT_TRUE(server_->Start().ok());
    server_->SetServing(true);
  }

  grpc::Status Call(internal::v1::GetTokenInfoResponse* response) {
    auto stub = internal::v1::KeyVault::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->GetTokenInfo(&context, {}, response);
  }

  std::string dir_;
  std::string socket_;
  CountingKeyVault service_;
  std::unique_ptr<InternalServer> server_;
};

// A caller whose uid is on the method's list is served.
TEST_F(MethodGuardTest, AllowedUidReachesHandler) {
  MethodAllowlist allowlist;
  allowlist.Allow("GetTokenInfo", geteuid());
  Serve(std::move(allowlist));
  internal::v1::GetTokenInfoResponse response;
  grpc::Status status = Call(&response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.token_label(), "test-token");
  EXPECT_EQ(service_.calls, 1);
}

// A caller whose uid is not on the list is refused before the handler runs.
TEST_F(MethodGuardTest, OtherUidIsDeniedAndHandlerNeverRuns) {
  MethodAllowlist allowlist;
  allowlist.Allow("GetTokenInfo", geteuid() + 1);
  Serve(std::move(allowlist));
  internal::v1::GetTokenInfoResponse response;
  grpc::Status status = Call(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "caller may not call GetTokenInfo");
  EXPECT_EQ(service_.calls, 0);
  EXPECT_TRUE(response.token_label().empty());
}

// A method nobody is listed for is refused to everyone, the owner included.
TEST_F(MethodGuardTest, UnlistedMethodIsDenied) {
  Serve(MethodAllowlist());
  internal::v1::GetTokenInfoResponse response;
  EXPECT_EQ(Call(&response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(service_.calls, 0);
}

// The health service answers whoever can open the socket.
TEST_F(MethodGuardTest, HealthIsOpen) {
  Serve(MethodAllowlist());
  EXPECT_EQ(CheckHealth(socket_, absl::Seconds(5)).health, Health::kServing);
  server_->SetServing(false);
  EXPECT_EQ(CheckHealth(socket_, absl::Seconds(5)).health, Health::kNotServing);
}

// The socket is created private to owner and group.
TEST_F(MethodGuardTest, SocketModeIs0660) {
  Serve(MethodAllowlist());
  struct stat st {};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

}  // namespace
}  // namespace medvault
