#include "daemon/signer/json_rpc_client.h"

#include <curl/curl.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/eth_tx.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace medvault::signer {

// One parsed JSON-RPC reply: either a result or the node's error.
struct JsonRpcChainClient::Reply {
  bool is_error = false;
  google::protobuf::Value result;
  // The error member as JSON text, and its "data" when that is a string.
  std::string error_json;
  std::string error_data;
};

namespace {

using google::protobuf::Value;

constexpr size_t kMaxResponseBytes = 16 << 20;

size_t Collect(char* data, size_t size, size_t nmemb, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * nmemb > kMaxResponseBytes) return 0;  // aborts the transfer
  body->append(data, size * nmemb);
  return size * nmemb;
}

std::atomic<uint64_t> g_next_id{1};

std::string ToJson(const Value& value) {
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(value, &text);
  return text;
}

// A string member of a JSON result, or INTERNAL naming the method.
absl::StatusOr<std::string> StringOf(absl::string_view method, const Value& value) {
  if (value.kind_case() != Value::kStringValue) {
    return absl::InternalError(absl::StrCat(method, ": result is not a string: ", ToJson(value)));
  }
  return value.string_value();
}

absl::StatusOr<uint64_t> QuantityOf(absl::string_view method, const Value& value) {
  ASSIGN_OR_RETURN(std::string text, StringOf(method, value));
  auto quantity = ParseQuantity(text);
  if (!quantity.ok()) {
    return absl::InternalError(absl::StrCat(method, ": ", quantity.status().message()));
  }
  return quantity;
}

absl::StatusOr<std::string> DataOf(absl::string_view method, const Value& value) {
  ASSIGN_OR_RETURN(std::string text, StringOf(method, value));
  auto bytes = FromHex(text, method);
  if (!bytes.ok()) return absl::InternalError(bytes.status().message());
  return bytes;
}

// The member `name` of a JSON object, or INTERNAL.
absl::StatusOr<const Value*> MemberOf(absl::string_view method, const Value& object,
                                      const std::string& name) {
  if (object.kind_case() != Value::kStructValue) {
    return absl::InternalError(absl::StrCat(method, ": result is not an object"));
  }
  const auto& fields = object.struct_value().fields();
  auto it = fields.find(name);
  if (it == fields.end()) {
    return absl::InternalError(absl::StrCat(method, ": result has no \"", name, "\""));
  }
  return &it->second;
}

// The member `name` as hex data of exactly `size` bytes, or INTERNAL.
absl::StatusOr<std::string> FixedDataMember(absl::string_view method, const Value& object,
                                            const std::string& name, size_t size) {
  ASSIGN_OR_RETURN(const Value* member, MemberOf(method, object, name));
  ASSIGN_OR_RETURN(std::string bytes, DataOf(method, *member));
  if (bytes.size() != size) {
    return absl::InternalError(
        absl::StrCat(method, ": ", name, " is ", bytes.size(), " bytes, not ", size));
  }
  return bytes;
}

absl::StatusOr<uint64_t> QuantityMember(absl::string_view method, const Value& object,
                                        const std::string& name) {
  ASSIGN_OR_RETURN(const Value* member, MemberOf(method, object, name));
  return QuantityOf(method, *member);
}

// One element of eth_getLogs' result.
absl::StatusOr<EventLog> LogOf(absl::string_view method, const Value& value) {
  EventLog log;
  ASSIGN_OR_RETURN(log.address, FixedDataMember(method, value, "address", 20));
  ASSIGN_OR_RETURN(const Value* topics, MemberOf(method, value, "topics"));
  // At most 4: the event's signature and three indexed arguments.
  if (topics->kind_case() != Value::kListValue || topics->list_value().values_size() > 4) {
    return absl::InternalError(
        absl::StrCat(method, ": topics is not a list of at most 4: ", ToJson(*topics)));
  }
  for (const Value& topic : topics->list_value().values()) {
    ASSIGN_OR_RETURN(std::string bytes, DataOf(method, topic));
    if (bytes.size() != 32) {
      return absl::InternalError(absl::StrCat(method, ": a topic is not 32 bytes"));
    }
    log.topics.push_back(std::move(bytes));
  }
  ASSIGN_OR_RETURN(const Value* data, MemberOf(method, value, "data"));
  ASSIGN_OR_RETURN(log.data, DataOf(method, *data));
  // Null for a pending log, which a range of mined blocks never holds.
  ASSIGN_OR_RETURN(log.block_number, QuantityMember(method, value, "blockNumber"));
  ASSIGN_OR_RETURN(log.block_hash, FixedDataMember(method, value, "blockHash", 32));
  ASSIGN_OR_RETURN(log.transaction_hash, FixedDataMember(method, value, "transactionHash", 32));
  ASSIGN_OR_RETURN(uint64_t log_index, QuantityMember(method, value, "logIndex"));
  if (log_index > UINT32_MAX) {
    return absl::InternalError(absl::StrCat(method, ": logIndex ", log_index, " is out of range"));
  }
  log.log_index = static_cast<uint32_t>(log_index);
  // Optional (only filters report removed logs); a boolean when present.
  const auto& fields = value.struct_value().fields();
  if (auto removed = fields.find("removed"); removed != fields.end()) {
    if (removed->second.kind_case() != Value::kBoolValue) {
      return absl::InternalError(absl::StrCat(method, ": removed is not a boolean"));
    }
    log.removed = removed->second.bool_value();
  }
  return log;
}

// A JSON array of "0x..." strings.
std::string HexList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", ToHex(item), "\"");
  }
  return out + "]";
}

std::string QuantityHex(uint64_t value) { return absl::StrCat("0x", absl::Hex(value)); }

// Without "to" for a contract creation (`to` empty).
std::string CallObject(const CallRequest& call) {
  std::string to = call.to.empty() ? "" : absl::StrCat(R"(","to":")", ToHex(call.to));
  return absl::StrCat(R"({"from":")", ToHex(call.from), to, R"(","data":")", ToHex(call.data),
                      R"("})");
}

}  // namespace

absl::StatusOr<uint64_t> ParseQuantity(absl::string_view hex) {
  uint64_t value = 0;
  if (!absl::ConsumePrefix(&hex, "0x") || hex.empty() || hex.size() > 16 ||
      !absl::SimpleHexAtoi(hex, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("not an Ethereum quantity: \"", hex, "\""));
  }
  return value;
}

absl::StatusOr<JsonRpcChainClient::Reply> JsonRpcChainClient::Invoke(
    absl::string_view method, absl::string_view params_json) {
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
        absl::StrCat(method, " to ", endpoint_, ": ", error[0] ? error : curl_easy_strerror(rc)));
  }
  long http = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) {
    return absl::UnavailableError(absl::StrCat(method, " to ", endpoint_, ": HTTP ", http));
  }
  google::protobuf::Struct reply;
  if (auto s = google::protobuf::util::JsonStringToMessage(body, &reply); !s.ok()) {
    return absl::InternalError(
        absl::StrCat(method, ": malformed JSON-RPC reply: ", s.message().ToString()));
  }
  const auto& fields = reply.fields();
  Reply out;
  if (auto err = fields.find("error"); err != fields.end()) {
    out.is_error = true;
    out.error_json = ToJson(err->second);
    if (err->second.kind_case() == Value::kStructValue) {
      const auto& members = err->second.struct_value().fields();
      if (auto data = members.find("data");
          data != members.end() && data->second.kind_case() == Value::kStringValue) {
        out.error_data = data->second.string_value();
      }
    }
    return out;
  }
  auto result = fields.find("result");
  if (result == fields.end())
    return absl::InternalError(absl::StrCat(method, ": reply has no result"));
  out.result = result->second;
  return out;
}

absl::StatusOr<std::string> JsonRpcChainClient::Call(absl::string_view method,
                                                     absl::string_view params_json) {
  ASSIGN_OR_RETURN(Reply reply, Invoke(method, params_json));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(method, ": node returned error ", reply.error_json));
  }
  return ToJson(reply.result);
}

absl::StatusOr<uint64_t> JsonRpcChainClient::CallQuantity(absl::string_view method,
                                                          absl::string_view params_json) {
  ASSIGN_OR_RETURN(Reply reply, Invoke(method, params_json));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(method, ": node returned error ", reply.error_json));
  }
  return QuantityOf(method, reply.result);
}

absl::StatusOr<uint64_t> JsonRpcChainClient::ChainId() { return CallQuantity("eth_chainId"); }
absl::StatusOr<uint64_t> JsonRpcChainClient::BlockNumber() {
  return CallQuantity("eth_blockNumber");
}

absl::StatusOr<uint64_t> JsonRpcChainClient::PendingNonce(absl::string_view address) {
  return CallQuantity("eth_getTransactionCount",
                      absl::StrCat(R"([")", ToHex(address), R"(","pending"])"));
}

absl::StatusOr<uint64_t> JsonRpcChainClient::MinedNonce(absl::string_view address) {
  return CallQuantity("eth_getTransactionCount",
                      absl::StrCat(R"([")", ToHex(address), R"(","latest"])"));
}

absl::StatusOr<uint64_t> JsonRpcChainClient::MaxPriorityFeePerGas() {
  return CallQuantity("eth_maxPriorityFeePerGas");
}

absl::StatusOr<uint64_t> JsonRpcChainClient::NextBaseFee() {
  constexpr absl::string_view kMethod = "eth_feeHistory";
  ASSIGN_OR_RETURN(Reply reply, Invoke(kMethod, R"(["0x1","latest",[]])"));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMethod, ": node returned error ", reply.error_json));
  }
  ASSIGN_OR_RETURN(const Value* fees, MemberOf(kMethod, reply.result, "baseFeePerGas"));
  if (fees->kind_case() != Value::kListValue || fees->list_value().values_size() == 0) {
    return absl::InternalError(
        absl::StrCat(kMethod, ": baseFeePerGas is not a non-empty list: ", ToJson(*fees)));
  }
  const auto& values = fees->list_value().values();
  return QuantityOf(kMethod, values[values.size() - 1]);
}

absl::StatusOr<uint64_t> JsonRpcChainClient::EstimateGas(const CallRequest& call) {
  return CallQuantity("eth_estimateGas", absl::StrCat("[", CallObject(call), "]"));
}

absl::StatusOr<CallOutcome> JsonRpcChainClient::EthCall(const CallRequest& call,
                                                        absl::string_view block) {
  constexpr absl::string_view kMethod = "eth_call";
  ASSIGN_OR_RETURN(Reply reply,
                   Invoke(kMethod, absl::StrCat("[", CallObject(call), R"(,")", block, R"("])")));
  CallOutcome outcome;
  if (reply.is_error) {
    // A revert comes back as an error whose "data" is the revert data (code
    // 3 in geth and anvil, -32000 in Besu); any other error is the node's.
    if (!absl::StartsWith(reply.error_data, "0x")) {
      return absl::FailedPreconditionError(
          absl::StrCat(kMethod, ": node returned error ", reply.error_json));
    }
    auto data = FromHex(reply.error_data, "eth_call error data");
    if (!data.ok()) return absl::InternalError(data.status().message());
    outcome.reverted = true;
    outcome.data = *std::move(data);
    return outcome;
  }
  ASSIGN_OR_RETURN(outcome.data, DataOf(kMethod, reply.result));
  return outcome;
}

absl::StatusOr<std::string> JsonRpcChainClient::SendRawTransaction(absl::string_view raw) {
  constexpr absl::string_view kMethod = "eth_sendRawTransaction";
  ASSIGN_OR_RETURN(Reply reply, Invoke(kMethod, absl::StrCat(R"([")", ToHex(raw), R"("])")));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMethod, ": node returned error ", reply.error_json));
  }
  ASSIGN_OR_RETURN(std::string hash, DataOf(kMethod, reply.result));
  if (hash.size() != 32) {
    return absl::InternalError(absl::StrCat(kMethod, ": the hash is not 32 bytes"));
  }
  return hash;
}

absl::StatusOr<std::optional<TransactionReceipt>> JsonRpcChainClient::GetTransactionReceipt(
    absl::string_view hash) {
  constexpr absl::string_view kMethod = "eth_getTransactionReceipt";
  ASSIGN_OR_RETURN(Reply reply, Invoke(kMethod, absl::StrCat(R"([")", ToHex(hash), R"("])")));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMethod, ": node returned error ", reply.error_json));
  }
  if (reply.result.kind_case() == Value::kNullValue) return std::nullopt;
  TransactionReceipt receipt;
  ASSIGN_OR_RETURN(const Value* tx_hash, MemberOf(kMethod, reply.result, "transactionHash"));
  ASSIGN_OR_RETURN(receipt.transaction_hash, DataOf(kMethod, *tx_hash));
  ASSIGN_OR_RETURN(const Value* block, MemberOf(kMethod, reply.result, "blockNumber"));
  ASSIGN_OR_RETURN(receipt.block_number, QuantityOf(kMethod, *block));
  ASSIGN_OR_RETURN(const Value* status, MemberOf(kMethod, reply.result, "status"));
  ASSIGN_OR_RETURN(uint64_t status_value, QuantityOf(kMethod, *status));
  receipt.success = status_value == 1;
  ASSIGN_OR_RETURN(const Value* gas, MemberOf(kMethod, reply.result, "gasUsed"));
  ASSIGN_OR_RETURN(receipt.gas_used, QuantityOf(kMethod, *gas));
  // Null (or absent) unless the transaction created a contract.
  const auto& fields = reply.result.struct_value().fields();
  if (auto created = fields.find("contractAddress");
      created != fields.end() && created->second.kind_case() != Value::kNullValue) {
    ASSIGN_OR_RETURN(receipt.contract_address, DataOf(kMethod, created->second));
    if (receipt.contract_address.size() != 20) {
      return absl::InternalError(absl::StrCat(kMethod, ": contractAddress is not 20 bytes"));
    }
  }
  return receipt;
}

absl::StatusOr<std::vector<EventLog>> JsonRpcChainClient::GetLogs(const LogFilter& filter) {
  constexpr absl::string_view kMethod = "eth_getLogs";
  // Empty lists would mean "any contract" / "any event" to the node.
  if (filter.addresses.empty() || filter.topic0.empty() || filter.from_block > filter.to_block) {
    return absl::InvalidArgumentError(
        "eth_getLogs: needs addresses, topics and from_block <= to_block");
  }
  std::string params =
      absl::StrCat(R"([{"fromBlock":")", QuantityHex(filter.from_block), R"(","toBlock":")",
                   QuantityHex(filter.to_block), R"(","address":)", HexList(filter.addresses),
                   R"(,"topics":[)", HexList(filter.topic0), "]}]");
  ASSIGN_OR_RETURN(Reply reply, Invoke(kMethod, params));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMethod, ": node returned error ", reply.error_json));
  }
  if (reply.result.kind_case() != Value::kListValue) {
    return absl::InternalError(absl::StrCat(kMethod, ": result is not a list"));
  }
  std::vector<EventLog> logs;
  logs.reserve(reply.result.list_value().values_size());
  for (const Value& value : reply.result.list_value().values()) {
    ASSIGN_OR_RETURN(EventLog log, LogOf(kMethod, value));
    logs.push_back(std::move(log));
  }
  return logs;
}

absl::StatusOr<std::optional<BlockHeader>> JsonRpcChainClient::GetBlockHeader(uint64_t number) {
  constexpr absl::string_view kMethod = "eth_getBlockByNumber";
  ASSIGN_OR_RETURN(Reply reply,
                   Invoke(kMethod, absl::StrCat(R"([")", QuantityHex(number), R"(",false])")));
  if (reply.is_error) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMethod, ": node returned error ", reply.error_json));
  }
  if (reply.result.kind_case() == Value::kNullValue) return std::nullopt;
  BlockHeader header;
  ASSIGN_OR_RETURN(header.number, QuantityMember(kMethod, reply.result, "number"));
  if (header.number != number) {
    return absl::InternalError(
        absl::StrCat(kMethod, ": asked for block ", number, ", got block ", header.number));
  }
  ASSIGN_OR_RETURN(header.hash, FixedDataMember(kMethod, reply.result, "hash", 32));
  ASSIGN_OR_RETURN(header.parent_hash, FixedDataMember(kMethod, reply.result, "parentHash", 32));
  ASSIGN_OR_RETURN(header.timestamp, QuantityMember(kMethod, reply.result, "timestamp"));
  return header;
}

}  // namespace medvault::signer
