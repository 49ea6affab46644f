#include "daemon/policy/condition_compiler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace medvault::policy {
namespace {

using v1::AttributeDef;

bool IsOrdered(AttrType t) {
  return t == AttributeDef::INT || t == AttributeDef::TIME || t == AttributeDef::DURATION;
}

const char* OpText(v1::Op op) {
  switch (op) {
    case v1::EQ:
      return "==";
    case v1::NE:
      return "!=";
    case v1::LT:
      return "<";
    case v1::LE:
      return "<=";
    case v1::GT:
      return ">";
    case v1::GE:
      return ">=";
    default:
      return "?";
  }
}

}  // namespace

void ConditionCompiler::DeclareDefinitions(const v1::PolicyFile& f, const Where& w) {
  for (int i = 0; i < f.conditions_size(); ++i) {
    Where c = w.Field("conditions", i);
    if (RegisterName(definition_ids_, f.conditions(i).name(), static_cast<int>(definitions_.size()),
                     c, "condition") >= 0) {
      definitions_.push_back({&f.conditions(i), c});
    }
  }
}

void ConditionCompiler::CompileDefinitions() {
  out_->definitions.resize(definitions_.size());
  for (size_t i = 0; i < definitions_.size(); ++i) CompileDefinition(static_cast<int>(i));
}

bool ConditionCompiler::Compile(const v1::Condition& c, const Where& w, CondNode* n) {
  switch (c.kind_case()) {
    case v1::Condition::kCompare:
      return CompileCompare(c.compare(), w.Field("compare"), n);
    case v1::Condition::kOneOf:
      return CompileOneOf(c.one_of(), w.Field("one_of"), n);
    case v1::Condition::kContains:
      return CompileContains(c.contains(), w.Field("contains"), n);
    case v1::Condition::kSubset:
      return CompileSubset(c.subset(), w.Field("subset"), n);
    case v1::Condition::kAge:
      return CompileAge(c.age(), w.Field("age"), n);
    case v1::Condition::kPresent:
    case v1::Condition::kAbsent: {
      bool present = c.kind_case() == v1::Condition::kPresent;
      n->kind = present ? CondNode::kPresent : CondNode::kAbsent;
      n->attr = catalogue_.Attribute(present ? c.present() : c.absent(),
                                     w.Field(present ? "present" : "absent"));
      if (n->attr < 0) return false;
      n->text =
          absl::StrCat(out_->attributes[n->attr].name, present ? " is given" : " is not given");
      return true;
    }
    case v1::Condition::kAll:
      return CompileList(c.all(), true, w.Field("all"), n);
    case v1::Condition::kAny:
      return CompileList(c.any(), false, w.Field("any"), n);
    case v1::Condition::kNot: {
      n->kind = CondNode::kNot;
      CondNode child;
      if (!Compile(c.not_(), w.Field("not"), &child)) return false;
      n->text = absl::StrCat("not ", child.text);
      n->children.push_back(std::move(child));
      return true;
    }
    case v1::Condition::kRef:
      return CompileRef(c.ref(), w.Field("ref"), n);
    default:
      w.Error("empty condition");
      return false;
  }
}

bool ConditionCompiler::CompileCompare(const v1::Compare& c, const Where& w, CondNode* n) {
  n->attr = catalogue_.Attribute(c.attribute(), w.Field("attribute"));
  if (n->attr < 0) return false;
  const AttributeInfo& a = out_->attributes[n->attr];
  n->op = c.op();
  if (!catalogue_.IsScalar(n->attr)) {
    w.Field("attribute").Error(absl::StrCat(a.name, " is a set; use contains or subset"));
    return false;
  }
  if (c.op() == v1::OP_UNSPECIFIED) {
    w.Field("op").Error("required");
    return false;
  }
  if (c.op() != v1::EQ && c.op() != v1::NE && !IsOrdered(a.type)) {
    w.Field("op").Error(absl::StrCat(OpText(c.op()), " needs INT, TIME or DURATION; ", a.name,
                                     " is ", TypeName(a.type)));
    return false;
  }
  if (c.rhs_case() == v1::Compare::kOther) {
    n->kind = CondNode::kCompareAttribute;
    n->other = catalogue_.Attribute(c.other(), w.Field("other"));
    if (n->other < 0) return false;
    const AttributeInfo& b = out_->attributes[n->other];
    if (a.type != b.type || a.enum_id != b.enum_id) {
      w.Field("other").Error(absl::StrCat(a.name, " (", TypeName(a.type), ") and ", b.name, " (",
                                          TypeName(b.type), ") cannot be compared"));
      return false;
    }
    n->text = absl::StrCat(a.name, " ", OpText(c.op()), " ", b.name);
    return true;
  }
  if (c.rhs_case() != v1::Compare::kValue) {
    w.Error("value or other required");
    return false;
  }
  n->kind = CondNode::kCompareLiteral;
  if (!catalogue_.ParseLiteral(n->attr, c.value(), w.Field("value"), &n->num, &n->str)) {
    return false;
  }
  n->text = absl::StrCat(a.name, " ", OpText(c.op()), " ",
                         catalogue_.LiteralText(n->attr, n->num, n->str));
  return true;
}

bool ConditionCompiler::CompileOneOf(const v1::OneOf& c, const Where& w, CondNode* n) {
  n->kind = CondNode::kOneOf;
  n->attr = catalogue_.Attribute(c.attribute(), w.Field("attribute"));
  if (n->attr < 0) return false;
  if (!catalogue_.IsScalar(n->attr)) {
    w.Field("attribute").Error("must be a single value, not a set");
    return false;
  }
  if (c.values().empty()) {
    w.Field("values").Error("at least one value required");
    return false;
  }
  bool ok = true;
  std::vector<std::string> texts;
  for (int i = 0; i < c.values_size(); ++i) {
    int64_t num = 0;
    std::string str;
    if (!catalogue_.ParseLiteral(n->attr, c.values(i), w.Field("values", i), &num, &str)) {
      ok = false;
      continue;
    }
    texts.push_back(catalogue_.LiteralText(n->attr, num, str));
    if (out_->attributes[n->attr].type == AttributeDef::STRING) {
      n->strs.push_back(std::move(str));
    } else {
      n->nums.push_back(num);
    }
  }
  std::sort(n->nums.begin(), n->nums.end());
  std::sort(n->strs.begin(), n->strs.end());
  n->text = absl::StrCat(out_->attributes[n->attr].name, " is one of ", absl::StrJoin(texts, ", "));
  return ok;
}

bool ConditionCompiler::CompileContains(const v1::Contains& c, const Where& w, CondNode* n) {
  n->attr = catalogue_.Attribute(c.set(), w.Field("set"));
  if (n->attr < 0) return false;
  const AttributeInfo& a = out_->attributes[n->attr];
  if (catalogue_.IsScalar(n->attr)) {
    w.Field("set").Error(absl::StrCat(a.name, " is not a set"));
    return false;
  }
  if (c.element_case() == v1::Contains::kAttribute) {
    n->kind = CondNode::kContainsAttribute;
    n->other = catalogue_.Attribute(c.attribute(), w.Field("attribute"));
    if (n->other < 0) return false;
    const AttributeInfo& b = out_->attributes[n->other];
    bool fits = a.type == AttributeDef::ENUM_SET
                    ? b.type == AttributeDef::ENUM && b.enum_id == a.enum_id
                    : b.type == AttributeDef::STRING;
    if (!fits) {
      w.Field("attribute").Error(absl::StrCat(b.name, " cannot be an element of ", a.name));
      return false;
    }
    n->text = absl::StrCat(a.name, " contains ", b.name);
    return true;
  }
  if (c.element_case() != v1::Contains::kValue) {
    w.Error("value or attribute required");
    return false;
  }
  n->kind = CondNode::kContainsLiteral;
  if (!catalogue_.ParseLiteral(n->attr, c.value(), w.Field("value"), &n->num, &n->str)) {
    return false;
  }
  if (a.type == AttributeDef::STRING_SET) n->str = c.value();
  n->text = absl::StrCat(a.name, " contains ",
                         a.type == AttributeDef::STRING_SET
                             ? absl::StrCat("\"", n->str, "\"")
                             : catalogue_.LiteralText(n->attr, n->num, ""));
  return true;
}

bool ConditionCompiler::CompileSubset(const v1::Subset& c, const Where& w, CondNode* n) {
  n->kind = CondNode::kSubset;
  n->attr = catalogue_.Attribute(c.set(), w.Field("set"));
  n->other = catalogue_.Attribute(c.of(), w.Field("of"));
  if (n->attr < 0 || n->other < 0) return false;
  const AttributeInfo &a = out_->attributes[n->attr], &b = out_->attributes[n->other];
  if (catalogue_.IsScalar(n->attr) || a.type != b.type || a.enum_id != b.enum_id) {
    w.Error(absl::StrCat(a.name, " and ", b.name, " must be sets of the same kind"));
    return false;
  }
  n->text = absl::StrCat(a.name, " is within ", b.name);
  return true;
}

bool ConditionCompiler::CompileAge(const v1::Age& c, const Where& w, CondNode* n) {
  n->kind = CondNode::kAge;
  n->attr = catalogue_.Attribute(c.attribute(), w.Field("attribute"));
  if (n->attr < 0) return false;
  if (out_->attributes[n->attr].type != AttributeDef::TIME) {
    w.Field("attribute").Error("must be a TIME attribute");
    return false;
  }
  n->op = c.op();
  if (c.op() == v1::OP_UNSPECIFIED) {
    w.Field("op").Error("required");
    return false;
  }
  std::string bound;
  if (c.bound_case() == v1::Age::kDuration) {
    if (!ParseDurationText(c.duration(), w.Field("duration"), &n->num)) return false;
    bound = absl::FormatDuration(absl::Microseconds(n->num));
  } else if (c.bound_case() == v1::Age::kDurationOf) {
    n->duration_attr = catalogue_.Attribute(c.duration_of(), w.Field("duration_of"));
    if (n->duration_attr < 0) return false;
    const AttributeInfo& d = out_->attributes[n->duration_attr];
    if (d.type != AttributeDef::DURATION || !d.constant) {
      w.Field("duration_of").Error("must be a DURATION constant");
      return false;
    }
    n->num = out_->constants[n->duration_attr].num;
    bound = d.name;
  } else {
    w.Error("duration or duration_of required");
    return false;
  }
  n->text =
      absl::StrCat("age of ", out_->attributes[n->attr].name, " ", OpText(c.op()), " ", bound);
  return true;
}

bool ConditionCompiler::CompileList(const v1::Conditions& list, bool all, const Where& w,
                                    CondNode* n) {
  n->kind = all ? CondNode::kAll : CondNode::kAny;
  if (list.of().empty()) {
    w.Error("at least one condition required");
    return false;
  }
  bool ok = true;
  std::vector<std::string> texts;
  for (int i = 0; i < list.of_size(); ++i) {
    CondNode child;
    ok &= Compile(list.of(i), w.Field("of", i), &child);
    texts.push_back(child.text);
    n->children.push_back(std::move(child));
  }
  n->text = absl::StrCat("(", absl::StrJoin(texts, all ? " and " : " or "), ")");
  return ok;
}

bool ConditionCompiler::CompileRef(const std::string& name, const Where& w, CondNode* n) {
  int id = LookUpName(definition_ids_, name, w, "condition");
  if (id < 0) return false;
  if (!CompileDefinition(id)) {
    w.Error(absl::StrCat("condition \"", name, "\" is invalid or refers to itself"));
    return false;
  }
  n->kind = CondNode::kRef;
  n->ref = id;
  n->text = name;
  return true;
}

bool ConditionCompiler::CompileDefinition(int i) {
  if (definition_state_.size() < definitions_.size()) {
    definition_state_.resize(definitions_.size());
  }
  if (definition_state_[i] == 2) return true;
  if (definition_state_[i] == 1 || definition_state_[i] == 3) return false;
  definition_state_[i] = 1;
  const auto& [def, where] = definitions_[i];
  if (!def->has_condition()) {
    where.Field("condition").Error("required");
    definition_state_[i] = 3;
    return false;
  }
  CondNode node;
  bool ok = Compile(def->condition(), where.Field("condition"), &node);
  out_->definitions[i] = std::move(node);
  definition_state_[i] = ok ? 2 : 3;
  return ok;
}

}  // namespace medvault::policy
