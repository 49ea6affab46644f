// Research statistics without identifiable patients: the mechanisms only.
//
// A statistic is a table of cells (a key such as {"2024", "diabetes"} and
// the true number of patients in it). Release() publishes it in two steps:
//
//   1. k-anonymity suppression: a cell whose true count is below k is
//      withheld (suppressed, value 0). No noise is drawn for it, so the
//      random source's state, and so every later cell's noise, is the same
//      whatever the suppressed cell's count was.
//   2. Differential privacy: every other cell gets count + noise from a
//      Laplace or Gaussian mechanism (Mechanism), rounded to the nearest
//      integer and clamped at 0. Rounding and clamping are post-processing
//      of the noisy value, which never weakens a DP guarantee.
//
// Caveat, on purpose: which cells are suppressed depends on the true counts,
// so the suppression pattern itself is not covered by the DP guarantee; it
// is the k-anonymity rule the release policy asks for, layered on top. The
// noisy values of released cells are (epsilon, delta)-DP per Mechanism.
//
// PrivacyBudget is the accounting across releases (basic composition: the
// epsilons and deltas of successive releases add up).
//
// Nothing here is thread-safe; a caller that shares an object serialises
// access to it.
#ifndef MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_
#define MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace medvault::gateway::privacy {

// Where the noise comes from. Uniform() returns a double in the open
// interval (0, 1): never 0 and never 1, so the logarithms of the inverse
// CDFs below stay finite. Production uses SecureRandom; tests put a seeded
// deterministic generator behind this interface.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual double Uniform() = 0;
};

// OpenSSL's CSPRNG (RAND_bytes): 53 random bits r, redrawn while r == 0,
// returned as r * 2^-53, so every value is exact and lies in (0, 1). If
// RAND_bytes fails the process aborts: noise from a broken generator must
// never be released, and Uniform() has no way to return an error.
class SecureRandom : public RandomSource {
 public:
  double Uniform() override;
};

// One draw from Laplace(0, scale) by the inverse CDF: with u uniform in
// (0, 1), x = -scale * sgn(u - 1/2) * ln(1 - 2|u - 1/2|). Uses exactly one
// Uniform(). scale > 0.
//
// Noise drawn in floating point this way has gaps that can leak the true
// value (Mironov, "On significance of the least significant bits for
// differential privacy", 2012). Release() rounds the noisy count to an
// integer, which hides most of them, but not all: before the research
// service is opened to anyone, replace this with a discrete mechanism
// (e.g. the discrete Laplace/geometric mechanism on integer counts).
double LaplaceNoise(double scale, RandomSource& random);

// One draw from Normal(0, sigma^2) by the Box–Muller transform (the cosine
// half only, so draws are independent and nothing is cached between calls):
// x = sigma * sqrt(-2 ln u1) * cos(2 pi u2). Uses exactly two Uniform()s.
// sigma > 0.
double GaussianNoise(double sigma, RandomSource& random);

// A noise mechanism and the privacy it gives one query whose answer changes
// by at most `sensitivity` when one patient is added or removed (for a
// count, sensitivity 1).
struct Mechanism {
  // A fixed underlying type: any int is a valid value, so a kind read from
  // a policy file that is neither is refused by Validate(), not undefined.
  enum Kind : int { kLaplace, kGaussian };
  Kind kind = kLaplace;
  double epsilon = 0;
  double delta = 0;
  double sensitivity = 0;

  // OK, or INVALID_ARGUMENT whose message starts with the bad member's name
  // ("epsilon", "delta", "sensitivity" or "kind"):
  //   epsilon     finite and > 0; for kGaussian also < 1 (see Scale());
  //   delta       exactly 0 for kLaplace (pure epsilon-DP), in (0, 1) for
  //               kGaussian;
  //   sensitivity finite and > 0.
  absl::Status Validate() const;

  // The noise scale. kLaplace: b = sensitivity / epsilon, which gives
  // epsilon-DP. kGaussian: sigma = sensitivity * sqrt(2 ln(1.25 / delta)) /
  // epsilon, the classic analytic bound (Dwork & Roth, Theorem A.1), which
  // gives (epsilon, delta)-DP only for epsilon < 1; that is why Validate()
  // refuses epsilon >= 1 for kGaussian. Only meaningful when Validate() is
  // OK.
  double Scale() const;
};

// One cell of a statistic: its key and the true count of patients in it.
struct Cell {
  std::vector<std::string> key;
  int64_t count = 0;
};

// One released cell. suppressed: the true count was below k, and value is
// 0. Otherwise value is the noisy count: an integer >= 0 held in a double.
struct ReleasedCell {
  std::vector<std::string> key;
  bool suppressed = false;
  double value = 0;
};

// Releases `cells` in order (one ReleasedCell per Cell, same key): cells with
// count < k are suppressed and draw no noise; the others get
// max(0, round(count + noise)) with noise from `mechanism` at its Scale().
// Each released cell draws from `random` exactly once (kLaplace) or twice
// (kGaussian).
//
// `mechanism` must have passed Validate(); if it does not, every cell is
// suppressed (fails closed: nothing is released with noise of the wrong
// size, and no noise is drawn).
std::vector<ReleasedCell> Release(const std::vector<Cell>& cells, int64_t k,
                                  const Mechanism& mechanism, RandomSource& random);

// The privacy budget of a data set, spent release by release under basic
// composition (the epsilons add, the deltas add). Pure accounting: it does
// not know what was released.
//
// Sums of doubles do not add up exactly (0.1 + 0.1 + 0.1 > 0.3), so a spend
// that exceeds the total by at most a relative 1e-9 of it is allowed; the
// remaining budget never goes below 0.
class PrivacyBudget {
 public:
  // Totals that are negative, NaN or infinite make a budget of 0 for that
  // component (fails closed: nothing can be spent).
  PrivacyBudget(double total_epsilon, double total_delta);

  // Spends (epsilon, delta). INVALID_ARGUMENT if either is negative or not
  // finite. RESOURCE_EXHAUSTED, with the remaining epsilon and delta in the
  // message, if either would exceed what is left; then nothing is spent.
  absl::Status Spend(double epsilon, double delta);

  double remaining_epsilon() const { return std::max(0.0, total_epsilon_ - spent_epsilon_); }
  double remaining_delta() const { return std::max(0.0, total_delta_ - spent_delta_); }

 private:
  // Constant after construction.
  double total_epsilon_;
  double total_delta_;

  double spent_epsilon_ = 0;
  double spent_delta_ = 0;
};

}  // namespace medvault::gateway::privacy

#endif  // MEDVAULT_DAEMON_GATEWAY_PRIVACY_H_
