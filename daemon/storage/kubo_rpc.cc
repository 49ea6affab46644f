#include "daemon/storage/kubo_rpc.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/common/url.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::storage::kubo {
namespace {

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

}  // namespace

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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

// A CID as a node prints it: base32 ("b...") or base58btc ("z...").
// CIDv0 ("Qm...") and others are INVALID_ARGUMENT: not ones medvault wrote.
absl::StatusOr<Cid> ParseNodeCid(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "z")) {
    ASSIGN_OR_RETURN(std::string binary, Base58Decode(text));
    return Cid::FromBytes(binary);
  }
  return Cid::Parse(text);
}

std::string Rpc::Url(absl::string_view command, const Query& query) const {
  std::string url = absl::StrCat(options_.api_url, "/api/v0/", command);
  char sep = '?';
  for (const auto& [name, value] : query) {
    absl::StrAppend(&url, std::string(1, sep), Escape(name), "=", Escape(value));
    sep = '&';
  }
  return url;
}

absl::StatusOr<std::string> Rpc::Call(absl::string_view command, const Query& query,
                                      size_t max_body) const {
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

absl::StatusOr<Json> Rpc::CallJson(absl::string_view command, const Query& query) const {
  ASSIGN_OR_RETURN(std::string body, Call(command, query));
  return ParseJson(command, body);
}

absl::Status Rpc::NodeError(absl::string_view command, const Reply& reply, bool lookup) const {
  std::string message = absl::StrCat("HTTP ", reply.http_status);
  if (absl::StatusOr<Json> json = ParseJson(command, reply.body); json.ok()) {
    std::string text = StringField(*json, "Message");
    if (!text.empty()) message = text;
  }
  std::string what =
      absl::StrCat("kubo ", command, " at ", EndpointForLogs(options_.api_url), ": ", message);
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

absl::Status Rpc::CurlError(absl::string_view command, CURLcode rc, const char* detail) const {
  return absl::UnavailableError(absl::StrCat("kubo ", command, " at ",
                                             EndpointForLogs(options_.api_url), ": ",
                                             detail[0] != '\0' ? detail : curl_easy_strerror(rc)));
}

absl::StatusOr<std::string> Rpc::Upload(absl::string_view command, const Query& query,
                                        curl_read_callback read, void* arg) const {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::unique_ptr<curl_mime, void (*)(curl_mime*)> mime(curl_mime_init(curl.get()), curl_mime_free);
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
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(curl_slist_append(nullptr, "Expect:"),
                                                             curl_slist_free_all);
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

void Rpc::Configure(CURL* curl, const std::string& url, char* error_buffer) const {
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

size_t Rpc::Collect(char* data, size_t size, size_t n, void* arg) {
  Sink* sink = static_cast<Sink*>(arg);
  if (sink->body->size() + size * n > sink->limit) {
    sink->overflow = true;
    return 0;  // makes curl fail the transfer
  }
  sink->body->append(data, size * n);
  return size * n;
}

absl::StatusOr<Rpc::Reply> Rpc::Once(absl::string_view command, const Query& query,
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

}  // namespace medvault::storage::kubo
