// Compiling conditions (medvault.policy.v1.Condition) into CondNode trees:
// names resolved through the Catalogue, types checked (only ordered types
// compare with <, sets only contain or are within sets of the same kind),
// literals parsed, and named conditions (ConditionDef) compiled once and
// referred to by index, with reference cycles refused. Each node carries
// its text as a reviewer would read it, for explanations. Internal to the
// policy engine (policy_loader.h).
#ifndef MEDVAULT_DAEMON_POLICY_CONDITION_COMPILER_H_
#define MEDVAULT_DAEMON_POLICY_CONDITION_COMPILER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "daemon/policy/catalogue.h"
#include "daemon/policy/compiled_policy.h"
#include "daemon/policy/loader_errors.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

class ConditionCompiler {
 public:
  // Writes out->definitions. `catalogue`, `*out` and the files passed to
  // DeclareDefinitions must outlive the compiler.
  ConditionCompiler(const Catalogue& catalogue, CompiledPolicy* out)
      : catalogue_(catalogue), out_(out) {}

  // Registers the file's named conditions (part of the first declaration
  // pass, see Catalogue).
  void DeclareDefinitions(const v1::PolicyFile& f, const Where& w);
  // Compiles every named condition, once the whole vocabulary is declared.
  void CompileDefinitions();

  // Compiles one condition; false (with an error at `w`) when it does not.
  bool Compile(const v1::Condition& c, const Where& w, CondNode* n);

 private:
  bool CompileCompare(const v1::Compare& c, const Where& w, CondNode* n);
  bool CompileOneOf(const v1::OneOf& c, const Where& w, CondNode* n);
  bool CompileContains(const v1::Contains& c, const Where& w, CondNode* n);
  bool CompileSubset(const v1::Subset& c, const Where& w, CondNode* n);
  bool CompileAge(const v1::Age& c, const Where& w, CondNode* n);
  bool CompileList(const v1::Conditions& list, bool all, const Where& w, CondNode* n);
  bool CompileRef(const std::string& name, const Where& w, CondNode* n);
  // Compiles named condition `i` if not done yet; false when it is invalid
  // or part of a reference cycle.
  bool CompileDefinition(int i);

  const Catalogue& catalogue_;
  CompiledPolicy* const out_;
  absl::flat_hash_map<std::string, int> definition_ids_;
  std::vector<std::pair<const v1::ConditionDef*, Where>> definitions_;
  std::vector<int> definition_state_;  // 0 new, 1 compiling, 2 done, 3 failed
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_CONDITION_COMPILER_H_
