// Process plumbing for the integration tests: starting, waiting for and
// stopping processes, reading /proc, free loopback ports, one-shot HTTP.
#ifndef MEDVAULT_TESTS_INTEGRATION_PROCESS_UTIL_H_
#define MEDVAULT_TESTS_INTEGRATION_PROCESS_UTIL_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace medvault::integration {

// Pause between two looks at something a test waits for.
inline constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

// INTERNAL "<what>: <strerror(errno)>".
absl::Status Errno(absl::string_view what);

// The whole file, or nullopt if it cannot be read.
std::optional<std::string> ReadWholeFile(const std::string& path);

// --- Starting and stopping processes -------------------------------------

// The test process's environment as NAME=value strings.
std::vector<std::string> CurrentEnvironment();

// `env` with NAME set to `value`, or, when NAME is set already, with
// `value` appended after a ':' (the separator of the sanitizer options).
std::vector<std::string> WithOptionAppended(std::vector<std::string> env, absl::string_view name,
                                            absl::string_view value);

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env = CurrentEnvironment();
  int output_fd = -1;              // becomes stdout and stderr; -1: /dev/null
  bool own_process_group = false;  // so that the whole tree can be signalled
};

// posix_spawnp: argv[0] is looked up in PATH. The child gets no descriptor
// of the test process besides 0, 1 and 2.
absl::StatusOr<pid_t> Spawn(SpawnOptions options);

// Reaps `pid` (a child of the test) if it exits within `timeout`; returns
// its wait status, or nullopt if it is still running (or is not a child of
// the test that is still to be reaped: it never waits for one).
std::optional<int> WaitForExit(pid_t pid, absl::Duration timeout);

// SIGTERM to a process group, SIGKILL after `grace`; reaps its leader.
void StopProcessGroup(pid_t leader, absl::Duration grace);

// What a command printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // -1 unless it exited normally (killed, timed out, not started)
  std::string output;  // stdout and stderr, interleaved as written
};

// Runs `argv` (argv[0] is looked up in PATH) with the test's environment,
// stdin from /dev/null. Kills it if it has not finished after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));

// --- Looking at processes ----------------------------------------------

struct ProcessEntry {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::vector<std::string> argv;  // empty for zombies
};

// A snapshot of /proc. Processes that vanish while it is read are left out.
std::vector<ProcessEntry> ListProcesses();

// The "Name:\tvalue" lines of /proc/<pid>/status, by name.
absl::StatusOr<std::map<std::string, std::string>> ReadProcStatus(pid_t pid);

// The last component of a path.
std::string Basename(absl::string_view path);

// --- Network -------------------------------------------------------------

// A loopback TCP port that was free a moment ago, from 20000-32767 (below
// the ephemeral range) when one is.
absl::StatusOr<int> PickFreePort();

// One HTTP/1.1 POST of a JSON body to 127.0.0.1:port; returns the whole
// response (status line, headers, body).
absl::StatusOr<std::string> HttpPostJson(int port, absl::string_view body, absl::Duration timeout);

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_PROCESS_UTIL_H_
