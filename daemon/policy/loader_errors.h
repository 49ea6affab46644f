// How the policy compiler (policy_loader.h) reports problems: every one is
// a line "file:line: path: message" collected in a list, so that a bundle
// with ten mistakes is fixed in one round, not ten. Internal to the policy
// engine.
#ifndef MEDVAULT_DAEMON_POLICY_LOADER_ERRORS_H_
#define MEDVAULT_DAEMON_POLICY_LOADER_ERRORS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace medvault::policy {

// Collects the text-format parser's errors (and warnings, which are errors
// here) as "file:line:col: message".
class ParseErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit ParseErrors(absl::string_view file) : file_(file) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override;
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
// the line of its closest enclosing message. Cheap to copy; the file name,
// the location tree and the error list must outlive it.
class Where {
 public:
  Where(const std::string* file, const google::protobuf::TextFormat::ParseInfoTree* tree,
        const google::protobuf::Descriptor* desc, std::vector<std::string>* errors)
      : file_(file), tree_(tree), desc_(desc), errors_(errors) {}

  // The field `name` of this message; `index` for one element of a
  // repeated field.
  Where Field(absl::string_view name, int index = -1) const;

  // Adds "file:line: path: message" to the error list.
  void Error(absl::string_view message) const;

 private:
  const std::string* file_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
  const google::protobuf::Descriptor* desc_;
  std::vector<std::string>* errors_;
  int line_ = 1;
  std::string path_;
};

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_LOADER_ERRORS_H_
