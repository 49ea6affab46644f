// Research statistics without identifiable patients: the mechanisms only.
//
// A statistic is a table of cells (a key such as {"2024", "diabetes"} and
// the true number of patients in it). Release() publishes it in two steps:
//
//   1. k-anonymity suppression: a cell whose true count is below k is
//      withheld (suppressed, value 0). No noise is drawn for it, so the
//      random source's state, and so every later cell's noise, is the same
//      whatever the suppressed cell's count was.
//   2. Differential privacy: every other cell gets count + noise, clamped at
//      0, where the noise is an integer drawn EXACTLY from the discrete
//      Laplace or the discrete Gaussian distribution (Mechanism). Clamping
//      is post-processing, which never weakens a DP guarantee.
//
// Why exact: noise drawn in floating point has gaps and uneven spacing that
// can give the true value away (Mironov, "On significance of the least
// significant bits for differential privacy", 2012). Here nothing is
// floating point on the way to a released value: the samplers follow
// Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential
// Privacy" (NeurIPS 2020, arXiv 2004.00010), Algorithms 1-3, with rational
// parameters, integer arithmetic (64-bit, 128-bit where products need it)
// and uniform integers taken by rejection from 64 random bits. Each sample
// has exactly the distribution its theorem needs, given a uniform source.
// (Mechanism::Scale() is a double, for messages only; the sampled rational
// scale is derived from the integer members.)
//
// Caveat, on purpose: which cells are suppressed depends on the true counts,
// so the suppression pattern itself is not covered by the DP guarantee; it
// is the k-anonymity rule the release policy asks for, layered on top. The
// noisy values of released cells carry the guarantee stated at Mechanism.
//
// The privacy budget is not kept here: the caller accounts for each release
// in the integer units below (kEpsilonUnit, kDeltaUnit), so sums are exact.
//
// Failure policy: bad input (a Mechanism) is a returned status, and Release()
// then suppresses everything. The exposed samplers check their arguments and
// abort on a programmer error. They also abort, rather than loop forever or
// return a wrong sample, on events whose probability is below 2^-128 with a
// uniform source (a thousand rejections in a row, say): those mean the
// random source is broken, and no noise from it may be released.
//
// Nothing here is thread-safe; a caller that shares a RandomSource
// serialises access to it.
#ifndef MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_
#define MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace medvault::gateway::privacy {

// Where the randomness comes from: Next64() returns 64 independent uniformly
// random bits. Production uses SecureRandom; tests put a seeded
// deterministic generator behind this interface.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t Next64() = 0;
};

// OpenSSL's CSPRNG (RAND_bytes). If RAND_bytes fails the process aborts:
// noise from a broken generator must never be released, and Next64() has no
// way to return an error.
class SecureRandom : public RandomSource {
 public:
  uint64_t Next64() override;
};

// Fixed-point units, so that budgets add up exactly in a database.
inline constexpr int64_t kEpsilonUnit = 1'000'000;            // epsilon in millionths
inline constexpr int64_t kDeltaUnit = 1'000'000'000'000'000;  // delta in units of 1e-15

// The largest max_contributions a Mechanism accepts.
inline constexpr int64_t kMaxContributions = 1000;

// A noise mechanism for a table of counts in which each patient adds 1 to
// at most max_contributions cells, so that adding or removing one patient
// changes the table by at most max_contributions in L1 norm and by at most
// sqrt(max_contributions) in L2 norm.
//
// kLaplace: every released cell gets discrete Laplace noise,
//   P(x) proportional to exp(-|x| / b), b = max_contributions / epsilon.
//   A change of one patient multiplies the probability of any output by at
//   most exp(L1 / b) = exp(epsilon): pure epsilon-DP, delta = 0.
//
// kGaussian: every released cell gets independent discrete Gaussian noise,
//   P(x) proportional to exp(-x^2 / (2 sigma^2)), with sigma^2 the classic
//   bound sigma = sqrt(max_contributions) * sqrt(2 ln(1.25 / delta)) /
//   epsilon (Dwork & Roth, Theorem A.1, which needs epsilon < 1), rounded UP
//   to a rational (more noise is always safe). What that gives, stated
//   honestly:
//   - proven: rho-zCDP with rho = max_contributions / (2 sigma^2), exactly
//     as for continuous Gaussian noise (CKS20 Section 2 for one cell and an
//     integer shift; Renyi divergences of independent cells add up). With
//     the sigma above, rho <= epsilon^2 / (4 ln(1.25 / delta)), and so
//     (epsilon + epsilon^2 / (4 ln(1.25 / delta)), delta)-DP by the
//     zCDP-to-DP conversion (Bun & Steinke 2016, Proposition 1.3): a
//     relative excess of epsilon / (4 ln(1.25 / delta)) over epsilon, 0.9 %
//     at epsilon 0.5 and delta 1e-6;
//   - not proven here: the classic (epsilon, delta) itself. CKS20 (Section
//     2) show that the discrete Gaussian's exact (epsilon, delta) curve is
//     essentially the continuous one's, so it is expected to hold, but a
//     budget that must be a theorem should charge the epsilon above (or
//     account in zCDP).
struct Mechanism {
  // A fixed underlying type: any int is a valid value, so a kind read from
  // a policy file that is neither is refused by Validate(), not undefined.
  enum Kind : int { kLaplace, kGaussian };
  Kind kind = kLaplace;
  int64_t epsilon_micros = 0;     // epsilon * kEpsilonUnit
  int64_t delta_femtos = 0;       // delta * kDeltaUnit
  int64_t max_contributions = 0;  // cells one patient can add 1 to

  // OK, or INVALID_ARGUMENT whose message starts with the bad member's name
  // ("kind", "epsilon_micros", "delta_femtos" or "max_contributions"):
  //   kind              kLaplace or kGaussian;
  //   epsilon_micros    > 0; for kGaussian also < kEpsilonUnit (epsilon < 1,
  //                     where the classic bound holds);
  //   delta_femtos      exactly 0 for kLaplace; in (0, kDeltaUnit) for
  //                     kGaussian;
  //   max_contributions in [1, kMaxContributions].
  // Every valid mechanism keeps the samplers' arithmetic within 64/128 bits.
  absl::Status Validate() const;

  // The noise scale in counts, for messages and documentation: b for
  // kLaplace, sigma before rounding up for kGaussian. A double, and never
  // fed to a sampler. Only meaningful when Validate() is OK.
  double Scale() const;

  // The epsilon a budget must be charged, in millionths, for what is
  // proven above: epsilon itself for kLaplace; for kGaussian epsilon +
  // epsilon^2 / (4 ln(1.25 / delta)), rounded up with one millionth to
  // spare. Only meaningful when Validate() is OK.
  int64_t ChargedEpsilonMicros() const;
};

// One cell of a statistic: its key and the true count of patients in it.
struct Cell {
  std::vector<std::string> key;
  int64_t count = 0;
};

// One released cell. suppressed: the true count was below k, and value is
// 0. Otherwise value is the noisy count, >= 0.
struct ReleasedCell {
  std::vector<std::string> key;
  bool suppressed = false;
  int64_t value = 0;
};

// Releases `cells` in order (one ReleasedCell per Cell, same key): cells with
// count < k are suppressed and draw nothing from `random`; the others get
// max(0, count + noise), with noise drawn from `mechanism` (saturating at
// INT64_MAX rather than overflowing).
//
// `mechanism` must pass Validate(); if it does not, every cell is suppressed
// (fails closed: nothing is released with noise of the wrong size, and no
// noise is drawn).
std::vector<ReleasedCell> Release(const std::vector<Cell>& cells, int64_t k,
                                  const Mechanism& mechanism, RandomSource& random);

// --- Exact samplers, exposed for the tests ------------------------------
//
// All take rational parameters as numerator and denominator, both >= 1
// unless said otherwise, and abort on anything outside the documented range
// (the bounds keep every intermediate product within 128 bits).

// The largest discrete Laplace scale: scale_numerator / scale_denominator.
inline constexpr int64_t kMaxLaplaceScale = int64_t{1} << 52;
// The largest numerator or denominator of a discrete Gaussian's sigma^2.
inline constexpr int64_t kMaxSigma2Term = int64_t{1} << 57;

// Uniform integer in [0, n), n >= 1, by rejection (no modulo bias). Draws
// nothing when n == 1.
uint64_t UniformBelow(uint64_t n, RandomSource& random);

// true with probability exactly exp(-gamma), gamma = gamma_numerator /
// gamma_denominator, gamma_numerator >= 0 (CKS20 Algorithm 1).
bool BernoulliExp(int64_t gamma_numerator, int64_t gamma_denominator, RandomSource& random);

// One draw x with P(x) proportional to exp(-|x| / t), t = scale_numerator /
// scale_denominator <= kMaxLaplaceScale (CKS20 Algorithm 2).
int64_t DiscreteLaplace(int64_t scale_numerator, int64_t scale_denominator, RandomSource& random);

// One draw x with P(x) proportional to exp(-x^2 / (2 sigma^2)), sigma^2 =
// sigma2_numerator / sigma2_denominator, both at most kMaxSigma2Term (CKS20
// Algorithm 3).
int64_t DiscreteGaussian(int64_t sigma2_numerator, int64_t sigma2_denominator,
                         RandomSource& random);

}  // namespace medvault::gateway::privacy

#endif  // MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_
