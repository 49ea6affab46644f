#include "tests/signer/cast_tool.h"

#include <glob.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace medvault::signer::testing {

absl::StatusOr<std::string> CastBinary() {
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  if (source == nullptr) {
    return absl::FailedPreconditionError("MEDVAULT_SOURCE_DIR must be set (ctest sets it)");
  }
  std::string pattern = absl::StrCat(source, "/contracts/node_modules/@foundry-rs/cast-*/bin/cast");
  glob_t found{};
  int rc = glob(pattern.c_str(), 0, nullptr, &found);
  std::string path = rc == 0 && found.gl_pathc == 1 ? found.gl_pathv[0] : "";
  globfree(&found);
  if (path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no single cast binary matches ", pattern, " (run scripts/install-deps)"));
  }
  return path;
}

absl::StatusOr<std::string> RunCast(const std::vector<std::string>& args) {
  absl::StatusOr<std::string> cast = CastBinary();
  if (!cast.ok()) return cast.status();
  std::vector<std::string> argv_storage = {*cast};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return absl::InternalError(absl::StrCat("cannot start ", *cast));
  }
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) output.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("cast ", absl::StrJoin(args, " "), " failed:\n", output));
  }
  return std::string(absl::StripTrailingAsciiWhitespace(output));
}

}  // namespace medvault::signer::testing
