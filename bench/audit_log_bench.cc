// The audit log in the registry database (daemon/gateway/audit_log.h):
// appends per second including the transaction's commit, and the latency of
// inclusion and consistency proofs read from the stored tree, beside the
// limits measured in the same run:
//
//   BM_Fdatasync        4 KiB pwrite + fdatasync on the same filesystem: a
//                       commit in WAL mode with synchronous=FULL is one sync
//                       (two when it checkpoints)
//   BM_Sha256_300B      SHA-256 of one 300-byte message (OpenSSL, in-process);
//                       an append hashes its leaf and on average one node
//   BM_PlainInsert/N    the same N events per transaction into audit_events
//                       alone, without the tree: the database's own cost
//   BM_NodeLookup/size  one stored tree node by primary key: a proof reads
//                       O(log size) of them
//
// Every database is a real RegistryDb (SQLCipher keyed with a random 256-bit
// key, WAL, synchronous=FULL, the gateway's migrations); nothing is cached in
// front of it that the gateway does not have. BM_Append/N puts N record-read
// events (of random patients among 100,000) in one transaction through one
// AuditAppender; BM_AppendAuditEvent/N does the same through
// AppendAuditEvent, which prepares its statements for every event, as the
// gateway's services call it today. Appends go to a copy of a log that
// already holds --audit_prefill events (default 10^6, made once and kept in
// --audit_data): the per-patient index of audit_events then no longer fits
// SQLite's page cache, as in a gateway that has run for a while, and the
// figures do not depend on how long a benchmark runs. --audit_prefill=0
// starts from an empty database instead.
//
// The proof benchmarks need trees of 10^5, 10^6 and 10^7 leaves. They are
// built once, by inserting only the audit_tree nodes of synthetic leaves
// (leaf i is the 8-byte big-endian i) in large transactions, and kept in
// --audit_data (default build/bench/audit-data, or $MEDVAULT_AUDIT_BENCH_DATA)
// with the key they were written with and their root, computed in memory
// while building. Each run checks the stored root and that the proofs it
// times verify against it, and aborts if not. The 10^7 tree takes minutes to
// build and about 1 GB; --audit_sizes=100000,1000000 leaves it out.
//
//   bench/audit-log [--audit_sizes=...] [--audit_prefill=N] [--audit_data=DIR]
//                   [benchmark flags]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "daemon/common/merkle.h"
#include "daemon/common/secret.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/registry_db.h"

namespace medvault::gateway {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string data_dir;
  uint64_t prefill = 1'000'000;
  std::vector<uint64_t> proof_sizes = {100'000, 1'000'000, 10'000'000};
};

Options& Opts() {
  static Options* options = new Options;
  return *options;
}

[[noreturn]] void Die(absl::string_view what) {
  std::cerr << "audit_log_bench: " << what << std::endl;
  std::abort();
}

void OrDie(const absl::Status& s, absl::string_view what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

template <typename T>
T OrDie(absl::StatusOr<T> v, absl::string_view what) {
  OrDie(v.status(), what);
  return *std::move(v);
}

// ---------------------------------------------------------------------------
// Fresh databases for the append benchmarks, on the same filesystem as the
// stored trees; removed afterwards.

class TempDir {
 public:
  TempDir() {
    fs::create_directories(Opts().data_dir);
    std::string pattern = Opts().data_dir + "/run-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) Die(absl::StrCat("mkdtemp in ", Opts().data_dir));
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

SecretData RandomKey() {
  std::string bytes(32, '\0');
  RAND_bytes(reinterpret_cast<uint8_t*>(bytes.data()), 32);
  SecretData key(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

// The key every stored database is written with: 32 random bytes in
// <data>/key (0600), made on first use.
SecretData StoredKey() {
  const std::string path = Opts().data_dir + "/key";
  if (!fs::exists(path)) {
    SecretData key = RandomKey();
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, key.data(), key.size()) != 32 || close(fd) != 0) {
      Die(absl::StrCat("cannot write ", path));
    }
  }
  std::string bytes(32, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), 32)) Die(absl::StrCat("cannot read 32 bytes from ", path));
  SecretData key(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

std::string Hex(size_t random_bytes) {
  std::string bytes(random_bytes, '\0');
  RAND_bytes(reinterpret_cast<uint8_t*>(bytes.data()), static_cast<int>(random_bytes));
  return absl::BytesToHexString(bytes);
}

constexpr uint64_t kPatients = 100'000;

// A practitioner reading a record of patient `patient` (of kPatients), as
// RecordService/GetRecord logs it. The canonical serialisation is about
// 440 bytes.
v1::AuditEvent RecordReadEvent(uint64_t patient) {
  v1::AuditEvent e;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  e.mutable_time()->set_seconds(ns / 1'000'000'000);
  e.mutable_time()->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  v1::AuditActor* actor = e.mutable_actor();
  actor->set_organization_id("st-marys-hospital");
  actor->set_organization_role("HOSPITAL");
  actor->set_practitioner_id(absl::StrCat("dr-", Hex(6)));
  actor->set_policy_role("PRACTITIONER");
  actor->set_certificate_serial(Hex(16));
  e.set_action("record.read");
  e.set_method("/medvault.v1.RecordService/GetRecord");
  e.set_outcome(v1::AuditEvent::SUCCEEDED);
  e.set_patient_id(absl::StrFormat("patient-%016x", patient * 0x9e3779b97f4a7c15));
  e.set_record_id(absl::StrCat("rec-", Hex(16)));
  e.set_record_cid(absl::StrCat("bafkrei", Hex(26)));
  e.set_decision_id(Hex(16));
  e.add_rule_ids("records.treating_practitioner_reads");
  e.add_rule_ids("records.patient_in_care_of_organization");
  e.set_policy_version(42);
  e.set_request_id(absl::StrCat("req-", Hex(16)));
  return e;
}

// Events to append, of random patients.
const std::vector<v1::AuditEvent>& Events() {
  static const auto* events = [] {
    auto* v = new std::vector<v1::AuditEvent>;
    std::mt19937_64 rng(1);
    for (int i = 0; i < 8192; ++i) v->push_back(RecordReadEvent(rng() % kPatients));
    return v;
  }();
  return *events;
}

// Inserts events as the gateway stores them, `count` per transaction, and
// the tree over them (CatchUpAuditTree): the log a gateway has after
// months of use.
void Prefill(RegistryDb& db, uint64_t events) {
  constexpr uint64_t kChunk = 50'000;
  std::mt19937_64 rng(2);
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  for (uint64_t done = 0; done < events;) {
    const uint64_t end = std::min(events, done + kChunk);
    OrDie(db.Write([&](sqlite3* sql) -> absl::Status {
      SqliteStatement insert(sql, RegistryDb::kOwner,
                             "INSERT INTO audit_events (seq, time, action, patient_id, event) "
                             "VALUES (?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(insert.status());
      for (; done < end; ++done) {
        const v1::AuditEvent e = RecordReadEvent(rng() % kPatients);
        insert.Reset();
        insert.Bind(1, static_cast<int64_t>(done + 1)).Bind(2, e.time().seconds() * 1000);
        insert.BindText(3, e.action()).BindText(4, e.patient_id()).BindBlob(5, CanonicalEvent(e));
        RETURN_IF_ERROR(insert.Step().status());
      }
      return CatchUpAuditTree(sql);
    }),
          "prefilling the audit log");
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(10) || done == events) {
      std::cerr << absl::StrFormat("audit_log_bench: prefilling %d audit events: %d done\n", events,
                                   done);
      last = now;
    }
  }
  OrDie(db.Read([](sqlite3* sql) {
    return SqliteExec(sql, RegistryDb::kOwner, "PRAGMA wal_checkpoint(TRUNCATE)");
  }),
        "checkpointing");
}

// <data>/events-N/registry.db: N events with their tree, made once.
std::string PrefilledDb() {
  const std::string dir = absl::StrCat(Opts().data_dir, "/events-", Opts().prefill);
  if (!fs::exists(dir + "/done")) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto db = OrDie(RegistryDb::Open(dir, StoredKey()), absl::StrCat("opening ", dir));
    Prefill(*db, Opts().prefill);
    std::ofstream(dir + "/done") << Opts().prefill << "\n";
  }
  return dir + "/registry.db";
}

// A database to append to, in its own temporary directory: a copy of the
// prefilled log, or an empty one with --audit_prefill=0.
struct AppendDb {
  AppendDb() {
    if (Opts().prefill == 0) {
      db = OrDie(RegistryDb::Open(dir.path(), RandomKey()), "opening the registry database");
      return;
    }
    const std::string copy = dir.path() + "/registry.db";
    fs::copy_file(PrefilledDb(), copy);
    // On disk before timing starts: otherwise the first checkpoint's fsync
    // writes the whole copy.
    int fd = open(copy.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0) Die(absl::StrCat("fsync ", copy));
    db = OrDie(RegistryDb::Open(dir.path(), StoredKey()), "opening the registry database");
  }
  TempDir dir;
  std::unique_ptr<RegistryDb> db;
};

// One database per benchmark (`name` and argument), kept across the calls
// Google Benchmark makes for it and its repetitions (the few thousand
// events each adds are nothing beside the prefill); removed when the next
// benchmark starts, and at exit.
std::unique_ptr<AppendDb>& CurrentAppendDb() {
  static auto* current = new std::unique_ptr<AppendDb>;
  return *current;
}

RegistryDb* AppendDbFor(absl::string_view name, int64_t arg) {
  static auto* current_key = new std::string;
  const std::string key = absl::StrCat(name, "/", arg);
  if (*current_key != key || CurrentAppendDb() == nullptr) {
    CurrentAppendDb().reset();
    CurrentAppendDb() = std::make_unique<AppendDb>();
    *current_key = key;
  }
  return CurrentAppendDb()->db.get();
}

// ---------------------------------------------------------------------------
// Appends.

void SetRates(benchmark::State& state, int64_t batch) {
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["commits/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["event_bytes"] = static_cast<double>(CanonicalEvent(Events()[0]).size());
}

void BM_Append(benchmark::State& state) {
  const int64_t batch = state.range(0);
  RegistryDb* db = AppendDbFor("BM_Append", batch);
  size_t next = 0;
  for (auto _ : state) {
    absl::Status s = db->Write([&](sqlite3* sql) -> absl::Status {
      AuditAppender appender(sql);
      for (int64_t i = 0; i < batch; ++i) {
        RETURN_IF_ERROR(appender.Append(Events()[next++ % Events().size()]).status());
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  SetRates(state, batch);
}
BENCHMARK(BM_Append)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseRealTime()->Unit(
    benchmark::kMicrosecond);

void BM_AppendAuditEvent(benchmark::State& state) {
  const int64_t batch = state.range(0);
  RegistryDb* db = AppendDbFor("BM_AppendAuditEvent", batch);
  size_t next = 0;
  for (auto _ : state) {
    absl::Status s = db->Write([&](sqlite3* sql) -> absl::Status {
      for (int64_t i = 0; i < batch; ++i) {
        RETURN_IF_ERROR(AppendAuditEvent(sql, Events()[next++ % Events().size()]).status());
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  SetRates(state, batch);
}
BENCHMARK(BM_AppendAuditEvent)->Arg(1)->Arg(100)->UseRealTime()->Unit(benchmark::kMicrosecond);

// As the gateway appends: every call its own RegistryDb::Write with one
// event (CommitWithAudit: the database's AuditAppender), from many threads
// at once. Concurrent writes
// share transactions (group commit), so the rate grows with the threads
// while a single writer waits for its own fsync.
std::atomic<RegistryDb*> concurrent_db{nullptr};

void BM_ConcurrentWriters(benchmark::State& state) {
  if (state.thread_index() == 0) {
    concurrent_db = AppendDbFor("BM_ConcurrentWriters", state.threads());
  }
  size_t next = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    RegistryDb* db = concurrent_db.load();
    absl::Status s = db->Write([&](sqlite3*) {
      return db->audit_appender().Append(Events()[next++ % Events().size()]).status();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    RegistryDb* db = concurrent_db.load();
    state.counters["writes_per_commit"] =
        static_cast<double>(db->writes()) /
        static_cast<double>(std::max<uint64_t>(1, db->transactions()));
  }
}
BENCHMARK(BM_ConcurrentWriters)
    ->Threads(1)
    ->Threads(8)
    ->Threads(64)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The limit: the same rows of audit_events (serialised the same way, same
// index), no size check and no tree.
void BM_PlainInsert(benchmark::State& state) {
  const int64_t batch = state.range(0);
  RegistryDb* db = AppendDbFor("BM_PlainInsert", batch);
  int64_t seq = 0;
  OrDie(db->Read([&](sqlite3* sql) -> absl::Status {
    SqliteStatement last(sql, RegistryDb::kOwner, "SELECT COALESCE(MAX(seq), 0) FROM audit_events");
    RETURN_IF_ERROR(last.status());
    RETURN_IF_ERROR(last.Step().status());
    seq = last.Int(0);
    return absl::OkStatus();
  }),
        "reading the last sequence number");
  for (auto _ : state) {
    absl::Status s = db->Write([&](sqlite3* sql) -> absl::Status {
      SqliteStatement insert(sql, RegistryDb::kOwner,
                             "INSERT INTO audit_events (seq, time, action, patient_id, event) "
                             "VALUES (?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(insert.status());
      for (int64_t i = 0; i < batch; ++i) {
        const v1::AuditEvent& e = Events()[seq % Events().size()];
        const std::string leaf = CanonicalEvent(e);
        insert.Reset();
        insert.Bind(1, ++seq).Bind(2, e.time().seconds() * 1000).BindText(3, e.action());
        insert.BindText(4, e.patient_id()).BindBlob(5, leaf);
        RETURN_IF_ERROR(insert.Step().status());
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  SetRates(state, batch);
}
BENCHMARK(BM_PlainInsert)
    ->Arg(1)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The limit: one durable 4 KiB write, cycling through 1 MiB as the WAL does
// after a checkpoint.
void BM_Fdatasync(benchmark::State& state) {
  TempDir dir;
  const std::string path = dir.path() + "/sync";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) Die(absl::StrCat("open ", path));
  std::string page(4096, 'x');
  for (int i = 0; i < 256; ++i) pwrite(fd, page.data(), page.size(), i * 4096);
  fdatasync(fd);
  int64_t n = 0;
  for (auto _ : state) {
    if (pwrite(fd, page.data(), page.size(), (n++ % 256) * 4096) != 4096 || fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
  }
  close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Fdatasync)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The limit: SHA-256 of one ~300-byte message.
void BM_Sha256_300B(benchmark::State& state) {
  std::string message(300, 'm');
  uint8_t digest[32];
  for (auto _ : state) {
    EVP_Digest(message.data(), message.size(), digest, nullptr, EVP_sha256(), nullptr);
    benchmark::DoNotOptimize(digest);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sha256_300B);

// ---------------------------------------------------------------------------
// Stored trees for the proofs.

merkle::Hash SyntheticLeafHash(uint64_t i) {
  char bytes[8];
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>(i >> (56 - 8 * k));
  return merkle::LeafHash(absl::string_view(bytes, 8));
}

void Progress(uint64_t done, uint64_t size, double seconds) {
  const double rate = done / seconds;
  std::cerr << absl::StrFormat(
      "audit_log_bench: building the %d-leaf tree: %d leaves (%.0f%%), %.0f leaves/s, "
      "about %.0f s left\n",
      size, done, 100.0 * done / size, rate, (size - done) / rate);
}

// Inserts the nodes of `size` synthetic leaves, 2^17 leaves per
// transaction, through the gateway's own connection settings; the root
// computed in memory.
merkle::Hash BuildTree(RegistryDb& db, uint64_t size) {
  constexpr uint64_t kChunk = 1 << 17;
  merkle::CompactRange range;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  while (range.size() < size) {
    const uint64_t end = std::min(size, range.size() + kChunk);
    OrDie(db.Write([&](sqlite3* sql) -> absl::Status {
      SqliteStatement insert(sql, RegistryDb::kOwner,
                             "INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)");
      RETURN_IF_ERROR(insert.status());
      absl::Status status;
      while (range.size() < end && status.ok()) {
        range.Append(SyntheticLeafHash(range.size()),
                     [&](int level, uint64_t index, const merkle::Hash& hash) {
                       if (!status.ok()) return;
                       insert.Reset();
                       insert.Bind(1, level).Bind(2, static_cast<int64_t>(index));
                       insert.BindBlob(3, merkle::ToBytes(hash));
                       status = insert.Step().status();
                     });
      }
      return status;
    }),
          "building the tree");
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(10) || range.size() == size) {
      Progress(range.size(), size, std::chrono::duration<double>(now - start).count());
      last = now;
    }
  }
  OrDie(db.Read([](sqlite3* sql) {
    return SqliteExec(sql, RegistryDb::kOwner, "PRAGMA wal_checkpoint(TRUNCATE)");
  }),
        "checkpointing");
  return range.Root();
}

struct Tree {
  std::unique_ptr<RegistryDb> db;
  uint64_t size = 0;
  merkle::Hash root;  // computed in memory when it was built
};

// Checks that inclusion proofs of random leaves, and consistency proofs
// between random sizes, verify against the root computed in memory.
void VerifyTree(Tree& tree) {
  std::mt19937_64 rng(tree.size);
  OrDie(tree.db->Read([&](sqlite3* sql) -> absl::Status {
    ASSIGN_OR_RETURN(uint64_t stored, AuditTreeSize(sql));
    if (stored != tree.size) return absl::DataLossError(absl::StrCat("size ", stored));
    ASSIGN_OR_RETURN(merkle::Hash root, AuditRoot(sql, tree.size));
    if (root != tree.root) return absl::DataLossError("the stored root differs");
    for (int i = 0; i < 256; ++i) {
      const uint64_t leaf = i == 0 ? tree.size - 1 : rng() % tree.size;
      ASSIGN_OR_RETURN(auto proof, AuditInclusionProof(sql, leaf, tree.size));
      RETURN_IF_ERROR(
          merkle::VerifyInclusion(leaf, tree.size, SyntheticLeafHash(leaf), proof, tree.root));
      const uint64_t first = 1 + rng() % tree.size;
      ASSIGN_OR_RETURN(merkle::Hash first_root, AuditRoot(sql, first));
      ASSIGN_OR_RETURN(auto consistency, AuditConsistencyProof(sql, first, tree.size));
      RETURN_IF_ERROR(
          merkle::VerifyConsistency(first, tree.size, first_root, tree.root, consistency));
    }
    return absl::OkStatus();
  }),
        absl::StrCat("the ", tree.size, "-leaf tree does not verify (remove ", Opts().data_dir,
                     " to rebuild it)"));
}

// Reads the whole file once, so that proofs meet the OS page cache as on a
// gateway that has been running, not the VM's disk.
void WarmPageCache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
  }
}

Tree& TreeOfSize(uint64_t size) {
  static auto* trees = new std::map<uint64_t, Tree>;
  auto it = trees->find(size);
  if (it != trees->end()) return it->second;
  const std::string dir = absl::StrCat(Opts().data_dir, "/tree-", size);
  const std::string root_file = dir + "/root";
  Tree tree;
  tree.size = size;
  if (fs::exists(root_file)) {
    std::string hex;
    std::ifstream(root_file) >> hex;
    tree.root = OrDie(merkle::FromBytes(absl::HexStringToBytes(hex)), root_file);
    tree.db = OrDie(RegistryDb::Open(dir, StoredKey()), absl::StrCat("opening ", dir));
  } else {
    fs::remove_all(dir);
    fs::create_directories(dir);
    tree.db = OrDie(RegistryDb::Open(dir, StoredKey()), absl::StrCat("opening ", dir));
    tree.root = BuildTree(*tree.db, size);
    std::ofstream(root_file + ".tmp") << merkle::ToHex(tree.root) << "\n";
    fs::rename(root_file + ".tmp", root_file);
  }
  std::cerr << absl::StrFormat("audit_log_bench: %s: %d leaves, %.0f MB, root %s\n", dir, size,
                               fs::file_size(dir + "/registry.db") / 1e6, merkle::ToHex(tree.root));
  VerifyTree(tree);
  WarmPageCache(dir + "/registry.db");
  return trees->emplace(size, std::move(tree)).first->second;
}

// How many stored nodes a proof reads (more than its length where a
// sibling is not a perfect subtree).
int NodeReads(uint64_t index, uint64_t size) {
  int reads = 0;
  auto counting = [&](int, uint64_t) -> absl::StatusOr<merkle::Hash> {
    ++reads;
    return merkle::Hash{};
  };
  OrDie(merkle::InclusionProof(index, size, counting).status(), "counting node reads");
  return reads;
}

void BM_InclusionProof(benchmark::State& state) {
  Tree& tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  std::mt19937_64 rng(std::random_device{}());
  uint64_t leaf = 0;
  std::vector<merkle::Hash> proof;
  int64_t hashes = 0;
  for (auto _ : state) {
    leaf = rng() % tree.size;
    absl::Status s = tree.db->Read([&](sqlite3* sql) -> absl::Status {
      ASSIGN_OR_RETURN(proof, AuditInclusionProof(sql, leaf, tree.size));
      return absl::OkStatus();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    hashes += static_cast<int64_t>(proof.size());
  }
  // The last proof timed, checked.
  OrDie(merkle::VerifyInclusion(leaf, tree.size, SyntheticLeafHash(leaf), proof, tree.root),
        "a timed inclusion proof does not verify");
  state.counters["hashes"] = benchmark::Counter(hashes, benchmark::Counter::kAvgIterations);
  double reads = 0;
  for (int i = 0; i < 1000; ++i) reads += NodeReads(rng() % tree.size, tree.size);
  state.counters["node_reads"] = reads / 1000;
}

void BM_ConsistencyProof(benchmark::State& state) {
  Tree& tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  std::mt19937_64 rng(std::random_device{}());
  int64_t hashes = 0;
  for (auto _ : state) {
    uint64_t a = 1 + rng() % tree.size, b = 1 + rng() % tree.size;
    if (a > b) std::swap(a, b);
    absl::Status s = tree.db->Read([&](sqlite3* sql) -> absl::Status {
      ASSIGN_OR_RETURN(auto proof, AuditConsistencyProof(sql, a, b));
      hashes += static_cast<int64_t>(proof.size());
      return absl::OkStatus();
    });
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.counters["hashes"] = benchmark::Counter(hashes, benchmark::Counter::kAvgIterations);
}

// The limit: one random leaf node by primary key, statement prepared once.
void BM_NodeLookup(benchmark::State& state) {
  Tree& tree = TreeOfSize(static_cast<uint64_t>(state.range(0)));
  std::mt19937_64 rng(std::random_device{}());
  OrDie(tree.db->Read([&](sqlite3* sql) -> absl::Status {
    SqliteStatement read(sql, RegistryDb::kOwner,
                         "SELECT hash FROM audit_tree WHERE level = ? AND idx = ?");
    RETURN_IF_ERROR(read.status());
    for (auto _ : state) {
      read.Reset();
      read.Bind(1, 0).Bind(2, static_cast<int64_t>(rng() % tree.size));
      ASSIGN_OR_RETURN(bool found, read.Step());
      if (!found) return absl::DataLossError("a leaf node is missing");
      benchmark::DoNotOptimize(read.Blob(0));
    }
    return absl::OkStatus();
  }),
        "node lookups");
}

// ---------------------------------------------------------------------------
// The summary: each figure beside its limit and its target. Medians when
// repetitions are aggregated, else the mean of the runs.

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      const std::string key = absl::StrCat(run.run_name.function_name, "/", run.run_name.args);
      Figure& f = figures_[key];
      if (run.run_type == Run::RT_Aggregate) {
        f = Figure();
        f.median = true;
      } else if (f.median) {
        continue;
      }
      auto rate = run.counters.find("items_per_second");
      f.rate += rate == run.counters.end() ? 0 : rate->second.value;
      f.us += run.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(run.time_unit) * 1e6;
      auto reads = run.counters.find("node_reads");
      if (reads != run.counters.end()) f.reads = reads->second.value;
      ++f.n;
    }
  }

  void Finalize() override {
    std::ostream& out = GetOutputStream();
    const double sync_us = Us("BM_Fdatasync/"), sha = Rate("BM_Sha256_300B/");
    out << absl::StrFormat(
        "\nLimits of this run: fdatasync of 4 KiB %.0f µs (%.0f/s), SHA-256 of 300 B %.0f/s\n",
        sync_us, sync_us > 0 ? 1e6 / sync_us : 0, sha);
    bool appends = false;
    for (const char* batch : {"1", "10", "100", "1000"}) {
      const double append = Rate(absl::StrCat("BM_Append/", batch));
      const double plain = Rate(absl::StrCat("BM_PlainInsert/", batch));
      const double commit = Us(absl::StrCat("BM_Append/", batch));
      if (append == 0) continue;
      if (!appends) {
        out << absl::StrFormat("%-7s %12s %16s %10s %12s %14s %9s\n", "batch", "appends/s",
                               "plain inserts/s", "tree cost", "commit µs", "x fdatasync",
                               "target");
        appends = true;
      }
      out << absl::StrFormat("%-7s %12.0f %16.0f %9.2fx %12.0f %13.1fx %9s\n", batch, append, plain,
                             plain > 0 ? plain / append : 0, commit,
                             sync_us > 0 ? commit / sync_us : 0,
                             append >= 20'000 ? "met" : "not met");
    }
    if (appends) {
      out << "(target: >= 20,000 appends/s when batched; tree cost = plain inserts/s over "
             "appends/s; commit = one batch's transaction)\n";
    }
    bool header = false;
    for (const auto& [key, f] : figures_) {
      if (!absl::StartsWith(key, "BM_InclusionProof/")) continue;
      const std::string size = key.substr(key.find('/') + 1);
      const double lookup = Us(absl::StrCat("BM_NodeLookup/", size));
      if (!header) {
        out << absl::StrFormat("\n%-10s %10s %16s %11s %15s\n", "tree size", "proof µs",
                               "node lookup µs", "node reads", "proof/lookups");
        header = true;
      }
      out << absl::StrFormat("%-10s %10.1f %16.2f %11.1f %14.2fx\n", size, f.Us(), lookup, f.reads,
                             lookup > 0 ? f.Us() / (lookup * f.reads) : 0);
    }
    if (header) {
      out << "(target: <= 1 ms at 10^7 entries; proof/lookups = a proof's time over its node "
             "reads done as bare lookups)\n";
    }
  }

 private:
  struct Figure {
    double Rate() const { return n > 0 ? rate / n : 0; }
    double Us() const { return n > 0 ? us / n : 0; }
    bool median = false;
    int n = 0;
    double rate = 0, us = 0, reads = 0;
  };
  double Rate(const std::string& key) {
    auto it = figures_.find(key);
    return it == figures_.end() ? 0 : it->second.Rate();
  }
  double Us(const std::string& key) {
    auto it = figures_.find(key);
    return it == figures_.end() ? 0 : it->second.Us();
  }
  std::map<std::string, Figure> figures_;
};

// Takes --audit_data=DIR and --audit_sizes=N,N,... out of argv.
void ParseFlags(int* argc, char** argv) {
  const char* env = std::getenv("MEDVAULT_AUDIT_BENCH_DATA");
  Opts().data_dir = env != nullptr && *env ? env : MEDVAULT_BENCH_BUILD_DIR "/audit-data";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--audit_data=")) {
      Opts().data_dir = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--audit_prefill=")) {
      if (!absl::SimpleAtoi(arg, &Opts().prefill)) Die(absl::StrCat("bad --audit_prefill: ", arg));
    } else if (absl::ConsumePrefix(&arg, "--audit_sizes=")) {
      Opts().proof_sizes.clear();
      for (absl::string_view part : absl::StrSplit(arg, ',', absl::SkipEmpty())) {
        uint64_t n = 0;
        if (!absl::SimpleAtoi(part, &n) || n < 2) Die(absl::StrCat("bad --audit_sizes: ", arg));
        Opts().proof_sizes.push_back(n);
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  fs::create_directories(Opts().data_dir);
}

void RegisterProofBenchmarks() {
  const auto& sizes = Opts().proof_sizes;
  for (uint64_t size : sizes) {
    benchmark::RegisterBenchmark("BM_NodeLookup", BM_NodeLookup)
        ->Arg(static_cast<int64_t>(size))
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_InclusionProof", BM_InclusionProof)
        ->Arg(static_cast<int64_t>(size))
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  if (!sizes.empty()) {
    benchmark::RegisterBenchmark("BM_ConsistencyProof", BM_ConsistencyProof)
        ->Arg(static_cast<int64_t>(*std::max_element(sizes.begin(), sizes.end())))
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
}  // namespace medvault::gateway

int main(int argc, char** argv) {
  medvault::gateway::ParseFlags(&argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  medvault::gateway::RegisterProofBenchmarks();
  medvault::gateway::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  medvault::gateway::CurrentAppendDb().reset();
  benchmark::Shutdown();
  return 0;
}
