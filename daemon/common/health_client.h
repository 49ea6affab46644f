// Asks a process's gRPC health service (grpc.health.v1) whether it is
// SERVING, over its Unix socket. Every probe opens a fresh connection, so a
// process that has just restarted is seen at once.
#ifndef MEDVAULT_DAEMON_COMMON_HEALTH_CLIENT_H_
#define MEDVAULT_DAEMON_COMMON_HEALTH_CLIENT_H_

#include <string>

#include "absl/time/time.h"

namespace medvault {

enum class Health { kServing, kNotServing, kUnreachable };

struct HealthReport {
  Health health;
  std::string detail;  // why it is not SERVING; empty when it is
};

// Never blocks longer than `timeout`.
HealthReport CheckHealth(const std::string& socket_path, absl::Duration timeout);

const char* HealthName(Health health);

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_HEALTH_CLIENT_H_
