#include "daemon/gateway/rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace medvault::gateway {

absl::Status RateLimiter::Acquire(const std::string& key) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& bucket = it->second;
  if (!inserted && now > bucket.updated) {
    const double refill = absl::ToDoubleSeconds(now - bucket.updated) * rate_;
    bucket.tokens = std::min(burst_, bucket.tokens + refill);
    bucket.updated = now;
  }
  if (bucket.tokens < 1.0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("organisation \"", key, "\" is over its call rate (gateway.calls_per_second ",
                     rate_, ", bursts of ", burst_, "); retry later"));
  }
  bucket.tokens -= 1.0;
  return absl::OkStatus();
}

}  // namespace medvault::gateway
