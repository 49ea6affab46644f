#include "daemon/policy/catalogue.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/policy/policy_loader.h"

namespace medvault::policy {

using v1::AttributeDef;

const char* TypeName(AttrType type) {
  switch (type) {
    case AttributeDef::BOOL:
      return "BOOL";
    case AttributeDef::INT:
      return "INT";
    case AttributeDef::STRING:
      return "STRING";
    case AttributeDef::ENUM:
      return "ENUM";
    case AttributeDef::ENUM_SET:
      return "ENUM_SET";
    case AttributeDef::STRING_SET:
      return "STRING_SET";
    case AttributeDef::TIME:
      return "TIME";
    case AttributeDef::DURATION:
      return "DURATION";
    default:
      return "unspecified";
  }
}

int RegisterName(absl::flat_hash_map<std::string, int>& ids, const std::string& name, int next,
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

int LookUpName(const absl::flat_hash_map<std::string, int>& ids, const std::string& name,
               const Where& w, absl::string_view kind) {
  auto it = ids.find(name);
  if (it == ids.end()) {
    w.Error(absl::StrCat("unknown ", kind, " \"", name, "\""));
    return -1;
  }
  return it->second;
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

Catalogue::Catalogue(CompiledPolicy* out) : out_(out) {
  AddAttribute(kTimeAttribute, AttributeDef::TIME, -1, false);
  out_->time_attr = 0;
}

int Catalogue::AddAttribute(const std::string& name, AttrType type, int enum_id, bool constant) {
  int id = static_cast<int>(out_->attributes.size());
  out_->attribute_ids.emplace(name, id);
  out_->attributes.push_back({name, type, enum_id, constant});
  out_->constants.emplace_back();
  return id;
}

int Catalogue::AddEnum(const std::string& name,
                       const google::protobuf::RepeatedPtrField<std::string>& values,
                       const Where& w, absl::string_view values_field) {
  int id = RegisterName(out_->enum_ids, name, static_cast<int>(out_->enums.size()), w, "enum");
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

void Catalogue::DeclareNames(const v1::PolicyFile& f, const Where& w) {
  for (int i = 0; i < f.enums_size(); ++i) {
    Where e = w.Field("enums", i);
    AddEnum(f.enums(i).name(), f.enums(i).values(), e, "values");
  }
  for (int i = 0; i < f.roles_size(); ++i) {
    Where r = w.Field("roles", i);
    if (RegisterName(out_->role_ids, f.roles(i).name(), static_cast<int>(out_->roles.size()), r,
                     "role") >= 0) {
      out_->roles.push_back(f.roles(i).name());
    }
    if (out_->roles.size() > CompiledPolicy::kMaxRoles) r.Error("more than 64 roles");
  }
  for (int i = 0; i < f.actions_size(); ++i) {
    if (RegisterName(out_->action_ids, f.actions(i).name(), static_cast<int>(out_->actions.size()),
                     w.Field("actions", i), "action") >= 0) {
      out_->actions.push_back({f.actions(i).name(), {}});
    }
  }
  for (int i = 0; i < f.obligations_size(); ++i) {
    if (RegisterName(obligation_ids_, f.obligations(i).name(),
                     static_cast<int>(out_->obligations.size()), w.Field("obligations", i),
                     "obligation") >= 0) {
      out_->obligations.push_back(f.obligations(i).name());
    }
  }
}

void Catalogue::DeclareStateMachines(const v1::PolicyFile& f, const Where& w) {
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

void Catalogue::DeclareAttributes(const v1::PolicyFile& f, const Where& w) {
  for (int i = 0; i < f.attributes_size(); ++i) {
    DeclareAttribute(f.attributes(i), w.Field("attributes", i));
  }
}

void Catalogue::DeclareAttribute(const AttributeDef& a, const Where& at) {
  if (a.name().empty()) {
    at.Field("name").Error("required");
    return;
  }
  if (out_->attribute_ids.contains(a.name())) {
    at.Field("name").Error(absl::StrCat("attribute \"", a.name(), "\" declared twice"));
    return;
  }
  if (a.type() == AttributeDef::TYPE_UNSPECIFIED) {
    at.Field("type").Error("required");
    return;
  }
  int enum_id = -1;
  if (a.type() == AttributeDef::ENUM || a.type() == AttributeDef::ENUM_SET) {
    auto it = out_->enum_ids.find(a.enum_());
    if (it == out_->enum_ids.end()) {
      at.Field("enum").Error(absl::StrCat("unknown enum \"", a.enum_(), "\""));
      return;
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
  if (!constant) return;
  if (a.type() == AttributeDef::ENUM_SET || a.type() == AttributeDef::STRING_SET) {
    at.Field("constant").Error("sets cannot be constants");
  } else if (ParseLiteral(id, a.constant(), at.Field("constant"), &out_->constants[id].num,
                          &out_->constants[id].str)) {
    out_->constants[id].present = true;
  }
}

void Catalogue::DeclareActions(const v1::PolicyFile& f, const Where& w) {
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

int Catalogue::Attribute(const std::string& name, const Where& w) const {
  return LookUpName(out_->attribute_ids, name, w, "attribute");
}

int Catalogue::Role(const std::string& name, const Where& w) const {
  return LookUpName(out_->role_ids, name, w, "role");
}

int Catalogue::Action(const std::string& name, const Where& w) const {
  return LookUpName(out_->action_ids, name, w, "action");
}

int Catalogue::Obligation(const std::string& name, const Where& w) const {
  return LookUpName(obligation_ids_, name, w, "obligation");
}

bool Catalogue::ParseLiteral(int attr, const std::string& text, const Where& w, int64_t* num,
                             std::string* str) const {
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

std::string Catalogue::LiteralText(int attr, int64_t num, const std::string& str) const {
  const AttributeInfo& a = out_->attributes[attr];
  switch (a.type) {
    case AttributeDef::BOOL:
      return num ? "true" : "false";
    case AttributeDef::STRING:
      return absl::StrCat("\"", str, "\"");
    case AttributeDef::ENUM:
    case AttributeDef::ENUM_SET:
      return out_->enums[a.enum_id].values[num];
    case AttributeDef::TIME:
      return FormatRfc3339(absl::FromUnixMicros(num));
    case AttributeDef::DURATION:
      return absl::FormatDuration(absl::Microseconds(num));
    default:
      return absl::StrCat(num);
  }
}

bool Catalogue::IsScalar(int attr) const {
  AttrType t = out_->attributes[attr].type;
  return t != AttributeDef::ENUM_SET && t != AttributeDef::STRING_SET;
}

bool Catalogue::IsConstant(int attr) const { return out_->attributes[attr].constant; }

}  // namespace medvault::policy
