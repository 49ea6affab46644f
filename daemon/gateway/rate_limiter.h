// Per-organisation call rate limit of the public API: a token bucket per
// organisation id, refilled at `rate` calls a second up to `burst`. A
// caller over its limit is answered RESOURCE_EXHAUSTED before any work is
// done; other organisations are not affected.
#ifndef MEDVAULT_DAEMON_GATEWAY_RATE_LIMITER_H_
#define MEDVAULT_DAEMON_GATEWAY_RATE_LIMITER_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace medvault::gateway {

class RateLimiter {
 public:
  using Clock = std::function<absl::Time()>;

  // `rate` calls a second on average, at most `burst` at once.
  RateLimiter(double rate, double burst, Clock clock = absl::Now)
      : rate_(rate), burst_(burst), clock_(std::move(clock)) {}

  // Takes one call from `key`'s bucket: OK, or RESOURCE_EXHAUSTED naming
  // the limit when the bucket is empty.
  absl::Status Acquire(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };

  const double rate_;
  const double burst_;
  const Clock clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_RATE_LIMITER_H_
