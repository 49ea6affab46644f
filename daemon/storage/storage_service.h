// The Storage gRPC service (medvault/internal/v1/storage.proto) over an
// ObjectStore.
#ifndef MEDVAULT_DAEMON_STORAGE_STORAGE_SERVICE_H_
#define MEDVAULT_DAEMON_STORAGE_STORAGE_SERVICE_H_

#include "daemon/common/method_guard.h"
#include "daemon/storage/object_store.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::storage {

class StorageService : public Guardable<internal::v1::Storage::Service> {
 public:
  // A Put message carries at most 1 MiB of data; the limit leaves room for
  // framing.
  static constexpr int kMaxMessageBytes = (1 << 20) + 1024;

  // `dir_fd`: the data directory, for free-space reports (-1: none).
  StorageService(ObjectStore& store, int dir_fd, uint64_t max_object_bytes)
      : store_(store), dir_fd_(dir_fd), max_object_bytes_(max_object_bytes) {}

  grpc::Status GetStoreInfo(grpc::ServerContext*, const internal::v1::GetStoreInfoRequest*,
                            internal::v1::GetStoreInfoResponse* response) override;
  grpc::Status Put(grpc::ServerContext* context,
                   grpc::ServerReader<internal::v1::PutRequest>* reader,
                   internal::v1::PutResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const internal::v1::GetRequest* request,
                   grpc::ServerWriter<internal::v1::GetResponse>* writer) override;
  grpc::Status Has(grpc::ServerContext*, const internal::v1::HasRequest* request,
                   internal::v1::HasResponse* response) override;
  grpc::Status Stat(grpc::ServerContext*, const internal::v1::StatRequest* request,
                    internal::v1::StatResponse* response) override;
  grpc::Status Pin(grpc::ServerContext*, const internal::v1::PinRequest* request,
                   internal::v1::PinResponse*) override;
  grpc::Status Unpin(grpc::ServerContext*, const internal::v1::UnpinRequest* request,
                     internal::v1::UnpinResponse*) override;
  grpc::Status Remove(grpc::ServerContext*, const internal::v1::RemoveRequest* request,
                      internal::v1::RemoveResponse*) override;
  grpc::Status List(grpc::ServerContext*, const internal::v1::ListRequest*,
                    internal::v1::ListResponse* response) override;
  grpc::Status CollectGarbage(grpc::ServerContext*, const internal::v1::CollectGarbageRequest*,
                              internal::v1::CollectGarbageResponse* response) override;

 private:
  ObjectStore& store_;
  const int dir_fd_;
  const uint64_t max_object_bytes_;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_STORAGE_SERVICE_H_
