#include "daemon/ctl/storage_commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "daemon/ctl/rpc.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::ctl {
namespace {

constexpr size_t kPieceBytes = 1 << 20;  // the largest message Put accepts
constexpr uint64_t kProgressEvery = uint64_t{64} << 20;

std::unique_ptr<internal::v1::Storage::Stub> Stub(const config::v1::Config& config) {
  return internal::v1::Storage::NewStub(ProcessChannel(config, Role::kStorage));
}

}  // namespace

int StorageInfo(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(5));
  internal::v1::GetStoreInfoResponse info;
  grpc::Status status = Stub(config)->GetStoreInfo(&context, {}, &info);
  if (!status.ok()) return Report(status, "storage GetStoreInfo");
  std::printf("backend:          %s\nmax object bytes: %llu\n", info.backend().c_str(),
              static_cast<unsigned long long>(info.max_object_bytes()));
  if (info.total_bytes() > 0) {
    std::printf("filesystem:       %llu bytes, %llu available\n",
                static_cast<unsigned long long>(info.total_bytes()),
                static_cast<unsigned long long>(info.available_bytes()));
  }
  return 0;
}

int StoragePut(const config::v1::Config& config, const std::string& path, bool progress) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) {
      std::cerr << "medvaultctl: cannot open " << path << "\n";
      return 2;
    }
    in = &file;
  }
  grpc::ClientContext context;
  internal::v1::PutResponse response;
  auto stream = Stub(config)->Put(&context, &response);
  internal::v1::PutRequest request;
  std::string& piece = *request.mutable_data();
  uint64_t sent = 0;
  uint64_t next_report = kProgressEvery;
  for (;;) {
    piece.resize(kPieceBytes);
    in->read(piece.data(), static_cast<std::streamsize>(piece.size()));
    piece.resize(static_cast<size_t>(in->gcount()));
    if (piece.empty()) break;
    if (!stream->Write(request)) break;  // the server ended the call; Finish() says why
    sent += piece.size();
    if (progress && sent >= next_report) {
      std::fprintf(stderr, "medvaultctl: %llu MiB sent\n",
                   static_cast<unsigned long long>(sent >> 20));
      next_report += kProgressEvery;
    }
  }
  if (in->bad()) {
    context.TryCancel();
    std::cerr << "medvaultctl: read error on " << path << "; nothing was stored\n";
    return 1;
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return Report(status, "storage Put");
  std::printf("%s\n", response.cid().c_str());
  if (progress) {
    std::fprintf(stderr, "medvaultctl: stored %llu bytes\n",
                 static_cast<unsigned long long>(response.size()));
  }
  return 0;
}

int StorageGet(const config::v1::Config& config, const std::string& cid, const std::string& path) {
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (path != "-") {
    file.open(path, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "medvaultctl: cannot create " << path << "\n";
      return 2;
    }
    out = &file;
  }
  grpc::ClientContext context;
  internal::v1::GetRequest request;
  request.set_cid(cid);
  auto stream = Stub(config)->Get(&context, request);
  internal::v1::GetResponse response;
  while (stream->Read(&response)) {
    out->write(response.data().data(), static_cast<std::streamsize>(response.data().size()));
  }
  grpc::Status status = stream->Finish();
  out->flush();
  if (!status.ok() || !*out) {
    if (path != "-") {
      file.close();
      unlink(path.c_str());
    }
    if (!status.ok()) return Report(status, "storage Get");
    std::cerr << "medvaultctl: write error on " << path << "\n";
    return 1;
  }
  return 0;
}

int StorageStat(const config::v1::Config& config, const std::string& cid) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(30));
  internal::v1::StatRequest request;
  request.set_cid(cid);
  internal::v1::StatResponse response;
  grpc::Status status = Stub(config)->Stat(&context, request, &response);
  if (!status.ok()) return Report(status, "storage Stat");
  std::printf("cid:    %s\nsize:   %llu\npinned: %s\n", response.object().cid().c_str(),
              static_cast<unsigned long long>(response.object().size()),
              response.object().pinned() ? "yes" : "no");
  return 0;
}

int StorageList(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Minutes(5));
  internal::v1::ListResponse response;
  grpc::Status status = Stub(config)->List(&context, {}, &response);
  if (!status.ok()) return Report(status, "storage List");
  for (const auto& object : response.objects()) {
    std::printf("%s %llu\n", object.cid().c_str(), static_cast<unsigned long long>(object.size()));
  }
  return 0;
}

int StorageGc(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Minutes(30));
  internal::v1::CollectGarbageResponse response;
  grpc::Status status = Stub(config)->CollectGarbage(&context, {}, &response);
  if (!status.ok()) return Report(status, "storage CollectGarbage");
  std::printf("removed %llu blocks, %llu bytes\n",
              static_cast<unsigned long long>(response.blocks_removed()),
              static_cast<unsigned long long>(response.bytes_removed()));
  return 0;
}

}  // namespace medvault::ctl
