// What the storage tests share: reproducible content, the CID medvault
// computes for it, and a client of the Storage service over a Unix socket.
#ifndef MEDVAULT_TESTS_STORAGE_STORAGE_TEST_UTIL_H_
#define MEDVAULT_TESTS_STORAGE_STORAGE_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "daemon/storage/cid.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::storage {

// `size` pseudo-random bytes, the same for the same seed.
std::string RandomBytes(size_t size, uint64_t seed);

// The root DagBuilder gives `content` (checked against an independent IPFS
// implementation in golden_cid_test).
Cid CidOf(absl::string_view content);

class StorageClient {
 public:
  explicit StorageClient(const std::string& socket_path);

  // Streams `content` in 1 MiB messages.
  grpc::Status Put(absl::string_view content, internal::v1::PutResponse* response);
  // The whole object; what arrived before an error stays in `content`.
  grpc::Status Get(const std::string& cid, std::string* content);
  internal::v1::Storage::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<internal::v1::Storage::Stub> stub_;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_TESTS_STORAGE_STORAGE_TEST_UTIL_H_
