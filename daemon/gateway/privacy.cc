#include "daemon/gateway/privacy.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace medvault::gateway::privacy {
namespace {

using uint128 = unsigned __int128;

// Caps on loops that end almost surely. With a uniform source each is
// reached with probability below 2^-128; reaching one means the source is
// broken (a fake that always returns 0 would otherwise loop forever).
//
// UniformBelow: each try is accepted with probability > 1/2.
constexpr int kMaxUniformTries = 128;
// BernoulliExpFraction: round k is reached with probability <= 1/(k-1)!.
constexpr uint64_t kMaxBernoulliRounds = 40;
// The geometric part of the discrete Laplace: P(V >= v) = exp(-v). This cap
// also bounds |Laplace draw| < kMaxGeometric * scale, which the overflow
// bounds below rely on.
constexpr uint64_t kMaxGeometric = 1024;
// Rejection rounds of Algorithms 2 and 3: each is accepted with probability
// > 1/6. Algorithm 2: > exp(-1) for the first test, then >= 1/2 for the
// sign. Algorithm 3: the normaliser of Lap_Z(t) times exp(-sigma^2 / 2t^2)
// times the sum of exp(-y^2 / 2 sigma^2), > 1/5 for every sigma (0.44 at
// worst, near sigma^2 = 0.1).
constexpr int kMaxRounds = 1024;

[[noreturn]] void Fail(const char* why) {
  std::fprintf(stderr, "medvault privacy: %s; refusing to draw noise\n", why);
  std::abort();
}

uint128 UniformBelow128(uint128 n, RandomSource& random) {
  if (n == 0) Fail("UniformBelow: n must be >= 1");
  if (n == 1) return 0;
  const uint64_t high_limit = static_cast<uint64_t>((n - 1) >> 64);
  if (high_limit == 0) return UniformBelow(static_cast<uint64_t>(n), random);
  // Draw as many bits as n - 1 has and reject values >= n: every value
  // below n is equally likely, and a try succeeds with probability > 1/2.
  const uint64_t high_mask = ~uint64_t{0} >> __builtin_clzll(high_limit);
  for (int i = 0; i < kMaxUniformTries; ++i) {
    const uint128 high = random.Next64() & high_mask;
    const uint128 value = (high << 64) | random.Next64();
    if (value < n) return value;
  }
  Fail("UniformBelow rejected 128 times in a row: the random source is broken");
}

// true with probability numerator / denominator, numerator <= denominator.
bool Bernoulli(uint128 numerator, uint128 denominator, RandomSource& random) {
  return UniformBelow128(denominator, random) < numerator;
}

// true with probability exp(-gamma), gamma = numerator / denominator in
// [0, 1] (CKS20 Algorithm 1, first case). Draws A_k ~ Bernoulli(gamma / k)
// for k = 1, 2, ... until one is 0 and returns whether that k is odd: the
// first k - 1 are all 1 with probability gamma^(k-1) / (k-1)!, so
// P(odd) = 1 - gamma + gamma^2 / 2! - ... = exp(-gamma). Each A_k is drawn
// as Bernoulli(1/k) AND Bernoulli(gamma), which needs no product
// k * denominator (and so cannot overflow).
bool BernoulliExpFraction(uint128 numerator, uint128 denominator, RandomSource& random) {
  for (uint64_t k = 1; k <= kMaxBernoulliRounds; ++k) {
    const bool a = Bernoulli(1, k, random) && Bernoulli(numerator, denominator, random);
    if (!a) return k % 2 == 1;
  }
  Fail("Bernoulli(exp(-gamma)) ran 40 rounds: the random source is broken");
}

// true with probability exp(-g) for an integer g: g independent
// Bernoulli(exp(-1)), stopping at the first 0 (expected < 1.6 of them, even
// when g is huge).
bool BernoulliExpInteger(uint128 g, RandomSource& random) {
  for (uint128 i = 0; i < g; ++i) {
    if (!BernoulliExpFraction(1, 1, random)) return false;
  }
  return true;
}

// true with probability exp(-numerator / denominator), denominator >= 1
// (CKS20 Algorithm 1): exp(-gamma) = exp(-floor(gamma)) * exp(-frac(gamma)).
bool BernoulliExp128(uint128 numerator, uint128 denominator, RandomSource& random) {
  return BernoulliExpInteger(numerator / denominator, random) &&
         BernoulliExpFraction(numerator % denominator, denominator, random);
}

// CKS20 Algorithm 2 for scale t / s, with 1 <= t, s and t / s <=
// kMaxLaplaceScale. X = U + t V, with U uniform in [0, t) kept with
// probability exp(-U / t) and V geometric with P(V = v) proportional to
// exp(-v), has P(X = x) proportional to exp(-x / t); Y = floor(X / s) then has
// P(Y = y) proportional to exp(-y s / t). A random sign, rejecting -0 so that
// 0 is not counted twice, gives the two-sided distribution.
int64_t SampleLaplace(uint64_t t, uint64_t s, RandomSource& random) {
  for (int round = 0; round < kMaxRounds; ++round) {
    const uint64_t u = UniformBelow(t, random);
    if (!BernoulliExp128(u, t, random)) continue;
    uint64_t v = 0;
    while (BernoulliExpFraction(1, 1, random)) {
      if (++v == kMaxGeometric) Fail("geometric draw reached 1024: the random source is broken");
    }
    // v < 2^10, so x < 2^10 t < 2^73 and y < 2^10 t / s <= 2^62: the
    // product and the cast below are exact.
    const uint128 x = u + static_cast<uint128>(t) * v;
    const auto y = static_cast<int64_t>(x / s);
    const bool negative = UniformBelow(2, random) == 1;
    if (negative && y == 0) continue;
    return negative ? -y : y;
  }
  Fail("discrete Laplace rejected 1024 times in a row: the random source is broken");
}

// floor(sqrt(n / d)) for 1 <= n, d <= kMaxSigma2Term, exactly: the largest r
// with r^2 d <= n. r < 2^29 because n < 2^58.
uint64_t FloorSqrt(uint64_t n, uint64_t d) {
  uint64_t low = 0;            // low^2 d <= n
  uint64_t high = 1ULL << 29;  // high^2 d > n
  while (high - low > 1) {
    const uint64_t middle = low + (high - low) / 2;
    if (static_cast<uint128>(middle) * middle * d <= n) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return low;
}

// CKS20 Algorithm 3 for sigma^2 = n / d, 1 <= n, d <= 2^57. With t =
// floor(sigma) + 1, a discrete Laplace draw Y of scale t is kept with
// probability exp(-gamma), gamma = (|Y| - sigma^2 / t)^2 / (2 sigma^2); then
// P(Y = y) is proportional to exp(-y^2 / (2 sigma^2)).
//
// In integers: gamma = e^2 / D with e = |(|Y| t d - n)| and D = 2 n d t^2.
// Since t^2 d <= 2 sigma^2 d + 2 d = 2 n + 2 d <= 2^59, D <= 2^58 * 2^59 =
// 2^117. e^2 fits in 128 bits when e < 2^64; otherwise gamma >= 2^128 / D >=
// 2^11, and Bernoulli(exp(-2^11)) is drawn first: it is 0 (reject) except
// with probability exp(-2048), when the exact remainder would be needed and
// the sampler aborts instead.
int64_t SampleGaussian(uint64_t n, uint64_t d, RandomSource& random) {
  constexpr uint128 kHugeGamma = 2048;
  const uint64_t t = FloorSqrt(n, d) + 1;
  const uint128 t2d = static_cast<uint128>(t) * t * d;  // <= 2^59, see above
  const uint128 denominator = 2 * static_cast<uint128>(n) * t2d;
  for (int round = 0; round < kMaxRounds; ++round) {
    const int64_t y = SampleLaplace(t, 1, random);
    // |y| < 2^10 t < 2^40 (see SampleLaplace), so the negation and a * t
    // are exact; a * t * d may not fit.
    const uint128 at = static_cast<uint128>(y < 0 ? -y : y) * t;
    const bool huge = at > std::numeric_limits<uint128>::max() / d;
    const uint128 atd = huge ? 0 : at * d;
    const uint128 e = atd >= n ? atd - n : n - atd;
    if (huge || (e >> 64) != 0) {
      if (BernoulliExpInteger(kHugeGamma, random)) {
        Fail("discrete Gaussian needed exp(-gamma) beyond 128 bits (probability exp(-2048))");
      }
      continue;
    }
    if (BernoulliExp128(e * e, denominator, random)) return y;
  }
  Fail("discrete Gaussian rejected 1024 times in a row: the random source is broken");
}

// The exact noise parameters of a valid mechanism: the discrete Laplace
// scale or the discrete Gaussian sigma^2, as numerator / denominator.
struct Rational {
  int64_t numerator;
  int64_t denominator;
};

// b = max_contributions / epsilon = max_contributions * kEpsilonUnit /
// epsilon_micros <= 1000 * 10^6 / 1, within kMaxLaplaceScale.
Rational LaplaceScale(const Mechanism& m) {
  return {m.max_contributions * kEpsilonUnit, m.epsilon_micros};
}

// sigma^2 = max_contributions * L / epsilon^2 with L = 2 ln(1.25 / delta),
// rounded up. L is the one transcendental number: it is computed in double
// (a few ulps of error, under 1e-7 absolute since L < 70) and rounded UP to
// whole millionths with one millionth to spare, so L_micros / 10^6 >= L.
// Then sigma^2 <= max_contributions * L_micros * 10^6 / epsilon_micros^2:
// the numerator is at most 1000 * 6.96e7 * 10^6 < 2^57 (delta >= 1e-15
// makes L <= 69.6) and the denominator is below 10^12 < 2^57 (epsilon < 1),
// both within kMaxSigma2Term. This double decides a public parameter only,
// never a sample.
Rational GaussianSigma2(const Mechanism& m) {
  const double l =
      2 * std::log(1.25 * static_cast<double>(kDeltaUnit) / static_cast<double>(m.delta_femtos));
  const auto l_micros = static_cast<int64_t>(std::ceil(l * 1e6)) + 1;
  return {m.max_contributions * l_micros * 1'000'000, m.epsilon_micros * m.epsilon_micros};
}

// max(0, count + noise), saturating at INT64_MAX instead of overflowing.
// Post-processing of the exact noisy count.
int64_t ClampedSum(int64_t count, int64_t noise) {
  int64_t sum = 0;
  if (__builtin_add_overflow(count, noise, &sum)) {
    return noise > 0 ? std::numeric_limits<int64_t>::max() : 0;
  }
  return std::max<int64_t>(0, sum);
}

}  // namespace

uint64_t SecureRandom::Next64() {
  uint64_t bits = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&bits), sizeof(bits)) != 1) {
    Fail("RAND_bytes failed");
  }
  return bits;
}

uint64_t UniformBelow(uint64_t n, RandomSource& random) {
  if (n == 0) Fail("UniformBelow: n must be >= 1");
  if (n == 1) return 0;
  // Keep as many low bits as n - 1 has; reject values >= n.
  const uint64_t mask = ~uint64_t{0} >> __builtin_clzll(n - 1);
  for (int i = 0; i < kMaxUniformTries; ++i) {
    const uint64_t value = random.Next64() & mask;
    if (value < n) return value;
  }
  Fail("UniformBelow rejected 128 times in a row: the random source is broken");
}

bool BernoulliExp(int64_t gamma_numerator, int64_t gamma_denominator, RandomSource& random) {
  if (gamma_numerator < 0 || gamma_denominator < 1) {
    Fail("BernoulliExp: gamma must be a numerator >= 0 over a denominator >= 1");
  }
  return BernoulliExp128(static_cast<uint64_t>(gamma_numerator),
                         static_cast<uint64_t>(gamma_denominator), random);
}

int64_t DiscreteLaplace(int64_t scale_numerator, int64_t scale_denominator, RandomSource& random) {
  if (scale_numerator < 1 || scale_denominator < 1 ||
      static_cast<uint128>(scale_numerator) >
          static_cast<uint128>(scale_denominator) * kMaxLaplaceScale) {
    Fail("DiscreteLaplace: the scale must be a positive rational <= 2^52");
  }
  return SampleLaplace(static_cast<uint64_t>(scale_numerator),
                       static_cast<uint64_t>(scale_denominator), random);
}

int64_t DiscreteGaussian(int64_t sigma2_numerator, int64_t sigma2_denominator,
                         RandomSource& random) {
  if (sigma2_numerator < 1 || sigma2_numerator > kMaxSigma2Term || sigma2_denominator < 1 ||
      sigma2_denominator > kMaxSigma2Term) {
    Fail("DiscreteGaussian: sigma^2 must be a rational with terms in [1, 2^57]");
  }
  return SampleGaussian(static_cast<uint64_t>(sigma2_numerator),
                        static_cast<uint64_t>(sigma2_denominator), random);
}

absl::Status Mechanism::Validate() const {
  if (kind != kLaplace && kind != kGaussian) {
    return absl::InvalidArgumentError(absl::StrCat("kind: unknown mechanism ", kind));
  }
  if (epsilon_micros <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon_micros must be > 0, got ", epsilon_micros));
  }
  if (kind == kGaussian && epsilon_micros >= kEpsilonUnit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epsilon_micros must be < ", kEpsilonUnit,
        " (epsilon < 1) for the Gaussian mechanism, where its classic bound holds; got ",
        epsilon_micros));
  }
  if (kind == kLaplace && delta_femtos != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta_femtos must be 0 for the Laplace mechanism, got ", delta_femtos));
  }
  if (kind == kGaussian && (delta_femtos <= 0 || delta_femtos >= kDeltaUnit)) {
    return absl::InvalidArgumentError(absl::StrCat("delta_femtos must be in (0, ", kDeltaUnit,
                                                   ") for the Gaussian mechanism, got ",
                                                   delta_femtos));
  }
  if (max_contributions < 1 || max_contributions > kMaxContributions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_contributions must be in [1, ", kMaxContributions, "], got ", max_contributions));
  }
  return absl::OkStatus();
}

double Mechanism::Scale() const {
  const double epsilon = static_cast<double>(epsilon_micros) / kEpsilonUnit;
  const auto contributions = static_cast<double>(max_contributions);
  if (kind == kGaussian) {
    const double delta = static_cast<double>(delta_femtos) / kDeltaUnit;
    return std::sqrt(contributions) * std::sqrt(2 * std::log(1.25 / delta)) / epsilon;
  }
  return contributions / epsilon;
}

int64_t Mechanism::ChargedEpsilonMicros() const {
  if (kind != kGaussian) return epsilon_micros;
  const double epsilon = static_cast<double>(epsilon_micros) / kEpsilonUnit;
  const double delta = static_cast<double>(delta_femtos) / kDeltaUnit;
  const double excess = epsilon * epsilon / (4 * std::log(1.25 / delta));
  return epsilon_micros + static_cast<int64_t>(std::ceil(excess * kEpsilonUnit)) + 1;
}

std::vector<ReleasedCell> Release(const std::vector<Cell>& cells, int64_t k,
                                  const Mechanism& mechanism, RandomSource& random) {
  const bool valid = mechanism.Validate().ok();
  const bool gaussian = mechanism.kind == Mechanism::kGaussian;
  Rational parameter{1, 1};
  if (valid) parameter = gaussian ? GaussianSigma2(mechanism) : LaplaceScale(mechanism);

  std::vector<ReleasedCell> released;
  released.reserve(cells.size());
  for (const Cell& cell : cells) {
    ReleasedCell out{.key = cell.key, .suppressed = true, .value = 0};
    // Suppressed cells draw nothing, so the noise of every other cell does
    // not depend on them.
    if (valid && cell.count >= k) {
      const int64_t noise =
          gaussian ? DiscreteGaussian(parameter.numerator, parameter.denominator, random)
                   : DiscreteLaplace(parameter.numerator, parameter.denominator, random);
      out.suppressed = false;
      out.value = ClampedSum(cell.count, noise);
    }
    released.push_back(std::move(out));
  }
  return released;
}

}  // namespace medvault::gateway::privacy
