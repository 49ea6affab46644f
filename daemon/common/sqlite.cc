#include "daemon/common/sqlite.h"

#include "absl/strings/str_cat.h"

namespace medvault {

absl::Status SqliteError(sqlite3* db, absl::string_view owner, absl::string_view what) {
  return absl::InternalError(absl::StrCat(owner, ": ", what, ": ", sqlite3_errmsg(db)));
}

absl::Status SqliteExec(sqlite3* db, absl::string_view owner, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    return absl::InternalError(absl::StrCat(owner, ": ", message));
  }
  return absl::OkStatus();
}

SqliteStatement::SqliteStatement(sqlite3* db, absl::string_view owner, const char* sql)
    : db_(db), owner_(owner) {
  rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
}

absl::Status SqliteStatement::status() const {
  return rc_ == SQLITE_OK ? absl::OkStatus() : SqliteError(db_, owner_, "prepare");
}

SqliteStatement& SqliteStatement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

SqliteStatement& SqliteStatement::BindText(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::BindBlob(int index, absl::string_view data) {
  sqlite3_bind_blob(stmt_, index, data.data(), static_cast<int>(data.size()), SQLITE_TRANSIENT);
  return *this;
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, owner_, "step");
}

std::string SqliteStatement::Blob(int column) {
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? std::string()
                         : std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

SecretData SqliteStatement::SecretBlob(int column) {
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return SecretData();
  return SecretData(absl::string_view(static_cast<const char*>(data), static_cast<size_t>(size)));
}

std::string SqliteStatement::Text(int column) {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

}  // namespace medvault
