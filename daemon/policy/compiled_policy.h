// A policy bundle compiled for evaluation: names resolved to dense ids,
// literals parsed to their types, and rules indexed by (action, role), so
// that deciding a request is a table look-up and a few comparisons, with no
// allocation beyond the request's facts and no I/O.
//
// Built by CompilePolicy (policy_loader.h); immutable afterwards and shared
// between threads through a shared_ptr<const CompiledPolicy>.
#ifndef MEDVAULT_DAEMON_POLICY_COMPILED_POLICY_H_
#define MEDVAULT_DAEMON_POLICY_COMPILED_POLICY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

using AttrType = v1::AttributeDef::Type;

// A fact's value in compiled form. Which member is used depends on the
// attribute's type.
struct Fact {
  bool present = false;
  // BOOL (0/1), INT, ENUM (index into the enum), TIME (Unix microseconds),
  // DURATION (microseconds).
  int64_t num = 0;
  std::string str;                 // STRING (never empty when present)
  std::vector<int64_t> nums;       // ENUM_SET, sorted, unique
  std::vector<std::string> strs;   // STRING_SET, sorted, unique
};

struct EnumInfo {
  std::string name;
  std::vector<std::string> values;
  absl::flat_hash_map<std::string, int> index;
};

struct AttributeInfo {
  std::string name;
  AttrType type = v1::AttributeDef::TYPE_UNSPECIFIED;
  int enum_id = -1;         // ENUM and ENUM_SET
  bool constant = false;    // value in CompiledPolicy::constants
};

struct ActionInfo {
  std::string name;
  std::vector<int> required;  // attribute ids
};

// One node of a compiled condition tree.
struct CondNode {
  enum Kind {
    kCompareLiteral,
    kCompareAttribute,
    kOneOf,
    kContainsLiteral,
    kContainsAttribute,
    kSubset,
    kAge,
    kPresent,
    kAbsent,
    kAll,
    kAny,
    kNot,
    kRef,
  };
  Kind kind = kAll;
  int attr = -1;    // the attribute read (left-hand side, set, TIME of kAge)
  int other = -1;   // right-hand attribute, element attribute, superset
  v1::Op op = v1::OP_UNSPECIFIED;
  int64_t num = 0;  // numeric literal; kAge: the bound in microseconds
  std::string str;  // STRING literal
  std::vector<int64_t> nums;      // kOneOf over numeric kinds, sorted
  std::vector<std::string> strs;  // kOneOf over STRING, sorted
  int duration_attr = -1;         // kAge bounded by a DURATION constant
  int ref = -1;                   // kRef: index into CompiledPolicy::definitions
  std::vector<CondNode> children;
  std::string text;               // as a reviewer would read it, for explanations
};

struct CompiledObligation {
  int id = -1;                 // index into CompiledPolicy::obligations
  bool has_within = false;
  int64_t within_micros = 0;
  // ObligationRef.parameters: name and constant attribute id.
  std::vector<std::pair<std::string, int>> parameters;
};

struct CompiledRule {
  std::string id;
  v1::Rule::Effect effect = v1::Rule::EFFECT_UNSPECIFIED;
  std::string description;
  std::vector<CondNode> conditions;  // all must hold
  std::vector<CompiledObligation> obligations;
  std::string next_state;            // transitions only
  uint64_t role_mask = 0;            // bit per role id; all roles when ~0
};

struct CompiledPolicy {
  // Limit of the role bit mask; more roles than this is a load error.
  static constexpr int kMaxRoles = 64;

  std::vector<EnumInfo> enums;
  std::vector<AttributeInfo> attributes;
  std::vector<std::string> roles;
  std::vector<ActionInfo> actions;
  std::vector<std::string> obligations;
  std::vector<CondNode> definitions;  // ConditionDefs, by index
  std::vector<CompiledRule> rules;    // bundle order
  absl::flat_hash_map<std::string, int> attribute_ids, role_ids, action_ids, enum_ids;
  // Value of each constant attribute (indexed by attribute id; absent for
  // others).
  std::vector<Fact> constants;
  int time_attr = -1;  // "request.time"
  // rules_by_action_role[action * roles.size() + role]: rule indexes in
  // bundle order. Built once at load.
  std::vector<std::vector<int>> rules_by_action_role;
  // rules_by_action[action]: every rule naming the action (for explain).
  std::vector<std::vector<int>> rules_by_action;

  // Set by the bundle loader; empty for a policy compiled without one.
  uint64_t version = 0;
  std::string bundle_hash;      // 32 raw bytes
  std::string bundle_hash_hex;  // 64 hex digits
  std::string effective_time;   // RFC 3339
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_COMPILED_POLICY_H_
