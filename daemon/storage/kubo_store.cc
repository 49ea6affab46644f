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
#include "daemon/storage/unixfs.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::storage {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;
using Json = google::protobuf::Struct;

// What medvault writes never has a block over 1 MiB (chunks are 256 KiB and
// a node of 174 links is about 8 KiB); a node may hold up to 4 MiB
// (Kubo's hard limit). Anything larger is refused rather than buffered.
constexpr size_t kMaxBlockBody = 4 << 20;
// JSON answers: a pin list of a large node is the largest one.
constexpr size_t kMaxJsonBody = 64 << 20;

void InitCurlOnce() {
  // curl_global_init is not thread-safe; the first store does it.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
std::string Escape(absl::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string Ms(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), "ms"); }

// Parses one JSON object; INTERNAL naming the command when it is not one.
absl::StatusOr<Json> ParseJson(absl::string_view command, absl::string_view text) {
  Json out;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (auto s = google::protobuf::util::JsonStringToMessage(std::string(text), &out, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("kubo ", command, ": answer is not a JSON object (",
                                            s.message().ToString(), ")"));
  }
  return out;
}

// Every JSON object of a newline-delimited answer (add, repo/gc, block/rm).
absl::StatusOr<std::vector<Json>> ParseJsonLines(absl::string_view command,
                                                 absl::string_view text) {
  std::vector<Json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    ASSIGN_OR_RETURN(Json json, ParseJson(command, line));
    out.push_back(std::move(json));
  }
  return out;
}

std::string StringField(const Json& json, const std::string& name) {
  auto it = json.fields().find(name);
  return it != json.fields().end() && it->second.has_string_value() ? it->second.string_value()
                                                                    : "";
}

// A size, which Kubo writes as a number and sometimes as a string.
std::optional<uint64_t> SizeField(const Json& json, const std::string& name) {
  auto it = json.fields().find(name);
  if (it == json.fields().end()) return std::nullopt;
  if (it->second.has_string_value()) {
    uint64_t v = 0;
    if (absl::SimpleAtoi(it->second.string_value(), &v)) return v;
    return std::nullopt;
  }
  double d = it->second.number_value();
  // Doubles hold integers exactly up to 2^53; refuse what is not one.
  if (!it->second.has_number_value() || !std::isfinite(d) || d < 0 || d > 9007199254740992.0 ||
      d != std::floor(d)) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(d);
}

// base58btc (Bitcoin alphabet), which js-ipfs uses for CIDv1 in answers
// where no cid-base can be asked for (pin/ls when a CIDv0 is pinned).
absl::StatusOr<std::string> Base58Decode(absl::string_view text) {
  static constexpr absl::string_view kAlphabet =
      "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  if (text.size() > 128) return absl::InvalidArgumentError("base58 text too long for a CID");
  std::vector<uint8_t> big;  // little-endian base-256 digits
  for (char c : text) {
    size_t digit = kAlphabet.find(c);
    if (digit == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", std::string(1, c), "' is not base58"));
    }
    uint32_t carry = static_cast<uint32_t>(digit);
    for (uint8_t& b : big) {
      carry += static_cast<uint32_t>(b) * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    for (; carry > 0; carry >>= 8) big.push_back(static_cast<uint8_t>(carry & 0xff));
  }
  std::string out;
  for (char c : text) {  // leading '1's are leading zero bytes
    if (c != '1') break;
    out.push_back('\0');
  }
  out.append(big.rbegin(), big.rend());
  return out;
}

// A CID as a node prints it: base32 ("b...") or base58btc ("z...").
// CIDv0 ("Qm...") and others are INVALID_ARGUMENT: not ones medvault wrote.
absl::StatusOr<Cid> ParseNodeCid(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "z")) {
    ASSIGN_OR_RETURN(std::string binary, Base58Decode(text));
    return Cid::FromBytes(binary);
  }
  return Cid::Parse(text);
}

}  // namespace

// ---------------------------------------------------------------- the RPC client

// One HTTP call per request, each with a fresh curl handle (a store is
// shared by threads; handles are not). Immutable after construction.
class KuboStore::Rpc {
 public:
  explicit Rpc(KuboStoreOptions options) : options_(std::move(options)) {}

  struct Reply {
    long http_status = 0;
    std::string body;
  };

  const KuboStoreOptions& options() const { return options_; }

  std::string Url(absl::string_view command, const Query& query) const {
    std::string url = absl::StrCat(options_.api_url, "/api/v0/", command);
    char sep = '?';
    for (const auto& [name, value] : query) {
      absl::StrAppend(&url, std::string(1, sep), Escape(name), "=", Escape(value));
      sep = '&';
    }
    return url;
  }

  // POST /api/v0/<command>; the body of a 200 answer, else the node's error
  // as a status (see NodeError). Retried as the file comment says.
  absl::StatusOr<std::string> Call(absl::string_view command, const Query& query,
                                   size_t max_body = kMaxJsonBody) const {
    absl::Duration backoff = options_.initial_backoff;
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<Reply> reply = Once(command, query, max_body);
      bool transient = absl::IsUnavailable(reply.status()) ||
                       (reply.ok() && reply->http_status >= 502 && reply->http_status <= 504);
      if (!transient || attempt >= options_.max_retries) {
        if (!reply.ok()) return reply.status();
        if (reply->http_status == 200) return std::move(reply->body);
        const bool lookup = std::any_of(query.begin(), query.end(),
                                        [](const auto& kv) { return kv.first == "timeout"; });
        return NodeError(command, *reply, lookup);
      }
      log::Warn("kubo_retry", {{"command", std::string(command)},
                               {"attempt", static_cast<uint64_t>(attempt + 1)},
                               {"error", reply.ok() ? absl::StrCat("HTTP ", reply->http_status)
                                                    : std::string(reply.status().message())}});
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  absl::StatusOr<Json> CallJson(absl::string_view command, const Query& query) const {
    ASSIGN_OR_RETURN(std::string body, Call(command, query));
    return ParseJson(command, body);
  }

  // The status for a non-200 answer: 502-504 (a proxy whose node is gone)
  // UNAVAILABLE; 404/405 FAILED_PRECONDITION (not a Kubo RPC API);
  // otherwise the node's own message, NOT_FOUND when it says a block is
  // absent or, for a `lookup` sent with a timeout, that the lookup timed
  // out (see KuboStoreOptions::absent_block_timeout), else INTERNAL.
  absl::Status NodeError(absl::string_view command, const Reply& reply,
                         bool lookup = false) const {
    std::string message = absl::StrCat("HTTP ", reply.http_status);
    if (absl::StatusOr<Json> json = ParseJson(command, reply.body); json.ok()) {
      std::string text = StringField(*json, "Message");
      if (!text.empty()) message = text;
    }
    std::string what = absl::StrCat("kubo ", command, " at ", options_.api_url, ": ", message);
    if (reply.http_status >= 502 && reply.http_status <= 504) return absl::UnavailableError(what);
    if (reply.http_status == 404 || reply.http_status == 405) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " (is this the Kubo RPC API, which is POST only?)"));
    }
    std::string lower = absl::AsciiStrToLower(message);
    const bool timed_out =
        absl::StrContains(lower, "timed out") || absl::StrContains(lower, "deadline exceeded");
    if (absl::StrContains(lower, "not found") || absl::StrContains(lower, "could not find") ||
        (lookup && timed_out)) {
      return absl::NotFoundError(what);
    }
    return absl::InternalError(what);
  }

  // Transport errors as UNAVAILABLE, naming the command and curl's reason.
  absl::Status CurlError(absl::string_view command, CURLcode rc, const char* detail) const {
    return absl::UnavailableError(absl::StrCat("kubo ", command, " at ", options_.api_url, ": ",
                                               detail[0] != '\0' ? detail : curl_easy_strerror(rc)));
  }

  // POST /api/v0/<command> with one multipart file whose bytes come from
  // `read` (curl's read-callback protocol) while they are produced, in
  // chunked transfer encoding since the size is not known in advance.
  // Never retried. No total budget (the upload goes at the writer's pace):
  // it fails when no byte moves for request_timeout.
  absl::StatusOr<std::string> Upload(absl::string_view command, const Query& query,
                                     curl_read_callback read, void* arg) const {
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return absl::InternalError("curl_easy_init failed");
    std::unique_ptr<curl_mime, void (*)(curl_mime*)> mime(curl_mime_init(curl.get()),
                                                          curl_mime_free);
    if (!mime) return absl::InternalError("curl_mime_init failed");
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, "file");
    curl_mime_filename(part, "object");
    curl_mime_type(part, "application/octet-stream");
    curl_mime_data_cb(part, -1, read, nullptr, nullptr, arg);

    const std::string url = Url(command, query);
    char error[CURL_ERROR_SIZE] = {0};
    Reply reply;
    Sink sink{&reply.body, kMaxJsonBody};
    Configure(curl.get(), url, error);
    curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
    // curl would otherwise send "Expect: 100-continue" and wait a second
    // for a go-ahead that not every server or proxy sends.
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
        curl_slist_append(nullptr, "Expect:"), curl_slist_free_all);
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME,
                     std::max<long>(1, absl::ToInt64Seconds(options_.request_timeout)));
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(curl.get());
    if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError("upload abandoned");
    if (sink.overflow) {
      return absl::InternalError(
          absl::StrCat("kubo ", command, ": answer larger than ", kMaxJsonBody, " bytes"));
    }
    if (rc != CURLE_OK) return CurlError(command, rc, error);
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.http_status);
    if (reply.http_status != 200) return NodeError(command, reply);
    return std::move(reply.body);
  }

 private:
  // Connection settings shared by every call, uploads included.
  void Configure(CURL* curl, const std::string& url, char* error_buffer) const {
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    // The RPC API is local or behind the operator's own proxy: no
    // redirects, no proxies from the environment.
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
  }

  struct Sink {
    std::string* body;
    size_t limit;
    bool overflow = false;
  };
  static size_t Collect(char* data, size_t size, size_t n, void* arg) {
    Sink* sink = static_cast<Sink*>(arg);
    if (sink->body->size() + size * n > sink->limit) {
      sink->overflow = true;
      return 0;  // makes curl fail the transfer
    }
    sink->body->append(data, size * n);
    return size * n;
  }

  absl::StatusOr<Reply> Once(absl::string_view command, const Query& query,
                             size_t max_body) const {
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return absl::InternalError("curl_easy_init failed");
    const std::string url = Url(command, query);
    char error[CURL_ERROR_SIZE] = {0};
    Reply reply;
    Sink sink{&reply.body, max_body};
    Configure(curl.get(), url, error);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
    curl_easy_setopt(curl.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(curl.get());
    if (sink.overflow) {
      return absl::InternalError(
          absl::StrCat("kubo ", command, ": answer larger than ", max_body, " bytes"));
    }
    if (rc != CURLE_OK) return CurlError(command, rc, error);
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.http_status);
    return reply;
  }

  const KuboStoreOptions options_;
};

namespace {

using Rpc = KuboStore::Rpc;

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
      return absl::InternalError(absl::StrCat("kubo add: no CID in the answer: ",
                                              body.substr(0, 200)));
    }
    absl::StatusOr<Cid> cid = ParseNodeCid(hash);
    if (!cid.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "kubo add: the node answered ", hash, ", not a CIDv1 medvault can verify: ",
          cid.status().message()));
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
    return absl::InvalidArgumentError(absl::StrCat(
        "kubo api_url \"", options.api_url, "\" is not an http:// or https:// URL"));
  }
  if (absl::StrContains(url, "/api/v0")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubo api_url \"", options.api_url, "\" must not contain /api/v0 (it is added)"));
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
  InitCurlOnce();
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
      return absl::InternalError(
          absl::StrCat("kubo block/rm ", block.ToString(), " at ", rpc_->options().api_url, ": ",
                       error));
    }
  }
  if (kept > 0) {
    log::Info("kubo_remove_kept_shared",
              {{"cid", cid.ToString()}, {"blocks_kept", kept}});
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
          absl::StrCat("kubo repo/gc at ", rpc_->options().api_url, ": ", error));
    }
    if (line.fields().contains("Key")) ++report.blocks_removed;
  }
  ASSIGN_OR_RETURN(uint64_t after, RepoSize());
  report.bytes_removed = before > after ? before - after : 0;
  return report;
}

}  // namespace medvault::storage
