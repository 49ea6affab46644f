#include "daemon/policy/policy_loader.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace medvault::policy {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::TextFormat;
using v1::AttributeDef;

class ParseErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit ParseErrors(absl::string_view file) : file_(file) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(file_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, message);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string file_;
  std::vector<std::string> errors_;
};

// Where a field is in a file: its line (from the parser's location tree)
// and its path as written ("rules[2].conditions[0].compare.attribute"), for
// error messages. A field the file does not spell out (a default) takes
// the line of its closest enclosing message.
class Where {
 public:
  Where(const std::string* file, const TextFormat::ParseInfoTree* tree, const Descriptor* desc,
        std::vector<std::string>* errors)
      : file_(file), tree_(tree), desc_(desc), errors_(errors) {}

  Where Field(absl::string_view name, int index = -1) const {
    Where child = *this;
    child.path_ = path_.empty() ? std::string(name) : absl::StrCat(path_, ".", name);
    if (index >= 0) absl::StrAppend(&child.path_, "[", index, "]");
    const FieldDescriptor* field = desc_ ? desc_->FindFieldByName(std::string(name)) : nullptr;
    child.desc_ = field ? field->message_type() : nullptr;
    child.tree_ = nullptr;
    // The location tree aborts on a repeated field without an index, so a
    // whole repeated field takes its message's line.
    if (field != nullptr && tree_ != nullptr && !(field->is_repeated() && index < 0)) {
      int i = field->is_repeated() ? index : -1;
      auto loc = tree_->GetLocation(field, i);
      if (loc.line >= 0) child.line_ = loc.line + 1;
      if (field->message_type() != nullptr) child.tree_ = tree_->GetTreeForNested(field, i);
    }
    return child;
  }

  void Error(absl::string_view message) const {
    errors_->push_back(absl::StrCat(*file_, ":", line_, ": ", path_, ": ", message));
  }

 private:
  const std::string* file_;
  const TextFormat::ParseInfoTree* tree_;
  const Descriptor* desc_;
  std::vector<std::string>* errors_;
  int line_ = 1;
  std::string path_;
};

const char* TypeName(AttrType type) {
  switch (type) {
    case AttributeDef::BOOL: return "BOOL";
    case AttributeDef::INT: return "INT";
    case AttributeDef::STRING: return "STRING";
    case AttributeDef::ENUM: return "ENUM";
    case AttributeDef::ENUM_SET: return "ENUM_SET";
    case AttributeDef::STRING_SET: return "STRING_SET";
    case AttributeDef::TIME: return "TIME";
    case AttributeDef::DURATION: return "DURATION";
    default: return "unspecified";
  }
}

bool IsOrdered(AttrType t) {
  return t == AttributeDef::INT || t == AttributeDef::TIME || t == AttributeDef::DURATION;
}

const char* OpText(v1::Op op) {
  switch (op) {
    case v1::EQ: return "==";
    case v1::NE: return "!=";
    case v1::LT: return "<";
    case v1::LE: return "<=";
    case v1::GT: return ">";
    case v1::GE: return ">=";
    default: return "?";
  }
}

struct ParsedFile {
  const SourceFile* source;
  v1::PolicyFile proto;
  TextFormat::ParseInfoTree tree;
};

class Compiler {
 public:
  explicit Compiler(const std::vector<SourceFile>& files) : files_(files) {}

  absl::StatusOr<std::unique_ptr<CompiledPolicy>> Run() {
    std::vector<std::string> parse_errors;
    parsed_.reserve(files_.size());
    for (const SourceFile& f : files_) {
      auto& p = *parsed_.emplace_back(std::make_unique<ParsedFile>());
      p.source = &f;
      ParseErrors collector(f.name);
      TextFormat::Parser parser;
      parser.RecordErrorsTo(&collector);
      parser.WriteLocationsTo(&p.tree);
      if (!parser.ParseFromString(f.text, &p.proto)) {
        parse_errors.insert(parse_errors.end(), collector.errors().begin(),
                            collector.errors().end());
      }
    }
    if (!parse_errors.empty()) {
      return absl::InvalidArgumentError(absl::StrJoin(parse_errors, "\n"));
    }
    out_ = std::make_unique<CompiledPolicy>();
    AddAttribute(kTimeAttribute, AttributeDef::TIME, -1, false);
    out_->time_attr = 0;
    ForEachFile([&](const v1::PolicyFile& f, const Where& w) { DeclareNames(f, w); });
    ForEachFile([&](const v1::PolicyFile& f, const Where& w) { DeclareAttributes(f, w); });
    ForEachFile([&](const v1::PolicyFile& f, const Where& w) { DeclareActions(f, w); });
    out_->definitions.resize(definitions_.size());
    for (size_t i = 0; i < definitions_.size(); ++i) CompileDefinition(static_cast<int>(i));
    ForEachFile([&](const v1::PolicyFile& f, const Where& w) { CompileRules(f, w); });
    if (out_->rules.empty() && errors_.empty()) {
      errors_.push_back("bundle: no rules (everything would be denied)");
    }
    if (!errors_.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
    BuildIndexes();
    return std::move(out_);
  }

 private:
  template <typename F>
  void ForEachFile(F f) {
    for (const auto& file : parsed_) {
      const ParsedFile& p = *file;
      f(p.proto, Where(&p.source->name, &p.tree, v1::PolicyFile::descriptor(), &errors_));
    }
  }

  // Registers `name` in `ids`, complaining at `w` about an empty or
  // duplicate name. Returns the new id or -1.
  int Register(absl::flat_hash_map<std::string, int>& ids, const std::string& name, int next,
               const Where& w, absl::string_view kind) {
    if (name.empty()) {
      w.Error(absl::StrCat(kind, " name required"));
      return -1;
    }
    if (!ids.emplace(name, next).second) {
      w.Error(absl::StrCat(kind, " \"", name, "\" declared twice"));
      return -1;
    }
    return next;
  }

  int AddAttribute(const std::string& name, AttrType type, int enum_id, bool constant) {
    int id = static_cast<int>(out_->attributes.size());
    out_->attribute_ids.emplace(name, id);
    out_->attributes.push_back({name, type, enum_id, constant});
    out_->constants.emplace_back();
    return id;
  }

  int AddEnum(const std::string& name, const google::protobuf::RepeatedPtrField<std::string>& values,
              const Where& w, absl::string_view values_field) {
    int id = Register(out_->enum_ids, name, static_cast<int>(out_->enums.size()), w, "enum");
    if (id < 0) return -1;
    EnumInfo info{name, {}, {}};
    for (int i = 0; i < values.size(); ++i) {
      if (values[i].empty() || !info.index.emplace(values[i], i).second) {
        w.Field(values_field, i).Error(absl::StrCat("empty or repeated value \"", values[i], "\""));
      }
      info.values.push_back(values[i]);
    }
    if (values.empty()) w.Error("at least one value required");
    out_->enums.push_back(std::move(info));
    return id;
  }

  void DeclareNames(const v1::PolicyFile& f, const Where& w) {
    for (int i = 0; i < f.enums_size(); ++i) {
      Where e = w.Field("enums", i);
      AddEnum(f.enums(i).name(), f.enums(i).values(), e, "values");
    }
    for (int i = 0; i < f.roles_size(); ++i) {
      Where r = w.Field("roles", i);
      if (Register(out_->role_ids, f.roles(i).name(), static_cast<int>(out_->roles.size()), r,
                   "role") >= 0) {
        out_->roles.push_back(f.roles(i).name());
      }
      if (out_->roles.size() > CompiledPolicy::kMaxRoles) r.Error("more than 64 roles");
    }
    for (int i = 0; i < f.actions_size(); ++i) {
      if (Register(out_->action_ids, f.actions(i).name(), static_cast<int>(out_->actions.size()),
                   w.Field("actions", i), "action") >= 0) {
        out_->actions.push_back({f.actions(i).name(), {}});
      }
    }
    for (int i = 0; i < f.obligations_size(); ++i) {
      if (Register(obligation_ids_, f.obligations(i).name(),
                   static_cast<int>(out_->obligations.size()), w.Field("obligations", i),
                   "obligation") >= 0) {
        out_->obligations.push_back(f.obligations(i).name());
      }
    }
    for (int i = 0; i < f.conditions_size(); ++i) {
      Where c = w.Field("conditions", i);
      if (Register(definition_ids_, f.conditions(i).name(),
                   static_cast<int>(definitions_.size()), c, "condition") >= 0) {
        definitions_.push_back({&f.conditions(i), c});
      }
    }
    for (int i = 0; i < f.state_machines_size(); ++i) {
      const v1::StateMachine& sm = f.state_machines(i);
      Where s = w.Field("state_machines", i);
      std::string attr = absl::StrCat(sm.name(), ".state");
      int e = AddEnum(attr, sm.states(), s, "states");
      if (e >= 0) {
        if (out_->attribute_ids.contains(attr)) {
          s.Error(absl::StrCat("attribute \"", attr, "\" declared twice"));
        } else {
          AddAttribute(attr, AttributeDef::ENUM, e, false);
        }
      }
    }
  }

  void DeclareAttributes(const v1::PolicyFile& f, const Where& w) {
    for (int i = 0; i < f.attributes_size(); ++i) {
      const AttributeDef& a = f.attributes(i);
      Where at = w.Field("attributes", i);
      if (a.name().empty()) {
        at.Field("name").Error("required");
        continue;
      }
      if (out_->attribute_ids.contains(a.name())) {
        at.Field("name").Error(absl::StrCat("attribute \"", a.name(), "\" declared twice"));
        continue;
      }
      if (a.type() == AttributeDef::TYPE_UNSPECIFIED) {
        at.Field("type").Error("required");
        continue;
      }
      int enum_id = -1;
      if (a.type() == AttributeDef::ENUM || a.type() == AttributeDef::ENUM_SET) {
        auto it = out_->enum_ids.find(a.enum_());
        if (it == out_->enum_ids.end()) {
          at.Field("enum").Error(absl::StrCat("unknown enum \"", a.enum_(), "\""));
          continue;
        }
        enum_id = it->second;
      } else if (!a.enum_().empty()) {
        at.Field("enum").Error(absl::StrCat("only for ENUM and ENUM_SET, not ", TypeName(a.type())));
      }
      bool constant = !a.constant().empty();
      if (a.type() == AttributeDef::DURATION && !constant) {
        at.Field("constant").Error("a DURATION attribute must be a constant");
      }
      int id = AddAttribute(a.name(), a.type(), enum_id, constant);
      if (constant) {
        if (a.type() == AttributeDef::ENUM_SET || a.type() == AttributeDef::STRING_SET) {
          at.Field("constant").Error("sets cannot be constants");
        } else if (!ParseLiteral(id, a.constant(), at.Field("constant"), &out_->constants[id].num,
                                 &out_->constants[id].str)) {
        } else {
          out_->constants[id].present = true;
        }
      }
    }
  }

  void DeclareActions(const v1::PolicyFile& f, const Where& w) {
    for (int i = 0; i < f.actions_size(); ++i) {
      auto it = out_->action_ids.find(f.actions(i).name());
      if (it == out_->action_ids.end()) continue;
      ActionInfo& info = out_->actions[it->second];
      Where a = w.Field("actions", i);
      for (int r = 0; r < f.actions(i).required_facts_size(); ++r) {
        int attr = Attribute(f.actions(i).required_facts(r), a.Field("required_facts", r));
        if (attr >= 0) info.required.push_back(attr);
      }
    }
  }

  int Attribute(const std::string& name, const Where& w) {
    auto it = out_->attribute_ids.find(name);
    if (it == out_->attribute_ids.end()) {
      w.Error(absl::StrCat("unknown attribute \"", name, "\""));
      return -1;
    }
    return it->second;
  }

  int Role(const std::string& name, const Where& w) {
    auto it = out_->role_ids.find(name);
    if (it == out_->role_ids.end()) {
      w.Error(absl::StrCat("unknown role \"", name, "\""));
      return -1;
    }
    return it->second;
  }

  int Action(const std::string& name, const Where& w) {
    auto it = out_->action_ids.find(name);
    if (it == out_->action_ids.end()) {
      w.Error(absl::StrCat("unknown action \"", name, "\""));
      return -1;
    }
    return it->second;
  }

  // Parses a literal of attribute `attr`'s (scalar) type.
  bool ParseLiteral(int attr, const std::string& text, const Where& w, int64_t* num,
                    std::string* str) {
    const AttributeInfo& a = out_->attributes[attr];
    switch (a.type) {
      case AttributeDef::BOOL:
        if (text == "true" || text == "false") {
          *num = text == "true";
          return true;
        }
        break;
      case AttributeDef::INT:
        if (absl::SimpleAtoi(text, num)) return true;
        break;
      case AttributeDef::STRING:
        if (!text.empty()) {
          *str = text;
          return true;
        }
        break;
      case AttributeDef::ENUM:
      case AttributeDef::ENUM_SET: {
        const EnumInfo& e = out_->enums[a.enum_id];
        auto it = e.index.find(text);
        if (it != e.index.end()) {
          *num = it->second;
          return true;
        }
        w.Error(absl::StrCat("unknown ", a.name, " value \"", text, "\" (", e.name, " has ",
                             absl::StrJoin(e.values, ", "), ")"));
        return false;
      }
      case AttributeDef::TIME:
        if (auto t = ParseRfc3339(text); t.ok()) {
          *num = absl::ToUnixMicros(*t);
          return true;
        }
        break;
      case AttributeDef::DURATION: {
        absl::Duration d;
        if (absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()) {
          *num = absl::ToInt64Microseconds(d);
          return true;
        }
        break;
      }
      default:
        break;
    }
    w.Error(absl::StrCat("\"", text, "\" is not a ", TypeName(a.type), " value for ", a.name));
    return false;
  }

  bool ParseDurationText(const std::string& text, const Where& w, int64_t* micros) {
    absl::Duration d;
    if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
      w.Error(absl::StrCat("\"", text, "\" is not a duration (e.g. \"72h\", \"30m\")"));
      return false;
    }
    *micros = absl::ToInt64Microseconds(d);
    return true;
  }

  std::string LiteralText(int attr, int64_t num, const std::string& str) const {
    const AttributeInfo& a = out_->attributes[attr];
    switch (a.type) {
      case AttributeDef::BOOL: return num ? "true" : "false";
      case AttributeDef::STRING: return absl::StrCat("\"", str, "\"");
      case AttributeDef::ENUM:
      case AttributeDef::ENUM_SET: return out_->enums[a.enum_id].values[num];
      case AttributeDef::TIME: return FormatRfc3339(absl::FromUnixMicros(num));
      case AttributeDef::DURATION: return absl::FormatDuration(absl::Microseconds(num));
      default: return absl::StrCat(num);
    }
  }

  bool IsScalar(int attr) const {
    AttrType t = out_->attributes[attr].type;
    return t != AttributeDef::ENUM_SET && t != AttributeDef::STRING_SET;
  }

  // Compiles one condition; false (with an error at `w`) when it does not.
  bool Compile(const v1::Condition& c, const Where& w, CondNode* n) {
    switch (c.kind_case()) {
      case v1::Condition::kCompare: return CompileCompare(c.compare(), w.Field("compare"), n);
      case v1::Condition::kOneOf: return CompileOneOf(c.one_of(), w.Field("one_of"), n);
      case v1::Condition::kContains: return CompileContains(c.contains(), w.Field("contains"), n);
      case v1::Condition::kSubset: {
        Where s = w.Field("subset");
        n->kind = CondNode::kSubset;
        n->attr = Attribute(c.subset().set(), s.Field("set"));
        n->other = Attribute(c.subset().of(), s.Field("of"));
        if (n->attr < 0 || n->other < 0) return false;
        const AttributeInfo &a = out_->attributes[n->attr], &b = out_->attributes[n->other];
        if (IsScalar(n->attr) || a.type != b.type || a.enum_id != b.enum_id) {
          s.Error(absl::StrCat(a.name, " and ", b.name, " must be sets of the same kind"));
          return false;
        }
        n->text = absl::StrCat(a.name, " is within ", b.name);
        return true;
      }
      case v1::Condition::kAge: return CompileAge(c.age(), w.Field("age"), n);
      case v1::Condition::kPresent:
      case v1::Condition::kAbsent: {
        bool present = c.kind_case() == v1::Condition::kPresent;
        n->kind = present ? CondNode::kPresent : CondNode::kAbsent;
        n->attr = Attribute(present ? c.present() : c.absent(),
                            w.Field(present ? "present" : "absent"));
        if (n->attr < 0) return false;
        n->text = absl::StrCat(out_->attributes[n->attr].name, present ? " is given" : " is not given");
        return true;
      }
      case v1::Condition::kAll:
      case v1::Condition::kAny: {
        bool all = c.kind_case() == v1::Condition::kAll;
        const v1::Conditions& list = all ? c.all() : c.any();
        Where lw = w.Field(all ? "all" : "any");
        n->kind = all ? CondNode::kAll : CondNode::kAny;
        if (list.of().empty()) {
          lw.Error("at least one condition required");
          return false;
        }
        bool ok = true;
        std::vector<std::string> texts;
        for (int i = 0; i < list.of_size(); ++i) {
          CondNode child;
          ok &= Compile(list.of(i), lw.Field("of", i), &child);
          texts.push_back(child.text);
          n->children.push_back(std::move(child));
        }
        n->text = absl::StrCat("(", absl::StrJoin(texts, all ? " and " : " or "), ")");
        return ok;
      }
      case v1::Condition::kNot: {
        n->kind = CondNode::kNot;
        CondNode child;
        if (!Compile(c.not_(), w.Field("not"), &child)) return false;
        n->text = absl::StrCat("not ", child.text);
        n->children.push_back(std::move(child));
        return true;
      }
      case v1::Condition::kRef: {
        auto it = definition_ids_.find(c.ref());
        if (it == definition_ids_.end()) {
          w.Field("ref").Error(absl::StrCat("unknown condition \"", c.ref(), "\""));
          return false;
        }
        if (!CompileDefinition(it->second)) {
          w.Field("ref").Error(absl::StrCat("condition \"", c.ref(), "\" is invalid or refers to itself"));
          return false;
        }
        n->kind = CondNode::kRef;
        n->ref = it->second;
        n->text = c.ref();
        return true;
      }
      default:
        w.Error("empty condition");
        return false;
    }
  }

  bool CompileCompare(const v1::Compare& c, const Where& w, CondNode* n) {
    n->attr = Attribute(c.attribute(), w.Field("attribute"));
    if (n->attr < 0) return false;
    const AttributeInfo& a = out_->attributes[n->attr];
    n->op = c.op();
    if (!IsScalar(n->attr)) {
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
      n->other = Attribute(c.other(), w.Field("other"));
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
    if (!ParseLiteral(n->attr, c.value(), w.Field("value"), &n->num, &n->str)) return false;
    n->text = absl::StrCat(a.name, " ", OpText(c.op()), " ", LiteralText(n->attr, n->num, n->str));
    return true;
  }

  bool CompileOneOf(const v1::OneOf& c, const Where& w, CondNode* n) {
    n->kind = CondNode::kOneOf;
    n->attr = Attribute(c.attribute(), w.Field("attribute"));
    if (n->attr < 0) return false;
    if (!IsScalar(n->attr)) {
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
      if (!ParseLiteral(n->attr, c.values(i), w.Field("values", i), &num, &str)) {
        ok = false;
        continue;
      }
      texts.push_back(LiteralText(n->attr, num, str));
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

  bool CompileContains(const v1::Contains& c, const Where& w, CondNode* n) {
    n->attr = Attribute(c.set(), w.Field("set"));
    if (n->attr < 0) return false;
    const AttributeInfo& a = out_->attributes[n->attr];
    if (IsScalar(n->attr)) {
      w.Field("set").Error(absl::StrCat(a.name, " is not a set"));
      return false;
    }
    if (c.element_case() == v1::Contains::kAttribute) {
      n->kind = CondNode::kContainsAttribute;
      n->other = Attribute(c.attribute(), w.Field("attribute"));
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
    if (!ParseLiteral(n->attr, c.value(), w.Field("value"), &n->num, &n->str)) return false;
    if (a.type == AttributeDef::STRING_SET) n->str = c.value();
    n->text = absl::StrCat(a.name, " contains ",
                           a.type == AttributeDef::STRING_SET ? absl::StrCat("\"", n->str, "\"")
                                                              : LiteralText(n->attr, n->num, ""));
    return true;
  }

  bool CompileAge(const v1::Age& c, const Where& w, CondNode* n) {
    n->kind = CondNode::kAge;
    n->attr = Attribute(c.attribute(), w.Field("attribute"));
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
      n->duration_attr = Attribute(c.duration_of(), w.Field("duration_of"));
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
    n->text = absl::StrCat("age of ", out_->attributes[n->attr].name, " ", OpText(c.op()), " ", bound);
    return true;
  }

  bool CompileDefinition(int i) {
    if (definition_state_.size() < definitions_.size()) definition_state_.resize(definitions_.size());
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

  // The parts of a provision every rule and transition has.
  bool CompileObligations(const google::protobuf::RepeatedPtrField<v1::ObligationRef>& refs,
                          const Where& w, CompiledRule* r) {
    bool ok = true;
    for (int i = 0; i < refs.size(); ++i) {
      Where o = w.Field("obligations", i);
      CompiledObligation co;
      auto it = obligation_ids_.find(refs[i].name());
      if (it == obligation_ids_.end()) {
        o.Field("name").Error(absl::StrCat("unknown obligation \"", refs[i].name(), "\""));
        ok = false;
        continue;
      }
      co.id = it->second;
      if (!refs[i].within().empty()) {
        co.has_within = ParseDurationText(refs[i].within(), o.Field("within"), &co.within_micros);
        ok &= co.has_within;
      }
      r->obligations.push_back(co);
    }
    return ok;
  }

  uint64_t RoleMask(const google::protobuf::RepeatedPtrField<std::string>& roles, const Where& w) {
    if (roles.empty()) return ~uint64_t{0};
    uint64_t mask = 0;
    for (int i = 0; i < roles.size(); ++i) {
      int id = Role(roles[i], w.Field("roles", i));
      if (id >= 0) mask |= uint64_t{1} << id;
    }
    return mask;
  }

  // A OneOf node over `attr_name` for Rule.purposes / data_categories.
  void AddListCondition(const google::protobuf::RepeatedPtrField<std::string>& values,
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
      if (!ParseLiteral(n.attr, values[i], w.Field(field, i), &num, &str)) continue;
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

  void RegisterRuleId(const std::string& id, const Where& w) {
    if (id.empty()) {
      w.Error("rule id required");
    } else if (!rule_ids_.insert(id).second) {
      w.Error(absl::StrCat("rule id \"", id, "\" used twice"));
    }
  }

  void CompileRules(const v1::PolicyFile& f, const Where& w) {
    for (int i = 0; i < f.rules_size(); ++i) CompileRule(f.rules(i), w.Field("rules", i));
    for (int i = 0; i < f.state_machines_size(); ++i) {
      CompileStateMachine(f.state_machines(i), w.Field("state_machines", i));
    }
  }

  void CompileRule(const v1::Rule& rule, const Where& w) {
    CompiledRule r;
    r.id = rule.id();
    RegisterRuleId(rule.id(), w.Field("id"));
    r.effect = rule.effect();
    if (r.effect == v1::Rule::EFFECT_UNSPECIFIED) w.Field("effect").Error("PERMIT or DENY required");
    r.description = rule.description();
    if (r.description.empty()) w.Field("description").Error("required: decisions explain themselves with it");
    r.role_mask = RoleMask(rule.roles(), w);
    std::vector<int> actions;
    if (rule.all_actions()) {
      if (!rule.actions().empty()) w.Field("actions").Error("not with all_actions");
    } else if (rule.actions().empty()) {
      w.Field("actions").Error("at least one action (or all_actions) required");
    }
    for (int i = 0; i < rule.actions_size(); ++i) {
      int a = Action(rule.actions(i), w.Field("actions", i));
      if (a >= 0) actions.push_back(a);
    }
    AddListCondition(rule.purposes(), kPurposeAttribute, "purposes", w, &r);
    AddListCondition(rule.data_categories(), kCategoryAttribute, "data_categories", w, &r);
    for (int i = 0; i < rule.conditions_size(); ++i) {
      CondNode n;
      if (Compile(rule.conditions(i), w.Field("conditions", i), &n)) r.conditions.push_back(std::move(n));
    }
    if (r.effect == v1::Rule::DENY && !rule.obligations().empty()) {
      w.Field("obligations").Error("only PERMIT rules carry obligations");
    }
    CompileObligations(rule.obligations(), w, &r);
    AddRule(std::move(r), rule.all_actions(), actions);
  }

  void CompileStateMachine(const v1::StateMachine& sm, const Where& w) {
    auto attr_it = out_->attribute_ids.find(absl::StrCat(sm.name(), ".state"));
    if (attr_it == out_->attribute_ids.end()) return;  // already reported
    int state_attr = attr_it->second;
    const EnumInfo& states = out_->enums[out_->attributes[state_attr].enum_id];
    auto state = [&](const std::string& s, const Where& at) -> bool {
      if (states.index.contains(s)) return true;
      at.Error(absl::StrCat("unknown state \"", s, "\" of ", sm.name(), " (states: ",
                            absl::StrJoin(states.values, ", "), ")"));
      return false;
    };
    absl::flat_hash_set<std::string> finals;
    for (int i = 0; i < sm.final_states_size(); ++i) {
      if (state(sm.final_states(i), w.Field("final_states", i))) finals.insert(sm.final_states(i));
    }
    for (int t = 0; t < sm.transitions_size(); ++t) {
      const v1::Transition& tr = sm.transitions(t);
      Where tw = w.Field("transitions", t);
      CompiledRule r;
      // Actions are usually named "<machine>.<step>" already; then the
      // action is the rule id, else it is prefixed with the machine.
      r.id = absl::StartsWith(tr.action(), absl::StrCat(sm.name(), "."))
                 ? tr.action()
                 : absl::StrCat(sm.name(), ".", tr.action());
      r.effect = v1::Rule::PERMIT;
      r.description = tr.description().empty() ? absl::StrCat(sm.name(), ": ", tr.action(), " to ", tr.to())
                                               : tr.description();
      int action = Action(tr.action(), tw.Field("action"));
      if (action >= 0 && !transition_actions_.insert(action).second) {
        tw.Field("action").Error(absl::StrCat("action \"", tr.action(), "\" already has a transition"));
      }
      RegisterRuleId(r.id, tw.Field("action"));
      if (state(tr.to(), tw.Field("to"))) r.next_state = tr.to();
      if (tr.roles().empty()) tw.Field("roles").Error("at least one role required");
      r.role_mask = RoleMask(tr.roles(), tw);
      CondNode from;
      from.attr = state_attr;
      if (tr.creates()) {
        if (!tr.from().empty()) tw.Field("from").Error("not with creates");
        from.kind = CondNode::kAbsent;
        from.text = absl::StrCat("no ", sm.name(), " exists yet");
      } else {
        if (tr.from().empty()) tw.Field("from").Error("at least one state (or creates) required");
        from.kind = CondNode::kOneOf;
        for (int i = 0; i < tr.from_size(); ++i) {
          if (!state(tr.from(i), tw.Field("from", i))) continue;
          if (finals.contains(tr.from(i))) {
            tw.Field("from", i).Error(absl::StrCat("\"", tr.from(i), "\" is a final state"));
          }
          from.nums.push_back(states.index.at(tr.from(i)));
        }
        std::sort(from.nums.begin(), from.nums.end());
        from.text = absl::StrCat(sm.name(), ".state is one of ", absl::StrJoin(tr.from(), ", "));
      }
      r.conditions.push_back(std::move(from));
      for (int i = 0; i < tr.required_facts_size(); ++i) {
        CondNode n;
        n.kind = CondNode::kPresent;
        n.attr = Attribute(tr.required_facts(i), tw.Field("required_facts", i));
        if (n.attr < 0) continue;
        n.text = absl::StrCat(tr.required_facts(i), " is given");
        r.conditions.push_back(std::move(n));
      }
      for (int i = 0; i < tr.conditions_size(); ++i) {
        CondNode n;
        if (Compile(tr.conditions(i), tw.Field("conditions", i), &n)) r.conditions.push_back(std::move(n));
      }
      CompileObligations(tr.obligations(), tw, &r);
      std::vector<int> actions;
      if (action >= 0) actions.push_back(action);
      AddRule(std::move(r), false, actions);
    }
  }

  // Rules and the actions they name are kept side by side until the
  // indexes are built, once every rule has compiled.
  void AddRule(CompiledRule r, bool all_actions, const std::vector<int>& actions) {
    out_->rules.push_back(std::move(r));
    rule_actions_.push_back({all_actions, actions});
  }

  void BuildIndexes() {
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

  const std::vector<SourceFile>& files_;
  std::vector<std::unique_ptr<ParsedFile>> parsed_;
  std::unique_ptr<CompiledPolicy> out_;
  std::vector<std::string> errors_;
  absl::flat_hash_map<std::string, int> obligation_ids_, definition_ids_;
  std::vector<std::pair<const v1::ConditionDef*, Where>> definitions_;
  std::vector<int> definition_state_;  // 0 new, 1 compiling, 2 done, 3 failed
  absl::flat_hash_set<std::string> rule_ids_;
  absl::flat_hash_set<int> transition_actions_;
  std::vector<std::pair<bool, std::vector<int>>> rule_actions_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CompiledPolicy>> CompilePolicy(const std::vector<SourceFile>& files) {
  return Compiler(files).Run();
}

absl::Status ParseTextProto(absl::string_view text, absl::string_view filename,
                            google::protobuf::Message* message) {
  ParseErrors collector(filename);
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (!parser.ParseFromString(std::string(text), message)) {
    return absl::InvalidArgumentError(absl::StrJoin(collector.errors(), "\n"));
  }
  return absl::OkStatus();
}

namespace {

// The common form "YYYY-MM-DDTHH:MM:SSZ" without absl::ParseTime's general
// machinery: a request carries several times, and parsing them is most of
// an evaluation's cost otherwise. Anything else takes the general path.
bool ParseUtcSeconds(absl::string_view s, absl::Time* t) {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return false;
  }
  auto num = [&](size_t at, size_t n, int* v) {
    *v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) ||
      !num(14, 2, &mi) || !num(17, 2, &sec)) {
    return false;
  }
  absl::CivilSecond c(y, mo, d, h, mi, sec);
  // CivilSecond normalizes (Feb 30 becomes Mar 2): a changed field means
  // the text was not a real time. Leap seconds (:60) take the general path.
  if (c.year() != y || c.month() != mo || c.day() != d || c.hour() != h || c.minute() != mi ||
      c.second() != sec) {
    return false;
  }
  *t = absl::FromCivil(c, absl::UTCTimeZone());
  return true;
}

}  // namespace

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  absl::Time t;
  if (ParseUtcSeconds(text, &t)) return t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)"));
  }
  return t;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace medvault::policy
