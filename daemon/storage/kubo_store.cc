#include "daemon/storage/kubo_store.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/common/url.h"
#include "daemon/storage/kubo_rpc.h"
#include "daemon/storage/unixfs.h"
#include "google/protobuf/struct.pb.h"

namespace medvault::storage {

using kubo::Json;
using kubo::kMaxBlockBody;
using kubo::Ms;
using kubo::ParseJsonLines;
using kubo::ParseNodeCid;
using kubo::Query;
using kubo::SizeField;
using kubo::StringField;

namespace {

using Rpc = kubo::Rpc;

// Blocks from /api/v0/block/get. The reader that uses it checks every block
// against its CID. `first` is a block fetched already (Open's root).
class RpcBlockSource final : public BlockSource {
 public:
  explicit RpcBlockSource(std::shared_ptr<const Rpc> rpc) : rpc_(std::move(rpc)) {}

  absl::StatusOr<std::string> GetBlock(const Cid& cid) override {
    if (first_.has_value() && first_->first == cid) {
      std::string block = std::move(first_->second);
      first_.reset();
      return block;
    }
    return rpc_->Call("block/get", BlockQuery(*rpc_, cid), kMaxBlockBody);
  }

  void Prime(Cid cid, std::string block) { first_.emplace(std::move(cid), std::move(block)); }

  // arg, plus offline=true (Kubo answers an absent block at once) and a
  // timeout (nodes that ignore offline, js-ipfs, otherwise look forever).
  static Query BlockQuery(const Rpc& rpc, const Cid& cid) {
    return {{"arg", cid.ToString()},
            {"offline", "true"},
            {"timeout", Ms(rpc.options().absent_block_timeout)}};
  }

 private:
  const std::shared_ptr<const Rpc> rpc_;
  std::optional<std::pair<Cid, std::string>> first_;
};

class KuboReader final : public ObjectReader {
 public:
  KuboReader(std::shared_ptr<const Rpc> rpc, const Cid& root, std::string root_block)
      : source_(std::move(rpc)), reader_(source_, root) {
    source_.Prime(root, std::move(root_block));
  }
  absl::StatusOr<bool> Next(std::string* out) override { return reader_.Next(out); }

 private:
  RpcBlockSource source_;
  DagReader reader_;
};

// The bytes between Write() and the connection: Write() pushes, curl's read
// callback pulls on the upload thread. At most `capacity` bytes wait, which
// bounds an upload's memory whatever the object's size.
class UploadPipe {
 public:
  explicit UploadPipe(size_t capacity) : capacity_(capacity) {}

  // Blocks while the pipe is full; false once the connection has ended
  // (the upload's status says why).
  bool Push(absl::string_view data) {
    absl::MutexLock lock(&mu_);
    while (!data.empty()) {
      mu_.Await(absl::Condition(this, &UploadPipe::CanPush));
      if (connection_done_) return false;
      if (head_ > capacity_) {  // keep the buffer from growing at the front
        buffer_.erase(0, head_);
        head_ = 0;
      }
      size_t take = std::min(data.size(), capacity_ - (buffer_.size() - head_));
      buffer_.append(data.data(), take);
      data.remove_prefix(take);
    }
    return true;
  }
  // End of the object: the body ends once the pipe is drained.
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  // The writer is abandoned: the read callback aborts the transfer.
  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
  }
  // The transfer is over, whatever its outcome: Push stops waiting.
  void ConnectionDone() {
    absl::MutexLock lock(&mu_);
    connection_done_ = true;
  }

  // curl_read_callback: waits for bytes; 0 at the end of the object.
  static size_t Read(char* out, size_t size, size_t n, void* arg) {
    return static_cast<UploadPipe*>(arg)->Pull(out, size * n);
  }

 private:
  size_t Pull(char* out, size_t n) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &UploadPipe::CanPull));
    if (aborted_) return CURL_READFUNC_ABORT;
    size_t take = std::min(n, buffer_.size() - head_);
    std::copy_n(buffer_.data() + head_, take, out);
    head_ += take;
    if (head_ == buffer_.size()) {
      buffer_.clear();
      head_ = 0;
    }
    return take;
  }
  bool CanPush() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return connection_done_ || buffer_.size() - head_ < capacity_;
  }
  bool CanPull() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return aborted_ || closed_ || buffer_.size() > head_;
  }

  const size_t capacity_;
  absl::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);  // pending bytes from head_ on
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  bool connection_done_ ABSL_GUARDED_BY(mu_) = false;
};

// Blocks are only counted: the writer's DagBuilder exists to know the CID.
class DiscardingSink final : public BlockSink {
 public:
  absl::Status PutBlock(const Cid&, absl::string_view) override { return absl::OkStatus(); }
};

// Streams the object to /api/v0/add on a thread of its own while hashing
// the same bytes with DagBuilder on the caller's thread.
class KuboWriter final : public ObjectWriter {
 public:
  explicit KuboWriter(std::shared_ptr<const Rpc> rpc)
      : rpc_(std::move(rpc)),
        pipe_(rpc_->options().upload_buffer_bytes),
        builder_(sink_),
        thread_([this] { RunUpload(); }) {}

  ~KuboWriter() override {
    if (thread_.joinable()) {
      pipe_.Abort();  // an abandoned object: the node keeps no pin of it
      thread_.join();
    }
  }

  absl::Status Write(absl::string_view data) override {
    if (done_) return absl::FailedPreconditionError("write to a finished or failed object");
    if (absl::Status s = builder_.Write(data); !s.ok()) return Fail(s);
    if (!pipe_.Push(data)) return Fail(absl::OkStatus());
    return absl::OkStatus();
  }

  absl::StatusOr<ObjectInfo> Finish() override {
    if (done_) return absl::FailedPreconditionError("object already finished or failed");
    absl::StatusOr<Cid> local = builder_.Finish();
    if (!local.ok()) return Fail(local.status());
    pipe_.Close();
    thread_.join();
    done_ = true;
    RETURN_IF_ERROR(upload_.status());
    ASSIGN_OR_RETURN(Cid node, AddedCid(*upload_));
    if (node != *local) return Refuse(node, *local);
    return ObjectInfo{*std::move(local), builder_.size(), /*pinned=*/true};
  }

 private:
  void RunUpload() {
    upload_ = rpc_->Upload("add",
                           {{"cid-version", "1"},
                            {"raw-leaves", "true"},
                            {"pin", "true"},
                            {"cid-base", "base32"},
                            {"chunker", absl::StrCat("size-", kChunkSize)},
                            {"hash", "sha2-256"},
                            {"trickle", "false"},
                            {"progress", "false"}},
                           &UploadPipe::Read, &pipe_);
    pipe_.ConnectionDone();
  }

  // Ends the object after a failure: stops the transfer and returns
  // `cause`, or the upload's own error when `cause` is OK.
  absl::Status Fail(absl::Status cause) {
    done_ = true;
    if (!cause.ok()) pipe_.Abort();
    thread_.join();
    if (!cause.ok()) return cause;
    return upload_.ok() ? absl::InternalError("kubo add: the node ended the upload early")
                        : upload_.status();
  }

  // The root of an add answer: its last line with a Hash.
  static absl::StatusOr<Cid> AddedCid(const std::string& body) {
    ASSIGN_OR_RETURN(std::vector<Json> lines, ParseJsonLines("add", body));
    std::string hash;
    for (const Json& line : lines) {
      if (std::string h = StringField(line, "Hash"); !h.empty()) hash = h;
    }
    if (hash.empty()) {
      return absl::InternalError(
          absl::StrCat("kubo add: no CID in the answer: ", body.substr(0, 200)));
    }
    absl::StatusOr<Cid> cid = ParseNodeCid(hash);
    if (!cid.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("kubo add: the node answered ", hash,
                       ", not a CIDv1 medvault can verify: ", cid.status().message()));
    }
    return cid;
  }

  // The node built another DAG than medvault would: its CID is one medvault
  // cannot recompute, so the node's pin goes and the write fails.
  absl::Status Refuse(const Cid& node, const Cid& local) {
    absl::Status unpin =
        rpc_->Call("pin/rm", {{"arg", node.ToString()}, {"recursive", "true"}}).status();
    log::Error("kubo_cid_mismatch", {{"node_cid", node.ToString()},
                                     {"local_cid", local.ToString()},
                                     {"unpinned", unpin.ok() ? "yes" : unpin.ToString()}});
    return absl::FailedPreconditionError(absl::StrCat(
        "the node at ", rpc_->options().api_url, " stored this object as ", node.ToString(),
        " but medvault computes ", local.ToString(),
        " (is the node configured for another chunker, layout or hash?); the node's pin ",
        unpin.ok() ? "was removed" : "could not be removed: " + unpin.ToString()));
  }

  const std::shared_ptr<const Rpc> rpc_;
  UploadPipe pipe_;
  DiscardingSink sink_;
  DagBuilder builder_;
  bool done_ = false;
  // Written by the upload thread before it ends; read after join().
  absl::StatusOr<std::string> upload_ = absl::UnknownError("upload not run");
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace

// ---------------------------------------------------------------- the store

absl::StatusOr<std::unique_ptr<KuboStore>> KuboStore::Create(KuboStoreOptions options) {
  absl::string_view url = options.api_url;
  while (absl::ConsumeSuffix(&url, "/")) {
  }
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubo api_url \"", options.api_url, "\" is not an http:// or https:// URL"));
  }
  if (absl::StrContains(url, "/api/v0")) {
    return absl::InvalidArgumentError(absl::StrCat("kubo api_url \"", options.api_url,
                                                   "\" must not contain /api/v0 (it is added)"));
  }
  options.api_url = std::string(url);
  if (options.request_timeout <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.absent_block_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("kubo timeouts must be positive");
  }
  if (options.max_retries < 0 || options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "kubo retries: max_retries >= 0 and 0 <= initial_backoff <= max_backoff");
  }
  if (options.upload_buffer_bytes < (64 << 10)) {
    return absl::InvalidArgumentError("kubo upload_buffer_bytes must be at least 64 KiB");
  }
  kubo::InitCurlOnce();
  return std::unique_ptr<KuboStore>(new KuboStore(std::make_shared<const Rpc>(std::move(options))));
}

absl::Status KuboStore::Ping() { return rpc_->Call("version", {}).status(); }

absl::StatusOr<std::unique_ptr<ObjectWriter>> KuboStore::NewWriter() {
  return std::make_unique<KuboWriter>(rpc_);
}

absl::StatusOr<std::unique_ptr<ObjectReader>> KuboStore::Open(const Cid& cid) {
  // The root now, so that an absent object is NOT_FOUND here rather than
  // at the first Next(); the reader verifies it like every other block.
  ASSIGN_OR_RETURN(std::string root,
                   rpc_->Call("block/get", RpcBlockSource::BlockQuery(*rpc_, cid), kMaxBlockBody));
  return std::make_unique<KuboReader>(rpc_, cid, std::move(root));
}

absl::StatusOr<bool> KuboStore::Has(const Cid& cid) {
  absl::Status s = rpc_->Call("block/stat", RpcBlockSource::BlockQuery(*rpc_, cid)).status();
  if (absl::IsNotFound(s)) return false;
  RETURN_IF_ERROR(s);
  return true;
}

absl::StatusOr<uint64_t> KuboStore::ContentSize(const Cid& cid) {
  RpcBlockSource source(rpc_);
  return DagReader(source, cid).Size();
}

absl::StatusOr<bool> KuboStore::IsPinned(const Cid& cid) {
  absl::StatusOr<Json> answer = rpc_->CallJson(
      "pin/ls", {{"arg", cid.ToString()}, {"type", "recursive"}, {"offline", "true"}});
  // "path '...' is not pinned" (js-ipfs), "... is not pinned" (Kubo); an
  // absent object is not pinned either.
  if (absl::IsNotFound(answer.status()) ||
      absl::StrContains(answer.status().message(), "not pinned")) {
    return false;
  }
  RETURN_IF_ERROR(answer.status());
  auto keys = answer->fields().find("Keys");
  return keys != answer->fields().end() && keys->second.has_struct_value() &&
         !keys->second.struct_value().fields().empty();
}

absl::StatusOr<ObjectInfo> KuboStore::Stat(const Cid& cid) {
  ASSIGN_OR_RETURN(uint64_t size, ContentSize(cid));
  ASSIGN_OR_RETURN(bool pinned, IsPinned(cid));
  return ObjectInfo{cid, size, pinned};
}

absl::Status KuboStore::Pin(const Cid& cid) {
  // A quick NOT_FOUND for an absent root. The node then walks the DAG
  // itself; a node that ignores offline=true gets three quarters of the
  // request budget, so that its "timed out" (NOT_FOUND: a block is
  // missing) arrives before curl gives up.
  ASSIGN_OR_RETURN(bool present, Has(cid));
  if (!present) return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " is absent"));
  return rpc_
      ->Call("pin/add", {{"arg", cid.ToString()},
                         {"recursive", "true"},
                         {"offline", "true"},
                         {"timeout", Ms(rpc_->options().request_timeout * 3 / 4)}})
      .status();
}

absl::Status KuboStore::Unpin(const Cid& cid) {
  absl::Status s = rpc_->Call("pin/rm", {{"arg", cid.ToString()}, {"recursive", "true"}}).status();
  if (!s.ok() && absl::StrContains(s.message(), "not pinned")) return absl::OkStatus();
  return s;
}

absl::Status KuboStore::Remove(const Cid& cid) {
  ASSIGN_OR_RETURN(bool present, Has(cid));
  if (!present) return absl::NotFoundError(absl::StrCat("object ", cid.ToString(), " is absent"));
  ASSIGN_OR_RETURN(bool pinned, IsPinned(cid));
  if (pinned) {
    return absl::FailedPreconditionError(
        absl::StrCat("object ", cid.ToString(), " is pinned; unpin it first"));
  }
  RpcBlockSource source(rpc_);
  ASSIGN_OR_RETURN(std::vector<Cid> blocks, ListBlocks(source, cid));
  // Root first: once it is gone the object is absent, and whatever a
  // failure leaves behind is unreferenced and goes at the next GC.
  uint64_t kept = 0;
  for (const Cid& block : blocks) {
    ASSIGN_OR_RETURN(std::string body, rpc_->Call("block/rm", {{"arg", block.ToString()}}));
    ASSIGN_OR_RETURN(std::vector<Json> lines, ParseJsonLines("block/rm", body));
    for (const Json& line : lines) {
      std::string error = StringField(line, "Error");
      if (error.empty() || absl::StrContains(error, "not found")) continue;
      // The node refuses to delete a block that a pinned object uses.
      if (absl::StrContains(error, "pinned")) {
        ++kept;
        continue;
      }
      return absl::InternalError(absl::StrCat("kubo block/rm ", block.ToString(), " at ",
                                              rpc_->options().api_url, ": ", error));
    }
  }
  if (kept > 0) {
    log::Info("kubo_remove_kept_shared", {{"cid", cid.ToString()}, {"blocks_kept", kept}});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ObjectInfo>> KuboStore::List() {
  ASSIGN_OR_RETURN(Json answer, rpc_->CallJson("pin/ls", {{"type", "recursive"}}));
  std::vector<ObjectInfo> out;
  auto keys = answer.fields().find("Keys");
  if (keys == answer.fields().end() || !keys->second.has_struct_value()) return out;
  for (const auto& [text, unused] : keys->second.struct_value().fields()) {
    absl::StatusOr<Cid> cid = ParseNodeCid(text);
    if (!cid.ok()) continue;  // CIDv0 and others: not objects medvault wrote
    absl::StatusOr<uint64_t> size = ContentSize(*cid);
    // Pins that are not UnixFS files (a directory someone else pinned).
    if (absl::IsInvalidArgument(size.status())) continue;
    RETURN_IF_ERROR(size.status());
    out.push_back(ObjectInfo{*std::move(cid), *size, /*pinned=*/true});
  }
  return out;
}

absl::StatusOr<uint64_t> KuboStore::RepoSize() {
  ASSIGN_OR_RETURN(Json answer, rpc_->CallJson("repo/stat", {{"size-only", "true"}}));
  std::optional<uint64_t> size = SizeField(answer, "RepoSize");
  if (!size.has_value()) return absl::InternalError("kubo repo/stat: no RepoSize in the answer");
  return *size;
}

absl::StatusOr<GcReport> KuboStore::CollectGarbage() {
  // The node reports the blocks it removed, not their bytes: the repository
  // shrinks by about that much (writes during the GC blur the figure).
  ASSIGN_OR_RETURN(uint64_t before, RepoSize());
  ASSIGN_OR_RETURN(std::string body, rpc_->Call("repo/gc", {}));
  ASSIGN_OR_RETURN(std::vector<Json> lines, ParseJsonLines("repo/gc", body));
  GcReport report;
  for (const Json& line : lines) {
    if (std::string error = StringField(line, "Error"); !error.empty()) {
      return absl::InternalError(
          absl::StrCat("kubo repo/gc at ", EndpointForLogs(rpc_->options().api_url), ": ", error));
    }
    if (line.fields().contains("Key")) ++report.blocks_removed;
  }
  ASSIGN_OR_RETURN(uint64_t after, RepoSize());
  report.bytes_removed = before > after ? before - after : 0;
  return report;
}

}  // namespace medvault::storage
