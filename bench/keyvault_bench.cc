// Throughput and latency of the keyvault's hot calls, GenerateDataKey,
// Decrypt and SignDigest, made over the real medvault-keyvault's Unix
// socket (sandboxed, dropped to its user, allowlist guard on every call) by
// 1 and 8 client threads with a connection each, beside the limit: the same
// operations called in-process on KeyHierarchy / ChainKey over a SoftHSM2
// token of the bench's own, with the same number of PKCS#11 sessions (4).
//
// Counters: ops (operations per second, all threads together), p50_us and
// p99_us (latency of one operation, over every thread's samples). At the
// end a summary prints each socket figure as a ratio of the in-process one
// measured in the same run, against the targets (GenerateDataKey
// and Decrypt at least 10,000/s over the socket and within 2x of
// in-process on a 2-core machine).
//
//   cmake --build build/bench --target keyvault_bench && build/bench/bench/keyvault_bench
//
// As root, as in production, the keyvault drops to medvault-keyvault.
// MEDVAULT_BIN_DIR / MEDVAULT_SOURCE_DIR override where medvault-keyvault
// and scripts/dev-env are looked for (default: this build tree and its
// source tree).
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/logging.h"
#include "keyvault/data_keys.h"
#include "keyvault/signing_keys.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "tests/integration/keyvault_process.h"
#include "tests/keyvault/test_token.h"

namespace medvault {
namespace {

namespace v1 = internal::v1;

// Data keys are made for, and opened from, this many patients: their
// derived keys stay cached (the default cache holds 1024), as in a
// steady-state deployment.
constexpr int kPatients = 32;
constexpr int kBlobsToOpen = 256;
// Same session pool as the keyvault's default (keyvault.pkcs11.sessions).
constexpr int kSessions = 4;

struct Blob {
  keyvault::DataKeyContext context;
  std::string wrapped;
  std::string plaintext;
};

v1::DataKeyContext ToProto(const keyvault::DataKeyContext& c) {
  v1::DataKeyContext out;
  out.set_patient_id(c.patient_id);
  out.set_record_id(c.record_id);
  out.set_purpose(c.purpose);
  return out;
}

keyvault::DataKeyContext BenchContext(int patient, const std::string& record) {
  return {absl::StrCat("bench-patient-", patient), record, "record"};
}

// Everything the benchmarks share, made once in main().
struct Environment {
  // The real keyvault and the blobs made through it.
  std::unique_ptr<integration::KeyvaultProcess> process;
  std::vector<Blob> socket_blobs;
  // The in-process limit: a token of the bench's own.
  std::unique_ptr<keyvault::TestToken> token;
  std::unique_ptr<keyvault::KeyHierarchy> keys;
  std::unique_ptr<keyvault::ChainKey> chain;
  std::vector<Blob> local_blobs;
  std::vector<std::string> digests;
};
Environment* env = nullptr;

// Latency samples of every thread of one benchmark run. The last thread to
// finish sets p50_us and p99_us (counters are summed over threads, so the
// others leave them unset) and clears the samples for the next run.
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

// Runs `op(i)` once per iteration, timing each call; `op` returns an error
// message, empty on success.
template <typename Op>
void Measure(benchmark::State& state, Op op) {
  std::vector<double> samples;
  samples.reserve(1 << 16);
  int64_t i = state.thread_index() * 1000003LL;
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

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ", status.error_message());
}

// A stub with a connection of its own, already connected.
std::unique_ptr<v1::KeyVault::Stub> ConnectedStub() {
  auto channel = env->process->NewChannel(/*own_connection=*/true);
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1::KeyVault::NewStub(channel);
}

// --- Over the socket -----------------------------------------------------------

void BM_GenerateDataKey_Socket(benchmark::State& state) {
  auto stub = ConnectedStub();
  const std::string thread = absl::StrCat("t", state.thread_index(), "-");
  Measure(state, [&](int64_t i) -> std::string {
    v1::GenerateDataKeyRequest request;
    *request.mutable_context() =
        ToProto(BenchContext(static_cast<int>(i % kPatients), absl::StrCat(thread, i)));
    v1::GenerateDataKeyResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->GenerateDataKey(&context, request, &response);
    if (!status.ok()) return Describe(status);
    return response.plaintext_key().size() == 32 ? "" : "wrong key size";
  });
}

void BM_Decrypt_Socket(benchmark::State& state) {
  auto stub = ConnectedStub();
  Measure(state, [&](int64_t i) -> std::string {
    const Blob& blob = env->socket_blobs[static_cast<size_t>(i) % env->socket_blobs.size()];
    v1::DecryptRequest request;
    request.set_wrapped_key(blob.wrapped);
    *request.mutable_context() = ToProto(blob.context);
    v1::DecryptResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->Decrypt(&context, request, &response);
    if (!status.ok()) return Describe(status);
    return response.plaintext_key() == blob.plaintext ? "" : "wrong plaintext";
  });
}

void BM_SignDigest_Socket(benchmark::State& state) {
  auto stub = ConnectedStub();
  Measure(state, [&](int64_t i) -> std::string {
    v1::SignDigestRequest request;
    request.set_digest(env->digests[static_cast<size_t>(i) % env->digests.size()]);
    v1::SignDigestResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->SignDigest(&context, request, &response);
    if (!status.ok()) return Describe(status);
    return response.r().size() == 32 ? "" : "wrong signature size";
  });
}

// --- In-process on the token (the limit) ---------------------------------------

void BM_GenerateDataKey_InProcess(benchmark::State& state) {
  const std::string thread = absl::StrCat("t", state.thread_index(), "-");
  Measure(state, [&](int64_t i) -> std::string {
    auto key =
        env->keys->Generate(BenchContext(static_cast<int>(i % kPatients), absl::StrCat(thread, i)));
    if (!key.ok()) return key.status().ToString();
    benchmark::DoNotOptimize(key->blob.data());
    return "";
  });
}

void BM_Decrypt_InProcess(benchmark::State& state) {
  Measure(state, [&](int64_t i) -> std::string {
    const Blob& blob = env->local_blobs[static_cast<size_t>(i) % env->local_blobs.size()];
    auto key = env->keys->Decrypt(blob.wrapped, blob.context);
    if (!key.ok()) return key.status().ToString();
    return key->size() == 32 ? "" : "wrong key size";
  });
}

void BM_SignDigest_InProcess(benchmark::State& state) {
  Measure(state, [&](int64_t i) -> std::string {
    auto signature =
        env->chain->SignDigest(env->digests[static_cast<size_t>(i) % env->digests.size()]);
    if (!signature.ok()) return signature.status().ToString();
    benchmark::DoNotOptimize(signature->r.data());
    return "";
  });
}

#define MEDVAULT_KEYVAULT_BENCHMARK(fn) BENCHMARK(fn)->UseRealTime()->Threads(1)->Threads(8)
MEDVAULT_KEYVAULT_BENCHMARK(BM_GenerateDataKey_Socket);
MEDVAULT_KEYVAULT_BENCHMARK(BM_GenerateDataKey_InProcess);
MEDVAULT_KEYVAULT_BENCHMARK(BM_Decrypt_Socket);
MEDVAULT_KEYVAULT_BENCHMARK(BM_Decrypt_InProcess);
MEDVAULT_KEYVAULT_BENCHMARK(BM_SignDigest_Socket);
MEDVAULT_KEYVAULT_BENCHMARK(BM_SignDigest_InProcess);

// --- Setting up ----------------------------------------------------------------

absl::Status StartKeyvault() {
  integration::KeyvaultProcess::Options options;
  const char* bin = std::getenv("MEDVAULT_BIN_DIR");
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  options.bin_dir = bin != nullptr ? bin : MEDVAULT_BENCH_BIN_DIR;
  options.source_dir = source != nullptr ? source : MEDVAULT_BENCH_SOURCE_DIR;
  options.sessions = kSessions;
  options.quiet = true;
  auto process = integration::KeyvaultProcess::Create(options);
  if (!process.ok()) return process.status();
  env->process = *std::move(process);
  if (auto s = env->process->Start(); !s.ok()) return s;

  auto stub = env->process->NewStub();
  for (int n = 0; n < kBlobsToOpen; ++n) {
    keyvault::DataKeyContext context = BenchContext(n % kPatients, absl::StrCat("open-", n));
    v1::GenerateDataKeyRequest request;
    *request.mutable_context() = ToProto(context);
    v1::GenerateDataKeyResponse response;
    grpc::ClientContext call;
    grpc::Status status = stub->GenerateDataKey(&call, request, &response);
    if (!status.ok())
      return absl::InternalError(absl::StrCat("GenerateDataKey: ", Describe(status)));
    env->socket_blobs.push_back({context, response.wrapped_key(), response.plaintext_key()});
  }
  return absl::OkStatus();
}

absl::Status OpenLocalKeys() {
  auto token = keyvault::TestToken::Create(kSessions);
  if (!token.ok()) return token.status();
  env->token = *std::move(token);
  auto keys = keyvault::KeyHierarchy::Open(env->token->token(), {env->token->dir(), 1024});
  if (!keys.ok()) return keys.status();
  env->keys = *std::move(keys);
  if (auto created = env->keys->InitializeMissing({}); !created.ok()) return created.status();
  if (auto created = keyvault::ChainKey::Create(env->token->token()); !created.ok()) {
    return created.status();
  }
  auto chain = keyvault::ChainKey::Load(env->token->token());
  if (!chain.ok()) return chain.status();
  env->chain = *std::move(chain);
  for (int n = 0; n < kBlobsToOpen; ++n) {
    keyvault::DataKeyContext context = BenchContext(n % kPatients, absl::StrCat("open-", n));
    auto key = env->keys->Generate(context);
    if (!key.ok()) return key.status();
    env->local_blobs.push_back(
        {context, key->blob,
         std::string(reinterpret_cast<const char*>(key->plaintext.data()), key->plaintext.size())});
  }
  for (int n = 0; n < 1024; ++n) {
    std::string digest(32, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(digest.data()), 32);
    env->digests.push_back(digest);
  }
  return absl::OkStatus();
}

// The console table, then each socket figure as a ratio of the in-process
// one of the same operation and thread count, against the targets.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      auto ops = run.counters.find("ops");
      if (ops == run.counters.end()) continue;
      ops_[run.run_name.function_name][run.threads] = ops->second.value;
    }
  }

  void Finalize() override {
    std::ostream& out = GetOutputStream();
    out << "\nSocket vs in-process (same run; target: GenerateDataKey and Decrypt >= 10000/s "
           "over the socket and socket/in-process >= 0.50):\n";
    out << absl::StrFormat("%-16s %7s %14s %14s %8s  %s\n", "operation", "threads", "socket ops/s",
                           "in-proc ops/s", "ratio", "target");
    for (const char* op : {"GenerateDataKey", "Decrypt", "SignDigest"}) {
      const auto& socket = ops_[absl::StrCat("BM_", op, "_Socket")];
      const auto& local = ops_[absl::StrCat("BM_", op, "_InProcess")];
      for (const auto& [threads, socket_ops] : socket) {
        auto it = local.find(threads);
        if (it == local.end()) continue;
        double ratio = socket_ops / it->second;
        std::string verdict = "(no target)";
        if (std::string(op) != "SignDigest") {
          std::vector<std::string> missed;
          if (socket_ops < 10000) {
            missed.push_back(absl::StrFormat("%.0f/s short of 10000/s (%.0f%%)", 10000 - socket_ops,
                                             100 * (1 - socket_ops / 10000)));
          }
          if (ratio < 0.5)
            missed.push_back(absl::StrFormat("%.2fx slower than in-process", 1 / ratio));
          verdict = missed.empty() ? "met" : absl::StrCat("MISSED: ", absl::StrJoin(missed, "; "));
        }
        out << absl::StrFormat("%-16s %7d %14.0f %14.0f %8.2f  %s\n", op, threads, socket_ops,
                               it->second, ratio, verdict);
      }
    }
  }

 private:
  std::map<std::string, std::map<int64_t, double>> ops_;
};

}  // namespace
}  // namespace medvault

int main(int argc, char** argv) {
  medvault::log::Init("bench", medvault::log::Level::kWarning, medvault::log::Format::kLogfmt);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  medvault::Environment environment;
  medvault::env = &environment;
  if (auto s = medvault::StartKeyvault(); !s.ok()) {
    std::cerr << "keyvault_bench: cannot start medvault-keyvault: " << s << "\n";
    if (environment.process) std::cerr << environment.process->ReadLog();
    return 1;
  }
  if (auto s = medvault::OpenLocalKeys(); !s.ok()) {
    std::cerr << "keyvault_bench: cannot prepare the in-process token: " << s << "\n";
    return 1;
  }
  std::cerr << "medvault-keyvault pid " << environment.process->pid() << " serving on "
            << environment.process->socket_path() << "\n";

  medvault::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  int rc = 0;
  if (std::optional<int> exited = environment.process->Exited()) {
    std::cerr << "keyvault_bench: medvault-keyvault died during the run (wait status " << *exited
              << "); log:\n"
              << environment.process->ReadLog();
    rc = 1;
  }
  return rc;
}
