// The fleet's processes as a benchmark finds them in /proc: each medvault*
// program whose command line names the same configuration file.
#ifndef MEDVAULT_BENCH_FLEET_PROCESSES_H_
#define MEDVAULT_BENCH_FLEET_PROCESSES_H_

#include <map>
#include <string>

namespace medvault::bench {

// pid -> role ("gateway", "storage", ..., "medvaultd") of the processes
// started with `config_file`; empty when the file cannot be resolved.
std::map<std::string, std::string> FleetProcesses(const std::string& config_file);

}  // namespace medvault::bench

#endif  // MEDVAULT_BENCH_FLEET_PROCESSES_H_
