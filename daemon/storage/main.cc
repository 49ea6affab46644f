// medvault-storage: keeps ciphertext blocks. This first version serves
// the store's description; the block store itself follows.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/service_main.h"
#include "medvault/internal/v1/storage.grpc.pb.h"

namespace medvault::storage {
namespace {

SyscallPolicy StoragePolicy() {
  return SyscallPolicy::GrpcService().Allow({"fstatfs"},
                                            "reporting free space of the block directory");
}

class StorageService : public Guardable<internal::v1::Storage::Service> {
 public:
  explicit StorageService(int dir_fd) : dir_fd_(dir_fd) {}

  grpc::Status GetStoreInfo(grpc::ServerContext*, const internal::v1::GetStoreInfoRequest*,
                            internal::v1::GetStoreInfoResponse* response) override {
    struct statvfs st {};
    if (fstatvfs(dir_fd_, &st) != 0) {
      return ToGrpcStatus(absl::InternalError(absl::StrCat("fstatvfs: ", strerror(errno))));
    }
    response->set_backend("flatfs");
    response->set_total_bytes(static_cast<uint64_t>(st.f_blocks) * st.f_frsize);
    response->set_available_bytes(static_cast<uint64_t>(st.f_bavail) * st.f_frsize);
    return grpc::Status::OK;
  }

 private:
  const int dir_fd_;
};

class StorageProcess : public ServiceProcess {
 public:
  ~StorageProcess() override {
    if (dir_fd_ >= 0) close(dir_fd_);
  }

  absl::Status Prepare(const config::v1::Config& config) override {
    const std::string& dir = config.storage().data_dir();
    dir_fd_ = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd_ < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("storage.data_dir ", dir, ": ", strerror(errno)));
    }
    return absl::OkStatus();
  }
  std::vector<int> KeepFds() const override { return {dir_fd_}; }
  SyscallPolicy Policy() const override { return StoragePolicy(); }
  absl::Status Register(InternalServer& internal) override {
    service_ = std::make_unique<StorageService>(dir_fd_);
    internal.AddService(service_.get(), *InternalService(Role::kStorage));
    return absl::OkStatus();
  }

 private:
  int dir_fd_ = -1;
  std::unique_ptr<StorageService> service_;
};

}  // namespace
}  // namespace medvault::storage

int main(int argc, char** argv) {
  medvault::storage::StorageProcess process;
  return medvault::ServiceMain(medvault::Role::kStorage, argc, argv, process);
}
