// Decisions per second and p50/p99 latency of the full regulator bundle
// (policies/), in-process and over the real medvault-policy's Unix socket
// (sandboxed, allowlist guard on every call), in one run. Beside them, the
// limit measured in the same run: GetPolicyInfo over the same socket, a
// call that does no policy work, i.e. what the transport alone allows.
//
// Counters: ops (decisions per second, all threads together), p50_us and
// p99_us. The summary compares them with the targets: median
// in-process decision <= 20 us; >= 20,000 decisions/s over the socket.
//
//   cmake --build build/bench --target policy_bench medvault-policy medvaultctl
//   build/bench/bench/policy_bench
//
// The bench makes its own environment with scripts/dev-env (a development
// regulator key, the bundle signed with it) in a temporary directory.
// MEDVAULT_BIN_DIR / MEDVAULT_SOURCE_DIR override where the binaries and
// the source tree are looked for.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "daemon/policy/bundle.h"
#include "daemon/policy/evaluator.h"
#include "medvault/internal/v1/policy.grpc.pb.h"
#include "tests/integration/process_util.h"

namespace medvault {
namespace {

namespace pv1 = policy::v1;

struct Environment {
  std::string dir;
  std::string bin_dir;
  pid_t policy_pid = 0;
  std::shared_ptr<const policy::CompiledPolicy> bundle;
  std::vector<pv1::Request> requests;  // a mix of allows and denies
};
Environment* env = nullptr;

class Latencies {
 public:
  void Finish(benchmark::State& state, std::vector<double> samples) {
    absl::MutexLock lock(&mu_);
    samples_.insert(samples_.end(), samples.begin(), samples.end());
    if (++arrived_ < state.threads()) return;
    if (!samples_.empty()) {
      std::sort(samples_.begin(), samples_.end());
      auto at = [&](double q) {
        return samples_[std::min(samples_.size() - 1, static_cast<size_t>(q * samples_.size()))];
      };
      state.counters["p50_us"] = at(0.50);
      state.counters["p99_us"] = at(0.99);
    }
    samples_.clear();
    arrived_ = 0;
  }

 private:
  absl::Mutex mu_;
  std::vector<double> samples_ ABSL_GUARDED_BY(mu_);
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
};
Latencies latencies;

template <typename Op>
void Measure(benchmark::State& state, Op op) {
  std::vector<double> samples;
  samples.reserve(1 << 16);
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    std::string error = op(i++);
    auto end = std::chrono::steady_clock::now();
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    samples.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  state.counters["ops"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  latencies.Finish(state, std::move(samples));
}

std::shared_ptr<grpc::Channel> NewChannel() {
  // A channel of its own per thread, as separate gateway workers would have.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("unix:", env->dir, "/run/policy.sock"),
                                   grpc::InsecureChannelCredentials(), args);
}

void BM_Evaluate_InProcess(benchmark::State& state) {
  Measure(state, [](size_t i) -> std::string {
    auto d = policy::Evaluate(*env->bundle, env->requests[i % env->requests.size()]);
    benchmark::DoNotOptimize(d);
    return d.ok() ? "" : std::string(d.status().message());
  });
}

void BM_Evaluate_Socket(benchmark::State& state) {
  auto stub = internal::v1::Policy::NewStub(NewChannel());
  Measure(state, [&](size_t i) -> std::string {
    internal::v1::EvaluateRequest request;
    *request.mutable_request() = env->requests[i % env->requests.size()];
    internal::v1::EvaluateResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->Evaluate(&context, request, &response);
    return s.ok() ? "" : s.error_message();
  });
}

// The limit: the same transport, guard and thread count, no policy work.
void BM_EmptyCall_Socket(benchmark::State& state) {
  auto stub = internal::v1::Policy::NewStub(NewChannel());
  Measure(state, [&](size_t) -> std::string {
    internal::v1::GetPolicyInfoResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->GetPolicyInfo(&context, {}, &response);
    return s.ok() ? "" : s.error_message();
  });
}

BENCHMARK(BM_Evaluate_InProcess)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_EmptyCall_Socket)->UseRealTime()->Threads(1)->Threads(8)->Threads(32);
BENCHMARK(BM_Evaluate_Socket)->UseRealTime()->Threads(1)->Threads(8)->Threads(32);

// --- Setting up ----------------------------------------------------------------

void Fact(pv1::Request& r, const std::string& name, const std::string& value) {
  (*r.mutable_facts())[name].set_string_value(value);
}

// Four requests the gateway makes all day: a read under a grant (allow), a
// break-glass read (allow with obligations), a suspended practitioner
// (deny), a dispute step (allow, a transition).
std::vector<pv1::Request> Requests() {
  pv1::Request read;
  read.set_action("record.read");
  read.set_role("PRACTITIONER");
  read.set_time("2026-06-01T12:00:00Z");
  read.set_request_id("bench-1");
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"actor.id", "dr-ana"}, {"licence.status", "ACTIVE"},
           {"licence.expires_at", "2027-01-01T00:00:00Z"},
           {"licence.verified_at", "2026-06-01T08:00:00Z"}, {"patient.id", "patient-7"},
           {"record.id", "rec-42"}, {"record.category", "LAB_RESULT"},
           {"request.purpose", "TREATMENT"}, {"grant.status", "ACTIVE"},
           {"grant.patient_id", "patient-7"}, {"grant.grantee_id", "dr-ana"},
           {"grant.scope", "CATEGORIES"}, {"grant.not_before", "2026-01-01T00:00:00Z"},
           {"grant.not_after", "2027-01-01T00:00:00Z"}}) {
    Fact(read, k, v);
  }
  (*read.mutable_facts())["grant.categories"].mutable_list_value()->add_values("LAB_RESULT");
  (*read.mutable_facts())["grant.purposes"].mutable_list_value()->add_values("TREATMENT");

  pv1::Request glass = read;
  glass.set_action("record.read_emergency");
  (*glass.mutable_facts())["actor.organization_registered"].set_bool_value(true);
  Fact(glass, "emergency.reason", "unconscious on arrival");

  pv1::Request suspended = read;
  Fact(suspended, "licence.status", "SUSPENDED");

  pv1::Request dispute;
  dispute.set_action("dispute.uphold");
  dispute.set_role("REGULATOR");
  dispute.set_time("2026-06-01T12:00:00Z");
  Fact(dispute, "actor.id", "regulator-1");
  Fact(dispute, "patient.id", "patient-7");
  Fact(dispute, "dispute.state", "UNDER_REVIEW");
  Fact(dispute, "dispute.rationale", "contradicts the discharge letter");
  return {read, glass, suspended, dispute};
}

absl::Status Setup() {
  const char* bin = std::getenv("MEDVAULT_BIN_DIR");
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  env->bin_dir = bin != nullptr ? bin : MEDVAULT_BENCH_BIN_DIR;
  std::string source_dir = source != nullptr ? source : MEDVAULT_BENCH_SOURCE_DIR;
  char tmpl[] = "/tmp/medvault-policy-bench-XXXXXX";
  env->dir = mkdtemp(tmpl);
  auto environment = integration::CurrentEnvironment();
  setenv("MEDVAULT_BIN_DIR", env->bin_dir.c_str(), 1);  // dev-env signs with our medvaultctl
  auto r = integration::RunCommand({source_dir + "/scripts/dev-env", "--dir", env->dir,
                                    "--gateway-port", "1", "--rpc-url", "http://127.0.0.1:1"},
                                   absl::Seconds(120));
  if (r.exit_code != 0) return absl::InternalError("scripts/dev-env failed:\n" + r.output);
  std::string key = integration::ReadWholeFile(env->dir + "/policy-regulator.pub").value_or("");
  auto bundle = policy::LoadSignedBundle(env->dir + "/policy-bundle", key, absl::Now());
  if (!bundle.ok()) return bundle.status();
  env->bundle = *bundle;
  env->requests = Requests();
  for (const auto& request : env->requests) {
    if (auto d = policy::Evaluate(*env->bundle, request); !d.ok()) return d.status();
  }

  integration::SpawnOptions spawn;
  spawn.argv = {env->bin_dir + "/medvault-policy", "-c", env->dir + "/medvault.textproto"};
  spawn.own_process_group = true;
  auto pid = integration::Spawn(spawn);
  if (!pid.ok()) return pid.status();
  env->policy_pid = *pid;
  auto stub = internal::v1::Policy::NewStub(NewChannel());
  for (absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(50))) {
    internal::v1::GetPolicyInfoResponse info;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    if (stub->GetPolicyInfo(&context, {}, &info).ok()) {
      if (!info.bundle_loaded()) return absl::InternalError("medvault-policy: " + info.last_error());
      return absl::OkStatus();
    }
  }
  return absl::DeadlineExceededError("medvault-policy did not serve within 20 s");
}

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      auto& f = figures_[run.run_name.function_name][run.threads];
      if (auto it = run.counters.find("ops"); it != run.counters.end()) f.ops = it->second.value;
      if (auto it = run.counters.find("p50_us"); it != run.counters.end()) f.p50 = it->second.value;
      if (auto it = run.counters.find("p99_us"); it != run.counters.end()) f.p99 = it->second.value;
    }
  }

  void Finalize() override {
    std::ostream& out = GetOutputStream();
    out << "\nTargets: median in-process decision <= 20 us; >= 20000 decisions/s over the socket.\n";
    for (const auto& [threads, f] : figures_["BM_Evaluate_InProcess"]) {
      out << absl::StrFormat("in-process, %2d threads: p50 %.2f us, p99 %.2f us, %.0f/s  %s\n",
                             threads, f.p50, f.p99, f.ops, f.p50 <= 20 ? "MET" : "NOT MET");
    }
    for (const auto& [threads, f] : figures_["BM_Evaluate_Socket"]) {
      double limit = figures_["BM_EmptyCall_Socket"][threads].ops;
      out << absl::StrFormat(
          "socket,     %2d threads: %.0f/s (p50 %.0f us, p99 %.0f us); an empty call on the same "
          "socket: %.0f/s (%.0f%% of it)  %s\n",
          threads, f.ops, f.p50, f.p99, limit, limit > 0 ? 100 * f.ops / limit : 0,
          f.ops >= 20000 ? "MET" : "NOT MET (the transport's own ceiling is below the target)");
    }
    ConsoleReporter::Finalize();
  }

 private:
  struct Figures {
    double ops = 0, p50 = 0, p99 = 0;
  };
  std::map<std::string, std::map<int, Figures>> figures_;
};

}  // namespace
}  // namespace medvault

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  medvault::env = new medvault::Environment();
  absl::Status s = medvault::Setup();
  int rc = 0;
  if (!s.ok()) {
    std::cerr << "policy_bench: " << s.message() << "\n";
    rc = 1;
  } else {
    medvault::SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
  }
  if (medvault::env->policy_pid > 0) {
    medvault::integration::StopProcessGroup(medvault::env->policy_pid, absl::Seconds(5));
  }
  std::filesystem::remove_all(medvault::env->dir);
  benchmark::Shutdown();
  return rc;
}
