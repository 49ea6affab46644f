#include "daemon/gateway/eip712.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <array>
#include <set>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/keccak.h"
#include "daemon/common/status_macros.h"

namespace medvault::gateway::eip712 {
namespace {

using JsonValue = google::protobuf::Value;

constexpr char kDomainType[] = "EIP712Domain";
// Nesting deeper than this is refused rather than recursed into.
constexpr int kMaxDepth = 16;
constexpr uint64_t kMaxJsonInteger = uint64_t{1} << 53;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

std::string Quoted(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 64)), text.size() > 64 ? "..." : "",
                      "\"");
}

// The one domain type this code signs under (see eip712.h).
const StructType& DomainType() {
  static const auto* type = new StructType{
      kDomainType, {{"name", "string"}, {"version", "string"}, {"chainId", "uint256"}}};
  return *type;
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool IsAtomic(absl::string_view type) {
  return type == "string" || type == "bool" || type == "uint256" || type == "address" ||
         type == "bytes32" || type == "string[]";
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF): EIP-712 strings are text, and JSON cannot carry anything else.
bool IsUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i++]);
    if (c < 0x80) continue;
    const size_t n = c >= 0xC2 && c <= 0xDF   ? 1
                     : c >= 0xE0 && c <= 0xEF ? 2
                     : c >= 0xF0 && c <= 0xF4 ? 3
                                              : 0;
    if (n == 0 || s.size() - i < n) return false;
    // The range of the first continuation byte excludes the overlong forms,
    // the surrogates and what lies above U+10FFFF.
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (size_t k = 0; k < n; ++k, lo = 0x80, hi = 0xBF) {
      const auto d = static_cast<unsigned char>(s[i++]);
      if (d < lo || d > hi) return false;
    }
  }
  return true;
}

using TypeIndex = absl::flat_hash_map<std::string, const StructType*>;

// Checks every name and field type of `types` and indexes them by name.
absl::StatusOr<TypeIndex> IndexTypes(const Types& types) {
  TypeIndex index;
  for (const StructType& t : types) {
    if (!IsIdentifier(t.name)) return Invalid("types", absl::StrCat("bad name ", Quoted(t.name)));
    if (t.name == kDomainType) return Invalid("types", "EIP712Domain is reserved for the domain");
    if (!index.emplace(t.name, &t).second) {
      return Invalid("types", absl::StrCat("duplicate struct type ", t.name));
    }
  }
  for (const StructType& t : types) {
    std::set<absl::string_view> names;
    for (const Field& f : t.fields) {
      if (!IsIdentifier(f.name)) {
        return Invalid(absl::StrCat("types.", t.name),
                       absl::StrCat("bad field name ", Quoted(f.name)));
      }
      const std::string where = absl::StrCat("types.", t.name, ".", f.name);
      if (!names.insert(f.name).second) return Invalid(where, "duplicate field");
      if (!IsAtomic(f.type) && !index.contains(f.type)) {
        return Invalid(where, absl::StrCat("unsupported type ", Quoted(f.type),
                                           " (string, bool, uint256, address, bytes32, "
                                           "string[] or a struct type in types)"));
      }
    }
  }
  return index;
}

// `type` first, then every struct type it references, directly or not,
// sorted by name: the order of encodeType and of the JSON "types".
absl::StatusOr<std::vector<const StructType*>> Closure(const TypeIndex& index,
                                                       absl::string_view type) {
  auto primary = index.find(type);
  if (primary == index.end()) {
    return Invalid("types", absl::StrCat("no struct type ", Quoted(type)));
  }
  std::map<std::string, const StructType*> referenced;
  std::vector<const StructType*> pending = {primary->second};
  while (!pending.empty()) {
    const StructType* t = pending.back();
    pending.pop_back();
    for (const Field& f : t->fields) {
      auto it = index.find(f.type);
      if (it != index.end() && it != primary && referenced.emplace(f.type, it->second).second) {
        pending.push_back(it->second);
      }
    }
  }
  std::vector<const StructType*> out = {primary->second};
  for (const auto& [name, t] : referenced) out.push_back(t);
  return out;
}

std::string EncodeOne(const StructType& t) {
  return absl::StrCat(t.name, "(",
                      absl::StrJoin(t.fields, ",",
                                    [](std::string* out, const Field& f) {
                                      absl::StrAppend(out, f.type, " ", f.name);
                                    }),
                      ")");
}

absl::StatusOr<std::string> EncodeTypeAt(const TypeIndex& index, absl::string_view type) {
  ASSIGN_OR_RETURN(std::vector<const StructType*> closure, Closure(index, type));
  std::string out;
  for (const StructType* t : closure) out += EncodeOne(*t);
  return out;
}

std::string Word(uint64_t value) {
  std::string word(32, '\0');
  for (int i = 0; i < 8; ++i) word[31 - i] = static_cast<char>(value >> (8 * i));
  return word;
}

// The alternative of `value` a field of `type` holds, or INVALID_ARGUMENT.
template <typename T>
absl::StatusOr<const T*> Get(const Value& value, absl::string_view where, absl::string_view type) {
  if (const T* v = std::get_if<T>(&value)) return v;
  return Invalid(where, absl::StrCat("wrong kind of value for a field of type ", type));
}

absl::StatusOr<std::string> HashStructAt(const TypeIndex& index, const Message& message,
                                         absl::string_view where, int depth);

absl::StatusOr<std::string> EncodeValue(const TypeIndex& index, const Field& field,
                                        const Value& value, absl::string_view where, int depth) {
  const std::string& type = field.type;
  if (type == "bool") {
    ASSIGN_OR_RETURN(const bool* b, Get<bool>(value, where, type));
    return Word(*b ? 1 : 0);
  }
  if (type == "uint256") {
    ASSIGN_OR_RETURN(const uint64_t* n, Get<uint64_t>(value, where, type));
    return Word(*n);
  }
  if (type == "string[]") {
    ASSIGN_OR_RETURN(const auto* list, Get<std::vector<std::string>>(value, where, type));
    std::string hashes;
    for (size_t i = 0; i < list->size(); ++i) {
      if (!IsUtf8((*list)[i])) return Invalid(absl::StrCat(where, "[", i, "]"), "not UTF-8");
      hashes += Keccak256((*list)[i]);
    }
    return Keccak256(hashes);
  }
  if (type == "string" || type == "address" || type == "bytes32") {
    ASSIGN_OR_RETURN(const std::string* s, Get<std::string>(value, where, type));
    if (type == "string") {
      if (!IsUtf8(*s)) return Invalid(where, "not UTF-8");
      return Keccak256(*s);
    }
    const size_t size = type == "address" ? 20 : 32;
    if (s->size() != size) {
      return Invalid(where, absl::StrCat("must be ", size, " bytes (", type, "), got ", s->size()));
    }
    return type == "address" ? std::string(12, '\0') + *s : *s;
  }
  ASSIGN_OR_RETURN(const auto* nested, Get<std::shared_ptr<const Message>>(value, where, type));
  if (*nested == nullptr) return Invalid(where, "null struct value");
  if ((*nested)->type != type) {
    return Invalid(where, absl::StrCat("a ", (*nested)->type, " value for a field of type ", type));
  }
  return HashStructAt(index, **nested, where, depth + 1);
}

absl::StatusOr<std::string> EncodeDataAt(const TypeIndex& index, const Message& message,
                                         absl::string_view where, int depth) {
  if (depth > kMaxDepth) return Invalid(where, "structs nested too deeply");
  auto type = index.find(message.type);
  if (type == index.end()) {
    return Invalid(where, absl::StrCat("no struct type ", Quoted(message.type)));
  }
  std::string out;
  for (const Field& f : type->second->fields) {
    const std::string field_where = absl::StrCat(where, ".", f.name);
    auto value = message.values.find(f.name);
    if (value == message.values.end()) return Invalid(field_where, "missing");
    ASSIGN_OR_RETURN(std::string word, EncodeValue(index, f, value->second, field_where, depth));
    out += word;
  }
  if (message.values.size() != type->second->fields.size()) {
    for (const auto& [name, value] : message.values) {
      if (absl::c_none_of(type->second->fields, [&](const Field& f) { return f.name == name; })) {
        return Invalid(absl::StrCat(where, ".", name), "not a field of " + message.type);
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> HashStructAt(const TypeIndex& index, const Message& message,
                                         absl::string_view where, int depth) {
  ASSIGN_OR_RETURN(std::string data, EncodeDataAt(index, message, where, depth));
  ASSIGN_OR_RETURN(std::string type, EncodeTypeAt(index, message.type));
  return Keccak256(Keccak256(type) + data);
}

JsonValue Text(std::string s) {
  JsonValue v;
  v.set_string_value(std::move(s));
  return v;
}

// [{"name": ..., "type": ...}, ...] in declaration order.
JsonValue FieldsJson(const StructType& type) {
  JsonValue list;
  for (const Field& f : type.fields) {
    auto& entry =
        *list.mutable_list_value()->add_values()->mutable_struct_value()->mutable_fields();
    entry["name"] = Text(f.name);
    entry["type"] = Text(f.type);
  }
  return list;
}

// The JSON form of `message`, which EncodeData has accepted.
JsonValue MessageJson(const TypeIndex& index, const Message& message) {
  JsonValue out;
  auto& members = *out.mutable_struct_value()->mutable_fields();
  for (const Field& f : index.at(message.type)->fields) {
    const Value& value = message.values.at(f.name);
    JsonValue& v = members[f.name];
    if (const bool* b = std::get_if<bool>(&value)) {
      v.set_bool_value(*b);
    } else if (const uint64_t* n = std::get_if<uint64_t>(&value)) {
      v.set_string_value(absl::StrCat(*n));
    } else if (const std::string* s = std::get_if<std::string>(&value)) {
      v = Text(f.type == "address"   ? *FormatEthAddress(*s)  // 20 bytes: Digest checked
               : f.type == "bytes32" ? absl::StrCat("0x", absl::BytesToHexString(*s))
                                     : *s);
    } else if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
      v.mutable_list_value();  // an empty list is still a list, not null
      for (const std::string& item : *list) *v.mutable_list_value()->add_values() = Text(item);
    } else {
      v = MessageJson(index, *std::get<std::shared_ptr<const Message>>(value));
    }
  }
  return out;
}

// JSON with the keys of every object sorted: deterministic serialization
// orders map entries, and the JSON printer keeps the wire order.
absl::StatusOr<std::string> SortedJson(const google::protobuf::Struct& document) {
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    document.SerializeToCodedStream(&coded);
  }
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver(
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool()));
  std::string json;
  auto status = google::protobuf::util::BinaryToJsonString(
      resolver.get(), "type.googleapis.com/google.protobuf.Struct", binary, &json);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("typed data JSON: ", status.ToString()));
  }
  return json;
}

}  // namespace

absl::StatusOr<std::string> EncodeType(const Types& types, absl::string_view type) {
  ASSIGN_OR_RETURN(TypeIndex index, IndexTypes(types));
  return EncodeTypeAt(index, type);
}

absl::StatusOr<std::string> TypeHash(const Types& types, absl::string_view type) {
  ASSIGN_OR_RETURN(std::string encoded, EncodeType(types, type));
  return Keccak256(encoded);
}

absl::StatusOr<std::string> EncodeData(const Types& types, const Message& message) {
  ASSIGN_OR_RETURN(TypeIndex index, IndexTypes(types));
  return EncodeDataAt(index, message, message.type, 0);
}

absl::StatusOr<std::string> HashStruct(const Types& types, const Message& message) {
  ASSIGN_OR_RETURN(TypeIndex index, IndexTypes(types));
  return HashStructAt(index, message, message.type, 0);
}

absl::StatusOr<std::string> DomainSeparator(const Domain& domain) {
  if (!IsUtf8(domain.name)) return Invalid("domain.name", "not UTF-8");
  if (!IsUtf8(domain.version)) return Invalid("domain.version", "not UTF-8");
  return Keccak256(absl::StrCat(Keccak256(EncodeOne(DomainType())), Keccak256(domain.name),
                                Keccak256(domain.version), Word(domain.chain_id)));
}

absl::StatusOr<std::string> Digest(const Domain& domain, const TypedMessage& typed) {
  ASSIGN_OR_RETURN(std::string separator, DomainSeparator(domain));
  ASSIGN_OR_RETURN(std::string hash, HashStruct(typed.types, typed.message));
  return Keccak256(absl::StrCat("\x19\x01", separator, hash));
}

absl::StatusOr<std::string> ToTypedDataJson(const Domain& domain, const TypedMessage& typed) {
  RETURN_IF_ERROR(Digest(domain, typed).status());
  if (domain.chain_id > kMaxJsonInteger) {
    return Invalid("domain.chainId", "above 2^53, not exact as a JSON number");
  }
  ASSIGN_OR_RETURN(TypeIndex index, IndexTypes(typed.types));
  ASSIGN_OR_RETURN(std::vector<const StructType*> closure, Closure(index, typed.message.type));

  google::protobuf::Struct document;
  auto& root = *document.mutable_fields();
  auto& types = *root["types"].mutable_struct_value()->mutable_fields();
  types[kDomainType] = FieldsJson(DomainType());
  for (const StructType* t : closure) types[t->name] = FieldsJson(*t);
  root["primaryType"] = Text(typed.message.type);
  auto& domain_json = *root["domain"].mutable_struct_value()->mutable_fields();
  domain_json["name"] = Text(domain.name);
  domain_json["version"] = Text(domain.version);
  domain_json["chainId"].set_number_value(static_cast<double>(domain.chain_id));
  root["message"] = MessageJson(index, typed.message);
  return SortedJson(document);
}

absl::StatusOr<std::string> RecoverSigner(absl::string_view digest, absl::string_view signature) {
  if (digest.size() != 32) {
    return Invalid("digest", absl::StrCat("must be 32 bytes, got ", digest.size()));
  }
  if (signature.size() != 65) {
    return Invalid("signature", absl::StrCat("must be 65 bytes (r, s, v), got ", signature.size()));
  }
  const auto v = static_cast<unsigned char>(signature[64]);
  if (v != 0 && v != 1 && v != 27 && v != 28) {
    return Invalid("signature.v", absl::StrCat("must be 27, 28, 0 or 1, got ", v));
  }
  const secp256k1_context* ctx = secp256k1_context_static;
  const auto* rs = reinterpret_cast<const unsigned char*>(signature.data());
  secp256k1_ecdsa_recoverable_signature recoverable;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &recoverable, rs, v % 27)) {
    return Invalid("signature", "r or s is not below the curve order");
  }
  secp256k1_ecdsa_signature plain;
  secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain, &recoverable);
  if (secp256k1_ecdsa_signature_normalize(ctx, nullptr, &plain)) {
    return Invalid("signature.s", "above half the curve order (EIP-2 requires low s)");
  }
  secp256k1_pubkey key;
  if (!secp256k1_ecdsa_recover(ctx, &key, &recoverable,
                               reinterpret_cast<const unsigned char*>(digest.data()))) {
    return Invalid("signature", "no public key recovers from it");
  }
  std::array<unsigned char, 65> point{};
  size_t size = point.size();
  secp256k1_ec_pubkey_serialize(ctx, point.data(), &size, &key, SECP256K1_EC_UNCOMPRESSED);
  // Skip the 0x04 prefix of the uncompressed point.
  return EthAddressOfPublicKey(
      absl::string_view(reinterpret_cast<const char*>(point.data()) + 1, 64));
}

}  // namespace medvault::gateway::eip712
