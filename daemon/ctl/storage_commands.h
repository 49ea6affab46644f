// medvaultctl's commands for the storage process: storage info | put |
// get | stat | ls | gc. Each returns the process exit code: 0 success,
// 1 refused or failed, 2 bad usage.
#ifndef MEDVAULT_DAEMON_CTL_STORAGE_COMMANDS_H_
#define MEDVAULT_DAEMON_CTL_STORAGE_COMMANDS_H_

#include <string>

#include "medvault/config/v1/config.pb.h"

namespace medvault::ctl {

int StorageInfo(const config::v1::Config& config);
// Stores `path` ("-": standard input) and prints its CID. With `progress`,
// reports every 64 MiB on standard error.
int StoragePut(const config::v1::Config& config, const std::string& path, bool progress);
// Writes the object to `path` ("-": standard output); a partial file is
// removed when the read fails (a block that no longer matches its CID).
int StorageGet(const config::v1::Config& config, const std::string& cid, const std::string& path);
int StorageStat(const config::v1::Config& config, const std::string& cid);
int StorageList(const config::v1::Config& config);
int StorageGc(const config::v1::Config& config);

}  // namespace medvault::ctl

#endif  // MEDVAULT_DAEMON_CTL_STORAGE_COMMANDS_H_
