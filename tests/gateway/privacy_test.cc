// The research-statistics mechanisms (privacy.h): suppression below k that
// draws no noise, the mechanisms' validation and scale, the budget, and the
// Laplace and Gaussian draws checked against their distributions.
#include "daemon/gateway/privacy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway::privacy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

MATCHER_P(StatusIs, code, "") { return arg.code() == code; }

// A seeded, deterministic RandomSource that counts its draws.
class SeededRandom : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  double Uniform() override {
    ++calls_;
    uint64_t bits = 0;
    do {
      bits = engine_() >> 11;
    } while (bits == 0);
    return static_cast<double>(bits) * 0x1p-53;
  }

  int calls() const { return calls_; }

 private:
  std::mt19937_64 engine_;
  int calls_ = 0;
};

// Always returns the same value; counts its draws.
class FixedRandom : public RandomSource {
 public:
  explicit FixedRandom(double value) : value_(value) {}
  double Uniform() override {
    ++calls_;
    return value_;
  }
  int calls() const { return calls_; }

 private:
  double value_;
  int calls_ = 0;
};

constexpr int kDraws = 200'000;

Mechanism Laplace(double epsilon) {
  return {.kind = Mechanism::kLaplace, .epsilon = epsilon, .delta = 0, .sensitivity = 1};
}

Mechanism Gaussian(double epsilon, double delta) {
  return {.kind = Mechanism::kGaussian, .epsilon = epsilon, .delta = delta, .sensitivity = 1};
}

double LaplaceCdf(double x, double b) {
  return x < 0 ? 0.5 * std::exp(x / b) : 1 - 0.5 * std::exp(-x / b);
}

double NormalCdf(double x, double sigma) { return 0.5 * std::erfc(-x / (sigma * std::sqrt(2.0))); }

// The Kolmogorov–Smirnov statistic of `draws` against `cdf`.
double KsStatistic(std::vector<double> draws, const std::function<double(double)>& cdf) {
  std::sort(draws.begin(), draws.end());
  const double n = static_cast<double>(draws.size());
  double d = 0;
  for (size_t i = 0; i < draws.size(); ++i) {
    const double f = cdf(draws[i]);
    d = std::max({d, (static_cast<double>(i) + 1) / n - f, f - static_cast<double>(i) / n});
  }
  return d;
}

// The critical value of the KS statistic at the 0.1 % level, for large n.
double KsCritical(size_t n) { return 1.95 / std::sqrt(static_cast<double>(n)); }

std::vector<double> Draw(const std::function<double()>& one) {
  std::vector<double> draws(kDraws);
  for (double& x : draws) x = one();
  return draws;
}

double Mean(const std::vector<double>& xs) {
  double sum = 0;
  for (double x : xs) sum += x;
  return sum / static_cast<double>(xs.size());
}

double Variance(const std::vector<double>& xs) {
  const double mean = Mean(xs);
  double sum = 0;
  for (double x : xs) sum += (x - mean) * (x - mean);
  return sum / static_cast<double>(xs.size() - 1);
}

// --- Release -----------------------------------------------------------

// A cell below k is suppressed with value 0 and draws no noise at all.
TEST(ReleaseTest, CellBelowKIsSuppressedAndDrawsNothing) {
  SeededRandom random(1);
  const std::vector<ReleasedCell> out =
      Release({{.key = {"2024", "rare"}, .count = 4}}, 5, Laplace(0.5), random);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, (std::vector<std::string>{"2024", "rare"}));
  EXPECT_TRUE(out[0].suppressed);
  EXPECT_EQ(out[0].value, 0);
  EXPECT_EQ(random.calls(), 0);
}

// The noise of later cells does not depend on a suppressed cell's count:
// the same draws follow whether or not a suppressed cell came first.
TEST(ReleaseTest, SuppressedCellDoesNotShiftLaterNoise) {
  SeededRandom a(7);
  SeededRandom b(7);
  const std::vector<ReleasedCell> with =
      Release({{.key = {"x"}, .count = 1}, {.key = {"y"}, .count = 100}}, 5, Laplace(0.5), a);
  const std::vector<ReleasedCell> without =
      Release({{.key = {"y"}, .count = 100}}, 5, Laplace(0.5), b);
  ASSERT_EQ(with.size(), 2u);
  ASSERT_EQ(without.size(), 1u);
  EXPECT_EQ(with[1].value, without[0].value);
  EXPECT_EQ(a.calls(), b.calls());
}

// A cell with count exactly k is released, drawing once (Laplace) or twice
// (Gaussian), as an integer >= 0.
TEST(ReleaseTest, CellAtKIsReleased) {
  SeededRandom laplace_random(2);
  const std::vector<ReleasedCell> laplace =
      Release({{.key = {"a"}, .count = 5}}, 5, Laplace(0.5), laplace_random);
  ASSERT_EQ(laplace.size(), 1u);
  EXPECT_FALSE(laplace[0].suppressed);
  EXPECT_EQ(laplace[0].value, std::round(laplace[0].value));
  EXPECT_GE(laplace[0].value, 0);
  EXPECT_EQ(laplace_random.calls(), 1);

  SeededRandom gaussian_random(3);
  const std::vector<ReleasedCell> gaussian =
      Release({{.key = {"a"}, .count = 5}}, 5, Gaussian(0.5, 1e-6), gaussian_random);
  ASSERT_EQ(gaussian.size(), 1u);
  EXPECT_FALSE(gaussian[0].suppressed);
  EXPECT_EQ(gaussian[0].value, std::round(gaussian[0].value));
  EXPECT_EQ(gaussian_random.calls(), 2);
}

// Zero noise (u = 1/2) releases the true count; the order and keys of the
// cells are kept.
TEST(ReleaseTest, ZeroNoiseReleasesTrueCountInOrder) {
  FixedRandom random(0.5);
  const std::vector<ReleasedCell> out = Release(
      {{.key = {"a"}, .count = 12}, {.key = {"b"}, .count = 2}, {.key = {"c"}, .count = 30}}, 10,
      Laplace(1), random);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].key, std::vector<std::string>{"a"});
  EXPECT_EQ(out[0].value, 12);
  EXPECT_TRUE(out[1].suppressed);
  EXPECT_EQ(out[2].key, std::vector<std::string>{"c"});
  EXPECT_EQ(out[2].value, 30);
  EXPECT_EQ(random.calls(), 2);
}

// Large negative noise is clamped at 0 rather than released as a negative
// count.
TEST(ReleaseTest, NegativeNoisyCountIsClampedAtZero) {
  FixedRandom random(1e-12);  // Laplace noise of about -27.6 b.
  const std::vector<ReleasedCell> out =
      Release({{.key = {"a"}, .count = 5}}, 5, Laplace(0.5), random);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].suppressed);
  EXPECT_EQ(out[0].value, 0);
}

// An invalid mechanism releases nothing and draws nothing.
TEST(ReleaseTest, InvalidMechanismSuppressesEverything) {
  SeededRandom random(4);
  const std::vector<ReleasedCell> out =
      Release({{.key = {"a"}, .count = 500}}, 5, Laplace(0), random);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].suppressed);
  EXPECT_EQ(out[0].value, 0);
  EXPECT_EQ(random.calls(), 0);
}

// --- Mechanism ---------------------------------------------------------

// Valid mechanisms pass, and their scales follow the documented formulas.
TEST(MechanismTest, ValidMechanismsAndScales) {
  EXPECT_TRUE(Laplace(0.5).Validate().ok());
  EXPECT_DOUBLE_EQ(Laplace(0.5).Scale(), 2);
  Mechanism m = Laplace(0.25);
  m.sensitivity = 3;
  EXPECT_DOUBLE_EQ(m.Scale(), 12);

  EXPECT_TRUE(Gaussian(0.5, 1e-5).Validate().ok());
  EXPECT_DOUBLE_EQ(Gaussian(0.5, 1e-5).Scale(), std::sqrt(2 * std::log(1.25 / 1e-5)) / 0.5);
}

// Each bad member is refused with INVALID_ARGUMENT naming it.
TEST(MechanismTest, ValidateNamesTheBadMember) {
  const auto expect_bad = [](const Mechanism& m, const std::string& member) {
    const absl::Status status = m.Validate();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << member;
    EXPECT_THAT(std::string(status.message()), StartsWith(member));
  };
  expect_bad(Laplace(0), "epsilon");
  expect_bad(Laplace(-1), "epsilon");
  expect_bad(Laplace(INFINITY), "epsilon");
  expect_bad(Laplace(NAN), "epsilon");
  expect_bad(Gaussian(1, 1e-5), "epsilon");  // The analytic bound needs epsilon < 1.
  expect_bad(Gaussian(2, 1e-5), "epsilon");

  Mechanism laplace_delta = Laplace(1);
  laplace_delta.delta = 1e-6;
  expect_bad(laplace_delta, "delta");
  expect_bad(Gaussian(0.5, 0), "delta");
  expect_bad(Gaussian(0.5, 1), "delta");
  expect_bad(Gaussian(0.5, -0.1), "delta");
  expect_bad(Gaussian(0.5, NAN), "delta");

  for (double sensitivity : {0.0, -1.0, static_cast<double>(INFINITY)}) {
    Mechanism m = Laplace(1);
    m.sensitivity = sensitivity;
    expect_bad(m, "sensitivity");
  }

  Mechanism kind = Laplace(1);
  kind.kind = static_cast<Mechanism::Kind>(7);
  expect_bad(kind, "kind");
}

// --- PrivacyBudget -----------------------------------------------------

// Spending within the budget succeeds and is subtracted.
TEST(PrivacyBudgetTest, SpendsWithinBudget) {
  PrivacyBudget budget(1.0, 1e-5);
  ASSERT_TRUE(budget.Spend(0.4, 1e-6).ok());
  EXPECT_DOUBLE_EQ(budget.remaining_epsilon(), 0.6);
  EXPECT_DOUBLE_EQ(budget.remaining_delta(), 9e-6);
}

// Once the budget would be exceeded, Spend refuses, names what is left and
// spends nothing; further spending that fits still works, then it runs out.
TEST(PrivacyBudgetTest, RunsOutAndRefusesWithoutSpending) {
  PrivacyBudget budget(1.0, 1e-5);
  ASSERT_TRUE(budget.Spend(0.7, 0).ok());
  const absl::Status refused = budget.Spend(0.5, 0);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("remaining epsilon 0.3"));
  EXPECT_DOUBLE_EQ(budget.remaining_epsilon(), 0.3);
  EXPECT_DOUBLE_EQ(budget.remaining_delta(), 1e-5);

  // Delta over, epsilon fine: still refused and nothing spent.
  EXPECT_THAT(budget.Spend(0.1, 2e-5), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_DOUBLE_EQ(budget.remaining_epsilon(), 0.3);

  ASSERT_TRUE(budget.Spend(0.3, 1e-5).ok());
  EXPECT_EQ(budget.remaining_epsilon(), 0);
  EXPECT_EQ(budget.remaining_delta(), 0);
  EXPECT_THAT(budget.Spend(1e-6, 0), StatusIs(absl::StatusCode::kResourceExhausted));
}

// Floating-point sums that equal the total (0.1 + 0.1 + 0.1 for 0.3) are
// not refused for rounding.
TEST(PrivacyBudgetTest, RoundingDoesNotRefuseExactSpend) {
  PrivacyBudget budget(0.3, 0);
  EXPECT_TRUE(budget.Spend(0.1, 0).ok());
  EXPECT_TRUE(budget.Spend(0.1, 0).ok());
  EXPECT_TRUE(budget.Spend(0.1, 0).ok());
  EXPECT_EQ(budget.remaining_epsilon(), 0);
}

// Negative or non-finite amounts are INVALID_ARGUMENT and spend nothing.
TEST(PrivacyBudgetTest, RefusesBadAmounts) {
  PrivacyBudget budget(1.0, 1e-5);
  EXPECT_THAT(budget.Spend(-0.1, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(budget.Spend(NAN, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(budget.Spend(0.1, -1e-6), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_DOUBLE_EQ(budget.remaining_epsilon(), 1.0);
  EXPECT_DOUBLE_EQ(budget.remaining_delta(), 1e-5);
}

// A budget constructed with a bad total allows nothing.
TEST(PrivacyBudgetTest, BadTotalAllowsNothing) {
  PrivacyBudget budget(NAN, -1);
  EXPECT_EQ(budget.remaining_epsilon(), 0);
  EXPECT_EQ(budget.remaining_delta(), 0);
  EXPECT_THAT(budget.Spend(0.01, 0), StatusIs(absl::StatusCode::kResourceExhausted));
}

// --- Noise distributions -----------------------------------------------

// Laplace draws follow the Laplace(0, b) CDF (KS at the 0.1 % level), with
// mean 0 and variance 2 b^2 within five standard errors.
TEST(NoiseTest, LaplaceMatchesItsDistribution) {
  const double b = 2.0;
  SeededRandom random(42);
  const std::vector<double> draws = Draw([&] { return LaplaceNoise(b, random); });
  EXPECT_EQ(random.calls(), kDraws);

  EXPECT_LT(KsStatistic(draws, [b](double x) { return LaplaceCdf(x, b); }), KsCritical(kDraws));
  const double n = kDraws;
  // Var(X) = 2 b^2; the fourth central moment is 24 b^4, so the sample
  // variance has standard error b^2 sqrt(20 / n).
  EXPECT_NEAR(Mean(draws), 0, 5 * std::sqrt(2 * b * b / n));
  EXPECT_NEAR(Variance(draws), 2 * b * b, 5 * b * b * std::sqrt(20 / n));
}

// Gaussian draws follow the Normal(0, sigma^2) CDF (KS at the 0.1 % level),
// with mean 0 and variance sigma^2 within five standard errors.
TEST(NoiseTest, GaussianMatchesItsDistribution) {
  const double sigma = 3.0;
  SeededRandom random(43);
  const std::vector<double> draws = Draw([&] { return GaussianNoise(sigma, random); });
  EXPECT_EQ(random.calls(), 2 * kDraws);

  EXPECT_LT(KsStatistic(draws, [sigma](double x) { return NormalCdf(x, sigma); }),
            KsCritical(kDraws));
  const double n = kDraws;
  // The sample variance of a normal has standard error sigma^2 sqrt(2 / n).
  EXPECT_NEAR(Mean(draws), 0, 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(Variance(draws), sigma * sigma, 5 * sigma * sigma * std::sqrt(2 / n));
}

// The KS check can fail: draws at twice the scale are rejected against the
// CDF of the intended scale, for both mechanisms.
TEST(NoiseTest, WrongScaleFailsTheKsCheck) {
  const double b = 2.0;
  SeededRandom laplace_random(44);
  const std::vector<double> laplace = Draw([&] { return LaplaceNoise(2 * b, laplace_random); });
  EXPECT_GT(KsStatistic(laplace, [b](double x) { return LaplaceCdf(x, b); }), KsCritical(kDraws));

  const double sigma = 3.0;
  SeededRandom gaussian_random(45);
  const std::vector<double> gaussian =
      Draw([&] { return GaussianNoise(2 * sigma, gaussian_random); });
  EXPECT_GT(KsStatistic(gaussian, [sigma](double x) { return NormalCdf(x, sigma); }),
            KsCritical(kDraws));
}

// --- SecureRandom ------------------------------------------------------

// SecureRandom stays in the open interval (0, 1) and has mean 1/2 within
// five standard errors.
TEST(SecureRandomTest, OpenIntervalAndMeanOneHalf) {
  constexpr int kN = 100'000;
  SecureRandom random;
  double sum = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = random.Uniform();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / kN, 0.5, 5 * std::sqrt(1.0 / 12 / kN));
}

}  // namespace
}  // namespace medvault::gateway::privacy
