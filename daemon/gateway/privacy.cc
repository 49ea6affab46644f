#include "daemon/gateway/privacy.h"

#include <openssl/rand.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"

namespace medvault::gateway::privacy {
namespace {

bool Positive(double x) { return std::isfinite(x) && x > 0; }

bool NonNegative(double x) { return std::isfinite(x) && x >= 0; }

// How far past its total a budget may go, relative to the total: rounding
// of the running sums, not real spending.
constexpr double kBudgetSlack = 1e-9;

}  // namespace

double SecureRandom::Uniform() {
  uint64_t bits = 0;
  do {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&bits), sizeof(bits)) != 1) {
      std::fputs("medvault: RAND_bytes failed; refusing to draw privacy noise\n", stderr);
      std::abort();
    }
    bits >>= 11;  // 53 bits: every r * 2^-53 is an exact double.
  } while (bits == 0);
  return static_cast<double>(bits) * 0x1p-53;  // (0, 1): r is 1 .. 2^53 - 1.
}

double LaplaceNoise(double scale, RandomSource& random) {
  const double centred = random.Uniform() - 0.5;  // (-1/2, 1/2)
  // 1 - 2|centred| is in (0, 1], so the logarithm is finite and <= 0.
  const double magnitude = -scale * std::log(1 - 2 * std::fabs(centred));
  return centred < 0 ? -magnitude : magnitude;
}

double GaussianNoise(double sigma, RandomSource& random) {
  const double u1 = random.Uniform();  // (0, 1): log(u1) is finite.
  const double u2 = random.Uniform();
  return sigma * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

absl::Status Mechanism::Validate() const {
  if (kind != kLaplace && kind != kGaussian) {
    return absl::InvalidArgumentError(absl::StrCat("kind: unknown mechanism ", kind));
  }
  if (!Positive(epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon must be finite and > 0, got ", epsilon));
  }
  if (kind == kGaussian && epsilon >= 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epsilon must be < 1 for the Gaussian mechanism (its analytic bound holds only "
        "there), got ",
        epsilon));
  }
  if (kind == kLaplace && delta != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta must be 0 for the Laplace mechanism, got ", delta));
  }
  if (kind == kGaussian && !(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta must be in (0, 1) for the Gaussian mechanism, got ", delta));
  }
  if (!Positive(sensitivity)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sensitivity must be finite and > 0, got ", sensitivity));
  }
  return absl::OkStatus();
}

double Mechanism::Scale() const {
  if (kind == kGaussian) {
    return sensitivity * std::sqrt(2 * std::log(1.25 / delta)) / epsilon;
  }
  return sensitivity / epsilon;
}

std::vector<ReleasedCell> Release(const std::vector<Cell>& cells, int64_t k,
                                  const Mechanism& mechanism, RandomSource& random) {
  const bool valid = mechanism.Validate().ok();
  const double scale = valid ? mechanism.Scale() : 0;
  std::vector<ReleasedCell> released;
  released.reserve(cells.size());
  for (const Cell& cell : cells) {
    ReleasedCell out{.key = cell.key, .suppressed = true, .value = 0};
    // Suppressed cells draw nothing, so the noise of every other cell does
    // not depend on them.
    if (valid && cell.count >= k) {
      const double noise = mechanism.kind == Mechanism::kGaussian ? GaussianNoise(scale, random)
                                                                  : LaplaceNoise(scale, random);
      // Post-processing of the noisy count; does not weaken the DP guarantee.
      out.suppressed = false;
      out.value = std::fmax(0.0, std::round(static_cast<double>(cell.count) + noise));
    }
    released.push_back(std::move(out));
  }
  return released;
}

PrivacyBudget::PrivacyBudget(double total_epsilon, double total_delta)
    : total_epsilon_(NonNegative(total_epsilon) ? total_epsilon : 0),
      total_delta_(NonNegative(total_delta) ? total_delta : 0) {}

absl::Status PrivacyBudget::Spend(double epsilon, double delta) {
  if (!NonNegative(epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon must be finite and >= 0, got ", epsilon));
  }
  if (!NonNegative(delta)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be finite and >= 0, got ", delta));
  }
  if (spent_epsilon_ + epsilon > total_epsilon_ * (1 + kBudgetSlack) ||
      spent_delta_ + delta > total_delta_ * (1 + kBudgetSlack)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "privacy budget exhausted: asked for epsilon ", epsilon, " and delta ", delta,
        "; remaining epsilon ", remaining_epsilon(), " and delta ", remaining_delta()));
  }
  spent_epsilon_ += epsilon;
  spent_delta_ += delta;
  return absl::OkStatus();
}

}  // namespace medvault::gateway::privacy
