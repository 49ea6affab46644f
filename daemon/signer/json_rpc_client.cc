#include "daemon/signer/json_rpc_client.h"

#include <curl/curl.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::signer {
namespace {

constexpr size_t kMaxResponseBytes = 16 << 20;

size_t Collect(char* data, size_t size, size_t nmemb, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * nmemb > kMaxResponseBytes) return 0;  // aborts the transfer
  body->append(data, size * nmemb);
  return size * nmemb;
}

std::atomic<uint64_t> g_next_id{1};

}  // namespace

absl::StatusOr<uint64_t> ParseQuantity(absl::string_view hex) {
  uint64_t value = 0;
  if (!absl::ConsumePrefix(&hex, "0x") || hex.empty() || hex.size() > 16 ||
      !absl::SimpleHexAtoi(hex, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("not an Ethereum quantity: \"", hex, "\""));
  }
  return value;
}

absl::StatusOr<std::string> JsonRpcChainClient::Call(absl::string_view method,
                                                     absl::string_view params_json) {
  std::string request = absl::StrCat(R"({"jsonrpc":"2.0","id":)", g_next_id++, R"(,"method":")",
                                     method, R"(","params":)", params_json, "}");
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
      curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
  std::string body;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, request.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(method, " to ", url_, ": ", error[0] ? error : curl_easy_strerror(rc)));
  }
  long http = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) {
    return absl::UnavailableError(absl::StrCat(method, " to ", url_, ": HTTP ", http));
  }
  google::protobuf::Struct reply;
  if (auto s = google::protobuf::util::JsonStringToMessage(body, &reply); !s.ok()) {
    return absl::InternalError(
        absl::StrCat(method, ": malformed JSON-RPC reply: ", s.message().ToString()));
  }
  const auto& fields = reply.fields();
  if (auto err = fields.find("error"); err != fields.end()) {
    std::string text;
    (void)google::protobuf::util::MessageToJsonString(err->second, &text);
    return absl::FailedPreconditionError(absl::StrCat(method, ": node returned error ", text));
  }
  auto result = fields.find("result");
  if (result == fields.end())
    return absl::InternalError(absl::StrCat(method, ": reply has no result"));
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(result->second, &text);
  return text;
}

absl::StatusOr<uint64_t> JsonRpcChainClient::CallQuantity(absl::string_view method) {
  auto result = Call(method, "[]");
  if (!result.ok()) return result.status();
  absl::string_view text = *result;
  if (!absl::ConsumePrefix(&text, "\"") || !absl::ConsumeSuffix(&text, "\"")) {
    return absl::InternalError(absl::StrCat(method, ": result is not a string: ", *result));
  }
  auto value = ParseQuantity(text);
  if (!value.ok()) return absl::InternalError(absl::StrCat(method, ": ", value.status().message()));
  return value;
}

absl::StatusOr<uint64_t> JsonRpcChainClient::ChainId() { return CallQuantity("eth_chainId"); }
absl::StatusOr<uint64_t> JsonRpcChainClient::BlockNumber() {
  return CallQuantity("eth_blockNumber");
}

}  // namespace medvault::signer
