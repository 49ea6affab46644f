// The clinical walk through the real fleet, from an independent client:
// tests/python/clinical_walk.py (Debian's python3 with grpcio, stubs
// generated from proto/ by the build, the patient's signatures made by
// Foundry's cast) registers, uploads, asks, approves, reads, revokes,
// breaks the glass, disputes, amends and suspends over the public API, and
// checks each answer. `scripts/run --demo` runs the same script.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/fleet.h"
#include "tests/integration/process_util.h"
#include "tests/integration/test_status.h"
#include "tests/signer/cast_tool.h"

#ifndef MEDVAULT_PYTHON3
#error "MEDVAULT_PYTHON3 (Debian's python3) must be defined by the build"
#endif
#ifndef MEDVAULT_PYTHON_STUBS_DIR
#error "MEDVAULT_PYTHON_STUBS_DIR (the generated medvault.v1 stubs) must be defined by the build"
#endif

namespace medvault::integration {
namespace {

// The walk makes about forty calls and four licence transactions; a
// sanitizer build on a small machine takes a minute or two.
constexpr absl::Duration kWalkTimeout = absl::Minutes(8);

class PythonWalkTest : public Fleet {};

// Every step of the walk answers as the API documents; the script exits 0.
TEST_F(PythonWalkTest, ClinicalWalkFromPython) {
  MEDVAULT_ASSERT_OK(DeployContracts());
  absl::StatusOr<std::string> cast = signer::testing::CastBinary();
  MEDVAULT_ASSERT_OK(cast);
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  ASSERT_NE(source, nullptr);

  const std::vector<std::string> argv = {
      MEDVAULT_PYTHON3, std::string(source) + "/tests/python/clinical_walk.py",
      "--gateway",      gateway_address(),
      "--pki",          dir() + "/pki",
      "--hospital-a",   kClientName,
      "--medvaultctl",  binary("medvaultctl"),
      "--config",       config_path(),
      "--cast",         *cast,
      "--stubs",        MEDVAULT_PYTHON_STUBS_DIR,
  };
  CommandResult walk = RunCommand(argv, kWalkTimeout);
  ASSERT_EQ(walk.exit_code, 0) << "the clinical walk's output:\n" << walk.output;
  // The walk's story, step by step, for ctest -V.
  std::cout << walk.output;
}

}  // namespace
}  // namespace medvault::integration
