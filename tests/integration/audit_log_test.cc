// The audit log through the real fleet with its contracts deployed: events
// appended with their changes, tree heads signed by the keyvault's log key,
// anchored on anvil by the signer; proofs checked by an independent Python
// verifier (tests/python/rfc6962.py, hashlib only) over AuditService; and
// `medvaultctl audit verify` run on copies of the database after the fleet
// stopped, each tampered with one way, naming the first bad entry.
#include <grp.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/common/merkle.h"
#include "daemon/common/secret.h"
#include "daemon/common/sqlite.h"
#include "daemon/gateway/registry_db.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "medvault/internal/v1/signer.grpc.pb.h"
#include "medvault/v1/audit.grpc.pb.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/process_util.h"
#include "tests/integration/test_status.h"

#ifndef MEDVAULT_PYTHON3
#error "MEDVAULT_PYTHON3 (Debian's python3) must be defined by the build"
#endif
#ifndef MEDVAULT_PYTHON_STUBS_DIR
#error "MEDVAULT_PYTHON_STUBS_DIR (the generated medvault.v1 stubs) must be defined by the build"
#endif

namespace medvault::integration {
namespace {

using ::testing::HasSubstr;

constexpr char kLogName[] = "audit-test-log";
constexpr absl::Duration kAnchorWait = absl::Seconds(90);

class AuditLogTest : public ClinicalTest {
 protected:
  // Heads every 200 ms and an anchor for every new head, so the test does
  // not wait for the defaults (1 s, 10,000 entries or 60 s).
  void EditConfig(std::string& config) override {
    const std::string state_dir = absl::StrCat("  state_dir: \"", dir(), "/data/gateway\"\n");
    ASSERT_THAT(config, HasSubstr(state_dir));
    absl::StrReplaceAll(
        {{state_dir, absl::StrCat(state_dir, "  audit { log_name: \"", kLogName,
                                  "\" tree_head_interval_ms: 200 anchor_interval_ms: 1000 "
                                  "anchor_every_entries: 1 }\n")}},
        &config);
  }

  // Registers hospitals h<from>..h<to - 1> as the regulator: one audit
  // event each.
  void RegisterHospitals(int from, int to) {
    for (int i = from; i < to; ++i) ASSERT_NO_FATAL_FAILURE(RegisterHospital(absl::StrCat("h", i)));
  }

  // Waits until the chain holds an anchor of this log of at least `size`.
  absl::Status WaitAnchored(uint64_t size) {
    auto signer = internal::v1::Signer::NewStub(grpc::CreateChannel(
        "unix:" + socket_path(Role::kSigner), grpc::InsecureChannelCredentials()));
    internal::v1::GetAnchorRequest request;
    request.set_log_id(merkle::LogId(kLogName));
    const absl::Time deadline = absl::Now() + kAnchorWait;
    uint64_t seen = 0;
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      internal::v1::GetAnchorResponse response;
      if (signer->GetAnchor(&context, request, &response).ok()) {
        seen = response.tree_size();
        if (seen >= size) return absl::OkStatus();
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("the chain anchored size ", seen, ", not ", size));
  }

  // The registry database's key, as the keyvault hands it to the gateway's
  // user only: asked with that user's effective ids (this test runs as
  // root, the fleet as the medvault-* users).
  absl::StatusOr<std::string> DatabaseKey() {
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    std::vector<gid_t> groups(static_cast<size_t>(getgroups(0, nullptr)));
    groups.resize(static_cast<size_t>(getgroups(static_cast<int>(groups.size()), groups.data())));
    if (uid == 0) {
      // Its groups too: they open the keyvault's socket to it.
      struct passwd* pw = getpwnam("medvault-gateway");
      if (pw == nullptr) return absl::NotFoundError("no user medvault-gateway");
      int count = 64;
      std::vector<gid_t> its(static_cast<size_t>(count));
      if (getgrouplist(pw->pw_name, pw->pw_gid, its.data(), &count) < 0) {
        return absl::InternalError("too many groups");
      }
      if (setgroups(static_cast<size_t>(count), its.data()) != 0 || setegid(pw->pw_gid) != 0 ||
          seteuid(pw->pw_uid) != 0) {
        return absl::InternalError("cannot take the gateway's user");
      }
    }
    absl::Cleanup restore = [uid, gid, &groups] {
      if (uid == 0) {
        (void)seteuid(uid);
        (void)setegid(gid);
        (void)setgroups(groups.size(), groups.data());
      }
    };
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto keyvault = internal::v1::KeyVault::NewStub(grpc::CreateCustomChannel(
        "unix:" + socket_path(Role::kKeyvault), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    internal::v1::UnwrapDatabaseKeyRequest request;
    request.set_name("gateway");
    internal::v1::UnwrapDatabaseKeyResponse response;
    grpc::Status status = keyvault->UnwrapDatabaseKey(&context, request, &response);
    if (!status.ok()) return absl::InternalError(Describe(status));
    return response.key();
  }

  std::string GatewayDb() const { return dir() + "/data/gateway/registry.db"; }
};

// The compliance office's proofs, checked by tests/python/audit_proofs.py
// with nothing of the gateway's code.
TEST_F(AuditLogTest, ProofsCheckedByAnIndependentVerifier) {
  ASSERT_NO_FATAL_FAILURE(RegisterHospitals(0, 12));
  ASSERT_NO_FATAL_FAILURE(Issue("compliance", "compliance-office", "compliance"));
  const char* source = std::getenv("MEDVAULT_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  const std::vector<std::string> argv = {
      MEDVAULT_PYTHON3, std::string(source) + "/tests/python/audit_proofs.py",
      "--gateway",      gateway_address(),
      "--pki",          pki(),
      "--compliance",   "compliance",
      "--stubs",        MEDVAULT_PYTHON_STUBS_DIR,
  };
  CommandResult run = RunCommand(argv, absl::Minutes(5));
  ASSERT_EQ(run.exit_code, 0) << "audit_proofs.py:\n" << run.output;
  EXPECT_THAT(run.output, HasSubstr("every proof verified independently"));
  std::cout << run.output;

  // A hospital is not the compliance office.
  ASSERT_NO_FATAL_FAILURE(Issue("city", "city-general", "hospital"));
  auto audit =
      v1::AuditService::NewStub(GatewayChannel(gateway_address(), ca_cert(), pki() + "/city"));
  grpc::ClientContext context;
  v1::SignedTreeHead head;
  EXPECT_EQ(audit->GetSignedTreeHead(&context, {}, &head).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

class AuditTamperTest : public AuditLogTest {
 protected:
  // A copy of the stopped fleet's database in <dir>/<name>/, changed by
  // `change` (run with the key, foreign keys off as an attacker's would be).
  std::string Tampered(const std::string& name, absl::FunctionRef<void(sqlite3*)> change) {
    const std::string copy = absl::StrCat(dir(), "/", name);
    std::filesystem::create_directories(copy);
    CopyDatabase(pristine_, copy + "/registry.db");
    absl::StatusOr<sqlite3*> db = SqliteOpenEncrypted(copy + "/registry.db", SecretData(key_),
                                                      "copy", gateway::kRegistryPageSizes);
    EXPECT_TRUE(db.ok()) << db.status();
    if (db.ok()) {
      change(*db);
      sqlite3_close(*db);
    }
    return copy;
  }

  // The database file and its write-ahead log, if one is left.
  static void CopyDatabase(const std::string& from, const std::string& to) {
    for (const char* suffix : {"", "-wal"}) {
      if (!std::filesystem::exists(from + suffix)) continue;
      std::filesystem::copy_file(from + suffix, to + suffix,
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }

  static void Exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << sql << ": " << (error ? error : "");
  }

  static std::string Event(sqlite3* db, int64_t seq) {
    SqliteStatement q(db, "copy", "SELECT event FROM audit_events WHERE seq = ?");
    q.Bind(1, seq);
    EXPECT_TRUE(*q.Step());
    return q.Blob(0);
  }

  static void SetEvent(sqlite3* db, int64_t seq, const std::string& event) {
    SqliteStatement q(db, "copy", "UPDATE audit_events SET event = ? WHERE seq = ?");
    q.BindBlob(1, event).Bind(2, seq);
    EXPECT_TRUE(q.Step().ok());
  }

  // medvaultctl audit verify on a copy; its report shown for ctest -V.
  CommandResult Verify(const std::string& db_dir) {
    CommandResult result = RunCtl({"audit", "verify", "--db", db_dir, "--db-key-file", key_file_,
                                   "--public-key", public_key_});
    std::cout << "--- audit verify --db " << db_dir << " (exit " << result.exit_code << ")\n"
              << result.output;
    return result;
  }

  std::string pristine_;
  std::string key_;
  std::string key_file_;
  std::string public_key_;
  uint64_t size_ = 0;
  uint64_t old_size_ = 0;
  std::string old_copy_;
};

// Every tamper case of the issue, each caught by `medvaultctl audit verify`
// with the first bad entry, from copies of the database, the pinned log
// key and the chain: the gateway is not running.
TEST_F(AuditTamperTest, VerifyNamesTheFirstBadEntry) {
  // 10 registrations and a refused one (a hospital registering a hospital).
  ASSERT_NO_FATAL_FAILURE(RegisterHospitals(0, 10));
  ASSERT_NO_FATAL_FAILURE(Issue("city", "city-general", "hospital"));
  {
    auto registry = Registry(As("city"));
    grpc::ClientContext context;
    v1::RegisterHospitalRequest request;
    request.set_organization_id("rogue");
    request.set_display_name("Rogue");
    v1::Hospital out;
    ASSERT_EQ(registry->RegisterHospital(&context, request, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  old_size_ = 11;
  MEDVAULT_ASSERT_OK(WaitAnchored(old_size_));
  absl::StatusOr<std::string> key = DatabaseKey();
  MEDVAULT_ASSERT_OK(key);
  key_ = *key;

  // The older copy, taken now with SQLite's online backup.
  old_copy_ = dir() + "/older";
  std::filesystem::create_directories(old_copy_);
  {
    absl::StatusOr<sqlite3*> live =
        SqliteOpenEncrypted(GatewayDb(), SecretData(key_), "live", gateway::kRegistryPageSizes);
    MEDVAULT_ASSERT_OK(live);
    absl::StatusOr<sqlite3*> old = SqliteOpenEncrypted(old_copy_ + "/registry.db", SecretData(key_),
                                                       "older", gateway::kRegistryPageSizes);
    MEDVAULT_ASSERT_OK(old);
    sqlite3_backup* backup = sqlite3_backup_init(*old, "main", *live, "main");
    ASSERT_NE(backup, nullptr) << sqlite3_errmsg(*old);
    EXPECT_EQ(sqlite3_backup_step(backup, -1), SQLITE_DONE);
    sqlite3_backup_finish(backup);
    sqlite3_close(*old);
    sqlite3_close(*live);
  }

  ASSERT_NO_FATAL_FAILURE(RegisterHospitals(10, 16));
  size_ = old_size_ + 6;
  MEDVAULT_ASSERT_OK(WaitAnchored(size_));
  public_key_ = dir() + "/log-key.pem";
  CommandResult pem = RunCtl({"audit", "public-key", "--output", public_key_});
  ASSERT_EQ(pem.exit_code, 0) << pem.output;

  // The fleet stops; anvil stays: the chain is the public commitment.
  absl::StatusOr<int> stopped = StopMedvaultd(kStopGrace);
  MEDVAULT_ASSERT_OK(stopped);
  pristine_ = dir() + "/pristine.db";
  CopyDatabase(GatewayDb(), pristine_);
  key_file_ = dir() + "/registry.key";
  {
    std::ofstream out(key_file_);
    out << absl::BytesToHexString(key_) << "\n";
  }
  ASSERT_EQ(chmod(key_file_.c_str(), 0600), 0);

  // Untouched: verified against every head and anchor.
  CommandResult clean = Verify(Tampered("clean", [](sqlite3*) {}));
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_THAT(clean.output, HasSubstr(absl::StrCat("entries:     ", size_)));
  EXPECT_THAT(clean.output, HasSubstr("verified:"));
  EXPECT_THAT(clean.output, ::testing::Not(HasSubstr("anchors:     0 checked")));

  // The same through an export.
  const std::string export_file = dir() + "/export.jsonl";
  CommandResult exported = RunCtl({"audit", "export", "--db", dir() + "/clean", "--db-key-file",
                                   key_file_, "--output", export_file});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  CommandResult from_export =
      RunCtl({"audit", "verify", "--export", export_file, "--public-key", public_key_});
  EXPECT_EQ(from_export.exit_code, 0) << from_export.output;

  // The compliance office's other tools on the same copy: the report (the
  // refused registration under its rule; licences and policies from the
  // chain), the FHIR export, a proof.
  const std::string html = dir() + "/report.html";
  CommandResult report = RunCtl(
      {"audit", "report", "--db", dir() + "/clean", "--db-key-file", key_file_, "--html", html});
  ASSERT_EQ(report.exit_code, 0) << report.output;
  std::cout << "--- audit report\n" << report.output;
  EXPECT_THAT(report.output, HasSubstr(absl::StrCat(size_, " events in the log")));
  EXPECT_THAT(report.output, HasSubstr("registry.register_hospital")) << report.output;
  std::ifstream html_in(html);
  std::stringstream page;
  page << html_in.rdbuf();
  EXPECT_THAT(page.str(), HasSubstr("<section id=\"denials\">"));
  EXPECT_THAT(page.str(), HasSubstr("registry.register_hospital"));
  CommandResult fhir = RunCtl({"audit", "export", "--db", dir() + "/clean", "--db-key-file",
                               key_file_, "--format", "fhir", "--action",
                               "registry.register_hospital", "--output", dir() + "/fhir.ndjson"});
  ASSERT_EQ(fhir.exit_code, 0) << fhir.output;
  std::ifstream fhir_in(dir() + "/fhir.ndjson");
  int resources = 0;
  for (std::string line; std::getline(fhir_in, line); ++resources) {
    EXPECT_THAT(line, HasSubstr("\"resourceType\":\"AuditEvent\""));
  }
  EXPECT_EQ(resources, 17);  // 16 registrations and the refused one
  CommandResult prove = RunCtl({"audit", "prove", "--db", dir() + "/clean", "--db-key-file",
                                key_file_, "--leaf", "3", "--size", "11"});
  EXPECT_EQ(prove.exit_code, 0) << prove.output;
  EXPECT_THAT(prove.output, HasSubstr("audit_path:"));

  // One byte of entry 3 changed.
  CommandResult changed = Verify(Tampered("byte", [](sqlite3* db) {
    std::string event = Event(db, 4);
    event[event.size() / 2] ^= 0x01;
    SetEvent(db, 4, event);
  }));
  EXPECT_EQ(changed.exit_code, 1) << changed.output;
  EXPECT_THAT(changed.output, HasSubstr("first bad entry: 3\n")) << changed.output;

  // Entry 5 deleted.
  CommandResult deleted = Verify(
      Tampered("deleted", [](sqlite3* db) { Exec(db, "DELETE FROM audit_events WHERE seq = 6"); }));
  EXPECT_EQ(deleted.exit_code, 1) << deleted.output;
  EXPECT_THAT(deleted.output, HasSubstr("first bad entry: 5\n")) << deleted.output;

  // Entries 2 and 7 swapped.
  CommandResult swapped = Verify(Tampered("swapped", [](sqlite3* db) {
    const std::string a = Event(db, 3);
    const std::string b = Event(db, 8);
    SetEvent(db, 3, b);
    SetEvent(db, 8, a);
  }));
  EXPECT_EQ(swapped.exit_code, 1) << swapped.output;
  EXPECT_THAT(swapped.output, HasSubstr("first bad entry: 2\n")) << swapped.output;

  // The last four entries cut off, with their tree nodes and heads: only
  // the chain remembers.
  const uint64_t kept = size_ - 4;
  CommandResult truncated = Verify(Tampered("truncated", [kept](sqlite3* db) {
    Exec(db, absl::StrCat("DELETE FROM audit_events WHERE seq > ", kept));
    Exec(db, absl::StrCat("DELETE FROM audit_tree WHERE (idx + 1) << level > ", kept));
    Exec(db, absl::StrCat("DELETE FROM audit_tree_heads WHERE tree_size > ", kept));
  }));
  EXPECT_EQ(truncated.exit_code, 1) << truncated.output;
  EXPECT_THAT(truncated.output, HasSubstr(absl::StrCat("first bad entry: ", kept, "\n")))
      << truncated.output;

  // The whole database replaced by the older copy.
  CommandResult older = Verify(old_copy_);
  EXPECT_EQ(older.exit_code, 1) << older.output;
  EXPECT_THAT(older.output, HasSubstr(absl::StrCat("first bad entry: ", old_size_, "\n")))
      << older.output;

  // The latest head re-signed by another P-256 key.
  CommandResult resigned = Verify(Tampered("resigned", [](sqlite3* db) {
    SqliteStatement q(db, "copy",
                      "SELECT tree_size, timestamp_ms, root_hash FROM audit_tree_heads "
                      "ORDER BY tree_size DESC LIMIT 1");
    ASSERT_TRUE(*q.Step());
    const uint64_t size = static_cast<uint64_t>(q.Int(0));
    absl::StatusOr<merkle::Hash> root = merkle::FromBytes(q.Blob(2));
    ASSERT_TRUE(root.ok());
    const std::string message = merkle::TreeHeadMessage(merkle::LogId(kLogName), size,
                                                        static_cast<uint64_t>(q.Int(1)), *root);
    EVP_PKEY* other = EVP_EC_gen("P-256");
    ASSERT_NE(other, nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t length = 0;
    ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, other), 1);
    ASSERT_EQ(
        EVP_DigestSign(ctx, nullptr, &length,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()),
        1);
    std::string signature(length, '\0');
    ASSERT_EQ(
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()),
        1);
    signature.resize(length);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(other);
    SqliteStatement update(db, "copy",
                           "UPDATE audit_tree_heads SET signature = ? WHERE tree_size = ?");
    update.BindBlob(1, signature).Bind(2, static_cast<int64_t>(size));
    ASSERT_TRUE(update.Step().ok());
  }));
  EXPECT_EQ(resigned.exit_code, 1) << resigned.output;
  EXPECT_THAT(resigned.output, HasSubstr(absl::StrCat("signed tree head at size ", size_)));
  EXPECT_THAT(resigned.output, HasSubstr("does not verify with the log's key")) << resigned.output;

  // An export with one leaf changed: no stored hashes to compare, so the
  // heads and anchors bound where the change is.
  std::ifstream in(export_file);
  std::string line;
  std::string rewritten;
  for (int i = 0; std::getline(in, line); ++i) {
    if (i == 9) {
      const size_t leaf = line.find("\"leaf\":\"") + 8;
      line[leaf + 4] = line[leaf + 4] == 'A' ? 'B' : 'A';
    }
    absl::StrAppend(&rewritten, line, "\n");
  }
  const std::string bad_export = dir() + "/export-bad.jsonl";
  std::ofstream(bad_export) << rewritten;
  CommandResult bad =
      RunCtl({"audit", "verify", "--export", bad_export, "--public-key", public_key_});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("first bad entry: among entries")) << bad.output;
}

}  // namespace
}  // namespace medvault::integration
