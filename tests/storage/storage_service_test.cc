// The Storage service over a real gRPC channel (in-process server on a
// Unix socket) and a real flatfs store in a temporary directory: the size
// limit and a cancelled upload leave nothing behind; bad CIDs name the
// problem.
#include "daemon/storage/storage_service.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "daemon/common/files.h"
#include "daemon/storage/flatfs_store.h"

namespace medvault::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kLimit = 600000;

class StorageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/medvault-storage-service-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    dir_fd_.reset(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto store = FlatfsStore::Open(dir_fd_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    service_ = std::make_unique<StorageService>(*store_, dir_fd_.get(), kLimit);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir_ + "/s.sock", grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(StorageService::kMaxMessageBytes);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = internal::v1::Storage::NewStub(
        grpc::CreateChannel("unix:" + dir_ + "/s.sock", grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    store_.reset();
    fs::remove_all(dir_);
  }

  // Nothing under a valid name, nothing staged, nothing pinned.
  void ExpectEmpty() {
    size_t blocks = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/blocks"))
      if (e.path().extension() == ".data") ++blocks;
    EXPECT_EQ(blocks, 0u);
    EXPECT_TRUE(fs::is_empty(dir_ + "/staging"));
    EXPECT_TRUE(fs::is_empty(dir_ + "/pins"));
  }

  std::string dir_;
  Fd dir_fd_;
  std::unique_ptr<FlatfsStore> store_;
  std::unique_ptr<StorageService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<internal::v1::Storage::Stub> stub_;
};

TEST_F(StorageServiceTest, ObjectOverTheLimitIsRefusedAndLeavesNothing) {
  grpc::ClientContext context;
  internal::v1::PutResponse response;
  auto stream = stub_->Put(&context, &response);
  internal::v1::PutRequest request;
  request.set_data(std::string(300000, 'x'));
  for (int i = 0; i < 3 && stream->Write(request); ++i) {
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("max_object_bytes"), std::string::npos);
  ExpectEmpty();
}

TEST_F(StorageServiceTest, ObjectAtTheLimitIsStored) {
  grpc::ClientContext context;
  internal::v1::PutResponse response;
  auto stream = stub_->Put(&context, &response);
  internal::v1::PutRequest request;
  request.set_data(std::string(kLimit, 'y'));
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.size(), kLimit);
}

TEST_F(StorageServiceTest, CancelledUploadLeavesNothing) {
  grpc::ClientContext context;
  internal::v1::PutResponse response;
  auto stream = stub_->Put(&context, &response);
  internal::v1::PutRequest request;
  request.set_data(std::string(400000, 'z'));  // more than one chunk: blocks were staged
  ASSERT_TRUE(stream->Write(request));
  absl::SleepFor(absl::Milliseconds(200));
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The handler notices the cancellation and drops its writer.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!fs::is_empty(dir_ + "/staging") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ExpectEmpty();
}

TEST_F(StorageServiceTest, BadCidsNameTheProblem) {
  grpc::ClientContext context;
  internal::v1::StatRequest request;
  request.set_cid("bafyNOTVALID");
  internal::v1::StatResponse response;
  grpc::Status status = stub_->Stat(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message().rfind("cid: ", 0), 0u) << status.error_message();
}

}  // namespace
}  // namespace medvault::storage
