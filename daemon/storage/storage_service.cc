#include "daemon/storage/storage_service.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"

namespace medvault::storage {
namespace {

void Fill(const ObjectInfo& info, internal::v1::ObjectInfo* out) {
  out->set_cid(info.cid.ToString());
  out->set_size(info.size);
  out->set_pinned(info.pinned);
}

// Every CID in a request is checked the same way; Parse's messages already
// start with "cid: ".
#define PARSE_CID_OR_RETURN(var, text)                        \
  auto var##_or = Cid::Parse(text);                           \
  if (!var##_or.ok()) return ToGrpcStatus(var##_or.status()); \
  const Cid& var = *var##_or

}  // namespace

grpc::Status StorageService::GetStoreInfo(grpc::ServerContext*,
                                          const internal::v1::GetStoreInfoRequest*,
                                          internal::v1::GetStoreInfoResponse* response) {
  response->set_backend(store_.backend());
  response->set_max_object_bytes(max_object_bytes_);
  if (dir_fd_ >= 0 && store_.backend() == "flatfs") {
    struct statvfs st {};
    if (fstatvfs(dir_fd_, &st) != 0) {
      return ToGrpcStatus(absl::InternalError(absl::StrCat("fstatvfs: ", strerror(errno))));
    }
    response->set_total_bytes(static_cast<uint64_t>(st.f_blocks) * st.f_frsize);
    response->set_available_bytes(static_cast<uint64_t>(st.f_bavail) * st.f_frsize);
  }
  return grpc::Status::OK;
}

grpc::Status StorageService::Put(grpc::ServerContext* context,
                                 grpc::ServerReader<internal::v1::PutRequest>* reader,
                                 internal::v1::PutResponse* response) {
  auto writer = store_.NewWriter();
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  internal::v1::PutRequest request;
  uint64_t total = 0;
  while (reader->Read(&request)) {
    total += request.data().size();
    if (total > max_object_bytes_) {
      // The writer is dropped unfinished: nothing of the object stays.
      log::Warn("object_too_large", {{"limit", max_object_bytes_}});
      return ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
          "data: the object exceeds storage.max_object_bytes (", max_object_bytes_, " bytes)")));
    }
    if (absl::Status status = (*writer)->Write(request.data()); !status.ok()) {
      return ToGrpcStatus(status);
    }
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled; nothing was stored");
  }
  auto info = (*writer)->Finish();
  if (!info.ok()) return ToGrpcStatus(info.status());
  response->set_cid(info->cid.ToString());
  response->set_size(info->size);
  log::Info("object_stored", {{"cid", response->cid()}, {"size", info->size}});
  return grpc::Status::OK;
}

grpc::Status StorageService::Get(grpc::ServerContext* context,
                                 const internal::v1::GetRequest* request,
                                 grpc::ServerWriter<internal::v1::GetResponse>* writer) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  auto reader = store_.Open(cid);
  if (!reader.ok()) return ToGrpcStatus(reader.status());
  internal::v1::GetResponse response;
  for (;;) {
    auto more = (*reader)->Next(response.mutable_data());
    if (!more.ok()) return ToGrpcStatus(more.status());
    if (!*more) return grpc::Status::OK;
    if (context->IsCancelled() || !writer->Write(response)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "reader went away");
    }
  }
}

grpc::Status StorageService::Has(grpc::ServerContext*, const internal::v1::HasRequest* request,
                                 internal::v1::HasResponse* response) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  auto present = store_.Has(cid);
  if (!present.ok()) return ToGrpcStatus(present.status());
  response->set_present(*present);
  return grpc::Status::OK;
}

grpc::Status StorageService::Stat(grpc::ServerContext*, const internal::v1::StatRequest* request,
                                  internal::v1::StatResponse* response) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  auto info = store_.Stat(cid);
  if (!info.ok()) return ToGrpcStatus(info.status());
  Fill(*info, response->mutable_object());
  return grpc::Status::OK;
}

grpc::Status StorageService::Pin(grpc::ServerContext*, const internal::v1::PinRequest* request,
                                 internal::v1::PinResponse*) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  return ToGrpcStatus(store_.Pin(cid));
}

grpc::Status StorageService::Unpin(grpc::ServerContext*, const internal::v1::UnpinRequest* request,
                                   internal::v1::UnpinResponse*) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  return ToGrpcStatus(store_.Unpin(cid));
}

grpc::Status StorageService::Remove(grpc::ServerContext*,
                                    const internal::v1::RemoveRequest* request,
                                    internal::v1::RemoveResponse*) {
  PARSE_CID_OR_RETURN(cid, request->cid());
  return ToGrpcStatus(store_.Remove(cid));
}

grpc::Status StorageService::List(grpc::ServerContext*, const internal::v1::ListRequest*,
                                  internal::v1::ListResponse* response) {
  auto objects = store_.List();
  if (!objects.ok()) return ToGrpcStatus(objects.status());
  for (const ObjectInfo& info : *objects) Fill(info, response->add_objects());
  return grpc::Status::OK;
}

grpc::Status StorageService::CollectGarbage(grpc::ServerContext*,
                                            const internal::v1::CollectGarbageRequest*,
                                            internal::v1::CollectGarbageResponse* response) {
  auto report = store_.CollectGarbage();
  if (!report.ok()) return ToGrpcStatus(report.status());
  response->set_blocks_removed(report->blocks_removed);
  response->set_bytes_removed(report->bytes_removed);
  return grpc::Status::OK;
}

}  // namespace medvault::storage
