#include "daemon/common/sqlite.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace medvault {

absl::StatusOr<sqlite3*> SqliteOpenEncrypted(const std::string& path, const SecretData& key,
                                             absl::string_view owner, int cipher_page_size) {
  if (key.size() != 32) {
    return absl::FailedPreconditionError(
        absl::StrCat(owner, ": the database key must be 32 bytes, got ", key.size()));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", owner, " ", path, ": ", sqlite3_errstr(rc)));
  }
  std::string pragma = "PRAGMA key = \"x'";
  pragma.reserve(pragma.size() + 2 * key.size() + 2);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < key.size(); ++i) {
    pragma.push_back(kDigits[key.data()[i] >> 4]);
    pragma.push_back(kDigits[key.data()[i] & 0xf]);
  }
  pragma.append("'\"");
  rc = sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr);
  OPENSSL_cleanse(pragma.data(), pragma.size());
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat(owner, ": PRAGMA key failed"));
  }
  if (cipher_page_size != 0) {
    const std::string page = absl::StrCat("PRAGMA cipher_page_size = ", cipher_page_size);
    if (sqlite3_exec(db, page.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      return absl::FailedPreconditionError(absl::StrCat(owner, ": ", page, " failed"));
    }
  }
  // The first read decrypts page 1.
  if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    absl::Status s = absl::FailedPreconditionError(
        absl::StrCat(owner, " ", path,
                     ": cannot be read with its database key (another key, or not this kind of "
                     "database): ",
                     sqlite3_errmsg(db)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

absl::Status SqliteTransaction(sqlite3* db, absl::string_view owner,
                               absl::FunctionRef<absl::Status()> body) {
  if (absl::Status begun = SqliteExec(db, owner, "BEGIN IMMEDIATE"); !begun.ok()) return begun;
  absl::Status result = body();
  if (!result.ok()) {
    SqliteExec(db, owner, "ROLLBACK").IgnoreError();
    return result;
  }
  return SqliteExec(db, owner, "COMMIT");
}

absl::StatusOr<sqlite3*> SqliteOpenEncrypted(const std::string& path, const SecretData& key,
                                             absl::string_view owner,
                                             absl::Span<const int> page_sizes) {
  struct stat st;
  const bool exists = stat(path.c_str(), &st) == 0;
  absl::StatusOr<sqlite3*> opened = absl::InvalidArgumentError("no page size given");
  for (int size : page_sizes) {
    opened = SqliteOpenEncrypted(path, key, owner, size);
    if (opened.ok() || !exists) break;
  }
  return opened;
}

absl::StatusOr<int64_t> SqliteMigrate(sqlite3* db, absl::string_view owner,
                                      absl::Span<const char* const> migrations) {
  int64_t found = 0;
  {  // finalised before the migrations' transactions
    SqliteStatement query(db, owner, "PRAGMA user_version");
    if (!query.status().ok()) return query.status();
    if (absl::Status stepped = query.Step().status(); !stepped.ok()) return stepped;
    found = query.Int(0);
  }
  const int64_t latest = static_cast<int64_t>(migrations.size());
  if (found > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        owner, " has schema version ", found, ", newer than this program's (", latest, ")"));
  }
  for (int64_t version = found; version < latest; ++version) {
    // user_version is in the database header: it commits with the step.
    const std::string set_version = absl::StrCat("PRAGMA user_version = ", version + 1);
    absl::Status migrated = SqliteTransaction(db, owner, [&] {
      absl::Status step = SqliteExec(db, owner, migrations[static_cast<size_t>(version)]);
      if (!step.ok()) return step;
      return SqliteExec(db, owner, set_version.c_str());
    });
    if (!migrated.ok()) {
      return absl::Status(
          migrated.code(),
          absl::StrCat(migrated.message(), " (migrating to schema version ", version + 1, ")"));
    }
  }
  return found;
}

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
