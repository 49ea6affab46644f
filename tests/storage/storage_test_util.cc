#include "tests/storage/storage_test_util.h"

#include <random>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/storage/unixfs.h"
#include "gtest/gtest.h"

namespace medvault::storage {

std::string RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

Cid CidOf(absl::string_view content) {
  struct Discard : BlockSink {
    absl::Status PutBlock(const Cid&, absl::string_view) override { return absl::OkStatus(); }
  } sink;
  DagBuilder builder(sink);
  EXPECT_TRUE(builder.Write(content).ok());
  absl::StatusOr<Cid> root = builder.Finish();
  EXPECT_TRUE(root.ok()) << root.status();
  return *root;
}

StorageClient::StorageClient(const std::string& socket_path)
    : stub_(internal::v1::Storage::NewStub(
          grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()))) {}

grpc::Status StorageClient::Put(absl::string_view content, internal::v1::PutResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  auto stream = stub_->Put(&context, response);
  internal::v1::PutRequest request;
  for (size_t at = 0; at < content.size(); at += 1 << 20) {
    request.set_data(std::string(content.substr(at, 1 << 20)));
    if (!stream->Write(request)) break;  // the server ended the call; Finish says why
  }
  stream->WritesDone();
  return stream->Finish();
}

grpc::Status StorageClient::Get(const std::string& cid, std::string* content) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  internal::v1::GetRequest request;
  request.set_cid(cid);
  auto stream = stub_->Get(&context, request);
  internal::v1::GetResponse response;
  content->clear();
  while (stream->Read(&response)) *content += response.data();
  return stream->Finish();
}

}  // namespace medvault::storage
