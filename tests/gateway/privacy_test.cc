// The research-statistics mechanisms (privacy.h): suppression below k that
// draws no noise, the mechanisms' validation and scale, and the exact
// discrete samplers checked against their distributions (chi-square tests
// that are shown to fail at the wrong scale).
#include "daemon/gateway/privacy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway::privacy {
namespace {

using ::testing::StartsWith;

MATCHER_P(StatusIs, code, "") { return arg.code() == code; }

// A seeded, deterministic RandomSource that counts its draws.
class SeededRandom : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  uint64_t Next64() override {
    ++calls_;
    return engine_();
  }

  int64_t calls() const { return calls_; }

 private:
  std::mt19937_64 engine_;
  int64_t calls_ = 0;
};

// A broken source: always the same bits.
class ConstantRandom : public RandomSource {
 public:
  explicit ConstantRandom(uint64_t bits) : bits_(bits) {}
  uint64_t Next64() override { return bits_; }

 private:
  uint64_t bits_;
};

constexpr int kDraws = 200'000;

Mechanism Laplace(int64_t epsilon_micros, int64_t max_contributions = 1) {
  return {.kind = Mechanism::kLaplace,
          .epsilon_micros = epsilon_micros,
          .delta_femtos = 0,
          .max_contributions = max_contributions};
}

Mechanism Gaussian(int64_t epsilon_micros, int64_t delta_femtos, int64_t max_contributions = 1) {
  return {.kind = Mechanism::kGaussian,
          .epsilon_micros = epsilon_micros,
          .delta_femtos = delta_femtos,
          .max_contributions = max_contributions};
}

// --- Statistics helpers -------------------------------------------------

// A distribution on the integers, tabulated on [low, low + p.size()) and
// normalised numerically there (the mass outside is below 1e-15).
struct Pmf {
  int64_t low = 0;
  std::vector<double> p;
};

Pmf Tabulate(const std::function<double(int64_t)>& weight, int64_t width) {
  Pmf pmf{.low = -width, .p = {}};
  double total = 0;
  for (int64_t x = -width; x <= width; ++x) {
    pmf.p.push_back(weight(x));
    total += pmf.p.back();
  }
  for (double& p : pmf.p) p /= total;
  return pmf;
}

// P(x) proportional to exp(-|x| / scale).
Pmf LaplacePmf(double scale) {
  return Tabulate(
      [scale](int64_t x) { return std::exp(-std::fabs(static_cast<double>(x)) / scale); },
      static_cast<int64_t>(40 * scale) + 10);
}

// P(x) proportional to exp(-x^2 / (2 sigma^2)).
Pmf GaussianPmf(double sigma2) {
  return Tabulate(
      [sigma2](int64_t x) { return std::exp(-static_cast<double>(x) * x / (2 * sigma2)); },
      static_cast<int64_t>(12 * std::sqrt(sigma2)) + 10);
}

// Pearson's chi-square statistic of `draws` against `pmf`: every value whose
// expected count is at least 5 is a bin of its own; the values below and
// above them are pooled into two tail bins, each merged into its neighbour
// if its expected count is still below 5.
struct ChiSquare {
  double statistic = 0;
  int degrees_of_freedom = 0;
};

ChiSquare ChiSquareOf(const std::vector<int64_t>& draws, const Pmf& pmf) {
  const double n = static_cast<double>(draws.size());
  const auto size = static_cast<int64_t>(pmf.p.size());
  int64_t first = 0;
  while (n * pmf.p[first] < 5) ++first;
  int64_t last = size - 1;
  while (n * pmf.p[last] < 5) --last;

  // Bin b covers values low + first - 1 + b, with bin 0 the whole lower tail
  // and the last bin the whole upper tail.
  std::vector<double> expected(last - first + 3, 0);
  std::vector<double> observed(expected.size(), 0);
  const auto bin_of = [&](int64_t index) {
    return std::clamp<int64_t>(index - first + 1, 0, static_cast<int64_t>(expected.size()) - 1);
  };
  for (int64_t i = 0; i < size; ++i) expected[bin_of(i)] += n * pmf.p[i];
  for (int64_t x : draws) observed[bin_of(x - pmf.low)] += 1;
  if (expected.front() < 5) {
    expected[1] += expected.front();
    observed[1] += observed.front();
    expected.erase(expected.begin());
    observed.erase(observed.begin());
  }
  if (expected.back() < 5) {
    expected[expected.size() - 2] += expected.back();
    observed[observed.size() - 2] += observed.back();
    expected.pop_back();
    observed.pop_back();
  }
  ChiSquare result{.statistic = 0, .degrees_of_freedom = static_cast<int>(expected.size()) - 1};
  for (size_t b = 0; b < expected.size(); ++b) {
    result.statistic += (observed[b] - expected[b]) * (observed[b] - expected[b]) / expected[b];
  }
  return result;
}

// The chi-square critical value at the 0.1 % level (Wilson-Hilferty; within
// 1.2 % of the exact value for 5 or more degrees of freedom).
double ChiSquareCritical(int degrees_of_freedom) {
  const double k = degrees_of_freedom;
  const double z = 3.090232;  // the standard normal's 99.9 % quantile
  const double c = 1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k));
  return k * c * c * c;
}

struct Moments {
  double mean = 0;
  double variance = 0;
  double fourth = 0;  // fourth central moment
};

Moments MomentsOf(const Pmf& pmf) {
  Moments m;
  const auto value = [&](size_t i) {
    return static_cast<double>(pmf.low + static_cast<int64_t>(i));
  };
  for (size_t i = 0; i < pmf.p.size(); ++i) m.mean += pmf.p[i] * value(i);
  for (size_t i = 0; i < pmf.p.size(); ++i) {
    const double d = value(i) - m.mean;
    m.variance += pmf.p[i] * d * d;
    m.fourth += pmf.p[i] * d * d * d * d;
  }
  return m;
}

Moments SampleMoments(const std::vector<int64_t>& draws) {
  Moments m;
  for (int64_t x : draws) m.mean += static_cast<double>(x);
  m.mean /= static_cast<double>(draws.size());
  for (int64_t x : draws) {
    const double d = static_cast<double>(x) - m.mean;
    m.variance += d * d;
  }
  m.variance /= static_cast<double>(draws.size() - 1);
  return m;
}

// The sample mean and variance of `draws` are within five standard errors
// of those of `pmf`.
void ExpectMomentsMatch(const std::vector<int64_t>& draws, const Pmf& pmf) {
  const double n = static_cast<double>(draws.size());
  const Moments want = MomentsOf(pmf);
  const Moments got = SampleMoments(draws);
  EXPECT_NEAR(got.mean, want.mean, 5 * std::sqrt(want.variance / n));
  EXPECT_NEAR(got.variance, want.variance,
              5 * std::sqrt((want.fourth - want.variance * want.variance) / n));
}

// The chi-square statistic of `draws` against `pmf`, minus its critical
// value: negative when the fit is accepted.
double ChiSquareMargin(const std::vector<int64_t>& draws, const Pmf& pmf) {
  const ChiSquare chi = ChiSquareOf(draws, pmf);
  EXPECT_GE(chi.degrees_of_freedom, 5);
  return chi.statistic - ChiSquareCritical(chi.degrees_of_freedom);
}

std::vector<int64_t> Draw(int count, const std::function<int64_t()>& one) {
  std::vector<int64_t> draws(count);
  for (int64_t& x : draws) x = one();
  return draws;
}

// --- Release -----------------------------------------------------------

// A cell below k is suppressed with value 0 and draws no noise at all.
TEST(ReleaseTest, CellBelowKIsSuppressedAndDrawsNothing) {
  for (const Mechanism& mechanism : {Laplace(500'000), Gaussian(500'000, 1'000)}) {
    SeededRandom random(1);
    const std::vector<ReleasedCell> out =
        Release({{.key = {"2024", "rare"}, .count = 4}}, 5, mechanism, random);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].key, (std::vector<std::string>{"2024", "rare"}));
    EXPECT_TRUE(out[0].suppressed);
    EXPECT_EQ(out[0].value, 0);
    EXPECT_EQ(random.calls(), 0);
  }
}

// The noise of later cells does not depend on a suppressed cell's count:
// the same values and draws follow whether or not a suppressed cell came
// first.
TEST(ReleaseTest, SuppressedCellDoesNotShiftLaterNoise) {
  for (const Mechanism& mechanism : {Laplace(500'000), Gaussian(500'000, 1'000)}) {
    SeededRandom a(7);
    SeededRandom b(7);
    const std::vector<ReleasedCell> with = Release(
        {{.key = {"x"}, .count = 3}, {.key = {"y"}, .count = 100}, {.key = {"z"}, .count = 50}}, 5,
        mechanism, a);
    const std::vector<ReleasedCell> without =
        Release({{.key = {"y"}, .count = 100}, {.key = {"z"}, .count = 50}}, 5, mechanism, b);
    ASSERT_EQ(with.size(), 3u);
    ASSERT_EQ(without.size(), 2u);
    EXPECT_EQ(with[1].value, without[0].value);
    EXPECT_EQ(with[2].value, without[1].value);
    EXPECT_EQ(a.calls(), b.calls());
  }
}

// A cell with count exactly k is released, draws noise, and keeps its key
// and place.
TEST(ReleaseTest, CellAtKIsReleasedInOrder) {
  SeededRandom random(2);
  const std::vector<ReleasedCell> out =
      Release({{.key = {"a"}, .count = 5}, {.key = {"b"}, .count = 2}, {.key = {"c"}, .count = 30}},
              5, Laplace(500'000), random);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].key, std::vector<std::string>{"a"});
  EXPECT_FALSE(out[0].suppressed);
  EXPECT_GE(out[0].value, 0);
  EXPECT_TRUE(out[1].suppressed);
  EXPECT_EQ(out[2].key, std::vector<std::string>{"c"});
  EXPECT_FALSE(out[2].suppressed);
  EXPECT_GT(random.calls(), 0);
}

// An invalid mechanism releases nothing and draws nothing.
TEST(ReleaseTest, InvalidMechanismSuppressesEverything) {
  for (const Mechanism& mechanism : {Laplace(0), Gaussian(500'000, 0), Laplace(500'000, 0)}) {
    SeededRandom random(4);
    const std::vector<ReleasedCell> out =
        Release({{.key = {"a"}, .count = 500}, {.key = {"b"}, .count = 9}}, 5, mechanism, random);
    ASSERT_EQ(out.size(), 2u);
    for (const ReleasedCell& cell : out) {
      EXPECT_TRUE(cell.suppressed);
      EXPECT_EQ(cell.value, 0);
    }
    EXPECT_EQ(random.calls(), 0);
  }
}

// Small counts with large noise are clamped at 0, never released negative.
TEST(ReleaseTest, NegativeNoisyCountsAreClampedAtZero) {
  SeededRandom random(5);
  const std::vector<Cell> cells(2'000, Cell{.key = {"a"}, .count = 1});
  for (const Mechanism& mechanism : {Laplace(100'000), Gaussian(100'000, 1'000)}) {
    const std::vector<ReleasedCell> out = Release(cells, 1, mechanism, random);
    int zeros = 0;
    for (const ReleasedCell& cell : out) {
      ASSERT_FALSE(cell.suppressed);
      ASSERT_GE(cell.value, 0);
      zeros += cell.value == 0;
    }
    EXPECT_GT(zeros, 500);  // P(noise <= -1) is about 1/2 at these scales.
  }
}

// A count near INT64_MAX saturates instead of overflowing (UBSan would
// report a signed overflow).
TEST(ReleaseTest, HugeCountSaturates) {
  SeededRandom random(6);
  const std::vector<Cell> cells(200, Cell{.key = {"a"}, .count = INT64_MAX - 1});
  const std::vector<ReleasedCell> out = Release(cells, 1, Laplace(1'000'000), random);
  for (const ReleasedCell& cell : out) EXPECT_GE(cell.value, INT64_MAX - 100);
}

// With large counts the released values are unbiased, with the variance of
// the mechanism's documented scale: b = max_contributions / epsilon for
// Laplace, sigma = Scale() (rounded up by at most a millionth) for Gaussian.
TEST(ReleaseTest, LargeCountsHaveZeroMeanErrorAtTheDocumentedScale) {
  constexpr int64_t kCount = 1'000'000'000;
  const std::vector<Cell> cells(50'000, Cell{.key = {"a"}, .count = kCount});
  const auto errors = [&](const Mechanism& mechanism, uint64_t seed) {
    SeededRandom random(seed);
    std::vector<int64_t> error;
    for (const ReleasedCell& cell : Release(cells, 5, mechanism, random)) {
      error.push_back(cell.value - kCount);
    }
    return error;
  };

  const Mechanism laplace = Laplace(500'000, 3);  // b = 6
  ASSERT_DOUBLE_EQ(laplace.Scale(), 6);
  ExpectMomentsMatch(errors(laplace, 10), LaplacePmf(6));

  const Mechanism gaussian = Gaussian(500'000, 1'000'000'000, 4);  // delta = 1e-6
  const double sigma = gaussian.Scale();
  ASSERT_NEAR(sigma, 2 * std::sqrt(2 * std::log(1.25e6)) / 0.5, 1e-9);
  ExpectMomentsMatch(errors(gaussian, 11), GaussianPmf(sigma * sigma));
}

// The extreme valid mechanisms (smallest epsilon, smallest delta, most
// contributions; largest epsilon) stay within the samplers' bounds.
TEST(ReleaseTest, ExtremeValidMechanismsRelease) {
  SeededRandom random(12);
  const std::vector<Cell> cells(100, Cell{.key = {"a"}, .count = 10});
  for (const Mechanism& mechanism :
       {Laplace(1, kMaxContributions), Laplace(INT64_MAX, 1), Gaussian(1, 1, kMaxContributions),
        Gaussian(kEpsilonUnit - 1, kDeltaUnit - 1, 1)}) {
    ASSERT_TRUE(mechanism.Validate().ok());
    for (const ReleasedCell& cell : Release(cells, 1, mechanism, random)) {
      EXPECT_FALSE(cell.suppressed);
      EXPECT_GE(cell.value, 0);
    }
  }
  // Noise of scale ~0 leaves the count alone.
  for (const ReleasedCell& cell : Release(cells, 1, Laplace(INT64_MAX, 1), random)) {
    EXPECT_EQ(cell.value, 10);
  }
}

// --- Mechanism ---------------------------------------------------------

// Valid mechanisms pass, and their scales follow the documented formulas.
TEST(MechanismTest, ValidMechanismsAndScales) {
  EXPECT_TRUE(Laplace(500'000).Validate().ok());
  EXPECT_DOUBLE_EQ(Laplace(500'000).Scale(), 2);
  EXPECT_DOUBLE_EQ(Laplace(250'000, 3).Scale(), 12);
  EXPECT_TRUE(Laplace(5 * kEpsilonUnit, kMaxContributions).Validate().ok());

  EXPECT_TRUE(Gaussian(500'000, 10'000'000'000).Validate().ok());  // delta = 1e-5
  EXPECT_DOUBLE_EQ(Gaussian(500'000, 10'000'000'000).Scale(),
                   std::sqrt(2 * std::log(1.25 / 1e-5)) / 0.5);
  EXPECT_DOUBLE_EQ(Gaussian(500'000, 10'000'000'000, 9).Scale(),
                   3 * std::sqrt(2 * std::log(1.25 / 1e-5)) / 0.5);
}

// Each bad member is refused with INVALID_ARGUMENT naming it.
TEST(MechanismTest, ValidateNamesTheBadMember) {
  const auto expect_bad = [](const Mechanism& m, const std::string& member) {
    const absl::Status status = m.Validate();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << member;
    EXPECT_THAT(std::string(status.message()), StartsWith(member));
  };
  Mechanism kind = Laplace(500'000);
  kind.kind = static_cast<Mechanism::Kind>(7);
  expect_bad(kind, "kind");

  expect_bad(Laplace(0), "epsilon_micros");
  expect_bad(Laplace(-1), "epsilon_micros");
  expect_bad(Gaussian(0, 1'000), "epsilon_micros");
  expect_bad(Gaussian(kEpsilonUnit, 1'000), "epsilon_micros");  // The bound needs epsilon < 1.
  expect_bad(Gaussian(2 * kEpsilonUnit, 1'000), "epsilon_micros");

  Mechanism laplace_delta = Laplace(500'000);
  laplace_delta.delta_femtos = 1;
  expect_bad(laplace_delta, "delta_femtos");
  expect_bad(Gaussian(500'000, 0), "delta_femtos");
  expect_bad(Gaussian(500'000, -1), "delta_femtos");
  expect_bad(Gaussian(500'000, kDeltaUnit), "delta_femtos");

  for (int64_t contributions : {int64_t{0}, int64_t{-1}, kMaxContributions + 1}) {
    expect_bad(Laplace(500'000, contributions), "max_contributions");
    expect_bad(Gaussian(500'000, 1'000, contributions), "max_contributions");
  }
}

// --- Samplers ----------------------------------------------------------

// UniformBelow is unbiased (chi-square over 6 and over 10 values), draws
// nothing for n = 1, and stays below n at the top of the range.
TEST(UniformBelowTest, IsUnbiased) {
  SeededRandom random(20);
  for (uint64_t n : {uint64_t{6}, uint64_t{10}}) {
    constexpr int kN = 60'000;
    std::vector<double> counts(n, 0);
    for (int i = 0; i < kN; ++i) {
      const uint64_t x = UniformBelow(n, random);
      ASSERT_LT(x, n);
      counts[x] += 1;
    }
    const double expected = static_cast<double>(kN) / static_cast<double>(n);
    double chi = 0;
    for (double c : counts) chi += (c - expected) * (c - expected) / expected;
    // Critical values at 0.1 % for 5 and 9 degrees of freedom.
    EXPECT_LT(chi, n == 6 ? 20.515 : 27.877) << n;
  }

  const int64_t before = random.calls();
  EXPECT_EQ(UniformBelow(1, random), 0u);
  EXPECT_EQ(random.calls(), before);

  for (uint64_t n : {(uint64_t{1} << 63) + 1, std::numeric_limits<uint64_t>::max()}) {
    for (int i = 0; i < 1000; ++i) ASSERT_LT(UniformBelow(n, random), n);
  }
}

// Bernoulli(exp(-gamma)) comes out true with frequency exp(-gamma), within
// five standard errors, for integer, fractional and mixed gamma.
TEST(BernoulliExpTest, FrequencyMatchesExpMinusGamma) {
  SeededRandom random(21);
  constexpr int kN = 100'000;
  struct Gamma {
    int64_t numerator;
    int64_t denominator;
  };
  for (const Gamma g : {Gamma{1, 3}, Gamma{1, 1}, Gamma{7, 10}, Gamma{5, 2}, Gamma{40, 7}}) {
    int hits = 0;
    for (int i = 0; i < kN; ++i) hits += BernoulliExp(g.numerator, g.denominator, random);
    const double p = std::exp(-static_cast<double>(g.numerator) / g.denominator);
    EXPECT_NEAR(static_cast<double>(hits) / kN, p, 5 * std::sqrt(p * (1 - p) / kN))
        << g.numerator << "/" << g.denominator;
  }
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(BernoulliExp(0, 5, random));  // exp(0) = 1
}

// Discrete Laplace draws at a rational scale fit exp(-|x| / t) (chi-square
// at the 0.1 % level) with the PMF's mean and variance; at a scale below 1
// too.
TEST(DiscreteLaplaceTest, MatchesItsPmf) {
  SeededRandom random(22);
  const std::vector<int64_t> draws = Draw(kDraws, [&] { return DiscreteLaplace(7, 2, random); });
  EXPECT_LT(ChiSquareMargin(draws, LaplacePmf(3.5)), 0);
  ExpectMomentsMatch(draws, LaplacePmf(3.5));

  const std::vector<int64_t> narrow =
      Draw(kDraws / 4, [&] { return DiscreteLaplace(2, 5, random); });
  EXPECT_LT(ChiSquareMargin(narrow, LaplacePmf(0.4)), 0);
  ExpectMomentsMatch(narrow, LaplacePmf(0.4));

  // Terms near 2^62: 3.5 + 1e-18, no small-number shortcut.
  const std::vector<int64_t> large_terms = Draw(kDraws / 4, [&] {
    return DiscreteLaplace(3'500'000'000'000'000'001, 1'000'000'000'000'000'000, random);
  });
  EXPECT_LT(ChiSquareMargin(large_terms, LaplacePmf(3.5)), 0);
}

// The chi-square check can fail: draws at twice the scale are rejected
// against the PMF of the intended scale.
TEST(DiscreteLaplaceTest, WrongScaleFailsTheChiSquareTest) {
  SeededRandom random(23);
  const std::vector<int64_t> draws = Draw(kDraws, [&] { return DiscreteLaplace(7, 1, random); });
  EXPECT_GT(ChiSquareMargin(draws, LaplacePmf(3.5)), 0);
}

// Discrete Gaussian draws at a rational sigma^2 fit exp(-x^2 / (2 sigma^2))
// (chi-square at the 0.1 % level) with the PMF's mean and variance; with
// terms large enough that exp(-gamma) needs 128-bit uniform draws; and at
// sigma < 1, where Algorithm 3 uses t = 1.
TEST(DiscreteGaussianTest, MatchesItsPmf) {
  SeededRandom random(24);
  const std::vector<int64_t> draws = Draw(kDraws, [&] { return DiscreteGaussian(21, 2, random); });
  EXPECT_LT(ChiSquareMargin(draws, GaussianPmf(10.5)), 0);
  ExpectMomentsMatch(draws, GaussianPmf(10.5));

  // sigma^2 = 10.5 + 1e-12: gamma's denominator 2 n d t^2 is about 3e24.
  const std::vector<int64_t> large_terms = Draw(
      kDraws / 4, [&] { return DiscreteGaussian(10'500'000'000'001, 1'000'000'000'000, random); });
  EXPECT_LT(ChiSquareMargin(large_terms, GaussianPmf(10.5)), 0);

  const std::vector<int64_t> narrow =
      Draw(kDraws / 4, [&] { return DiscreteGaussian(1, 3, random); });
  const Pmf narrow_pmf = GaussianPmf(1.0 / 3);
  ExpectMomentsMatch(narrow, narrow_pmf);
  // Too few values have an expected count >= 5 for the chi-square test
  // above; compare the frequencies of 0 and +-1 instead.
  for (int64_t x : {-1, 0, 1}) {
    const double p = narrow_pmf.p[x - narrow_pmf.low];
    const double n = static_cast<double>(narrow.size());
    EXPECT_NEAR(static_cast<double>(std::count(narrow.begin(), narrow.end(), x)) / n, p,
                5 * std::sqrt(p * (1 - p) / n))
        << x;
  }
}

// The chi-square check can fail: draws at twice sigma are rejected against
// the PMF of the intended sigma.
TEST(DiscreteGaussianTest, WrongScaleFailsTheChiSquareTest) {
  SeededRandom random(25);
  const std::vector<int64_t> draws =
      Draw(kDraws, [&] { return DiscreteGaussian(4 * 21, 2, random); });
  EXPECT_GT(ChiSquareMargin(draws, GaussianPmf(10.5)), 0);
}

// Parameters outside the documented range are refused by aborting, not
// sampled with overflowing arithmetic.
TEST(SamplerDeathTest, RefusesParametersOutOfRange) {
  SeededRandom random(26);
  EXPECT_DEATH(UniformBelow(0, random), "n must be >= 1");
  EXPECT_DEATH(BernoulliExp(-1, 1, random), "gamma");
  EXPECT_DEATH(BernoulliExp(1, 0, random), "gamma");
  EXPECT_DEATH(DiscreteLaplace(0, 1, random), "scale");
  EXPECT_DEATH(DiscreteLaplace(1, 0, random), "scale");
  EXPECT_DEATH(DiscreteLaplace(kMaxLaplaceScale + 1, 1, random), "scale");
  EXPECT_DEATH(DiscreteGaussian(0, 1, random), "sigma");
  EXPECT_DEATH(DiscreteGaussian(kMaxSigma2Term + 1, 1, random), "sigma");
  EXPECT_DEATH(DiscreteGaussian(1, kMaxSigma2Term + 1, random), "sigma");
}

// The largest allowed parameters sample without overflow.
TEST(SamplerTest, LargestParametersSample) {
  SeededRandom random(27);
  for (int i = 0; i < 100; ++i) {
    const int64_t wide = DiscreteLaplace(kMaxLaplaceScale, 1, random);
    EXPECT_LT(std::abs(wide), kMaxLaplaceScale * 64);
    EXPECT_EQ(DiscreteLaplace(1, INT64_MAX, random), 0);
    const int64_t gaussian = DiscreteGaussian(kMaxSigma2Term, 1, random);
    EXPECT_LT(std::abs(gaussian), int64_t{1} << 35);  // sigma = 2^28.5; 2^35 is 90 sigma
    EXPECT_EQ(DiscreteGaussian(1, kMaxSigma2Term, random), 0);
    const int64_t one = DiscreteGaussian(kMaxSigma2Term, kMaxSigma2Term, random);
    EXPECT_LT(std::abs(one), 20);
  }
}

// A broken source makes the samplers abort instead of looping forever or
// returning noise.
TEST(SamplerDeathTest, BrokenSourceAborts) {
  ConstantRandom zeros(0);
  ConstantRandom ones(~uint64_t{0});
  EXPECT_DEATH(DiscreteLaplace(3, 1, zeros), "random source is broken");
  EXPECT_DEATH(DiscreteGaussian(3, 1, zeros), "random source is broken");
  EXPECT_DEATH(UniformBelow(3, ones), "random source is broken");
}

// --- SecureRandom ------------------------------------------------------

// SecureRandom returns varying values: no repeats among a thousand, and
// every bit position takes both values.
TEST(SecureRandomTest, ReturnsVaryingValues) {
  SecureRandom random;
  std::set<uint64_t> seen;
  uint64_t any = 0;
  uint64_t all = ~uint64_t{0};
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = random.Next64();
    seen.insert(x);
    any |= x;
    all &= x;
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(any, ~uint64_t{0});
  EXPECT_EQ(all, 0u);
  EXPECT_NE(DiscreteLaplace(1'000'000, 1, random), DiscreteLaplace(1'000'000, 1, random));
}

}  // namespace
}  // namespace medvault::gateway::privacy
