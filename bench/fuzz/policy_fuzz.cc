// libFuzzer target: the policy compiler and Evaluate must never crash,
// whatever the bytes. The first byte picks what the rest is:
//   even: a policy file, compiled beside the regulator's vocabulary;
//   odd:  a Request (binary protobuf), decided by the regulator's bundle.
//
//   cmake -S . -B build/fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
//     -DMEDVAULT_BUILD_FUZZ=ON -DMEDVAULT_BUILD_TESTS=OFF
//   cmake --build build/fuzz --target policy_fuzz
//   build/fuzz/bench/policy_fuzz -max_total_time=300 -max_len=8192
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "daemon/policy/bundle.h"
#include "daemon/policy/evaluator.h"
#include "daemon/policy/policy_loader.h"

namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string& Vocabulary() {
  static const std::string* text =
      new std::string(Read(std::string(MEDVAULT_FUZZ_SOURCE_DIR) + "/policies/vocabulary.textproto"));
  return *text;
}

const medvault::policy::CompiledPolicy& Bundle() {
  static const auto* policy = [] {
    auto files = medvault::policy::ReadBundle(std::string(MEDVAULT_FUZZ_SOURCE_DIR) + "/policies");
    if (!files.ok()) abort();
    auto p = medvault::policy::CompileBundle(*files);
    if (!p.ok()) abort();
    return new std::shared_ptr<const medvault::policy::CompiledPolicy>(*p);
  }();
  return **policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto p = medvault::policy::CompilePolicy(
        {{"vocabulary.textproto", Vocabulary()}, {"fuzz.textproto", rest}});
    if (p.ok()) {
      // Whatever compiled must also decide without crashing.
      medvault::policy::v1::Request r;
      r.set_action((*p)->actions.empty() ? "x" : (*p)->actions[0].name);
      r.set_role((*p)->roles.empty() ? "x" : (*p)->roles[0]);
      r.set_time("2026-06-01T12:00:00Z");
      (void)medvault::policy::Evaluate(**p, r);
    }
  } else {
    medvault::policy::v1::Request r;
    if (r.ParseFromString(rest)) {
      std::vector<medvault::policy::v1::RuleTrace> traces;
      (void)medvault::policy::Explain(Bundle(), r, &traces);
    }
  }
  return 0;
}
