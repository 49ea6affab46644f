// The chain operator key and the log signing key on a real SoftHSM2 token.
#include "keyvault/signing_keys.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keyvault/test_token.h"

namespace medvault::keyvault {
namespace {

using ::testing::HasSubstr;

MATCHER_P(StatusIs, code, "") {
  const absl::Status& status = arg;
  *result_listener << "status is " << status;
  return status.code() == code;
}

// Half the secp256k1 group order, big-endian: the largest low s.
constexpr uint8_t kHalfOrder[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};
constexpr char kSecp256k1Oid[] = "\x06\x05\x2b\x81\x04\x00\x0a";
constexpr char kPrime256v1Oid[] = "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";

std::string Random(size_t size) {
  std::string out(size, '\0');
  EXPECT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), size), 1);
  return out;
}

CK_BYTE_PTR Ptr(const char* s) { return reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(s)); }

// A libsecp256k1 context of the test's own, independent of ChainKey's.
struct Secp256k1 {
  Secp256k1() : context(secp256k1_context_create(SECP256K1_CONTEXT_NONE)) {}
  ~Secp256k1() { secp256k1_context_destroy(context); }

  // The uncompressed public key that (r, s, recovery_id) over `digest`
  // recovers, or nullopt.
  std::optional<std::array<uint8_t, 65>> Recover(const EthSignature& sig,
                                                 absl::string_view digest) const {
    uint8_t compact[64];
    memcpy(compact, sig.r.data(), 32);
    memcpy(compact + 32, sig.s.data(), 32);
    secp256k1_ecdsa_recoverable_signature parsed;
    secp256k1_pubkey pubkey;
    std::array<uint8_t, 65> point{};
    size_t size = point.size();
    if (secp256k1_ecdsa_recoverable_signature_parse_compact(context, &parsed, compact,
                                                            sig.recovery_id) != 1 ||
        secp256k1_ecdsa_recover(context, &pubkey, &parsed,
                                reinterpret_cast<const unsigned char*>(digest.data())) != 1 ||
        secp256k1_ec_pubkey_serialize(context, point.data(), &size, &pubkey,
                                      SECP256K1_EC_UNCOMPRESSED) != 1) {
      return std::nullopt;
    }
    return point;
  }

  secp256k1_context* const context;
};

// The handle of the object of `object_class` labelled `label` with id `id`.
CK_OBJECT_HANDLE FindObject(Pkcs11Token& token, CK_OBJECT_CLASS object_class, const char* label,
                            const char* id) {
  CK_OBJECT_HANDLE found = CK_INVALID_HANDLE;
  absl::Status status = token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    CK_FUNCTION_LIST* f = token.functions();
    CK_ATTRIBUTE query[] = {{CKA_CLASS, &object_class, sizeof(object_class)},
                            {CKA_LABEL, Ptr(label), strlen(label)},
                            {CKA_ID, Ptr(id), strlen(id)}};
    P11_RETURN_IF_ERROR(f, C_FindObjectsInit, s, query, 3);
    CK_ULONG count = 0;
    CK_RV rv = f->C_FindObjects(s, &found, 1, &count);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) return CkrStatus("C_FindObjects", rv);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return found;
}

// Generates an EC pair on the token with a template of the test's choosing,
// to plant keys that ChainKey and LogKey must refuse.
absl::Status PlantPair(Pkcs11Token& token, absl::string_view ec_params, const char* label,
                       const char* id, bool extractable) {
  return token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    CK_MECHANISM mechanism{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL* sensitive = extractable ? &no : &yes;
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, 1},
                          {CKA_EC_PARAMS, Ptr(ec_params.data()), ec_params.size()},
                          {CKA_LABEL, Ptr(label), strlen(label)},
                          {CKA_ID, Ptr(id), strlen(id)}};
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, 1},          {CKA_PRIVATE, &yes, 1},
        {CKA_SENSITIVE, sensitive, 1}, {CKA_EXTRACTABLE, extractable ? &yes : &no, 1},
        {CKA_SIGN, &yes, 1},           {CKA_LABEL, Ptr(label), strlen(label)},
        {CKA_ID, Ptr(id), strlen(id)}};
    CK_OBJECT_HANDLE h1, h2;
    P11_RETURN_IF_ERROR(token.functions(), C_GenerateKeyPair, s, &mechanism, pub, std::size(pub),
                        priv, std::size(priv), &h1, &h2);
    return absl::OkStatus();
  });
}

bool LowS(const std::array<uint8_t, 32>& s) {
  return std::lexicographical_compare(s.begin(), s.end(), std::begin(kHalfOrder),
                                      std::end(kHalfOrder)) ||
         memcmp(s.data(), kHalfOrder, 32) == 0;
}

// OpenSSL's verdict on a DER signature over SHA-256(message).
bool OpensslVerifies(absl::string_view public_key_der, absl::string_view message,
                     absl::string_view signature) {
  const unsigned char* in = reinterpret_cast<const unsigned char*>(public_key_der.data());
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &in, public_key_der.size());
  if (pkey == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
            EVP_DigestVerify(
                ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

class SigningKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TestToken::Create();
    ASSERT_TRUE(t.ok()) << t.status();
    test_token_ = *std::move(t);
  }
  Pkcs11Token& token() { return test_token_->token(); }

  std::unique_ptr<ChainKey> CreateChainKey() {
    EXPECT_TRUE(ChainKey::Create(token()).ok());
    auto key = ChainKey::Load(token());
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? *std::move(key) : nullptr;
  }

  std::unique_ptr<TestToken> test_token_;
};

// ---------------------------------------------------------------------------
// Creation and loading.

// Before Create, Load says the keys are not initialised.
TEST_F(SigningKeysTest, LoadBeforeCreateIsFailedPrecondition) {
  auto chain = ChainKey::Load(token());
  EXPECT_THAT(chain.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(chain.status().message(), HasSubstr("chain key not initialised"));
  auto log = LogKey::Load(token());
  EXPECT_THAT(log.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(log.status().message(), HasSubstr("log key not initialised"));
}

// Create generates each pair once; a second Create finds it and returns false.
TEST_F(SigningKeysTest, CreateTwiceCreatesOnce) {
  auto first = ChainKey::Create(token());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  auto second = ChainKey::Create(token());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(*second);

  auto log_first = LogKey::Create(token());
  ASSERT_TRUE(log_first.ok()) << log_first.status();
  EXPECT_TRUE(*log_first);
  auto log_second = LogKey::Create(token());
  ASSERT_TRUE(log_second.ok()) << log_second.status();
  EXPECT_FALSE(*log_second);
}

// The regulator's chain key (development) is a pair of its own: created
// and loaded by role, never confused with the operator's.
TEST_F(SigningKeysTest, RegulatorKeyIsSeparate) {
  auto missing = ChainKey::Load(token(), ChainKeyRole::kRegulator);
  EXPECT_THAT(missing.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(missing.status().message(), HasSubstr("regulator chain key not initialised"));
  std::unique_ptr<ChainKey> operator_key = CreateChainKey();
  ASSERT_NE(operator_key, nullptr);
  // The operator's pair does not stand in for the regulator's.
  EXPECT_FALSE(ChainKey::Load(token(), ChainKeyRole::kRegulator).ok());
  auto created = ChainKey::Create(token(), ChainKeyRole::kRegulator);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(*created);
  auto regulator = ChainKey::Load(token(), ChainKeyRole::kRegulator);
  ASSERT_TRUE(regulator.ok()) << regulator.status();
  EXPECT_NE((*regulator)->address(), operator_key->address());
  auto signature = (*regulator)->SignDigest(std::string(32, '\x07'));
  EXPECT_TRUE(signature.ok()) << signature.status();
}

// After Create, Load finds the pairs and reads a well-formed public key.
TEST_F(SigningKeysTest, LoadAfterCreate) {
  ASSERT_TRUE(ChainKey::Create(token()).ok());
  ASSERT_TRUE(LogKey::Create(token()).ok());
  auto chain = ChainKey::Load(token());
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ((*chain)->public_key()[0], 0x04);
  EXPECT_THAT((*chain)->address(), ::testing::MatchesRegex("0x[0-9a-f]{40}"));
  EXPECT_EQ((*chain)->address(), EthereumAddress((*chain)->public_key()));
  auto log = LogKey::Load(token());
  ASSERT_TRUE(log.ok()) << log.status();
  auto der = (*log)->PublicKeyDer();
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_EQ(der->size(), 91u);  // SubjectPublicKeyInfo of an uncompressed P-256 point.
}

// A restarted keyvault (the first connection closed, the module finalised,
// a new login) loads the same keys.
TEST(SigningKeysRestartTest, LoadFromReopenedToken) {
  auto t = TestToken::Create(/*sessions=*/0);
  ASSERT_TRUE(t.ok()) << t.status();
  std::string address, log_public_key;
  {
    auto first = (*t)->Reopen();
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(ChainKey::Create(**first).ok());
    ASSERT_TRUE(LogKey::Create(**first).ok());
    auto chain = ChainKey::Load(**first);
    auto log = LogKey::Load(**first);
    ASSERT_TRUE(chain.ok() && log.ok());
    address = (*chain)->address();
    log_public_key = *(*log)->PublicKeyDer();
  }  // Closes every session; the last user of the module finalises it.
  auto second = (*t)->Reopen();
  ASSERT_TRUE(second.ok()) << second.status();
  auto chain = ChainKey::Load(**second);
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ((*chain)->address(), address);
  auto log = LogKey::Load(**second);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(*(*log)->PublicKeyDer(), log_public_key);
  EXPECT_TRUE((*chain)->SignDigest(Random(32)).ok());
}

// A pair under the chain label on another curve is refused, not used.
TEST_F(SigningKeysTest, LoadRefusesWrongCurve) {
  ASSERT_TRUE(PlantPair(token(), absl::string_view(kPrime256v1Oid, sizeof(kPrime256v1Oid) - 1),
                        ChainKey::kLabel, ChainKey::kId, /*extractable=*/false)
                  .ok());
  auto chain = ChainKey::Load(token());
  EXPECT_THAT(chain.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(chain.status().message(), HasSubstr("not on curve secp256k1"));
}

// An extractable key under the chain label is refused.
TEST_F(SigningKeysTest, LoadRefusesExtractableKey) {
  ASSERT_TRUE(PlantPair(token(), absl::string_view(kSecp256k1Oid, sizeof(kSecp256k1Oid) - 1),
                        ChainKey::kLabel, ChainKey::kId, /*extractable=*/true)
                  .ok());
  auto chain = ChainKey::Load(token());
  EXPECT_THAT(chain.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(chain.status().message(), HasSubstr("not sensitive"));
}

// Half a pair (the public key destroyed) stops both Load and Create.
TEST_F(SigningKeysTest, HalfAPairIsFailedPrecondition) {
  ASSERT_TRUE(LogKey::Create(token()).ok());
  CK_OBJECT_HANDLE pub = FindObject(token(), CKO_PUBLIC_KEY, LogKey::kLabel, LogKey::kId);
  ASSERT_TRUE(token()
                  .Run([&](CK_SESSION_HANDLE s) -> absl::Status {
                    P11_RETURN_IF_ERROR(token().functions(), C_DestroyObject, s, pub);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_THAT(LogKey::Load(token()).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  auto created = LogKey::Create(token());
  EXPECT_THAT(created.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(created.status().message(), HasSubstr("found 1 private and 0 public"));
}

// Destroys both halves of a pair, as an operator with the PIN could.
absl::Status DestroyPair(Pkcs11Token& token, const char* label, const char* id) {
  CK_OBJECT_HANDLE private_key = FindObject(token, CKO_PRIVATE_KEY, label, id);
  CK_OBJECT_HANDLE public_key = FindObject(token, CKO_PUBLIC_KEY, label, id);
  absl::MutexLock lock(&token.ObjectLock());
  return token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    P11_RETURN_IF_ERROR(token.functions(), C_DestroyObject, s, private_key);
    P11_RETURN_IF_ERROR(token.functions(), C_DestroyObject, s, public_key);
    return absl::OkStatus();
  });
}

// Keys destroyed and generated anew behind loaded objects: the old handles
// are looked up again, and the new key's signatures, which do not match the
// cached public keys, are INTERNAL rather than returned.
TEST_F(SigningKeysTest, ReplacedKeyIsNeverUsedSilently) {
  auto chain = CreateChainKey();
  ASSERT_NE(chain, nullptr);
  ASSERT_TRUE(LogKey::Create(token()).ok());
  auto log = LogKey::Load(token());
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE(DestroyPair(token(), ChainKey::kLabel, ChainKey::kId).ok());
  ASSERT_TRUE(DestroyPair(token(), LogKey::kLabel, LogKey::kId).ok());

  auto gone = chain->SignDigest(Random(32));
  EXPECT_THAT(gone.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(gone.status().message(), HasSubstr("chain key not initialised"));

  ASSERT_TRUE(ChainKey::Create(token()).ok());
  ASSERT_TRUE(LogKey::Create(token()).ok());
  EXPECT_THAT(chain->SignDigest(Random(32)).status(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT((*log)->Sign("tree head").status(), StatusIs(absl::StatusCode::kInternal));
  // Loaded afresh, the new keys sign.
  auto reloaded = ChainKey::Load(token());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_NE((*reloaded)->address(), chain->address());
  EXPECT_TRUE((*reloaded)->SignDigest(Random(32)).ok());
}

// ---------------------------------------------------------------------------
// Key protection, read back through PKCS#11.

struct ProtectionReport {
  bool sensitive = false, always_sensitive = false, never_extractable = false;
  bool extractable = true;
  CK_RV read_value = CKR_OK;
  CK_ULONG value_length = 0;
  CK_RV wrap = CKR_OK;
  CK_RV control_wrap = CKR_GENERAL_ERROR;
};

// Reads the protection attributes of `key`, tries to read its value and to
// wrap it under a session AES key; as a control, wraps an extractable
// session EC key under the same key with the same mechanism.
ProtectionReport Probe(Pkcs11Token& token, CK_OBJECT_HANDLE key) {
  ProtectionReport report;
  absl::Status status = token.Run([&](CK_SESSION_HANDLE s) -> absl::Status {
    CK_FUNCTION_LIST* f = token.functions();
    CK_BBOOL sensitive, always_sensitive, never_extractable, extractable;
    CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, 1},
                            {CKA_ALWAYS_SENSITIVE, &always_sensitive, 1},
                            {CKA_NEVER_EXTRACTABLE, &never_extractable, 1},
                            {CKA_EXTRACTABLE, &extractable, 1}};
    P11_RETURN_IF_ERROR(f, C_GetAttributeValue, s, key, flags, std::size(flags));
    report.sensitive = sensitive;
    report.always_sensitive = always_sensitive;
    report.never_extractable = never_extractable;
    report.extractable = extractable;

    uint8_t value[256];
    CK_ATTRIBUTE value_attribute{CKA_VALUE, value, sizeof(value)};
    report.read_value = f->C_GetAttributeValue(s, key, &value_attribute, 1);
    report.value_length = value_attribute.ulValueLen;

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG aes_size = 32;
    CK_MECHANISM aes_gen{CKM_AES_KEY_GEN, nullptr, 0};
    CK_ATTRIBUTE aes[] = {
        {CKA_TOKEN, &no, 1}, {CKA_WRAP, &yes, 1}, {CKA_VALUE_LEN, &aes_size, sizeof(aes_size)}};
    CK_OBJECT_HANDLE wrapping_key;
    P11_RETURN_IF_ERROR(f, C_GenerateKey, s, &aes_gen, aes, std::size(aes), &wrapping_key);
    CK_MECHANISM wrap{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
    uint8_t wrapped[1024];
    CK_ULONG wrapped_size = sizeof(wrapped);
    report.wrap = f->C_WrapKey(s, &wrap, wrapping_key, key, wrapped, &wrapped_size);

    CK_MECHANISM ec_gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &no, 1},
                          {CKA_EC_PARAMS, Ptr(kSecp256k1Oid), sizeof(kSecp256k1Oid) - 1}};
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &no, 1}, {CKA_SENSITIVE, &no, 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE control_pub, control_priv;
    P11_RETURN_IF_ERROR(f, C_GenerateKeyPair, s, &ec_gen, pub, std::size(pub), priv,
                        std::size(priv), &control_pub, &control_priv);
    wrapped_size = sizeof(wrapped);
    report.control_wrap =
        f->C_WrapKey(s, &wrap, wrapping_key, control_priv, wrapped, &wrapped_size);
    f->C_DestroyObject(s, control_priv);
    f->C_DestroyObject(s, control_pub);
    f->C_DestroyObject(s, wrapping_key);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return report;
}

// Both private keys are sensitive and non-extractable from birth: their
// value cannot be read and they cannot be wrapped, where an extractable key
// of the same type can.
TEST_F(SigningKeysTest, PrivateKeysCannotLeaveTheToken) {
  ASSERT_TRUE(ChainKey::Create(token()).ok());
  ASSERT_TRUE(LogKey::Create(token()).ok());
  for (auto [label, id] :
       {std::pair{ChainKey::kLabel, ChainKey::kId}, std::pair{LogKey::kLabel, LogKey::kId}}) {
    SCOPED_TRACE(label);
    CK_OBJECT_HANDLE key = FindObject(token(), CKO_PRIVATE_KEY, label, id);
    ASSERT_NE(key, CK_INVALID_HANDLE);
    ProtectionReport report = Probe(token(), key);
    EXPECT_TRUE(report.sensitive);
    EXPECT_TRUE(report.always_sensitive);
    EXPECT_TRUE(report.never_extractable);
    EXPECT_FALSE(report.extractable);
    EXPECT_EQ(report.read_value, CKR_ATTRIBUTE_SENSITIVE) << CkrName(report.read_value);
    EXPECT_EQ(report.value_length, CK_UNAVAILABLE_INFORMATION);
    EXPECT_EQ(report.wrap, CKR_KEY_UNEXTRACTABLE) << CkrName(report.wrap);
    EXPECT_EQ(report.control_wrap, CKR_OK) << CkrName(report.control_wrap);
  }
}

// ---------------------------------------------------------------------------
// ChainKey signatures.

// Each signature, recovered independently with libsecp256k1 from (r, s,
// recovery_id), gives the key's address, and s is in the lower half.
TEST_F(SigningKeysTest, SignDigestIsRecoverableAndLowS) {
  auto key = CreateChainKey();
  ASSERT_NE(key, nullptr);
  Secp256k1 secp;
  for (int i = 0; i < 100; ++i) {
    std::string digest = Random(32);
    auto sig = key->SignDigest(digest);
    ASSERT_TRUE(sig.ok()) << sig.status();
    EXPECT_LE(sig->recovery_id, 1);
    EXPECT_TRUE(LowS(sig->s)) << absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(sig->s.data()), 32));
    auto recovered = secp.Recover(*sig, digest);
    ASSERT_TRUE(recovered.has_value());
    EXPECT_EQ(EthereumAddress(*recovered), key->address());
  }
}

// Digests of any length but 32 bytes are INVALID_ARGUMENT.
TEST_F(SigningKeysTest, SignDigestRejectsWrongLength) {
  auto key = CreateChainKey();
  ASSERT_NE(key, nullptr);
  EXPECT_THAT(key->SignDigest(Random(31)).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(key->SignDigest(Random(33)).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(key->SignDigest("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Known answer: the address of private key 0x4c08...2318 (a widely used
// Ethereum test vector).
TEST(SignEthereumAddressTest, KnownAnswer) {
  std::string secret =
      absl::HexStringToBytes("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
  Secp256k1 secp;
  secp256k1_pubkey pubkey;
  ASSERT_EQ(secp256k1_ec_pubkey_create(secp.context, &pubkey,
                                       reinterpret_cast<const unsigned char*>(secret.data())),
            1);
  std::array<uint8_t, 65> point{};
  size_t size = point.size();
  ASSERT_EQ(secp256k1_ec_pubkey_serialize(secp.context, point.data(), &size, &pubkey,
                                          SECP256K1_EC_UNCOMPRESSED),
            1);
  EXPECT_EQ(EthereumAddress(point), "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23");
}

// Eight threads share one ChainKey (and a pool of four sessions); every
// signature succeeds and recovers to the key's address.
TEST_F(SigningKeysTest, SignDigestConcurrently) {
  auto key = CreateChainKey();
  ASSERT_NE(key, nullptr);
  Secp256k1 secp;
  std::atomic<int> errors{0}, unrecoverable{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 200; ++j) {
        std::string digest = Random(32);
        auto sig = key->SignDigest(digest);
        if (!sig.ok()) {
          ++errors;
          continue;
        }
        auto recovered = secp.Recover(*sig, digest);
        if (!recovered || *recovered != key->public_key()) ++unrecoverable;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(unrecoverable, 0);
}

// ---------------------------------------------------------------------------
// LogKey signatures.

// The DER signature verifies with OpenSSL against PublicKeyDer(); a changed
// message does not.
TEST_F(SigningKeysTest, LogSignatureVerifiesWithOpenssl) {
  ASSERT_TRUE(LogKey::Create(token()).ok());
  auto key = LogKey::Load(token());
  ASSERT_TRUE(key.ok()) << key.status();
  auto der = (*key)->PublicKeyDer();
  ASSERT_TRUE(der.ok()) << der.status();
  for (std::string message :
       {std::string("signed tree head 42"), std::string(), Random(LogKey::kMaxMessageSize)}) {
    auto signature = (*key)->Sign(message);
    ASSERT_TRUE(signature.ok()) << signature.status();
    EXPECT_TRUE(OpensslVerifies(*der, message, *signature));
    std::string changed = message + "!";
    EXPECT_FALSE(OpensslVerifies(*der, changed, *signature));
  }
}

// A message over 64 KiB is INVALID_ARGUMENT.
TEST_F(SigningKeysTest, LogSignRejectsOversizeMessage) {
  ASSERT_TRUE(LogKey::Create(token()).ok());
  auto key = LogKey::Load(token());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_THAT((*key)->Sign(std::string(LogKey::kMaxMessageSize + 1, 'x')).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------------------
// Encodings of what modules return.

// CKA_EC_POINT is accepted as a DER OCTET STRING or as the bare point, and
// nothing else.
TEST(SignParseEcPointTest, AcceptsDerAndBarePoint) {
  std::string point = "\x04" + Random(64);
  auto bare = ParseEcPoint(point);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(std::string(bare->begin(), bare->end()), point);
  auto der = ParseEcPoint("\x04\x41" + point);
  ASSERT_TRUE(der.ok()) << der.status();
  EXPECT_EQ(*der, *bare);
  // A bare point whose second byte looks like a DER length (63).
  std::string tricky = point;
  tricky[1] = 0x3f;
  auto parsed = ParseEcPoint(tricky);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::string(parsed->begin(), parsed->end()), tricky);

  EXPECT_THAT(ParseEcPoint("\x02" + Random(32)).status(),  // Compressed.
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEcPoint("\x04\x21\x02" + Random(32)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEcPoint("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

// CKM_ECDSA output is accepted as 64 bytes r||s or as DER.
TEST(SignParseEcdsaSignatureTest, AcceptsRawAndDer) {
  std::string raw = Random(64);
  raw[0] |= 0x80;  // Forces a leading zero in the DER INTEGER.
  auto parsed = ParseEcdsaSignature(raw);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::string(parsed->begin(), parsed->end()), raw);

  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_size = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  ASSERT_GT(der_size, 0);
  auto from_der = ParseEcdsaSignature(std::string(reinterpret_cast<char*>(der), der_size));
  OPENSSL_free(der);
  ASSERT_TRUE(from_der.ok()) << from_der.status();
  EXPECT_EQ(*from_der, *parsed);

  EXPECT_THAT(ParseEcdsaSignature(Random(63)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEcdsaSignature("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace medvault::keyvault
