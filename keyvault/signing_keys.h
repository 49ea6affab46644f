// The deployment's asymmetric signing keys, EC key pairs generated inside
// the HSM and used through a Pkcs11Token:
//
//   ChainKey  the chain operator key, secp256k1, label "medvault-chain-v1",
//             id "chain/1". Signs 32-byte digests the Ethereum way: low-s,
//             with a recovery id. In development a second ChainKey, the
//             regulator's (label "medvault-regulator-v1", id
//             "regulator/1"), lets one machine play the regulator.
//   LogKey    the log signing key, ECDSA P-256, label "medvault-log-v1",
//             id "log/1". Signs messages (SHA-256) for signed tree heads.
//
// The private keys are generated sensitive and non-extractable and never
// leave the token; only the public points are read (CKA_EC_POINT). Signing
// uses the plain CKM_ECDSA mechanism on a digest computed here, which every
// PKCS#11 v2.40 module offers. Every signature is checked against the
// cached public key before it is returned: a module or key that misbehaves
// gives INTERNAL, never a signature nobody can verify.
//
// Statuses never contain key material, digests or signatures; PKCS#11
// failures carry CkrStatus codes ("C_Sign: CKR_..."), see pkcs11_token.h.
#ifndef MEDVAULT_KEYVAULT_SIGNING_KEYS_H_
#define MEDVAULT_KEYVAULT_SIGNING_KEYS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyvault/pkcs11_token.h"

struct secp256k1_context_struct;

namespace medvault::keyvault {

namespace signing_keys_internal {
// A key pair on the token, found by label and id (defined in the .cc).
class TokenKeyPair;
}  // namespace signing_keys_internal

// An Ethereum signature over a 32-byte digest: r and s big-endian, s in the
// lower half of the group order, recovery_id 0 or 1 (v = 27 + recovery_id,
// or the y-parity of typed transactions).
struct EthSignature {
  std::array<uint8_t, 32> r{};
  std::array<uint8_t, 32> s{};
  uint8_t recovery_id = 0;
};

// "0x" and 40 lower-case hex digits: the last 20 bytes of Keccak-256 over
// the 64 coordinate bytes of an uncompressed SEC1 point (the leading 0x04
// is not hashed). No EIP-55 checksum.
std::string EthereumAddress(const std::array<uint8_t, 65>& point);

// The uncompressed point in a CKA_EC_POINT value. PKCS#11 says it is a DER
// OCTET STRING around the point; some modules return the bare 65 bytes, so
// both are accepted. INVALID_ARGUMENT for anything else (including
// compressed points). The point is not checked to be on a curve here.
absl::StatusOr<std::array<uint8_t, 65>> ParseEcPoint(absl::string_view ec_point);

// r||s (32 bytes each, big-endian) from the output of CKM_ECDSA on a 256-bit
// curve: the 64 bytes PKCS#11 specifies, or a DER ECDSA-Sig-Value as a few
// modules return. INVALID_ARGUMENT for anything else.
absl::StatusOr<std::array<uint8_t, 64>> ParseEcdsaSignature(absl::string_view signature);

// Which secp256k1 key pair a ChainKey is.
enum class ChainKeyRole {
  kOperator,   // the data centre's: anchors, deploys the contracts
  kRegulator,  // the regulator's: licences and policy publications
};

// A chain key (the operator's unless another role is named). Thread-safe: SignDigest may run on
// many threads at once (each call borrows its own session from the token). The token must outlive
// the key.
class ChainKey {
 public:
  static constexpr char kLabel[] = "medvault-chain-v1";
  static constexpr char kId[] = "chain/1";
  static constexpr char kRegulatorLabel[] = "medvault-regulator-v1";
  static constexpr char kRegulatorId[] = "regulator/1";

  // Finds the key pair and reads its public point. FAILED_PRECONDITION "chain
  // key not initialised" when there is no such pair, and FAILED_PRECONDITION
  // when what is there is not fit for use: half a pair, several pairs, another
  // curve, or a private key that is extractable or not sensitive. Token
  // failures as CkrStatus.
  static absl::StatusOr<std::unique_ptr<ChainKey>> Load(
      Pkcs11Token& token, ChainKeyRole role = ChainKeyRole::kOperator);

  // Generates the key pair on the token unless it exists. Returns true if
  // it generated it, false if a pair was already there. FAILED_PRECONDITION
  // if only half a pair (or more than one) exists: that needs an operator,
  // not a second key. Serialised with other object creation through
  // token.ObjectLock().
  static absl::StatusOr<bool> Create(Pkcs11Token& token,
                                     ChainKeyRole role = ChainKeyRole::kOperator);

  ~ChainKey();
  ChainKey(const ChainKey&) = delete;
  ChainKey& operator=(const ChainKey&) = delete;

  // Signs a 32-byte digest (normally a Keccak-256 hash). INVALID_ARGUMENT
  // unless the digest is exactly 32 bytes. INTERNAL if the token's signature
  // does not verify against public_key() or its recovery id cannot be found.
  absl::StatusOr<EthSignature> SignDigest(absl::string_view digest32) const;

  // The uncompressed SEC1 public point (0x04 || x || y), read once at Load.
  const std::array<uint8_t, 65>& public_key() const { return public_key_; }
  // EthereumAddress(public_key()).
  const std::string& address() const { return address_; }

 private:
  using TokenKeyPair = signing_keys_internal::TokenKeyPair;
  ChainKey(std::unique_ptr<TokenKeyPair> pair, const std::array<uint8_t, 65>& public_key,
           secp256k1_context_struct* context);

  // Constant after construction.
  const std::unique_ptr<TokenKeyPair> pair_;
  const std::array<uint8_t, 65> public_key_;
  const std::string address_;
  // Owned; only used through const (thread-safe) libsecp256k1 calls.
  secp256k1_context_struct* const context_;
};

// The log signing key. Thread-safe like ChainKey; the token must outlive it.
class LogKey {
 public:
  static constexpr char kLabel[] = "medvault-log-v1";
  static constexpr char kId[] = "log/1";
  // Longest message Sign() accepts.
  static constexpr size_t kMaxMessageSize = 64 * 1024;

  // As ChainKey::Load, with "log key not initialised".
  static absl::StatusOr<std::unique_ptr<LogKey>> Load(Pkcs11Token& token);
  // As ChainKey::Create.
  static absl::StatusOr<bool> Create(Pkcs11Token& token);

  ~LogKey();
  LogKey(const LogKey&) = delete;
  LogKey& operator=(const LogKey&) = delete;

  // ECDSA P-256 over SHA-256(message), as a DER ECDSA-Sig-Value.
  // INVALID_ARGUMENT if the message is longer than kMaxMessageSize. INTERNAL
  // if the token's signature does not verify against the public key.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

  // The public key as a DER SubjectPublicKeyInfo. Built and checked by Load,
  // so it is always OK for a loaded key.
  absl::StatusOr<std::string> PublicKeyDer() const { return public_key_der_; }

 private:
  using TokenKeyPair = signing_keys_internal::TokenKeyPair;
  LogKey(std::unique_ptr<TokenKeyPair> pair, std::string public_key_der);

  // Constant after construction.
  const std::unique_ptr<TokenKeyPair> pair_;
  const std::string public_key_der_;
};

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_SIGNING_KEYS_H_
