// The vocabulary of a bundle being compiled: the enums, roles, actions,
// obligations and attributes its files declare, resolved to the dense ids
// of CompiledPolicy, and the typed literals (constants, comparison values)
// checked against them. First stage of CompilePolicy (policy_loader.h);
// internal to the policy engine.
//
// Names are declared over every file before anything refers to them, so a
// file may use an enum or a role that a later file declares. Problems are
// reported at a Where (loader_errors.h) and compilation goes on, so that
// all of them are listed at once.
#ifndef MEDVAULT_DAEMON_POLICY_CATALOGUE_H_
#define MEDVAULT_DAEMON_POLICY_CATALOGUE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "daemon/policy/compiled_policy.h"
#include "daemon/policy/loader_errors.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

// "INT", "ENUM_SET", ... as the policy files spell the types.
const char* TypeName(AttrType type);

// Registers `name` in `ids` as `next`, complaining at `w` about an empty
// or duplicate name ("<kind> name required"). Returns `next` or -1.
int RegisterName(absl::flat_hash_map<std::string, int>& ids, const std::string& name, int next,
                 const Where& w, absl::string_view kind);

// The id of `name` in `ids`, or -1 after the error `unknown <kind> "name"`
// at `w`.
int LookUpName(const absl::flat_hash_map<std::string, int>& ids, const std::string& name,
               const Where& w, absl::string_view kind);

// Parses a non-negative duration ("72h", "30m") into microseconds.
bool ParseDurationText(const std::string& text, const Where& w, int64_t* micros);

class Catalogue {
 public:
  // Fills the name tables, attributes and constants of `*out`, which must
  // outlive the catalogue. The built-in request.time is attribute 0.
  explicit Catalogue(CompiledPolicy* out);

  // Declaration passes, each run over every file in bundle order before
  // the next. First pass, per file: DeclareNames (enums, roles, actions,
  // obligations), then the named conditions (ConditionCompiler), then
  // DeclareStateMachines (each machine's states as the enum and ENUM
  // attribute "<machine>.state"). Then DeclareAttributes: attributes and
  // their constants, once every enum is known. Then DeclareActions: each
  // action's required facts, once every attribute is known.
  void DeclareNames(const v1::PolicyFile& f, const Where& w);
  void DeclareStateMachines(const v1::PolicyFile& f, const Where& w);
  void DeclareAttributes(const v1::PolicyFile& f, const Where& w);
  void DeclareActions(const v1::PolicyFile& f, const Where& w);

  // Ids of declared names; -1 after an "unknown ..." error at `w`.
  int Attribute(const std::string& name, const Where& w) const;
  int Role(const std::string& name, const Where& w) const;
  int Action(const std::string& name, const Where& w) const;
  int Obligation(const std::string& name, const Where& w) const;

  // Parses a literal of attribute `attr`'s (scalar) type: a number, enum
  // index, Unix microseconds or microseconds into `*num`, a string into
  // `*str`.
  bool ParseLiteral(int attr, const std::string& text, const Where& w, int64_t* num,
                    std::string* str) const;
  // A parsed literal as a reviewer would write it, for explanations.
  std::string LiteralText(int attr, int64_t num, const std::string& str) const;
  // False for ENUM_SET and STRING_SET.
  bool IsScalar(int attr) const;
  // True for an attribute declared with a constant value.
  bool IsConstant(int attr) const;

 private:
  int AddAttribute(const std::string& name, AttrType type, int enum_id, bool constant);
  int AddEnum(const std::string& name,
              const google::protobuf::RepeatedPtrField<std::string>& values, const Where& w,
              absl::string_view values_field);
  void DeclareAttribute(const v1::AttributeDef& a, const Where& at);

  CompiledPolicy* const out_;
  // Obligations are compiled to their index in out_->obligations.
  absl::flat_hash_map<std::string, int> obligation_ids_;
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_CATALOGUE_H_
