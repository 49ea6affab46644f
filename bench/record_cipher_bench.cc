// Throughput of the record format (daemon/gateway/record_cipher.h) on
// 1 MiB records, encrypting and decrypting, beside the limit measured in
// the same run: OpenSSL's raw AES-256-GCM over the same bytes, one nonce
// and one tag for the whole MiB. The ratio between them is what the format
// costs: 16 segments with a nonce and a tag each, the header, buffering.
//
// The table's bytes_per_second is plaintext bytes (binary prefixes); the
// summary after it gives MB/s (10^6 bytes) and each record figure as a
// ratio of the raw one. Each iteration is one whole record, key set-up
// included, on both sides; the record is fed as one 1 MiB piece, the size
// of the API's data messages.
//
//   cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release
//   cmake --build build/bench --target record_cipher_bench
//   build/bench/bench/record_cipher_bench
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/gateway/record_cipher.h"

namespace medvault::gateway {
namespace {

constexpr size_t kRecordSize = 1 << 20;

const std::string& Plaintext() {
  static const std::string* plaintext = [] {
    auto* s = new std::string(kRecordSize, '\0');
    RAND_bytes(reinterpret_cast<uint8_t*>(s->data()), kRecordSize);
    return s;
  }();
  return *plaintext;
}

const SecretData& Key() {
  static const SecretData* key = new SecretData(std::string(kRecordKeySize, 'k'));
  return *key;
}

const std::string& Ad() {
  static const std::string* ad =
      new std::string(RecordAssociatedData("patient-1", "record-1", "application/pdf"));
  return *ad;
}

void SetRate(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecordSize);
}

std::string EncryptRecord() {
  std::string out;
  auto encryptor = RecordEncryptor::Create(Key(), Ad());
  if (!encryptor.ok() || !(*encryptor)->Update(Plaintext(), &out).ok() ||
      !(*encryptor)->Finish(&out).ok()) {
    std::cerr << "record_cipher_bench: encryption failed\n";
    std::abort();
  }
  return out;
}

void BM_RecordEncrypt(benchmark::State& state) {
  std::string out;
  out.reserve(CiphertextSize(kRecordSize));
  for (auto _ : state) {
    out.clear();
    auto encryptor = RecordEncryptor::Create(Key(), Ad());
    bool ok = encryptor.ok() && (*encryptor)->Update(Plaintext(), &out).ok() &&
              (*encryptor)->Finish(&out).ok();
    if (!ok) state.SkipWithError("encryption failed");
    benchmark::DoNotOptimize(out.data());
  }
  SetRate(state);
}
BENCHMARK(BM_RecordEncrypt);

void BM_RecordDecrypt(benchmark::State& state) {
  std::string record = EncryptRecord();
  std::string out;
  out.reserve(kRecordSize);
  for (auto _ : state) {
    out.clear();
    auto decryptor = RecordDecryptor::Create(Key(), Ad());
    bool ok = decryptor.ok() && (*decryptor)->Update(record, &out).ok() &&
              (*decryptor)->Finish(&out).ok();
    if (!ok) state.SkipWithError("decryption failed");
    benchmark::DoNotOptimize(out.data());
  }
  SetRate(state);
}
BENCHMARK(BM_RecordDecrypt);

// One AES-256-GCM operation over the whole MiB: key and nonce set, the
// aad, the bytes, the tag. `tag` is read when encrypting, checked when
// decrypting.
bool RawGcm(bool encrypt, const std::string& in, std::string* out, uint8_t tag[16]) {
  static const uint8_t nonce[12] = {};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  auto* dst = reinterpret_cast<uint8_t*>(out->data());
  int len = 0;
  bool ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, Key().data(), nonce, encrypt) == 1 &&
            EVP_CipherUpdate(ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(Ad().data()),
                             static_cast<int>(Ad().size())) == 1 &&
            EVP_CipherUpdate(ctx, dst, &len, reinterpret_cast<const uint8_t*>(in.data()),
                             static_cast<int>(in.size())) == 1 &&
            (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
            EVP_CipherFinal_ex(ctx, dst + len, &len) == 1 &&
            (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

void BM_RawGcmEncrypt(benchmark::State& state) {
  std::string out(kRecordSize, '\0');
  uint8_t tag[16];
  for (auto _ : state) {
    if (!RawGcm(true, Plaintext(), &out, tag)) state.SkipWithError("encryption failed");
    benchmark::DoNotOptimize(out.data());
  }
  SetRate(state);
}
BENCHMARK(BM_RawGcmEncrypt);

void BM_RawGcmDecrypt(benchmark::State& state) {
  std::string ciphertext(kRecordSize, '\0');
  std::string out(kRecordSize, '\0');
  uint8_t tag[16];
  RawGcm(true, Plaintext(), &ciphertext, tag);
  for (auto _ : state) {
    if (!RawGcm(false, ciphertext, &out, tag)) state.SkipWithError("decryption failed");
    benchmark::DoNotOptimize(out.data());
  }
  SetRate(state);
}
BENCHMARK(BM_RawGcmDecrypt);

// The console table, then each record figure in MB/s (10^6 bytes) as a
// ratio of the raw one: the median when repetitions are aggregated, else
// the mean of the runs.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto rate = run.counters.find("bytes_per_second");
      if (run.error_occurred || rate == run.counters.end()) continue;
      Rates& r = rates_[run.run_name.function_name];
      if (run.run_type == Run::RT_Iteration) {
        r.sum += rate->second.value / 1e6;
        ++r.runs;
      } else if (run.aggregate_name == "median") {
        r.median = rate->second.value / 1e6;
      }
    }
  }

  void Finalize() override {
    std::ostream& out = GetOutputStream();
    out << "\n1 MiB records vs raw AES-256-GCM over the same bytes (same run):\n";
    out << absl::StrFormat("%-8s %12s %12s %8s\n", "", "record MB/s", "raw MB/s", "ratio");
    for (const char* op : {"Encrypt", "Decrypt"}) {
      double record = rates_[absl::StrCat("BM_Record", op)].Value();
      double raw = rates_[absl::StrCat("BM_RawGcm", op)].Value();
      if (record == 0 || raw == 0) continue;
      out << absl::StrFormat("%-8s %12.0f %12.0f %8.2f\n", op, record, raw, record / raw);
    }
  }

 private:
  struct Rates {
    double Value() const { return median > 0 ? median : runs > 0 ? sum / runs : 0; }
    double median = 0;
    double sum = 0;
    int runs = 0;
  };
  std::map<std::string, Rates> rates_;
};

}  // namespace
}  // namespace medvault::gateway

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  medvault::gateway::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
