// medvault-storage: keeps ciphertext as IPFS objects, in the embedded
// flatfs block store (the default) or on a Kubo node.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/common/files.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/service_main.h"
#include "daemon/common/url.h"
#include "daemon/storage/flatfs_store.h"
#include "daemon/storage/kubo_store.h"
#include "daemon/storage/sandbox_policy.h"
#include "daemon/storage/storage_service.h"

namespace medvault::storage {
namespace {

class StorageProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    config_ = config.storage();
    const std::string& dir = config_.data_dir();
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("storage.data_dir ", dir, ": ", strerror(errno)));
    }
    dir_fd_.reset(fd);
    return absl::OkStatus();
  }
  std::vector<int> KeepFds() const override { return {dir_fd_.get()}; }
  SyscallPolicy Policy() const override { return StoragePolicy(config_.has_kubo()); }

  absl::Status Register(InternalServer& internal) override {
    if (config_.has_kubo()) {
      KuboStoreOptions options;
      options.api_url = config_.kubo().api_url();
      options.request_timeout = absl::Milliseconds(config_.kubo().timeout_ms());
      options.connect_timeout = absl::Milliseconds(config_.kubo().connect_timeout_ms());
      options.max_retries = static_cast<int>(config_.kubo().max_retries());
      auto store = KuboStore::Create(std::move(options));
      if (!store.ok()) return store.status();
      // The node may come up after medvault-storage: say so, serve anyway,
      // and let each call report UNAVAILABLE until it answers.
      if (absl::Status ping = (*store)->Ping(); !ping.ok()) {
        log::Warn("kubo_unreachable",
                  {{"api_url", EndpointForLogs(config_.kubo().api_url())}, {"error", ping}});
      }
      store_ = *std::move(store);
    } else {
      // Opened after the sandbox, as the storage user, so that every file
      // the store creates belongs to that user.
      auto store = FlatfsStore::Open(dir_fd_.get());
      if (!store.ok()) return store.status();
      store_ = *std::move(store);
    }
    service_ = std::make_unique<StorageService>(*store_, dir_fd_.get(), config_.max_object_bytes());
    internal.set_max_request_bytes(StorageService::kMaxMessageBytes);
    internal.AddService(service_.get(), *InternalService(Role::kStorage));
    log::Info("store_opened",
              {{"backend", store_->backend()}, {"max_object_bytes", config_.max_object_bytes()}});
    return absl::OkStatus();
  }

 private:
  config::v1::Storage config_;
  Fd dir_fd_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<StorageService> service_;
};

}  // namespace
}  // namespace medvault::storage

int main(int argc, char** argv) {
  medvault::storage::StorageProcess process;
  return medvault::ServiceMain(medvault::Role::kStorage, argc, argv, process);
}
