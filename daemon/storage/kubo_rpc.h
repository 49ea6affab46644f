// The client of the Kubo RPC HTTP API that KuboStore, its writers and its
// readers share, and the helpers that read the node's JSON answers.
// Separate from kubo_store.cc so that the HTTP transport (libcurl, retries,
// error mapping) and the store's logic can be read on their own.
#ifndef MEDVAULT_DAEMON_STORAGE_KUBO_RPC_H_
#define MEDVAULT_DAEMON_STORAGE_KUBO_RPC_H_

#include <curl/curl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/storage/cid.h"
#include "daemon/storage/kubo_store.h"
#include "google/protobuf/struct.pb.h"

namespace medvault::storage::kubo {

using Query = std::vector<std::pair<std::string, std::string>>;
using Json = google::protobuf::Struct;

// What medvault writes never has a block over 1 MiB (chunks are 256 KiB and
// a node of 174 links is about 8 KiB); a node may hold up to 4 MiB
// (Kubo's hard limit). Anything larger is refused rather than buffered.
inline constexpr size_t kMaxBlockBody = 4 << 20;
// JSON answers: a pin list of a large node is the largest one.
inline constexpr size_t kMaxJsonBody = 64 << 20;

// curl_global_init, once per process (it is not thread-safe).
void InitCurlOnce();
// A duration as the RPC API's timeout parameters take it ("1500ms").
std::string Ms(absl::Duration d);

// Parses one JSON object; INTERNAL naming the command when it is not one.
absl::StatusOr<Json> ParseJson(absl::string_view command, absl::string_view text);
// Every JSON object of a newline-delimited answer (add, repo/gc, block/rm).
absl::StatusOr<std::vector<Json>> ParseJsonLines(absl::string_view command, absl::string_view text);
// A string field; empty when absent or not a string.
std::string StringField(const Json& json, const std::string& name);
// A size, which Kubo writes as a number and sometimes as a string.
std::optional<uint64_t> SizeField(const Json& json, const std::string& name);
// A CID as a node prints it: base32 ("b...") or base58btc ("z...").
// CIDv0 ("Qm...") and others are INVALID_ARGUMENT: not ones medvault wrote.
absl::StatusOr<Cid> ParseNodeCid(absl::string_view text);

// One HTTP call per request, each with a fresh curl handle (a store is
// shared by threads; handles are not). Immutable after construction.
class Rpc {
 public:
  explicit Rpc(KuboStoreOptions options) : options_(std::move(options)) {}

  struct Reply {
    long http_status = 0;
    std::string body;
  };

  const KuboStoreOptions& options() const { return options_; }

  std::string Url(absl::string_view command, const Query& query) const;

  // POST /api/v0/<command>; the body of a 200 answer, else the node's error
  // as a status (see NodeError). Retried as kubo_store.h says.
  absl::StatusOr<std::string> Call(absl::string_view command, const Query& query,
                                   size_t max_body = kMaxJsonBody) const;
  absl::StatusOr<Json> CallJson(absl::string_view command, const Query& query) const;

  // The status for a non-200 answer: 502-504 (a proxy whose node is gone)
  // UNAVAILABLE; 404/405 FAILED_PRECONDITION (not a Kubo RPC API);
  // otherwise the node's own message, NOT_FOUND when it says a block is
  // absent or, for a `lookup` sent with a timeout, that the lookup timed
  // out (see KuboStoreOptions::absent_block_timeout), else INTERNAL.
  absl::Status NodeError(absl::string_view command, const Reply& reply, bool lookup = false) const;
  // Transport errors as UNAVAILABLE, naming the command and curl's reason.
  absl::Status CurlError(absl::string_view command, CURLcode rc, const char* detail) const;

  // POST /api/v0/<command> with one multipart file whose bytes come from
  // `read` (curl's read-callback protocol) while they are produced, in
  // chunked transfer encoding since the size is not known in advance.
  // Never retried. No total budget (the upload goes at the writer's pace):
  // it fails when no byte moves for request_timeout.
  absl::StatusOr<std::string> Upload(absl::string_view command, const Query& query,
                                     curl_read_callback read, void* arg) const;

 private:
  struct Sink {
    std::string* body;
    size_t limit;
    bool overflow = false;
  };
  static size_t Collect(char* data, size_t size, size_t n, void* arg);
  // Connection settings shared by every call, uploads included.
  void Configure(CURL* curl, const std::string& url, char* error_buffer) const;
  absl::StatusOr<Reply> Once(absl::string_view command, const Query& query, size_t max_body) const;

  const KuboStoreOptions options_;
};

}  // namespace medvault::storage::kubo

#endif  // MEDVAULT_DAEMON_STORAGE_KUBO_RPC_H_
