#include "bench/fleet_processes.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>

#include <fstream>
#include <vector>

namespace medvault::bench {

std::map<std::string, std::string> FleetProcesses(const std::string& config_file) {
  std::map<std::string, std::string> found;
  char resolved[PATH_MAX];
  if (realpath(config_file.c_str(), resolved) == nullptr) return found;
  const std::string config(resolved);
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = readdir(proc)) {
    const std::string pid = entry->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + pid + "/cmdline");
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
    if (argv.empty()) continue;
    std::string program = argv[0].substr(argv[0].rfind('/') + 1);
    if (program.rfind("medvault", 0) != 0) continue;
    bool ours = false;
    for (const std::string& arg : argv) {
      if (arg.find("medvault.textproto") == std::string::npos) continue;
      ours |= realpath(arg.c_str(), resolved) != nullptr && config == resolved;
    }
    if (!ours) continue;
    if (program.rfind("medvault-", 0) == 0) program = program.substr(9);
    found[pid] = program;
  }
  closedir(proc);
  return found;
}

}  // namespace medvault::bench
