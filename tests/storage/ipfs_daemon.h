// IpfsDaemon: the pinned js-ipfs daemon (tests/ipfs) as a private node for
// the storage tests: an implementation of the Kubo RPC API written
// independently of medvault, so that CIDs and store behaviour are checked
// against something medvault's code did not produce.
//
// Start() makes a fresh temporary directory (the node's repository,
// IPFS_PATH, and its log), picks free loopback ports for the RPC API and
// the gateway (no swarm, no bootstrap peers: it talks to nobody), runs
// tests/ipfs/start-daemon and waits until POST /api/v0/version answers.
// The package is found through $MEDVAULT_SOURCE_DIR, which ctest sets;
// without tests/ipfs/node_modules Start() fails with FAILED_PRECONDITION
// saying to run scripts/install-deps.
//
// The destructor kills the node and removes the directory. Not
// thread-safe; the node itself serves any number of threads.
#ifndef MEDVAULT_TESTS_STORAGE_IPFS_DAEMON_H_
#define MEDVAULT_TESTS_STORAGE_IPFS_DAEMON_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace medvault::integration {

class IpfsDaemon {
 public:
  // js-ipfs takes about 5 s to create a repository and start (more under
  // sanitizers, which slow the test, not node).
  static constexpr absl::Duration kStartTimeout = absl::Seconds(90);

  static absl::StatusOr<std::unique_ptr<IpfsDaemon>> Start(absl::Duration timeout = kStartTimeout);
  ~IpfsDaemon();

  IpfsDaemon(const IpfsDaemon&) = delete;
  IpfsDaemon& operator=(const IpfsDaemon&) = delete;

  // "http://127.0.0.1:<port>", the base of /api/v0/... (what KuboStore
  // takes as api_url).
  std::string api_url() const;
  int api_port() const { return api_port_; }
  int gateway_port() const { return gateway_port_; }
  pid_t pid() const { return pid_; }

  // SIGKILL, at once (a node that dies under a client); reaps it. No-op
  // when it is not running.
  void Kill();
  // SIGTERM, then SIGKILL after `grace`.
  void Stop(absl::Duration grace = absl::Seconds(5));

  // What the node printed (for failure messages).
  std::string ReadLog() const;
  const std::string& dir() const { return dir_; }

 private:
  IpfsDaemon() = default;
  absl::Status StartOnce(const std::string& launcher, absl::Time deadline);
  bool Answers() const;

  std::string dir_;
  int api_port_ = 0;
  int gateway_port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_STORAGE_IPFS_DAEMON_H_
