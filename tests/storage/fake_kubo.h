// FakeKubo: a loopback HTTP server that answers Kubo RPC calls with canned
// replies, for what a real node will not do on request: answer another CID
// than medvault computes, serve a corrupted block, send garbage.
//
// One thread serves one connection at a time (Connection: close). Replies
// are chosen by the request path (/api/v0/<command>); unknown commands get
// a Kubo-style 500. Every request line is recorded.
#ifndef MEDVAULT_TESTS_STORAGE_FAKE_KUBO_H_
#define MEDVAULT_TESTS_STORAGE_FAKE_KUBO_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace medvault::storage {

class FakeKubo {
 public:
  struct Reply {
    int status = 200;
    std::string body;
  };

  static absl::StatusOr<std::unique_ptr<FakeKubo>> Start();
  ~FakeKubo();

  std::string api_url() const;
  // The reply to /api/v0/<command>, whatever the query.
  void Answer(const std::string& command, Reply reply);
  // "POST /api/v0/add?cid-version=1&..." for every request so far.
  std::vector<std::string> Requests() const;

 private:
  FakeKubo() = default;
  void Serve();
  void Handle(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  std::map<std::string, Reply> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace medvault::storage

#endif  // MEDVAULT_TESTS_STORAGE_FAKE_KUBO_H_
