// The real medvault-keyvault, alone, over its Unix socket: data keys,
// crypto-shredding, rotation, signing, concurrency, a kill -9 under load and
// the database keys, each through gRPC exactly as the other processes call
// it (the test's own user is on every method's allowlist; see
// keyvault_process.h).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/medvaultd/supervisor.h"
#include "keyvault/signing_keys.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"
#include "tests/integration/keyvault_process.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

namespace v1 = ::medvault::internal::v1;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Property;
using ::testing::UnorderedElementsAre;

#if defined(MEDVAULT_SANITIZE)
// ASan/UBSan make the keyvault (and SoftHSM2's calls into it) several times
// slower; a call may wait behind many others in the concurrency tests.
constexpr absl::Duration kCallTimeout = absl::Seconds(60);
#else
constexpr absl::Duration kCallTimeout = absl::Seconds(20);
#endif

MATCHER_P(GrpcCodeIs, code, "") {
  const grpc::Status& status = arg;
  *result_listener << "status is " << status.error_code() << " \"" << status.error_message()
                   << "\"";
  return status.error_code() == code;
}

MATCHER(GrpcOk, "") {
  const grpc::Status& status = arg;
  *result_listener << "status is " << status.error_code() << " \"" << status.error_message()
                   << "\"";
  return status.ok();
}

v1::DataKeyContext Context(const std::string& patient, const std::string& record,
                           const std::string& purpose = "record") {
  v1::DataKeyContext c;
  c.set_patient_id(patient);
  c.set_record_id(record);
  c.set_purpose(purpose);
  return c;
}

std::string RandomBytes(size_t size) {
  std::string out(size, '\0');
  EXPECT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)), 1);
  return out;
}

// One unary call with the test's deadline: Call(stub, &Stub::Method, request, &response).
template <typename Method, typename Request, typename Response>
grpc::Status Call(v1::KeyVault::Stub& stub, Method method, const Request& request,
                  Response* response, absl::Duration timeout = kCallTimeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return (stub.*method)(&context, request, response);
}

grpc::Status Generate(v1::KeyVault::Stub& stub, const v1::DataKeyContext& context,
                      v1::GenerateDataKeyResponse* response) {
  v1::GenerateDataKeyRequest request;
  *request.mutable_context() = context;
  return Call(stub, &v1::KeyVault::Stub::GenerateDataKey, request, response);
}

grpc::Status Decrypt(v1::KeyVault::Stub& stub, const std::string& blob,
                     const v1::DataKeyContext& context, std::string* plaintext) {
  v1::DecryptRequest request;
  request.set_wrapped_key(blob);
  *request.mutable_context() = context;
  v1::DecryptResponse response;
  grpc::Status status = Call(stub, &v1::KeyVault::Stub::Decrypt, request, &response);
  if (plaintext != nullptr) *plaintext = response.plaintext_key();
  return status;
}

grpc::Status SignDigest(v1::KeyVault::Stub& stub, const std::string& digest,
                        v1::SignDigestResponse* response) {
  v1::SignDigestRequest request;
  request.set_digest(digest);
  return Call(stub, &v1::KeyVault::Stub::SignDigest, request, response);
}

// The uncompressed public key that (r, s, recovery_id) over `digest`
// recovers with libsecp256k1, independently of the keyvault's own code.
std::optional<std::array<uint8_t, 65>> Recover(const v1::SignDigestResponse& sig,
                                               const std::string& digest) {
  if (sig.r().size() != 32 || sig.s().size() != 32 || sig.recovery_id() > 3) return std::nullopt;
  secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  uint8_t compact[64];
  memcpy(compact, sig.r().data(), 32);
  memcpy(compact + 32, sig.s().data(), 32);
  secp256k1_ecdsa_recoverable_signature parsed;
  secp256k1_pubkey pubkey;
  std::array<uint8_t, 65> point{};
  size_t size = point.size();
  bool ok = secp256k1_ecdsa_recoverable_signature_parse_compact(
                ctx, &parsed, compact, static_cast<int>(sig.recovery_id())) == 1 &&
            secp256k1_ecdsa_recover(ctx, &pubkey, &parsed,
                                    reinterpret_cast<const unsigned char*>(digest.data())) == 1 &&
            secp256k1_ec_pubkey_serialize(ctx, point.data(), &size, &pubkey,
                                          SECP256K1_EC_UNCOMPRESSED) == 1;
  // A plain (non-recoverable) verification too, which also rejects high s.
  secp256k1_ecdsa_signature plain;
  ok = ok && secp256k1_ecdsa_signature_parse_compact(ctx, &plain, compact) == 1 &&
       secp256k1_ecdsa_verify(ctx, &plain, reinterpret_cast<const unsigned char*>(digest.data()),
                              &pubkey) == 1;
  secp256k1_context_destroy(ctx);
  if (!ok) return std::nullopt;
  return point;
}

std::string AsString(const std::array<uint8_t, 65>& point) {
  return std::string(reinterpret_cast<const char*>(point.data()), point.size());
}

class KeyvaultSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<KeyvaultProcess>> kv = KeyvaultProcess::Create();
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = *std::move(kv);
    absl::Status started = kv_->Start();
    ASSERT_TRUE(started.ok()) << started;
    stub_ = kv_->NewStub();
  }

  void TearDown() override {
    if (kv_ == nullptr) return;
    // A crash the test did not cause (SIGSYS from seccomp, SIGSEGV, abort)
    // fails the test even if every call it made succeeded.
    if (std::optional<int> status = kv_->Exited()) {
      ADD_FAILURE() << "medvault-keyvault exited: " << supervisor::DescribeExit(*status);
    }
    kv_->Kill();
    EXPECT_THAT(kv_->SanitizerReports(), IsEmpty()) << "sanitizer reports in " << kv_->log_path();
    if (HasFailure()) {
      std::cerr << "----- " << kv_->log_path() << " -----\n"
                << kv_->ReadLog() << "----- end of keyvault.log -----\n";
      kv_->KeepDirectory();
    }
  }

  KeyvaultProcess& kv() { return *kv_; }
  v1::KeyVault::Stub& stub() { return *stub_; }

  std::unique_ptr<KeyvaultProcess> kv_;
  std::unique_ptr<v1::KeyVault::Stub> stub_;
};

// A data key made over the socket opens over the socket under its own
// context only; oversized requests are refused without harming the process.
TEST_F(KeyvaultSocketTest, DataKeyRoundTripAndOversizedRequests) {
  const pid_t pid = kv().pid();
  v1::DataKeyContext context = Context("patient-1", "record-1");
  v1::GenerateDataKeyResponse made;
  ASSERT_THAT(Generate(stub(), context, &made), GrpcOk());
  EXPECT_EQ(made.plaintext_key().size(), 32u);
  EXPECT_EQ(made.wrapped_key().size(), 73u);
  EXPECT_EQ(made.master_version(), 1u);

  std::string opened;
  ASSERT_THAT(Decrypt(stub(), made.wrapped_key(), context, &opened), GrpcOk());
  EXPECT_EQ(opened, made.plaintext_key());

  // Every other context is refused: another record, another purpose,
  // another (known) patient. A patient without keys is NOT_FOUND.
  v1::GenerateDataKeyResponse unrelated;
  ASSERT_THAT(Generate(stub(), Context("patient-2", "record-9"), &unrelated), GrpcOk());
  for (const v1::DataKeyContext& other :
       {Context("patient-1", "record-2"), Context("patient-1", "record-1", "vitals-segment"),
        Context("patient-2", "record-1")}) {
    EXPECT_THAT(Decrypt(stub(), made.wrapped_key(), other, nullptr),
                GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT))
        << other.ShortDebugString();
  }
  EXPECT_THAT(Decrypt(stub(), made.wrapped_key(), Context("patient-none", "record-1"), nullptr),
              GrpcCodeIs(grpc::StatusCode::NOT_FOUND));
  // Malformed contexts are refused before anything is made, and the
  // google.rpc.BadRequest details name the field.
  v1::GenerateDataKeyResponse refused;
  for (const auto& [bad, field] : std::vector<std::pair<v1::DataKeyContext, std::string>>{
           {Context("patient/../1", "record-1"), "context.patient_id"},
           {Context(std::string(129, 'p'), "record-1"), "context.patient_id"},
           {Context("patient-1", ""), "context.record_id"},
           {Context("patient-1", "record-1", std::string(65, 'x')), "context.purpose"}}) {
    grpc::Status status = Generate(stub(), bad, &refused);
    EXPECT_THAT(status, GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT)) << bad.ShortDebugString();
    EXPECT_THAT(BadRequestFields(status), ElementsAre(field)) << bad.ShortDebugString();
  }

  // A 1 MiB blob is refused by gRPC before any handler sees it (the
  // keyvault accepts requests of at most 128 KiB).
  EXPECT_THAT(Decrypt(stub(), std::string(1 << 20, 'x'), context, nullptr),
              GrpcCodeIs(grpc::StatusCode::RESOURCE_EXHAUSTED));
  // One byte too many or too few is refused by the handler.
  std::string longer = made.wrapped_key() + "x";
  EXPECT_THAT(Decrypt(stub(), longer, context, nullptr),
              GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(Decrypt(stub(), made.wrapped_key().substr(1), context, nullptr),
              GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT));
  v1::SignDigestResponse signature;
  EXPECT_THAT(SignDigest(stub(), RandomBytes(31), &signature),
              GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(SignDigest(stub(), RandomBytes(33), &signature),
              GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT));

  // A log message of exactly 64 KiB is signed; one byte more is refused,
  // and far more is refused by gRPC unread.
  v1::SignLogMessageRequest log_request;
  v1::SignLogMessageResponse log_response;
  log_request.set_message(std::string(64 * 1024, 'm'));
  EXPECT_THAT(Call(stub(), &v1::KeyVault::Stub::SignLogMessage, log_request, &log_response),
              GrpcOk());
  EXPECT_FALSE(log_response.signature().empty());
  log_request.set_message(std::string(64 * 1024 + 1, 'm'));
  EXPECT_THAT(Call(stub(), &v1::KeyVault::Stub::SignLogMessage, log_request, &log_response),
              GrpcCodeIs(grpc::StatusCode::INVALID_ARGUMENT));
  log_request.set_message(std::string(4 << 20, 'm'));
  EXPECT_THAT(Call(stub(), &v1::KeyVault::Stub::SignLogMessage, log_request, &log_response),
              GrpcCodeIs(grpc::StatusCode::RESOURCE_EXHAUSTED));

  // Still the same process, still serving, still answering.
  EXPECT_EQ(kv().Exited(), std::nullopt);
  EXPECT_EQ(kv().pid(), pid);
  EXPECT_TRUE(kv().Serving());
  ASSERT_THAT(Decrypt(stub(), made.wrapped_key(), context, &opened), GrpcOk());
  EXPECT_EQ(opened, made.plaintext_key());
}

// After ShredPatient no blob of that patient opens and none is made; other
// patients are untouched.
TEST_F(KeyvaultSocketTest, ShredPatientMakesItsBlobsUnopenable) {
  std::vector<std::pair<v1::DataKeyContext, std::string>> shredded_blobs;
  for (int i = 0; i < 3; ++i) {
    v1::DataKeyContext context = Context("patient-shred", absl::StrCat("record-", i));
    v1::GenerateDataKeyResponse made;
    ASSERT_THAT(Generate(stub(), context, &made), GrpcOk());
    shredded_blobs.emplace_back(context, made.wrapped_key());
  }
  v1::DataKeyContext kept_context = Context("patient-kept", "record-0");
  v1::GenerateDataKeyResponse kept;
  ASSERT_THAT(Generate(stub(), kept_context, &kept), GrpcOk());

  v1::ShredPatientRequest shred;
  shred.set_patient_id("patient-shred");
  v1::ShredPatientResponse shredded;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::ShredPatient, shred, &shredded), GrpcOk());
  EXPECT_GE(shredded.destroyed_generations(), 1u);

  for (const auto& [context, blob] : shredded_blobs) {
    EXPECT_THAT(Decrypt(stub(), blob, context, nullptr),
                GrpcCodeIs(grpc::StatusCode::FAILED_PRECONDITION))
        << context.ShortDebugString();
  }
  v1::GenerateDataKeyResponse refused;
  EXPECT_THAT(Generate(stub(), Context("patient-shred", "record-new"), &refused),
              GrpcCodeIs(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_TRUE(refused.plaintext_key().empty());

  std::string opened;
  ASSERT_THAT(Decrypt(stub(), kept.wrapped_key(), kept_context, &opened), GrpcOk());
  EXPECT_EQ(opened, kept.plaintext_key());

  // Shredding again destroys nothing more and is not an error.
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::ShredPatient, shred, &shredded), GrpcOk());
  EXPECT_EQ(shredded.destroyed_generations(), 0u);
  v1::ListKeysResponse listed;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::ListKeys, v1::ListKeysRequest(), &listed),
              GrpcOk());
  EXPECT_EQ(listed.shredded_patients(), 1u);
}

// After RotateMasterKey old blobs still open, new keys and rewraps use
// version 2, and the token holds exactly the deployment's keys, all
// sensitive and never extractable.
TEST_F(KeyvaultSocketTest, RotationKeepsOldBlobsAndListsEveryKey) {
  v1::DataKeyContext old_context = Context("patient-rot", "record-old");
  v1::GenerateDataKeyResponse old_key;
  ASSERT_THAT(Generate(stub(), old_context, &old_key), GrpcOk());
  EXPECT_EQ(old_key.master_version(), 1u);

  v1::RotateMasterKeyResponse rotated;
  ASSERT_THAT(
      Call(stub(), &v1::KeyVault::Stub::RotateMasterKey, v1::RotateMasterKeyRequest(), &rotated),
      GrpcOk());
  EXPECT_EQ(rotated.new_version(), 2u);

  std::string opened;
  ASSERT_THAT(Decrypt(stub(), old_key.wrapped_key(), old_context, &opened), GrpcOk());
  EXPECT_EQ(opened, old_key.plaintext_key());

  // New keys, for the same patient and for a new one, derive from version 2.
  for (const char* patient : {"patient-rot", "patient-new"}) {
    v1::DataKeyContext context = Context(patient, "record-new");
    v1::GenerateDataKeyResponse made;
    ASSERT_THAT(Generate(stub(), context, &made), GrpcOk());
    EXPECT_EQ(made.master_version(), 2u) << patient;
    ASSERT_THAT(Decrypt(stub(), made.wrapped_key(), context, &opened), GrpcOk());
    EXPECT_EQ(opened, made.plaintext_key());
  }

  v1::RewrapDataKeyRequest rewrap;
  rewrap.set_wrapped_key(old_key.wrapped_key());
  *rewrap.mutable_context() = old_context;
  v1::RewrapDataKeyResponse rewrapped;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::RewrapDataKey, rewrap, &rewrapped), GrpcOk());
  EXPECT_EQ(rewrapped.master_version(), 2u);
  EXPECT_NE(rewrapped.wrapped_key(), old_key.wrapped_key());
  ASSERT_THAT(Decrypt(stub(), rewrapped.wrapped_key(), old_context, &opened), GrpcOk());
  EXPECT_EQ(opened, old_key.plaintext_key());
  // The old blob still opens after the rewrap too.
  ASSERT_THAT(Decrypt(stub(), old_key.wrapped_key(), old_context, &opened), GrpcOk());
  EXPECT_EQ(opened, old_key.plaintext_key());

  v1::ListKeysResponse listed;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::ListKeys, v1::ListKeysRequest(), &listed),
              GrpcOk());
  auto key = [](const std::string& label, const std::string& type, uint32_t version) {
    return ::testing::AllOf(Property("label", &v1::KeyInfo::label, label),
                            Property("type", &v1::KeyInfo::type, type),
                            Property("version", &v1::KeyInfo::version, version));
  };
  EXPECT_THAT(listed.keys(), UnorderedElementsAre(key("medvault-master-v1", "AES-256", 1),
                                                  key("medvault-master-v2", "AES-256", 2),
                                                  key("medvault-chain-v1", "EC secp256k1", 0),
                                                  key("medvault-log-v1", "EC P-256", 0),
                                                  // development: the keyvault plays the regulator
                                                  key("medvault-regulator-v1", "EC secp256k1", 0)));
  EXPECT_THAT(
      listed.keys(),
      Each(::testing::AllOf(Property("sensitive", &v1::KeyInfo::sensitive, true),
                            Property("never_extractable", &v1::KeyInfo::never_extractable, true),
                            Property("extractable", &v1::KeyInfo::extractable, false))));
  EXPECT_EQ(listed.patients(), 2u);
}

// SignDigest signatures recover (libsecp256k1) to the key and Ethereum
// address GetChainPublicKey reports.
TEST_F(KeyvaultSocketTest, SignDigestRecoversToTheChainKey) {
  v1::GetChainPublicKeyResponse chain;
  ASSERT_THAT(
      Call(stub(), &v1::KeyVault::Stub::GetChainPublicKey, v1::GetChainPublicKeyRequest(), &chain),
      GrpcOk());
  ASSERT_EQ(chain.public_key().size(), 65u);
  ASSERT_EQ(chain.public_key()[0], '\x04');
  std::array<uint8_t, 65> point{};
  memcpy(point.data(), chain.public_key().data(), point.size());
  EXPECT_EQ(chain.address(), keyvault::EthereumAddress(point));
  EXPECT_THAT(chain.address(), ::testing::MatchesRegex("0x[0-9a-f]{40}"));

  for (int i = 0; i < 16; ++i) {
    std::string digest = RandomBytes(32);
    v1::SignDigestResponse signature;
    ASSERT_THAT(SignDigest(stub(), digest, &signature), GrpcOk());
    EXPECT_LE(signature.recovery_id(), 1u);
    std::optional<std::array<uint8_t, 65>> recovered = Recover(signature, digest);
    ASSERT_TRUE(recovered.has_value()) << "signature " << i << " does not verify";
    EXPECT_EQ(AsString(*recovered), chain.public_key());
    EXPECT_EQ(keyvault::EthereumAddress(*recovered), chain.address());
  }
}

// A development keyvault also signs as the regulator, with a key of its
// own; one configured as in production refuses, naming the setting.
TEST_F(KeyvaultSocketTest, RegulatorKeyOnlyWhereHeld) {
  v1::GetChainPublicKeyRequest which;
  which.set_key(v1::CHAIN_KEY_REGULATOR);
  v1::GetChainPublicKeyResponse regulator, operator_key;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::GetChainPublicKey, which, &regulator), GrpcOk());
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::GetChainPublicKey, v1::GetChainPublicKeyRequest(),
                   &operator_key),
              GrpcOk());
  EXPECT_NE(regulator.address(), operator_key.address());
  v1::SignDigestRequest request;
  request.set_digest(RandomBytes(32));
  request.set_key(v1::CHAIN_KEY_REGULATOR);
  v1::SignDigestResponse signature;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::SignDigest, request, &signature), GrpcOk());
  std::optional<std::array<uint8_t, 65>> recovered = Recover(signature, request.digest());
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(keyvault::EthereumAddress(*recovered), regulator.address());
  request.set_key(static_cast<v1::ChainKeyName>(7));
  EXPECT_EQ(Call(stub(), &v1::KeyVault::Stub::SignDigest, request, &signature).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  KeyvaultProcess::Options production;
  production.hold_regulator_key = false;
  absl::StatusOr<std::unique_ptr<KeyvaultProcess>> plain = KeyvaultProcess::Create(production);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE((*plain)->Start().ok());
  auto plain_stub = (*plain)->NewStub();
  request.set_key(v1::CHAIN_KEY_REGULATOR);
  grpc::Status refused = Call(*plain_stub, &v1::KeyVault::Stub::SignDigest, request, &signature);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("hold_regulator_key"));
}

// --- Load: client threads with a connection each -------------------------------

// The figure, in every build. Measured on the 2-core dev machine
// (shared, load average ~4): the 80,000 calls take 38-45 s in the plain
// Debug build and 73 s under ASan/UBSan (the whole binary 79 s there),
// within the 3-minute budget, so the sanitizer build is not scaled down.
// A third of the calls are SignDigest, which SoftHSM2 serves at about
// 1,000-2,000/s (secp256k1 in OpenSSL's generic code): it sets the pace.
constexpr int kCallsPerThread = 10000;
constexpr int kThreads = 8;
// 160 patients per thread, 1,280 in all: more than the keyvault caches
// (1,024 derived keys), so patient keys are evicted and derived again, and
// over a thousand first generations are written to the patient store
// (enough for a WAL checkpoint).
constexpr int kPatientsPerThread = 160;

// A data key a client was given.
struct MadeKey {
  v1::DataKeyContext context;
  std::string blob;
  std::string plaintext;
};

// What one client thread saw.
struct ThreadTally {
  int64_t calls = 0;
  std::map<int, int64_t> failures;  // by grpc::StatusCode
  std::string first_failure;
  int64_t mismatches = 0;  // a call that succeeded with a wrong answer

  void Fail(const std::string& what, const grpc::Status& status) {
    ++failures[status.error_code()];
    if (first_failure.empty()) {
      first_failure =
          absl::StrCat(what, ": code ", status.error_code(), " \"", status.error_message(), "\"");
    }
  }
};

// One client of the mixed load: a third each of GenerateDataKey, Decrypt of
// one of its earlier keys and SignDigest (one signature in ~32 recovered
// and compared with `chain_key`; all of them would double the time).
void RunMixedClient(const KeyvaultProcess& kv, int t, const std::string& chain_key,
                    ThreadTally& tally) {
  auto client = kv.NewStub(/*own_connection=*/true);
  std::mt19937_64 random(static_cast<uint64_t>(t) * 7919 + 1);
  std::vector<MadeKey> made;
  for (int i = 0; i < kCallsPerThread; ++i) {
    ++tally.calls;
    const int op = made.empty() ? 0 : i % 3;  // the first call makes a key to open
    if (op == 0) {
      v1::DataKeyContext context = Context(
          absl::StrCat("load-", t, "-", random() % kPatientsPerThread), absl::StrCat("record-", i));
      v1::GenerateDataKeyResponse response;
      grpc::Status status = Generate(*client, context, &response);
      if (!status.ok()) {
        tally.Fail("GenerateDataKey", status);
      } else if (response.plaintext_key().size() != 32 || response.wrapped_key().size() != 73) {
        ++tally.mismatches;
      } else {
        made.push_back({context, response.wrapped_key(), response.plaintext_key()});
      }
    } else if (op == 1) {
      const MadeKey& earlier = made[random() % made.size()];
      std::string plaintext;
      grpc::Status status = Decrypt(*client, earlier.blob, earlier.context, &plaintext);
      if (!status.ok()) {
        tally.Fail("Decrypt", status);
      } else if (plaintext != earlier.plaintext) {
        ++tally.mismatches;
      }
    } else {
      std::string digest(32, '\0');
      for (char& c : digest) c = static_cast<char>(random());
      v1::SignDigestResponse response;
      grpc::Status status = SignDigest(*client, digest, &response);
      if (!status.ok()) {
        tally.Fail("SignDigest", status);
      } else if (response.r().size() != 32 || response.s().size() != 32) {
        ++tally.mismatches;
      } else if (i % 97 == 2) {
        std::optional<std::array<uint8_t, 65>> recovered = Recover(response, digest);
        if (!recovered || AsString(*recovered) != chain_key) ++tally.mismatches;
      }
    }
  }
}

// kThreads clients making data keys until Stop(), each recording what it
// was acknowledged. A new patient every 4 keys, so that patient-store
// writes are in flight whenever the keyvault dies, not only cached keys.
// After a failure a client pauses 5 ms rather than spin while the keyvault
// is down.
class KeyMakers {
 public:
  explicit KeyMakers(const KeyvaultProcess& kv) : clients_(kThreads) {
    for (int t = 0; t < kThreads; ++t) threads_.emplace_back([this, &kv, t] { Run(kv, t); });
  }
  ~KeyMakers() { Stop(); }

  // True once `target` keys in all were acknowledged; false after `timeout`.
  bool WaitForAcks(int64_t target, absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (acked_.load() < target && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return acked_.load() >= target;
  }
  int64_t acked() const { return acked_.load(); }
  // How many keys client `t` has been acknowledged so far.
  size_t AckedBy(int t) {
    absl::MutexLock lock(&clients_[t].mu);
    return clients_[t].keys.size();
  }
  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }
  // After Stop(), when no client thread is left.
  const std::vector<MadeKey>& keys(int t) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return clients_[t].keys;
  }
  const ThreadTally& tally(int t) const ABSL_NO_THREAD_SAFETY_ANALYSIS { return clients_[t].tally; }

 private:
  struct Client {
    absl::Mutex mu;
    std::vector<MadeKey> keys ABSL_GUARDED_BY(mu);
    ThreadTally tally ABSL_GUARDED_BY(mu);
  };

  void Run(const KeyvaultProcess& kv, int t) {
    Client& client = clients_[t];
    auto stub = kv.NewStub(/*own_connection=*/true);
    for (int i = 0; !stop_.load(); ++i) {
      v1::DataKeyContext context =
          Context(absl::StrCat("restart-", t, "-", i / 4), absl::StrCat("record-", i));
      v1::GenerateDataKeyResponse response;
      grpc::Status status = Generate(*stub, context, &response);
      {
        absl::MutexLock lock(&client.mu);
        ++client.tally.calls;
        if (status.ok()) {
          client.keys.push_back({context, response.wrapped_key(), response.plaintext_key()});
        } else {
          client.tally.Fail("GenerateDataKey", status);
        }
      }
      if (status.ok()) {
        acked_.fetch_add(1);
      } else {
        absl::SleepFor(absl::Milliseconds(5));
      }
    }
  }

  std::vector<Client> clients_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> acked_{0};
  std::atomic<bool> stop_{false};
};

// 8 client threads x 10,000 mixed calls (new data keys, opening earlier
// ones, signing digests) through the socket all succeed with right answers.
TEST_F(KeyvaultSocketTest, EightThreadsOfMixedCallsSucceed) {
  v1::GetChainPublicKeyResponse chain;
  ASSERT_THAT(
      Call(stub(), &v1::KeyVault::Stub::GetChainPublicKey, v1::GetChainPublicKeyRequest(), &chain),
      GrpcOk());
  std::vector<ThreadTally> tallies(kThreads);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { RunMixedClient(kv(), t, chain.public_key(), tallies[t]); });
  }
  for (std::thread& thread : threads) thread.join();
  const absl::Duration elapsed = absl::Now() - start;

  int64_t calls = 0;
  for (int t = 0; t < kThreads; ++t) {
    calls += tallies[t].calls;
    EXPECT_THAT(tallies[t].failures, IsEmpty())
        << "thread " << t << ", first: " << tallies[t].first_failure;
    EXPECT_EQ(tallies[t].mismatches, 0) << "thread " << t;
  }
  EXPECT_EQ(calls, int64_t{kThreads} * kCallsPerThread);
  std::cout << calls << " calls in " << elapsed << " ("
            << static_cast<int64_t>(static_cast<double>(calls) / absl::ToDoubleSeconds(elapsed))
            << "/s)\n";
  EXPECT_EQ(kv().Exited(), std::nullopt);
}

// A data key acknowledged to a client survives a kill -9 of the keyvault
// in the middle of 8 threads making keys: after the restart it opens, with
// its context, to the same plaintext.
TEST_F(KeyvaultSocketTest, AcknowledgedKeysSurviveKillNineUnderLoad) {
  KeyMakers makers(kv());
  const bool loaded = makers.WaitForAcks(400, absl::Seconds(60));
  const pid_t old_pid = kv().pid();
  kv().Kill();
  // Everything acknowledged by now was acknowledged before the kill (a
  // reply still in a socket buffer may arrive a moment later; it is counted
  // among the later ones, and checked all the same).
  std::vector<size_t> acked_before_kill(kThreads);
  for (int t = 0; t < kThreads; ++t) acked_before_kill[t] = makers.AckedBy(t);
  absl::Status restarted = kv().Restart();
  const bool recovered =
      restarted.ok() && makers.WaitForAcks(makers.acked() + 400, absl::Seconds(60));
  makers.Stop();
  ASSERT_TRUE(loaded) << "the clients did not get 400 keys within 60 s";
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_NE(kv().pid(), old_pid);
  ASSERT_TRUE(recovered) << "the clients did not get 400 more keys within 60 s of the restart";

  size_t before_kill = 0, verified = 0;
  for (int t = 0; t < kThreads; ++t) {
    // Clients see UNAVAILABLE while the keyvault is down, nothing else.
    for (const auto& [code, count] : makers.tally(t).failures) {
      EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE)
          << "thread " << t << ": " << count
          << " failures, first: " << makers.tally(t).first_failure;
    }
    before_kill += acked_before_kill[t];
    const std::vector<MadeKey>& keys = makers.keys(t);
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string plaintext;
      EXPECT_THAT(Decrypt(stub(), keys[i].blob, keys[i].context, &plaintext), GrpcOk())
          << "thread " << t << " key " << i
          << (i < acked_before_kill[t] ? " (acknowledged before the kill) " : " (after) ")
          << keys[i].context.ShortDebugString();
      EXPECT_EQ(plaintext, keys[i].plaintext) << "thread " << t << " key " << i;
      ++verified;
    }
  }
  EXPECT_GE(before_kill, 400u);
  std::cout << verified << " acknowledged keys open after the restart, " << before_kill
            << " of them acknowledged before the kill\n";
}

// UnwrapDatabaseKey gives the gateway's user its own key, the same one
// after a restart, and refuses it the signer's.
TEST_F(KeyvaultSocketTest, DatabaseKeyIsTheCallersOwnAndStable) {
  v1::UnwrapDatabaseKeyRequest request;
  request.set_name("gateway");
  v1::UnwrapDatabaseKeyResponse first;
  ASSERT_THAT(Call(stub(), &v1::KeyVault::Stub::UnwrapDatabaseKey, request, &first), GrpcOk());
  EXPECT_EQ(first.key().size(), 32u);

  ASSERT_TRUE(kv().Restart().ok());
  auto fresh = kv().NewStub();
  v1::UnwrapDatabaseKeyResponse second;
  ASSERT_THAT(Call(*fresh, &v1::KeyVault::Stub::UnwrapDatabaseKey, request, &second), GrpcOk());
  EXPECT_EQ(second.key(), first.key());

  request.set_name("nobody");
  v1::UnwrapDatabaseKeyResponse none;
  EXPECT_THAT(Call(*fresh, &v1::KeyVault::Stub::UnwrapDatabaseKey, request, &none),
              GrpcCodeIs(grpc::StatusCode::NOT_FOUND));

  if (kv().signer_user() == kv().caller_user()) {
    GTEST_SKIP() << "the signer runs as the test's user (not root): its key is the caller's";
  }
  request.set_name("signer");
  v1::UnwrapDatabaseKeyResponse denied;
  EXPECT_THAT(Call(*fresh, &v1::KeyVault::Stub::UnwrapDatabaseKey, request, &denied),
              GrpcCodeIs(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(denied.key().empty());
}

}  // namespace
}  // namespace medvault::integration
