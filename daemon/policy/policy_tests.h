// Running the policy's own tests (policies/tests/*.textproto, schema
// medvault.policy.v1.TestSuite) against a compiled bundle, like `opa test`.
// Used by `medvaultctl policy test` and by the unit tests.
#ifndef MEDVAULT_DAEMON_POLICY_POLICY_TESTS_H_
#define MEDVAULT_DAEMON_POLICY_POLICY_TESTS_H_

#include <string>
#include <vector>

#include "daemon/policy/compiled_policy.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

struct CaseResult {
  std::string name;
  bool passed = false;
  // Why it failed: what was expected and what the decision was.
  std::string failure;
};

// Runs every case of `suite`. Never fails as a whole: a case whose request
// is refused fails (unless it expects that error).
std::vector<CaseResult> RunSuite(const CompiledPolicy& policy, const v1::TestSuite& suite);

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_POLICY_TESTS_H_
