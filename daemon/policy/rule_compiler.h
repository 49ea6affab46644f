// Compiling rules and state machines into CompiledRules, and indexing them
// by (action, role). A state machine's transition is a PERMIT rule for its
// action: the machine must be in one of the `from` states (or not exist
// yet, for `creates`), the decision carries the `to` state, and each action
// has at most one transition. Last stage of CompilePolicy
// (policy_loader.h); internal to the policy engine.
#ifndef MEDVAULT_DAEMON_POLICY_RULE_COMPILER_H_
#define MEDVAULT_DAEMON_POLICY_RULE_COMPILER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "daemon/policy/catalogue.h"
#include "daemon/policy/compiled_policy.h"
#include "daemon/policy/condition_compiler.h"
#include "daemon/policy/loader_errors.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

class RuleCompiler {
 public:
  // Appends to out->rules. `catalogue`, `conditions` and `*out` must
  // outlive the compiler.
  RuleCompiler(const Catalogue& catalogue, ConditionCompiler& conditions, CompiledPolicy* out)
      : catalogue_(catalogue), conditions_(conditions), out_(out) {}

  // The file's rules, then its state machines' transitions, in file order
  // (rule order is bundle order, which decisions and explanations keep).
  void CompileRules(const v1::PolicyFile& f, const Where& w);

  // Fills out->rules_by_action_role and out->rules_by_action, once every
  // rule has compiled without error.
  void BuildIndexes();

 private:
  void CompileRule(const v1::Rule& rule, const Where& w);
  void CompileStateMachine(const v1::StateMachine& sm, const Where& w);
  void CompileTransition(const v1::StateMachine& sm, int state_attr,
                         const absl::flat_hash_set<std::string>& finals, const v1::Transition& tr,
                         const Where& w);
  // The machine's `from` states as a condition on its state attribute.
  CondNode FromCondition(const v1::StateMachine& sm, int state_attr,
                         const absl::flat_hash_set<std::string>& finals, const v1::Transition& tr,
                         const Where& w) const;
  // True when `state` is one of the states of `sm` (whose state attribute
  // is `state_attr`); an error at `w` otherwise.
  bool KnownState(const v1::StateMachine& sm, int state_attr, const std::string& state,
                  const Where& w) const;

  // The parts of a provision every rule and transition has.
  bool CompileObligations(const google::protobuf::RepeatedPtrField<v1::ObligationRef>& refs,
                          const Where& w, CompiledRule* r);
  uint64_t RoleMask(const google::protobuf::RepeatedPtrField<std::string>& roles,
                    const Where& w) const;
  // A OneOf node over `attr_name` for Rule.purposes / data_categories.
  void AddListCondition(const google::protobuf::RepeatedPtrField<std::string>& values,
                        const char* attr_name, absl::string_view field, const Where& w,
                        CompiledRule* r);
  void RegisterRuleId(const std::string& id, const Where& w);
  void AddRule(CompiledRule r, bool all_actions, const std::vector<int>& actions);

  const Catalogue& catalogue_;
  ConditionCompiler& conditions_;
  CompiledPolicy* const out_;
  absl::flat_hash_set<std::string> rule_ids_;
  absl::flat_hash_set<int> transition_actions_;
  // Per rule of out_->rules: all actions, or the action ids it names.
  std::vector<std::pair<bool, std::vector<int>>> rule_actions_;
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_RULE_COMPILER_H_
