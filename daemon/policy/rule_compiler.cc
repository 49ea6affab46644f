#include "daemon/policy/rule_compiler.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/policy/policy_loader.h"

namespace medvault::policy {

using v1::AttributeDef;

void RuleCompiler::CompileRules(const v1::PolicyFile& f, const Where& w) {
  for (int i = 0; i < f.rules_size(); ++i) CompileRule(f.rules(i), w.Field("rules", i));
  for (int i = 0; i < f.state_machines_size(); ++i) {
    CompileStateMachine(f.state_machines(i), w.Field("state_machines", i));
  }
}

void RuleCompiler::CompileRule(const v1::Rule& rule, const Where& w) {
  CompiledRule r;
  r.id = rule.id();
  RegisterRuleId(rule.id(), w.Field("id"));
  r.effect = rule.effect();
  if (r.effect == v1::Rule::EFFECT_UNSPECIFIED) {
    w.Field("effect").Error("PERMIT or DENY required");
  }
  r.description = rule.description();
  if (r.description.empty()) {
    w.Field("description").Error("required: decisions explain themselves with it");
  }
  r.role_mask = RoleMask(rule.roles(), w);
  std::vector<int> actions;
  if (rule.all_actions()) {
    if (!rule.actions().empty()) w.Field("actions").Error("not with all_actions");
  } else if (rule.actions().empty()) {
    w.Field("actions").Error("at least one action (or all_actions) required");
  }
  for (int i = 0; i < rule.actions_size(); ++i) {
    int a = catalogue_.Action(rule.actions(i), w.Field("actions", i));
    if (a >= 0) actions.push_back(a);
  }
  AddListCondition(rule.purposes(), kPurposeAttribute, "purposes", w, &r);
  AddListCondition(rule.data_categories(), kCategoryAttribute, "data_categories", w, &r);
  for (int i = 0; i < rule.conditions_size(); ++i) {
    CondNode n;
    if (conditions_.Compile(rule.conditions(i), w.Field("conditions", i), &n)) {
      r.conditions.push_back(std::move(n));
    }
  }
  if (r.effect == v1::Rule::DENY && !rule.obligations().empty()) {
    w.Field("obligations").Error("only PERMIT rules carry obligations");
  }
  CompileObligations(rule.obligations(), w, &r);
  AddRule(std::move(r), rule.all_actions(), actions);
}

void RuleCompiler::CompileStateMachine(const v1::StateMachine& sm, const Where& w) {
  auto attr_it = out_->attribute_ids.find(absl::StrCat(sm.name(), ".state"));
  if (attr_it == out_->attribute_ids.end()) return;  // already reported
  int state_attr = attr_it->second;
  absl::flat_hash_set<std::string> finals;
  for (int i = 0; i < sm.final_states_size(); ++i) {
    if (KnownState(sm, state_attr, sm.final_states(i), w.Field("final_states", i))) {
      finals.insert(sm.final_states(i));
    }
  }
  for (int t = 0; t < sm.transitions_size(); ++t) {
    CompileTransition(sm, state_attr, finals, sm.transitions(t), w.Field("transitions", t));
  }
}

void RuleCompiler::CompileTransition(const v1::StateMachine& sm, int state_attr,
                                     const absl::flat_hash_set<std::string>& finals,
                                     const v1::Transition& tr, const Where& w) {
  CompiledRule r;
  // Actions are usually named "<machine>.<step>" already; then the action
  // is the rule id, else it is prefixed with the machine.
  r.id = absl::StartsWith(tr.action(), absl::StrCat(sm.name(), "."))
             ? tr.action()
             : absl::StrCat(sm.name(), ".", tr.action());
  r.effect = v1::Rule::PERMIT;
  r.description = tr.description().empty()
                      ? absl::StrCat(sm.name(), ": ", tr.action(), " to ", tr.to())
                      : tr.description();
  int action = catalogue_.Action(tr.action(), w.Field("action"));
  if (action >= 0 && !transition_actions_.insert(action).second) {
    w.Field("action").Error(absl::StrCat("action \"", tr.action(), "\" already has a transition"));
  }
  RegisterRuleId(r.id, w.Field("action"));
  if (KnownState(sm, state_attr, tr.to(), w.Field("to"))) r.next_state = tr.to();
  if (tr.roles().empty()) w.Field("roles").Error("at least one role required");
  r.role_mask = RoleMask(tr.roles(), w);
  r.conditions.push_back(FromCondition(sm, state_attr, finals, tr, w));
  for (int i = 0; i < tr.required_facts_size(); ++i) {
    CondNode n;
    n.kind = CondNode::kPresent;
    n.attr = catalogue_.Attribute(tr.required_facts(i), w.Field("required_facts", i));
    if (n.attr < 0) continue;
    n.text = absl::StrCat(tr.required_facts(i), " is given");
    r.conditions.push_back(std::move(n));
  }
  for (int i = 0; i < tr.conditions_size(); ++i) {
    CondNode n;
    if (conditions_.Compile(tr.conditions(i), w.Field("conditions", i), &n)) {
      r.conditions.push_back(std::move(n));
    }
  }
  CompileObligations(tr.obligations(), w, &r);
  std::vector<int> actions;
  if (action >= 0) actions.push_back(action);
  AddRule(std::move(r), false, actions);
}

CondNode RuleCompiler::FromCondition(const v1::StateMachine& sm, int state_attr,
                                     const absl::flat_hash_set<std::string>& finals,
                                     const v1::Transition& tr, const Where& w) const {
  CondNode from;
  from.attr = state_attr;
  if (tr.creates()) {
    if (!tr.from().empty()) w.Field("from").Error("not with creates");
    from.kind = CondNode::kAbsent;
    from.text = absl::StrCat("no ", sm.name(), " exists yet");
    return from;
  }
  if (tr.from().empty()) w.Field("from").Error("at least one state (or creates) required");
  from.kind = CondNode::kOneOf;
  const EnumInfo& states = out_->enums[out_->attributes[state_attr].enum_id];
  for (int i = 0; i < tr.from_size(); ++i) {
    if (!KnownState(sm, state_attr, tr.from(i), w.Field("from", i))) continue;
    if (finals.contains(tr.from(i))) {
      w.Field("from", i).Error(absl::StrCat("\"", tr.from(i), "\" is a final state"));
    }
    from.nums.push_back(states.index.at(tr.from(i)));
  }
  std::sort(from.nums.begin(), from.nums.end());
  from.text = absl::StrCat(sm.name(), ".state is one of ", absl::StrJoin(tr.from(), ", "));
  return from;
}

bool RuleCompiler::KnownState(const v1::StateMachine& sm, int state_attr, const std::string& state,
                              const Where& w) const {
  const EnumInfo& states = out_->enums[out_->attributes[state_attr].enum_id];
  if (states.index.contains(state)) return true;
  w.Error(absl::StrCat("unknown state \"", state, "\" of ", sm.name(),
                       " (states: ", absl::StrJoin(states.values, ", "), ")"));
  return false;
}

bool RuleCompiler::CompileObligations(
    const google::protobuf::RepeatedPtrField<v1::ObligationRef>& refs, const Where& w,
    CompiledRule* r) {
  bool ok = true;
  for (int i = 0; i < refs.size(); ++i) {
    Where o = w.Field("obligations", i);
    CompiledObligation co;
    co.id = catalogue_.Obligation(refs[i].name(), o.Field("name"));
    if (co.id < 0) {
      ok = false;
      continue;
    }
    if (!refs[i].within().empty()) {
      co.has_within = ParseDurationText(refs[i].within(), o.Field("within"), &co.within_micros);
      ok &= co.has_within;
    }
    // Sorted by name, so that decisions list them in one order.
    std::map<std::string, std::string> sorted(refs[i].parameters().begin(),
                                              refs[i].parameters().end());
    for (const auto& [name, attribute] : sorted) {
      Where pw = o.Field(absl::StrCat("parameters[\"", name, "\"]"));
      if (name.empty()) {
        pw.Error("a parameter needs a name");
        ok = false;
        continue;
      }
      const int attr = catalogue_.Attribute(attribute, pw);
      if (attr < 0) {
        ok = false;
        continue;
      }
      if (!catalogue_.IsConstant(attr)) {
        pw.Error(absl::StrCat("\"", attribute, "\" is not a constant: a parameter names one"));
        ok = false;
        continue;
      }
      co.parameters.emplace_back(name, attr);
    }
    r->obligations.push_back(co);
  }
  return ok;
}

uint64_t RuleCompiler::RoleMask(const google::protobuf::RepeatedPtrField<std::string>& roles,
                                const Where& w) const {
  if (roles.empty()) return ~uint64_t{0};
  uint64_t mask = 0;
  for (int i = 0; i < roles.size(); ++i) {
    int id = catalogue_.Role(roles[i], w.Field("roles", i));
    if (id >= 0) mask |= uint64_t{1} << id;
  }
  return mask;
}

void RuleCompiler::AddListCondition(const google::protobuf::RepeatedPtrField<std::string>& values,
                                    const char* attr_name, absl::string_view field, const Where& w,
                                    CompiledRule* r) {
  if (values.empty()) return;
  auto it = out_->attribute_ids.find(attr_name);
  if (it == out_->attribute_ids.end()) {
    w.Field(field, 0).Error(absl::StrCat("needs the attribute \"", attr_name, "\" to be declared"));
    return;
  }
  CondNode n;
  n.kind = CondNode::kOneOf;
  n.attr = it->second;
  std::vector<std::string> texts;
  for (int i = 0; i < values.size(); ++i) {
    int64_t num = 0;
    std::string str;
    if (!catalogue_.ParseLiteral(n.attr, values[i], w.Field(field, i), &num, &str)) continue;
    if (out_->attributes[n.attr].type == AttributeDef::STRING) {
      n.strs.push_back(str);
    } else {
      n.nums.push_back(num);
    }
    texts.push_back(values[i]);
  }
  std::sort(n.nums.begin(), n.nums.end());
  std::sort(n.strs.begin(), n.strs.end());
  n.text = absl::StrCat(attr_name, " is one of ", absl::StrJoin(texts, ", "));
  r->conditions.push_back(std::move(n));
}

void RuleCompiler::RegisterRuleId(const std::string& id, const Where& w) {
  if (id.empty()) {
    w.Error("rule id required");
  } else if (!rule_ids_.insert(id).second) {
    w.Error(absl::StrCat("rule id \"", id, "\" used twice"));
  }
}

// Rules and the actions they name are kept side by side until the indexes
// are built, once every rule has compiled.
void RuleCompiler::AddRule(CompiledRule r, bool all_actions, const std::vector<int>& actions) {
  out_->rules.push_back(std::move(r));
  rule_actions_.push_back({all_actions, actions});
}

void RuleCompiler::BuildIndexes() {
  size_t roles = out_->roles.size(), actions = out_->actions.size();
  out_->rules_by_action_role.assign(roles * actions, {});
  out_->rules_by_action.assign(actions, {});
  for (size_t i = 0; i < out_->rules.size(); ++i) {
    const auto& [all, list] = rule_actions_[i];
    std::vector<int> targets = list;
    if (all) {
      targets.clear();
      for (size_t a = 0; a < actions; ++a) targets.push_back(static_cast<int>(a));
    }
    for (int a : targets) {
      out_->rules_by_action[a].push_back(static_cast<int>(i));
      for (size_t role = 0; role < roles; ++role) {
        if (out_->rules[i].role_mask & (uint64_t{1} << role)) {
          out_->rules_by_action_role[a * roles + role].push_back(static_cast<int>(i));
        }
      }
    }
  }
}

}  // namespace medvault::policy
