#include "daemon/policy/evaluator.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/field_error.h"
#include "daemon/common/status_macros.h"
#include "daemon/policy/policy_loader.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace medvault::policy {
namespace {

using v1::AttributeDef;

// The request's facts by attribute id; constants come from the policy.
class Facts {
 public:
  explicit Facts(const CompiledPolicy& p) : p_(p), values_(p.attributes.size()) {}
  const Fact& Get(int attr) const {
    return p_.attributes[attr].constant ? p_.constants[attr] : values_[attr];
  }
  Fact& Mutable(int attr) { return values_[attr]; }

 private:
  const CompiledPolicy& p_;
  std::vector<Fact> values_;
};

absl::Status ToFact(const CompiledPolicy& p, const AttributeInfo& a, const v1::Value& v,
                    absl::string_view field, Fact* f) {
  auto want = [&](absl::string_view kind) {
    return InvalidField(field, absl::StrCat(a.name, " is ", kind));
  };
  switch (a.type) {
    case AttributeDef::BOOL:
      if (v.kind_case() != v1::Value::kBoolValue) return want("BOOL: expected bool_value");
      f->num = v.bool_value();
      break;
    case AttributeDef::INT:
      if (v.kind_case() != v1::Value::kIntValue) return want("INT: expected int_value");
      f->num = v.int_value();
      break;
    case AttributeDef::STRING:
      if (v.kind_case() != v1::Value::kStringValue) return want("STRING: expected string_value");
      if (v.string_value().empty()) return absl::OkStatus();  // empty counts as not given
      f->str = v.string_value();
      break;
    case AttributeDef::ENUM: {
      if (v.kind_case() != v1::Value::kStringValue) return want("ENUM: expected string_value");
      const EnumInfo& e = p.enums[a.enum_id];
      auto it = e.index.find(v.string_value());
      if (it == e.index.end()) {
        return InvalidField(
            field, absl::StrCat("unknown ", a.name, " value \"", v.string_value(),
                                "\" (expected one of ", absl::StrJoin(e.values, ", "), ")"));
      }
      f->num = it->second;
      break;
    }
    case AttributeDef::TIME: {
      if (v.kind_case() != v1::Value::kStringValue) return want("TIME: expected string_value");
      auto t = ParseRfc3339(v.string_value());
      if (!t.ok()) return InvalidField(field, t.status().message());
      f->num = absl::ToUnixMicros(*t);
      break;
    }
    case AttributeDef::ENUM_SET: {
      if (v.kind_case() != v1::Value::kListValue) return want("ENUM_SET: expected list_value");
      const EnumInfo& e = p.enums[a.enum_id];
      for (const std::string& s : v.list_value().values()) {
        auto it = e.index.find(s);
        if (it == e.index.end()) {
          return InvalidField(field, absl::StrCat("unknown ", e.name, " value \"", s, "\""));
        }
        f->nums.push_back(it->second);
      }
      std::sort(f->nums.begin(), f->nums.end());
      f->nums.erase(std::unique(f->nums.begin(), f->nums.end()), f->nums.end());
      break;
    }
    case AttributeDef::STRING_SET:
      if (v.kind_case() != v1::Value::kListValue) return want("STRING_SET: expected list_value");
      f->strs.assign(v.list_value().values().begin(), v.list_value().values().end());
      std::sort(f->strs.begin(), f->strs.end());
      f->strs.erase(std::unique(f->strs.begin(), f->strs.end()), f->strs.end());
      break;
    default:
      return InvalidField(field, "cannot be given in a request");
  }
  f->present = true;
  return absl::OkStatus();
}

struct Compiled {
  int action = -1;
  int role = -1;
};

absl::Status CompileRequest(const CompiledPolicy& p, const v1::Request& r, Compiled* c,
                            Facts* facts) {
  if (r.action().empty()) return InvalidField("action", "required");
  auto a = p.action_ids.find(r.action());
  if (a == p.action_ids.end()) {
    return InvalidField("action", absl::StrCat("unknown action \"", r.action(), "\""));
  }
  c->action = a->second;
  if (r.role().empty()) return InvalidField("role", "required");
  auto role = p.role_ids.find(r.role());
  if (role == p.role_ids.end()) {
    return InvalidField("role", absl::StrCat("unknown role \"", r.role(), "\""));
  }
  c->role = role->second;
  if (r.time().empty()) return InvalidField("time", "required");
  auto t = ParseRfc3339(r.time());
  if (!t.ok()) return InvalidField("time", t.status().message());
  Fact& time = facts->Mutable(p.time_attr);
  time.present = true;
  time.num = absl::ToUnixMicros(*t);
  for (const auto& [name, value] : r.facts()) {
    std::string field = absl::StrCat("facts[\"", absl::CHexEscape(name), "\"]");
    auto it = p.attribute_ids.find(name);
    if (it == p.attribute_ids.end()) return InvalidField(field, "unknown attribute");
    const AttributeInfo& info = p.attributes[it->second];
    if (it->second == p.time_attr) return InvalidField(field, "is the request's time field");
    if (info.constant) return InvalidField(field, "a constant of the bundle, not a fact");
    RETURN_IF_ERROR(ToFact(p, info, value, field, &facts->Mutable(it->second)));
  }
  for (int attr : p.actions[c->action].required) {
    if (!facts->Get(attr).present) {
      return InvalidField(absl::StrCat("facts[\"", p.attributes[attr].name, "\"]"),
                          absl::StrCat("required for ", r.action()));
    }
  }
  return absl::OkStatus();
}

template <typename T>
bool Order(v1::Op op, const T& a, const T& b) {
  switch (op) {
    case v1::EQ:
      return a == b;
    case v1::NE:
      return a != b;
    case v1::LT:
      return a < b;
    case v1::LE:
      return a <= b;
    case v1::GT:
      return a > b;
    case v1::GE:
      return a >= b;
    default:
      return false;
  }
}

bool IsStringType(const CompiledPolicy& p, int attr) {
  AttrType t = p.attributes[attr].type;
  return t == AttributeDef::STRING || t == AttributeDef::STRING_SET;
}

bool Holds(const CompiledPolicy& p, const CondNode& n, const Facts& f) {
  switch (n.kind) {
    case CondNode::kCompareLiteral: {
      const Fact& a = f.Get(n.attr);
      if (!a.present) return false;
      return IsStringType(p, n.attr) ? Order(n.op, a.str, n.str) : Order(n.op, a.num, n.num);
    }
    case CondNode::kCompareAttribute: {
      const Fact &a = f.Get(n.attr), &b = f.Get(n.other);
      if (!a.present || !b.present) return false;
      return IsStringType(p, n.attr) ? Order(n.op, a.str, b.str) : Order(n.op, a.num, b.num);
    }
    case CondNode::kOneOf: {
      const Fact& a = f.Get(n.attr);
      if (!a.present) return false;
      return IsStringType(p, n.attr) ? std::binary_search(n.strs.begin(), n.strs.end(), a.str)
                                     : std::binary_search(n.nums.begin(), n.nums.end(), a.num);
    }
    case CondNode::kContainsLiteral: {
      const Fact& s = f.Get(n.attr);
      if (!s.present) return false;
      return IsStringType(p, n.attr) ? std::binary_search(s.strs.begin(), s.strs.end(), n.str)
                                     : std::binary_search(s.nums.begin(), s.nums.end(), n.num);
    }
    case CondNode::kContainsAttribute: {
      const Fact &s = f.Get(n.attr), &e = f.Get(n.other);
      if (!s.present || !e.present) return false;
      return IsStringType(p, n.attr) ? std::binary_search(s.strs.begin(), s.strs.end(), e.str)
                                     : std::binary_search(s.nums.begin(), s.nums.end(), e.num);
    }
    case CondNode::kSubset: {
      const Fact &s = f.Get(n.attr), &of = f.Get(n.other);
      if (!s.present || !of.present) return false;
      return IsStringType(p, n.attr)
                 ? std::includes(of.strs.begin(), of.strs.end(), s.strs.begin(), s.strs.end())
                 : std::includes(of.nums.begin(), of.nums.end(), s.nums.begin(), s.nums.end());
    }
    case CondNode::kAge: {
      const Fact& t = f.Get(n.attr);
      if (!t.present) return false;
      // Saturating: a time far in the past or future must not wrap around.
      int64_t now = f.Get(p.time_attr).num;
      __int128 age = static_cast<__int128>(now) - t.num;
      return Order(n.op, age, static_cast<__int128>(n.num));
    }
    case CondNode::kPresent:
      return f.Get(n.attr).present;
    case CondNode::kAbsent:
      return !f.Get(n.attr).present;
    case CondNode::kAll:
      for (const CondNode& c : n.children) {
        if (!Holds(p, c, f)) return false;
      }
      return true;
    case CondNode::kAny:
      for (const CondNode& c : n.children) {
        if (Holds(p, c, f)) return true;
      }
      return false;
    case CondNode::kNot:
      return !Holds(p, n.children[0], f);
    case CondNode::kRef:
      return Holds(p, p.definitions[n.ref], f);
  }
  return false;
}

std::string FactText(const CompiledPolicy& p, int attr, const Fact& f) {
  const AttributeInfo& a = p.attributes[attr];
  if (!f.present) return absl::StrCat(a.name, " not given");
  std::string value;
  switch (a.type) {
    case AttributeDef::BOOL:
      value = f.num ? "true" : "false";
      break;
    case AttributeDef::STRING:
      value = absl::StrCat("\"", f.str, "\"");
      break;
    case AttributeDef::ENUM:
      value = p.enums[a.enum_id].values[f.num];
      break;
    case AttributeDef::TIME:
      value = FormatRfc3339(absl::FromUnixMicros(f.num));
      break;
    case AttributeDef::DURATION:
      value = absl::FormatDuration(absl::Microseconds(f.num));
      break;
    case AttributeDef::ENUM_SET: {
      std::vector<std::string> names;
      for (int64_t v : f.nums) names.push_back(p.enums[a.enum_id].values[v]);
      value = absl::StrCat("[", absl::StrJoin(names, ", "), "]");
      break;
    }
    case AttributeDef::STRING_SET:
      value = absl::StrCat("[", absl::StrJoin(f.strs, ", "), "]");
      break;
    default:
      value = absl::StrCat(f.num);
  }
  return absl::StrCat(a.name, " is ", value);
}

// A constant (ObligationRef.parameters) in its wire form: see
// Obligation.parameters.
v1::Value ConstantValue(const CompiledPolicy& p, int attr) {
  const AttributeInfo& a = p.attributes[attr];
  const Fact& f = p.constants[attr];
  v1::Value v;
  switch (a.type) {
    case AttributeDef::BOOL:
      v.set_bool_value(f.num != 0);
      break;
    case AttributeDef::INT:
      v.set_int_value(f.num);
      break;
    case AttributeDef::STRING:
      v.set_string_value(f.str);
      break;
    case AttributeDef::ENUM:
      v.set_string_value(p.enums[a.enum_id].values[f.num]);
      break;
    case AttributeDef::TIME:
      v.set_string_value(FormatRfc3339(absl::FromUnixMicros(f.num)));
      break;
    case AttributeDef::DURATION:
      v.set_string_value(absl::FormatDuration(absl::Microseconds(f.num)));
      break;
    default:
      break;  // sets are never constants
  }
  return v;
}

// The attributes `n` reads, through nested and named conditions, in order.
void AttributesOf(const CompiledPolicy& p, const CondNode& n, std::vector<int>* out) {
  auto add = [out](int attr) {
    if (attr >= 0 && std::find(out->begin(), out->end(), attr) == out->end()) out->push_back(attr);
  };
  add(n.attr);
  add(n.other);
  if (n.kind == CondNode::kAge) add(p.time_attr);
  if (n.kind == CondNode::kRef) AttributesOf(p, p.definitions[n.ref], out);
  for (const CondNode& c : n.children) AttributesOf(p, c, out);
}

// Why `n` did not hold, naming the facts it read.
std::string Reason(const CompiledPolicy& p, const CondNode& n, const Facts& f) {
  std::string why = absl::StrCat("not met: ", n.text);
  std::vector<int> attrs;
  AttributesOf(p, n, &attrs);
  std::vector<std::string> seen;
  for (int attr : attrs) seen.push_back(FactText(p, attr, f.Get(attr)));
  if (!seen.empty()) absl::StrAppend(&why, " (", absl::StrJoin(seen, "; "), ")");
  return why;
}

// Index of the first condition of `rule` that does not hold, or -1.
int FirstFailure(const CompiledPolicy& p, const CompiledRule& rule, const Facts& f) {
  for (size_t i = 0; i < rule.conditions.size(); ++i) {
    if (!Holds(p, rule.conditions[i], f)) return static_cast<int>(i);
  }
  return -1;
}

std::string DecisionId(const CompiledPolicy& p, const v1::Request& request) {
  std::string bytes = p.bundle_hash;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.SerializeWithCachedSizes(&coded);
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 16));
}

absl::StatusOr<v1::Decision> Decide(const CompiledPolicy& p, const v1::Request& request,
                                    std::vector<v1::RuleTrace>* traces) {
  Compiled c;
  Facts facts(p);
  RETURN_IF_ERROR(CompileRequest(p, request, &c, &facts));
  const std::vector<int>& candidates = p.rules_by_action_role[c.action * p.roles.size() + c.role];
  std::vector<int> permits, denies;
  for (int i : candidates) {
    const CompiledRule& rule = p.rules[i];
    if (FirstFailure(p, rule, facts) >= 0) continue;
    (rule.effect == v1::Rule::DENY ? denies : permits).push_back(i);
  }
  v1::Decision d;
  request.ByteSizeLong();  // caches sizes for the deterministic serialization
  d.set_decision_id(DecisionId(p, request));
  d.set_policy_version(p.version);
  d.set_bundle_hash(p.bundle_hash_hex);
  const CompiledRule* first = nullptr;
  if (!denies.empty()) {
    d.set_effect(v1::DENY);
    for (int i : denies) d.add_rule_ids(p.rules[i].id);
    first = &p.rules[denies[0]];
    d.set_explanation(absl::StrCat("denied by ", first->id, ": ", first->description));
  } else if (!permits.empty()) {
    d.set_effect(v1::ALLOW);
    first = &p.rules[permits[0]];
    d.set_explanation(absl::StrCat("allowed by ", first->id, ": ", first->description));
    const int64_t now = facts.Get(p.time_attr).num;
    for (int i : permits) {
      const CompiledRule& rule = p.rules[i];
      d.add_rule_ids(rule.id);
      if (!rule.next_state.empty() && d.next_state().empty()) d.set_next_state(rule.next_state);
      for (const CompiledObligation& o : rule.obligations) {
        v1::Obligation* out = d.add_obligations();
        out->set_name(p.obligations[o.id]);
        out->set_rule_id(rule.id);
        if (o.has_within) out->set_due(FormatRfc3339(absl::FromUnixMicros(now + o.within_micros)));
        for (const auto& [name, attr] : o.parameters) {
          (*out->mutable_parameters())[name] = ConstantValue(p, attr);
        }
      }
    }
  } else {
    d.set_effect(v1::DENY);
    d.set_explanation(absl::StrCat("denied by default: no rule permits ", request.action(), " by ",
                                   request.role(), " with these facts (", candidates.size(),
                                   " considered)"));
  }
  if (denies.size() + permits.size() > 1) {
    absl::StrAppend(d.mutable_explanation(), " (and ", d.rule_ids_size() - 1, " more)");
  }
  if (traces != nullptr) {
    for (int i : p.rules_by_action[c.action]) {
      const CompiledRule& rule = p.rules[i];
      v1::RuleTrace& t = traces->emplace_back();
      t.set_rule_id(rule.id);
      if (!(rule.role_mask & (uint64_t{1} << c.role))) {
        t.set_reason(absl::StrCat("not for role ", request.role()));
        continue;
      }
      int failed = FirstFailure(p, rule, facts);
      t.set_matched(failed < 0);
      t.set_reason(failed < 0 ? absl::StrCat(rule.effect == v1::Rule::DENY ? "DENY" : "PERMIT",
                                             ": all ", rule.conditions.size(), " conditions hold")
                              : Reason(p, rule.conditions[failed], facts));
    }
  }
  return d;
}

}  // namespace

absl::StatusOr<v1::Decision> Evaluate(const CompiledPolicy& policy, const v1::Request& request) {
  return Decide(policy, request, nullptr);
}

absl::StatusOr<v1::Decision> Explain(const CompiledPolicy& policy, const v1::Request& request,
                                     std::vector<v1::RuleTrace>* traces) {
  return Decide(policy, request, traces);
}

}  // namespace medvault::policy
