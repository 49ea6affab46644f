#include "daemon/policy/loader_errors.h"

#include "absl/strings/str_cat.h"

namespace medvault::policy {

using google::protobuf::FieldDescriptor;

void ParseErrors::AddError(int line, google::protobuf::io::ColumnNumber column,
                           const std::string& message) {
  errors_.push_back(absl::StrCat(file_, ":", line + 1, ":", column + 1, ": ", message));
}

Where Where::Field(absl::string_view name, int index) const {
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

void Where::Error(absl::string_view message) const {
  errors_->push_back(absl::StrCat(*file_, ":", line_, ": ", path_, ": ", message));
}

}  // namespace medvault::policy
