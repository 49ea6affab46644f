#include "keyvault/signing_keys.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/eth_address.h"
#include "daemon/common/logging.h"
#include "daemon/common/openssl_util.h"
#include "daemon/common/status_macros.h"

namespace medvault::keyvault {
namespace signing_keys_internal {

// Which key pair on the token, and on which curve.
struct KeySpec {
  const char* name;  // For messages: "chain key not initialised".
  const char* label;
  const char* id;
  const char* curve;
  // CKA_EC_PARAMS: the DER OID of the named curve.
  absl::string_view ec_params;
};

}  // namespace signing_keys_internal

namespace {

using signing_keys_internal::KeySpec;
using signing_keys_internal::TokenKeyPair;
// Aliases for ASSIGN_OR_RETURN, which cannot take a comma in a type.
using RawSignature = std::array<uint8_t, 64>;  // r||s, big-endian.
using Sha256Digest = std::array<uint8_t, 32>;

constexpr char kSecp256k1Oid[] = "\x06\x05\x2b\x81\x04\x00\x0a";  // 1.3.132.0.10
constexpr char kPrime256v1Oid[] =
    "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";  // 1.2.840.10045.3.1.7

const KeySpec kChainSpec{"chain", ChainKey::kLabel, ChainKey::kId, "secp256k1",
                         absl::string_view(kSecp256k1Oid, sizeof(kSecp256k1Oid) - 1)};
const KeySpec kRegulatorSpec{"regulator chain", ChainKey::kRegulatorLabel, ChainKey::kRegulatorId,
                             "secp256k1",
                             absl::string_view(kSecp256k1Oid, sizeof(kSecp256k1Oid) - 1)};
const KeySpec kLogSpec{"log", LogKey::kLabel, LogKey::kId, "P-256",
                       absl::string_view(kPrime256v1Oid, sizeof(kPrime256v1Oid) - 1)};

const KeySpec& ChainSpec(ChainKeyRole role) {
  return role == ChainKeyRole::kRegulator ? kRegulatorSpec : kChainSpec;
}

// Room for a 64-byte r||s or a DER signature (at most 72 bytes on a 256-bit
// curve) in one C_Sign call.
constexpr CK_ULONG kSignatureBuffer = 128;
// Attributes and signatures handled here are small; a larger length means a
// confused module.
constexpr CK_ULONG kMaxAttributeSize = 4096;

using openssl::Free;
using EvpPkeyPtr = openssl::KeyPtr;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG, ECDSA_SIG_free>>;
using OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, Free<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
absl::string_view View(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}
// PKCS#11 takes non-const pointers even for data it only reads.
CK_BYTE_PTR MutableBytes(absl::string_view s) { return const_cast<CK_BYTE_PTR>(Bytes(s)); }

// OpenSSL keeps failures on a per-thread queue; drop them so that they do
// not surface in an unrelated call later.
absl::Status OpensslError(absl::string_view what) {
  ERR_clear_error();
  return absl::InternalError(what);
}

absl::Status Unfit(const KeySpec& spec, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat(spec.name, " key ", spec.label, " is not fit for use: ", why));
}

// ---------------------------------------------------------------------------
// PKCS#11 helpers; each runs in a session the caller borrowed from the pool.

struct FoundKeys {
  std::vector<CK_OBJECT_HANDLE> private_keys;
  std::vector<CK_OBJECT_HANDLE> public_keys;
};

struct PairHandles {
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
};

absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s,
                                                          CK_OBJECT_CLASS object_class,
                                                          const KeySpec& spec) {
  CK_ATTRIBUTE query[] = {
      {CKA_CLASS, &object_class, sizeof(object_class)},
      {CKA_LABEL, MutableBytes(spec.label), strlen(spec.label)},
      {CKA_ID, MutableBytes(spec.id), strlen(spec.id)},
  };
  // Two tell "one" from "several"; a few more make a better message.
  return keyvault::FindObjects(f, s, query, std::size(query), /*max=*/4);
}

absl::StatusOr<FoundKeys> FindKeys(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, const KeySpec& spec) {
  FoundKeys found;
  ASSIGN_OR_RETURN(found.private_keys, FindObjects(f, s, CKO_PRIVATE_KEY, spec));
  ASSIGN_OR_RETURN(found.public_keys, FindObjects(f, s, CKO_PUBLIC_KEY, spec));
  return found;
}

// The one pair: FAILED_PRECONDITION "<name> key not initialised" if there is
// none, or naming the counts if there is not exactly one of each half.
absl::StatusOr<PairHandles> OnePair(const FoundKeys& found, const KeySpec& spec) {
  if (found.private_keys.empty() && found.public_keys.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(spec.name, " key not initialised (medvaultctl hsm init)"));
  }
  if (found.private_keys.size() != 1 || found.public_keys.size() != 1) {
    return Unfit(spec, absl::StrCat("found ", found.private_keys.size(), " private and ",
                                    found.public_keys.size(), " public key(s), expected one each"));
  }
  return PairHandles{found.private_keys[0], found.public_keys[0]};
}

template <typename T>
absl::StatusOr<T> GetScalar(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_TYPE type) {
  ASSIGN_OR_RETURN(std::string value, GetAttribute(f, s, object, type));
  if (value.size() != sizeof(T)) {
    return absl::InternalError(
        absl::StrCat("C_GetAttributeValue: wrong size for attribute 0x", absl::Hex(type)));
  }
  T out;
  memcpy(&out, value.data(), sizeof(T));
  return out;
}

absl::StatusOr<bool> GetBool(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE object,
                             CK_ATTRIBUTE_TYPE type) {
  ASSIGN_OR_RETURN(CK_BBOOL value, GetScalar<CK_BBOOL>(f, s, object, type));
  return value != CK_FALSE;
}

// Checks that `key` is an EC key on the spec's curve.
absl::Status CheckCurve(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        const KeySpec& spec, absl::string_view half) {
  ASSIGN_OR_RETURN(CK_KEY_TYPE type, GetScalar<CK_KEY_TYPE>(f, s, key, CKA_KEY_TYPE));
  if (type != CKK_EC) return Unfit(spec, absl::StrCat(half, " key is not an EC key"));
  ASSIGN_OR_RETURN(std::string params, GetAttribute(f, s, key, CKA_EC_PARAMS));
  if (params != spec.ec_params) {
    return Unfit(spec, absl::StrCat(half, " key is not on curve ", spec.curve));
  }
  return absl::OkStatus();
}

// Checks the private key: right curve, may sign, and its value can be
// neither read nor wrapped. Warns when the token says it once could.
absl::Status CheckPrivateKey(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                             const KeySpec& spec) {
  RETURN_IF_ERROR(CheckCurve(f, s, key, spec, "private"));
  ASSIGN_OR_RETURN(bool sensitive, GetBool(f, s, key, CKA_SENSITIVE));
  ASSIGN_OR_RETURN(bool extractable, GetBool(f, s, key, CKA_EXTRACTABLE));
  ASSIGN_OR_RETURN(bool sign, GetBool(f, s, key, CKA_SIGN));
  if (!sensitive) return Unfit(spec, "private key is not sensitive");
  if (extractable) return Unfit(spec, "private key is extractable");
  if (!sign) return Unfit(spec, "private key may not sign");
  // Only informs the operator (an imported key is usable but once existed
  // outside an HSM), so a module that cannot say is not an error.
  bool always_sensitive = GetBool(f, s, key, CKA_ALWAYS_SENSITIVE).value_or(true);
  bool never_extractable = GetBool(f, s, key, CKA_NEVER_EXTRACTABLE).value_or(true);
  if (!always_sensitive || !never_extractable) {
    log::Warn("hsm.key_was_exposable", {{"label", spec.label},
                                        {"always_sensitive", always_sensitive},
                                        {"never_extractable", never_extractable}});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::array<uint8_t, 65>> ReadPublicPoint(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s,
                                                        CK_OBJECT_HANDLE key, const KeySpec& spec) {
  RETURN_IF_ERROR(CheckCurve(f, s, key, spec, "public"));
  ASSIGN_OR_RETURN(std::string value, GetAttribute(f, s, key, CKA_EC_POINT));
  absl::StatusOr<std::array<uint8_t, 65>> point = ParseEcPoint(value);
  if (!point.ok()) return Unfit(spec, point.status().message());
  return *point;
}

absl::Status GenerateKeyPair(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s, const KeySpec& spec) {
  CK_MECHANISM mechanism{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE label{CKA_LABEL, MutableBytes(spec.label), strlen(spec.label)};
  CK_ATTRIBUTE id{CKA_ID, MutableBytes(spec.id), strlen(spec.id)};
  CK_ATTRIBUTE public_template[] = {
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_VERIFY, &yes, sizeof(yes)},
      {CKA_EC_PARAMS, MutableBytes(spec.ec_params), spec.ec_params.size()},
      label,
      id,
  };
  CK_ATTRIBUTE private_template[] = {
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_SIGN, &yes, sizeof(yes)},
      // Signing only: some modules (SoftHSM2) default the rest to true.
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_DECRYPT, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      label,
      id,
  };
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
  P11_RETURN_IF_ERROR(f, C_GenerateKeyPair, s, &mechanism, public_template,
                      std::size(public_template), private_template, std::size(private_template),
                      &public_key, &private_key);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// secp256k1 helpers. Every libsecp256k1 call here takes a const context,
// which the library allows from many threads at once.

bool ParseSecp256k1(const secp256k1_context* context, const std::array<uint8_t, 65>& point,
                    secp256k1_pubkey* pubkey) {
  return secp256k1_ec_pubkey_parse(context, pubkey, point.data(), point.size()) == 1;
}

// The recovery id (0 or 1) under which `compact` over `digest` recovers
// `public_key`. Ids 2 and 3 (r >= n) occur with probability ~2^-128 and
// Ethereum does not accept them.
absl::StatusOr<uint8_t> RecoveryId(const secp256k1_context* context,
                                   const std::array<uint8_t, 65>& public_key,
                                   const std::array<uint8_t, 64>& compact,
                                   absl::string_view digest32) {
  for (int id = 0; id < 2; ++id) {
    secp256k1_ecdsa_recoverable_signature signature;
    secp256k1_pubkey recovered;
    std::array<uint8_t, 65> point{};
    size_t size = point.size();
    if (secp256k1_ecdsa_recoverable_signature_parse_compact(context, &signature, compact.data(),
                                                            id) == 1 &&
        secp256k1_ecdsa_recover(context, &recovered, &signature, Bytes(digest32)) == 1 &&
        secp256k1_ec_pubkey_serialize(context, point.data(), &size, &recovered,
                                      SECP256K1_EC_UNCOMPRESSED) == 1 &&
        point == public_key) {
      return static_cast<uint8_t>(id);
    }
  }
  return absl::InternalError("chain key: no recovery id yields the key's public key");
}

// ---------------------------------------------------------------------------
// OpenSSL helpers.

absl::StatusOr<std::array<uint8_t, 32>> Sha256(absl::string_view message) {
  std::array<uint8_t, 32> digest{};
  unsigned int size = 0;
  if (EVP_Digest(message.data(), message.size(), digest.data(), &size, EVP_sha256(), nullptr) !=
          1 ||
      size != digest.size()) {
    return OpensslError("SHA-256 failed");
  }
  return digest;
}

// A DER SubjectPublicKeyInfo for a P-256 point. OpenSSL refuses points that
// are not on the curve.
absl::StatusOr<std::string> P256PublicKeyDer(const std::array<uint8_t, 65>& point) {
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OpensslError("public point is not a P-256 point");
  }
  EvpPkeyPtr pkey(raw);
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new(pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return OpensslError("public point is not a valid P-256 public key");
  }
  int size = i2d_PUBKEY(pkey.get(), nullptr);
  if (size <= 0) return OpensslError("i2d_PUBKEY failed");
  std::string der(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(pkey.get(), &out) != size) return OpensslError("i2d_PUBKEY failed");
  return der;
}

// r||s as a DER ECDSA-Sig-Value.
absl::StatusOr<std::string> DerSignature(const std::array<uint8_t, 64>& rs) {
  EcdsaSigPtr signature(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(rs.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(rs.data() + 32, 32, nullptr);
  if (signature == nullptr || r == nullptr || s == nullptr) {
    BN_free(r);
    BN_free(s);
    return OpensslError("out of memory encoding a signature");
  }
  ECDSA_SIG_set0(signature.get(), r, s);  // Takes r and s; fails only on null.
  int size = i2d_ECDSA_SIG(signature.get(), nullptr);
  if (size <= 0) return OpensslError("i2d_ECDSA_SIG failed");
  std::string der(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(signature.get(), &out) != size) return OpensslError("i2d_ECDSA_SIG failed");
  return der;
}

// Checks a DER signature over a SHA-256 digest against a SubjectPublicKeyInfo.
absl::Status VerifyDigest(absl::string_view public_key_der, const std::array<uint8_t, 32>& digest,
                          absl::string_view signature) {
  const unsigned char* in = Bytes(public_key_der);
  EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &in, static_cast<long>(public_key_der.size())));
  EvpPkeyCtxPtr ctx(pkey == nullptr ? nullptr : EVP_PKEY_CTX_new(pkey.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1) {
    return OpensslError("cannot set up signature verification");
  }
  if (EVP_PKEY_verify(ctx.get(), Bytes(signature), signature.size(), digest.data(),
                      digest.size()) != 1) {
    return OpensslError("log key: the token's signature does not verify");
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
namespace signing_keys_internal {

// A key pair on the token. The private key's handle is cached; if the module
// stops knowing it (handles may change when the pool reconnects after the
// token was lost), the pair is looked up, and checked, again.
//
// Thread-safe; the token must outlive the object.
class TokenKeyPair {
 public:
  // Finds the pair, checks both halves and reads the public point.
  static absl::StatusOr<std::unique_ptr<TokenKeyPair>> Load(Pkcs11Token& token, const KeySpec& spec,
                                                            std::array<uint8_t, 65>* point);
  // Generates the pair unless there is one (true if it did).
  static absl::StatusOr<bool> Create(Pkcs11Token& token, const KeySpec& spec);

  // CKM_ECDSA over `digest`, as r||s. INTERNAL if the module answers with
  // something that is not an ECDSA signature.
  absl::StatusOr<std::array<uint8_t, 64>> Sign(absl::string_view digest) const;

 private:
  TokenKeyPair(Pkcs11Token& token, const KeySpec& spec, CK_OBJECT_HANDLE private_key)
      : token_(token), spec_(spec), private_key_(private_key) {}

  absl::StatusOr<std::string> SignInSession(CK_SESSION_HANDLE s, absl::string_view digest) const;
  absl::StatusOr<CK_OBJECT_HANDLE> FindPrivateKeyAgain(CK_SESSION_HANDLE s) const;

  // Constant after construction.
  Pkcs11Token& token_;
  const KeySpec& spec_;

  mutable absl::Mutex mu_;
  mutable CK_OBJECT_HANDLE private_key_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<TokenKeyPair>> TokenKeyPair::Load(Pkcs11Token& token,
                                                                 const KeySpec& spec,
                                                                 std::array<uint8_t, 65>* point) {
  CK_FUNCTION_LIST* f = token.functions();
  PairHandles pair;
  RETURN_IF_ERROR(token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    ASSIGN_OR_RETURN(FoundKeys found, FindKeys(f, s, spec));
    ASSIGN_OR_RETURN(pair, OnePair(found, spec));
    RETURN_IF_ERROR(CheckPrivateKey(f, s, pair.private_key, spec));
    ASSIGN_OR_RETURN(*point, ReadPublicPoint(f, s, pair.public_key, spec));
    return absl::OkStatus();
  }));
  return std::unique_ptr<TokenKeyPair>(new TokenKeyPair(token, spec, pair.private_key));
}

absl::StatusOr<bool> TokenKeyPair::Create(Pkcs11Token& token, const KeySpec& spec) {
  CK_FUNCTION_LIST* f = token.functions();
  absl::MutexLock lock(&token.ObjectLock());
  bool created = false;
  RETURN_IF_ERROR(token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    ASSIGN_OR_RETURN(FoundKeys found, FindKeys(f, s, spec));
    if (!found.private_keys.empty() || !found.public_keys.empty()) {
      return OnePair(found, spec).status();
    }
    RETURN_IF_ERROR(GenerateKeyPair(f, s, spec));
    created = true;
    return absl::OkStatus();
  }));
  if (created) log::Info("hsm.key_created", {{"label", spec.label}, {"curve", spec.curve}});
  return created;
}

absl::StatusOr<std::array<uint8_t, 64>> TokenKeyPair::Sign(absl::string_view digest) const {
  std::string signature;
  RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    ASSIGN_OR_RETURN(signature, SignInSession(s, digest));
    return absl::OkStatus();
  }));
  absl::StatusOr<std::array<uint8_t, 64>> rs = ParseEcdsaSignature(signature);
  if (!rs.ok()) {
    return absl::InternalError(absl::StrCat("C_Sign with the ", spec_.name, " key returned ",
                                            signature.size(), " bytes that are not a signature"));
  }
  return *rs;
}

absl::StatusOr<std::string> TokenKeyPair::SignInSession(CK_SESSION_HANDLE s,
                                                        absl::string_view digest) const {
  CK_FUNCTION_LIST* f = token_.functions();
  CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
  CK_OBJECT_HANDLE key;
  {
    absl::MutexLock lock(&mu_);
    key = private_key_;
  }
  CK_RV rv = f->C_SignInit(s, &mechanism, key);
  if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
    ASSIGN_OR_RETURN(key, FindPrivateKeyAgain(s));
    rv = f->C_SignInit(s, &mechanism, key);
  }
  if (rv != CKR_OK) return CkrStatus("C_SignInit", rv);
  std::string signature(kSignatureBuffer, '\0');
  CK_ULONG size = signature.size();
  rv = f->C_Sign(s, MutableBytes(digest), digest.size(),
                 reinterpret_cast<CK_BYTE_PTR>(signature.data()), &size);
  if (rv == CKR_BUFFER_TOO_SMALL && size <= kMaxAttributeSize) {
    // The operation is still active: a second call with room ends it.
    signature.resize(size);
    rv = f->C_Sign(s, MutableBytes(digest), digest.size(),
                   reinterpret_cast<CK_BYTE_PTR>(signature.data()), &size);
  }
  if (rv != CKR_OK) return CkrStatus("C_Sign", rv);
  signature.resize(std::min<CK_ULONG>(size, signature.size()));
  return signature;
}

absl::StatusOr<CK_OBJECT_HANDLE> TokenKeyPair::FindPrivateKeyAgain(CK_SESSION_HANDLE s) const {
  CK_FUNCTION_LIST* f = token_.functions();
  ASSIGN_OR_RETURN(FoundKeys found, FindKeys(f, s, spec_));
  ASSIGN_OR_RETURN(PairHandles pair, OnePair(found, spec_));
  RETURN_IF_ERROR(CheckPrivateKey(f, s, pair.private_key, spec_));
  log::Info("hsm.key_handle_refreshed", {{"label", spec_.label}});
  absl::MutexLock lock(&mu_);
  private_key_ = pair.private_key;
  return pair.private_key;
}

}  // namespace signing_keys_internal

// ---------------------------------------------------------------------------
// Encodings.

std::string EthereumAddress(const std::array<uint8_t, 65>& point) {
  // Without the 0x04 prefix of the uncompressed point.
  return absl::StrCat("0x",
                      absl::BytesToHexString(EthAddressOfPublicKey(View(point.data() + 1, 64))));
}

absl::StatusOr<std::array<uint8_t, 65>> ParseEcPoint(absl::string_view ec_point) {
  absl::string_view inner;
  const unsigned char* in = Bytes(ec_point);
  OctetStringPtr octets(d2i_ASN1_OCTET_STRING(nullptr, &in, static_cast<long>(ec_point.size())));
  if (octets != nullptr && in == Bytes(ec_point) + ec_point.size()) {
    inner = View(ASN1_STRING_get0_data(octets.get()), ASN1_STRING_length(octets.get()));
  }
  ERR_clear_error();
  // A bare point may happen to parse as a short OCTET STRING, hence the size test.
  if (inner.size() != 65) inner = ec_point;
  std::array<uint8_t, 65> point{};
  if (inner.size() != point.size() || inner[0] != 0x04) {
    return absl::InvalidArgumentError(
        "CKA_EC_POINT is not an uncompressed point (65 bytes from 0x04), bare or in an OCTET "
        "STRING");
  }
  memcpy(point.data(), inner.data(), point.size());
  return point;
}

absl::StatusOr<std::array<uint8_t, 64>> ParseEcdsaSignature(absl::string_view signature) {
  std::array<uint8_t, 64> rs{};
  if (signature.size() == rs.size()) {
    memcpy(rs.data(), signature.data(), rs.size());
    return rs;
  }
  const unsigned char* in = Bytes(signature);
  EcdsaSigPtr parsed(d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(signature.size())));
  if (parsed == nullptr || in != Bytes(signature) + signature.size()) {
    ERR_clear_error();
    return absl::InvalidArgumentError("ECDSA signature is neither 64 bytes r||s nor DER");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(parsed.get(), &r, &s);
  if (BN_is_negative(r) || BN_is_negative(s) || BN_bn2binpad(r, rs.data(), 32) != 32 ||
      BN_bn2binpad(s, rs.data() + 32, 32) != 32) {
    ERR_clear_error();
    return absl::InvalidArgumentError("ECDSA signature values do not fit in 32 bytes");
  }
  return rs;
}

// ---------------------------------------------------------------------------
// ChainKey.

ChainKey::ChainKey(std::unique_ptr<TokenKeyPair> pair, const std::array<uint8_t, 65>& public_key,
                   secp256k1_context* context)
    : pair_(std::move(pair)),
      public_key_(public_key),
      address_(EthereumAddress(public_key)),
      context_(context) {}

ChainKey::~ChainKey() { secp256k1_context_destroy(context_); }

absl::StatusOr<std::unique_ptr<ChainKey>> ChainKey::Load(Pkcs11Token& token, ChainKeyRole role) {
  const KeySpec& spec = ChainSpec(role);
  std::array<uint8_t, 65> point{};
  ASSIGN_OR_RETURN(std::unique_ptr<TokenKeyPair> pair, TokenKeyPair::Load(token, spec, &point));
  // SECP256K1_CONTEXT_NONE serves verification and recovery from 0.2.0 on.
  secp256k1_context* context = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  if (context == nullptr) return absl::InternalError("secp256k1_context_create failed");
  std::unique_ptr<ChainKey> key(new ChainKey(std::move(pair), point, context));
  secp256k1_pubkey pubkey;
  if (!ParseSecp256k1(context, point, &pubkey)) {
    return Unfit(spec, "public point is not on secp256k1");
  }
  return key;
}

absl::StatusOr<bool> ChainKey::Create(Pkcs11Token& token, ChainKeyRole role) {
  return TokenKeyPair::Create(token, ChainSpec(role));
}

absl::StatusOr<EthSignature> ChainKey::SignDigest(absl::string_view digest32) const {
  if (digest32.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest must be exactly 32 bytes, not ", digest32.size()));
  }
  ASSIGN_OR_RETURN(RawSignature rs, pair_->Sign(digest32));
  secp256k1_ecdsa_signature signature;
  if (secp256k1_ecdsa_signature_parse_compact(context_, &signature, rs.data()) != 1) {
    return absl::InternalError("chain key: the token's signature has r or s out of range");
  }
  // Ethereum accepts only the lower of the two valid s values (EIP-2).
  secp256k1_ecdsa_signature_normalize(context_, &signature, &signature);
  std::array<uint8_t, 64> compact{};
  secp256k1_ecdsa_signature_serialize_compact(context_, compact.data(), &signature);
  ASSIGN_OR_RETURN(uint8_t recovery_id, RecoveryId(context_, public_key_, compact, digest32));
  secp256k1_pubkey pubkey;
  if (!ParseSecp256k1(context_, public_key_, &pubkey) ||
      secp256k1_ecdsa_verify(context_, &signature, Bytes(digest32), &pubkey) != 1) {
    return absl::InternalError("chain key: the token's signature does not verify");
  }
  EthSignature out;
  std::copy(compact.begin(), compact.begin() + 32, out.r.begin());
  std::copy(compact.begin() + 32, compact.end(), out.s.begin());
  out.recovery_id = recovery_id;
  return out;
}

// ---------------------------------------------------------------------------
// LogKey.

LogKey::LogKey(std::unique_ptr<TokenKeyPair> pair, std::string public_key_der)
    : pair_(std::move(pair)), public_key_der_(std::move(public_key_der)) {}

LogKey::~LogKey() = default;

absl::StatusOr<std::unique_ptr<LogKey>> LogKey::Load(Pkcs11Token& token) {
  std::array<uint8_t, 65> point{};
  ASSIGN_OR_RETURN(std::unique_ptr<TokenKeyPair> pair, TokenKeyPair::Load(token, kLogSpec, &point));
  absl::StatusOr<std::string> der = P256PublicKeyDer(point);
  if (!der.ok()) return Unfit(kLogSpec, der.status().message());
  return std::unique_ptr<LogKey>(new LogKey(std::move(pair), *std::move(der)));
}

absl::StatusOr<bool> LogKey::Create(Pkcs11Token& token) {
  return TokenKeyPair::Create(token, kLogSpec);
}

absl::StatusOr<std::string> LogKey::Sign(absl::string_view message) const {
  if (message.size() > kMaxMessageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message is ", message.size(), " bytes, more than the ", kMaxMessageSize, " allowed"));
  }
  ASSIGN_OR_RETURN(Sha256Digest digest, Sha256(message));
  ASSIGN_OR_RETURN(RawSignature rs, pair_->Sign(View(digest.data(), digest.size())));
  ASSIGN_OR_RETURN(std::string der, DerSignature(rs));
  RETURN_IF_ERROR(VerifyDigest(public_key_der_, digest, der));
  return der;
}

}  // namespace medvault::keyvault
