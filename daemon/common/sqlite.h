// The few SQLite (SQLCipher) helpers every medvault database uses: a
// prepared statement finalised with its object, and one-shot execution.
// Errors are INTERNAL statuses prefixed with the owner's name ("patient
// store: step: database is locked"), never with bound values, which may be
// secret.
#ifndef MEDVAULT_DAEMON_COMMON_SQLITE_H_
#define MEDVAULT_DAEMON_COMMON_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "daemon/common/secret.h"

namespace medvault {

// Opens (creating it if missing) the SQLCipher database at `path`, keyed
// with a raw 256-bit key (PRAGMA key = "x'..'": no PBKDF2, the key comes
// from the keyvault), and reads page 1 so that a wrong key, or a file that
// is not such a database, fails here. FAILED_PRECONDITION naming `owner`
// and the path otherwise; the key never appears in a message, and the
// statement text that held it is wiped. The caller owns the connection.
//
// `cipher_page_size` (a power of two from 512 to 65536; 0 for SQLCipher's
// default, 1024 in the Debian 12 package) must be the size the database
// was created with: another size reads as a wrong key.
absl::StatusOr<sqlite3*> SqliteOpenEncrypted(const std::string& path, const SecretData& key,
                                             absl::string_view owner, int cipher_page_size = 0);

// The same, for a database whose page size changed over time: a missing
// database is created with page_sizes[0]; an existing one is opened with
// the first of `page_sizes` that reads.
absl::StatusOr<sqlite3*> SqliteOpenEncrypted(const std::string& path, const SecretData& key,
                                             absl::string_view owner,
                                             absl::Span<const int> page_sizes);

// Versioned schema migrations (PRAGMA user_version). migrations[i] brings
// the database from version i to i + 1 (migrations[0] creates it); each
// runs in its own transaction together with setting user_version, so a
// crash or a failing step leaves the database at the last complete version
// and the next start resumes there. A database newer than
// migrations.size() is refused with FAILED_PRECONDITION, never downgraded.
// Returns the version found before migrating (0 for a new database).
absl::StatusOr<int64_t> SqliteMigrate(sqlite3* db, absl::string_view owner,
                                      absl::Span<const char* const> migrations);

// Runs `body` between BEGIN IMMEDIATE and COMMIT; ROLLBACK and its error
// when it fails.
absl::Status SqliteTransaction(sqlite3* db, absl::string_view owner,
                               absl::FunctionRef<absl::Status()> body);

// `owner` names the database in error messages.
absl::Status SqliteError(sqlite3* db, absl::string_view owner, absl::string_view what);
// Runs `sql` (one or more statements, no parameters).
absl::Status SqliteExec(sqlite3* db, absl::string_view owner, const char* sql);

class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, absl::string_view owner, const char* sql);
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Whether preparing succeeded.
  absl::Status status() const;
  SqliteStatement& Bind(int index, int64_t value);
  SqliteStatement& BindText(int index, absl::string_view text);
  SqliteStatement& BindBlob(int index, absl::string_view data);
  // Makes the statement ready to run again, its bindings cleared.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  // True while rows come; false when done. Errors become a status.
  absl::StatusOr<bool> Step();

  bool IsNull(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  int64_t Int(int column) { return sqlite3_column_int64(stmt_, column); }
  std::string Blob(int column);
  // A blob that is key material: straight into a SecretData.
  SecretData SecretBlob(int column);
  std::string Text(int column);

 private:
  sqlite3* db_;
  std::string owner_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace medvault

#endif  // MEDVAULT_DAEMON_COMMON_SQLITE_H_
