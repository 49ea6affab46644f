// Deciding a request against a compiled policy.
//
// Pure and deterministic: the decision depends only on the policy and the
// request (time included); nothing is read from a file, a clock or the
// network, and nothing is shared between calls, so any number of threads
// may evaluate against the same CompiledPolicy at once.
//
// Errors: INVALID_ARGUMENT naming the field for a malformed request (no or
// unknown action or role, a bad time, a fact with an unknown name, of the
// wrong type, a constant of the bundle, or a missing required fact), as
// "<field>: <why>" and as a google.rpc.BadRequest (daemon/common/
// field_error.h) whose paths are relative to the Request ("action",
// "facts[\"patient.id\"]"). A well-formed request always gets a decision;
// nothing matching is a deny.
#ifndef MEDVAULT_DAEMON_POLICY_EVALUATOR_H_
#define MEDVAULT_DAEMON_POLICY_EVALUATOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "daemon/policy/compiled_policy.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

absl::StatusOr<v1::Decision> Evaluate(const CompiledPolicy& policy, const v1::Request& request);

// Evaluate, and also how every rule naming the request's action fared
// (those for other roles included), in bundle order.
absl::StatusOr<v1::Decision> Explain(const CompiledPolicy& policy, const v1::Request& request,
                                     std::vector<v1::RuleTrace>* traces);

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_EVALUATOR_H_
