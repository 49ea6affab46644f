// EIP-712 typed structured data: the digest an Ethereum wallet signs with
// eth_signTypedData_v4, the JSON document it is shown, and recovery of the
// signer's address from the signature. The gateway uses it to check that a
// patient's decision was signed by the patient's own wallet.
//
// Digest (EIP-712):
//   digest          = keccak256(0x19 0x01 || domainSeparator || hashStruct(message))
//   domainSeparator = hashStruct(EIP712Domain{name, version, chainId})
//   hashStruct(s)   = keccak256(typeHash(type of s) || encodeData(s))
//   typeHash(T)     = keccak256(encodeType(T))
//   encodeType(T)   = "T(type1 name1,...)" followed by the same for every
//                     struct type T references, directly or not, sorted by name
//   encodeData(s)   = one 32-byte word per field, in declaration order:
//     bool, uint256 - the value as a big-endian word;
//     address       - 12 zero bytes then the 20 bytes;
//     bytes32       - the 32 bytes;
//     string        - keccak256(UTF-8 bytes);
//     string[]      - keccak256(keccak256(s0) || keccak256(s1) || ...);
//     a struct type - hashStruct(the value).
//
// Types are limited to what patients' decisions need: string, bool, uint256
// (carried as uint64), address, bytes32, string[] and nested structs (no
// arrays of structs). The domain is always EIP712Domain(string name,string
// version,uint256 chainId). Bytes (addresses, hashes, digests, signatures)
// are carried raw in std::string.
//
// Every function is thread-safe and returns INVALID_ARGUMENT, naming the
// offending type, field or input, for anything malformed; nothing here
// crashes on bad input.
#ifndef MEDVAULT_DAEMON_GATEWAY_EIP712_H_
#define MEDVAULT_DAEMON_GATEWAY_EIP712_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::gateway::eip712 {

// One member of a struct type. `type` is "string", "bool", "uint256",
// "address", "bytes32", "string[]" or the name of another struct type.
struct Field {
  std::string name;
  std::string type;
};

struct StructType {
  std::string name;           // an identifier; not "EIP712Domain"
  std::vector<Field> fields;  // in declaration order, which the encoding follows
};

// The struct types a message may use: its own and every one it references,
// in any order. Names are unique.
using Types = std::vector<StructType>;

struct Message;

// A field's value. The alternative must match the field's type:
//   bool -> bool; uint256 -> uint64_t; string -> std::string (UTF-8 text);
//   address -> std::string (20 bytes); bytes32 -> std::string (32 bytes);
//   string[] -> std::vector<std::string>; a struct type -> a non-null
//   Message of that type.
using Value = std::variant<bool, uint64_t, std::string, std::vector<std::string>,
                           std::shared_ptr<const Message>>;

// A value of a struct type: one Value per field, by field name (no more, no
// fewer).
struct Message {
  std::string type;
  std::map<std::string, Value> values;
};

// A message with the types it uses: what a wallet is asked to sign, apart
// from the domain. message.type is the primary type.
struct TypedMessage {
  Types types;
  Message message;
};

// The EIP712Domain(string name,string version,uint256 chainId) value that
// binds a signature to one application and one chain.
struct Domain {
  std::string name;
  std::string version;
  uint64_t chain_id = 0;
};

// encodeType of the struct type `type` (see above). INVALID_ARGUMENT when
// `types` is malformed (bad or duplicate names, unknown or unsupported field
// types) or has no `type`.
absl::StatusOr<std::string> EncodeType(const Types& types, absl::string_view type);
// keccak256(EncodeType(types, type)): 32 bytes.
absl::StatusOr<std::string> TypeHash(const Types& types, absl::string_view type);

// encodeData of `message` (see above), without the type hash. Errors as for
// EncodeType, or when a value is missing, unexpected, of the wrong
// alternative or size, or a string is not valid UTF-8.
absl::StatusOr<std::string> EncodeData(const Types& types, const Message& message);
// keccak256(TypeHash(message.type) || EncodeData(message)): 32 bytes.
absl::StatusOr<std::string> HashStruct(const Types& types, const Message& message);

// hashStruct of the EIP712Domain value: 32 bytes. INVALID_ARGUMENT when the
// name or version is not valid UTF-8.
absl::StatusOr<std::string> DomainSeparator(const Domain& domain);

// The 32-byte digest a wallet signs for `typed` under `domain`.
absl::StatusOr<std::string> Digest(const Domain& domain, const TypedMessage& typed);

// The eth_signTypedData_v4 JSON document for `typed` under `domain`:
//   {"domain": {"chainId": <number>, "name": ..., "version": ...},
//    "message": {...}, "primaryType": "...",
//    "types": {"EIP712Domain": [{"name": "name", "type": "string"}, ...],
//              <the primary type and the types it references>: [...]}}
// uint256 values are decimal strings, addresses EIP-55 checksummed, bytes32
// "0x" and lower-case hex. Keys are sorted, so equal inputs give equal
// documents. Errors as for Digest, and when chain_id is above 2^53 (not
// exact as a JSON number).
absl::StatusOr<std::string> ToTypedDataJson(const Domain& domain, const TypedMessage& typed);

// The 20-byte address whose key produced `signature` over the 32-byte
// `digest`. `signature` is r || s || v, 65 bytes, v being 27, 28, 0 or 1 (as
// eth_signTypedData_v4 returns it). INVALID_ARGUMENT for a wrong length, a
// bad v, r or s not below the curve order, s above half the order (EIP-2:
// every signature has a low-s twin, so only that one is accepted) or no key
// recovering. A well-formed signature by another key, or over another
// digest, recovers another address: callers compare the result.
absl::StatusOr<std::string> RecoverSigner(absl::string_view digest, absl::string_view signature);

}  // namespace medvault::gateway::eip712

#endif  // MEDVAULT_DAEMON_GATEWAY_EIP712_H_
