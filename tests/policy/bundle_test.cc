// Signed bundles: the hash, both signature algorithms, and every way a
// bundle is refused; reloads that keep the last good bundle.
#include "daemon/policy/bundle.h"

#include <thread>

#include "absl/strings/str_replace.h"
#include "daemon/policy/evaluator.h"
#include "daemon/policy/policy_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/test_keys.h"

namespace medvault::policy {
namespace {

using testing::BundleDir;
using ::testing::HasSubstr;
using testing::KeyPair;
using testing::NewKey;
using testing::ReadAll;
using testing::WriteAll;

const absl::Time kNow = absl::FromUnixSeconds(1780000000);  // 2026-05-28

void Sign(const BundleDir& dir, const KeyPair& key) {
  auto files = ReadBundle(dir.path());
  ASSERT_TRUE(files.ok()) << files.status();
  auto sig = SignBundleHash(key.private_pem, BundleHash(*files));
  ASSERT_TRUE(sig.ok()) << sig.status();
  WriteAll(dir.File(kSignatureFile), *sig);
}

// Rewrites the manifest's "version: N" line.
void SetVersion(const BundleDir& dir, int version) {
  std::string m = ReadAll(dir.File(kManifestFile));
  size_t at = m.find("\nversion: ");
  ASSERT_NE(at, std::string::npos);
  WriteAll(dir.File(kManifestFile),
           m.substr(0, at) + absl::StrCat("\nversion: ", version) + m.substr(m.find('\n', at + 1)));
}

class SignedBundleTest : public ::testing::TestWithParam<const char*> {};

// A bundle signed by the regulator's key loads, with either algorithm.
TEST_P(SignedBundleTest, SignedBundleLoads) {
  BundleDir dir;
  KeyPair key = NewKey(GetParam());
  Sign(dir, key);
  auto p = LoadSignedBundle(dir.path(), key.public_pem, kNow);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->version, 2u);
  EXPECT_EQ((*p)->bundle_hash_hex.size(), 64u);
}

// One altered byte in any listed file breaks the signature.
TEST_P(SignedBundleTest, AlteredByteIsRefused) {
  BundleDir dir;
  KeyPair key = NewKey(GetParam());
  Sign(dir, key);
  std::string text = ReadAll(dir.File("licence.textproto"));
  text[text.find("24h") == std::string::npos ? 10 : text.find("SUSPENDED")] ^= 0x20;
  WriteAll(dir.File("licence.textproto"), text);
  auto p = LoadSignedBundle(dir.path(), key.public_pem, kNow);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("altered"));
}

// A signature by any key but the regulator's is refused.
TEST_P(SignedBundleTest, OtherKeyIsRefused) {
  BundleDir dir;
  Sign(dir, NewKey(GetParam()));
  auto p = LoadSignedBundle(dir.path(), NewKey(GetParam()).public_pem, kNow);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("does not verify"));
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SignedBundleTest, ::testing::Values("ED25519", "P-256"));

// No bundle.sig: refused as unsigned, before anything is compiled.
TEST(BundleTest, UnsignedIsRefused) {
  BundleDir dir;
  auto p = LoadSignedBundle(dir.path(), NewKey("ED25519").public_pem, kNow);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("unsigned"));
}

// A signature made with an Ed25519 key does not pass for a P-256 key.
TEST(BundleTest, SignatureOfOtherAlgorithmIsRefused) {
  BundleDir dir;
  Sign(dir, NewKey("ED25519"));
  auto p = LoadSignedBundle(dir.path(), NewKey("P-256").public_pem, kNow);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A key of another type (RSA) is not a regulator key.
TEST(BundleTest, RsaKeyIsRefused) {
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, rsa);
  char* data = nullptr;
  long n = BIO_get_mem_data(pub, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(pub);
  EVP_PKEY_free(rsa);
  EXPECT_EQ(VerifyBundleSignature(pem, std::string(32, 'x'), "sig").code(),
            absl::StatusCode::kInvalidArgument);
}

// The hash covers the manifest and the files, framed: moving bytes from one
// file's end to the next file's start changes it.
TEST(BundleTest, HashFramesEachFile) {
  BundleFiles a;
  a.manifest_text = "m";
  a.files = {{"x", "ab"}, {"y", "c"}};
  BundleFiles b = a;
  b.files = {{"x", "a"}, {"y", "bc"}};
  EXPECT_NE(BundleHash(a), BundleHash(b));
  EXPECT_EQ(BundleHash(a), BundleHash(a));
}

// A manifest naming a file outside the bundle directory is refused.
TEST(BundleTest, PathOutsideBundleIsRefused) {
  BundleDir dir;
  WriteAll(dir.File(kManifestFile),
           "version: 1 effective_time: \"2026-01-01T00:00:00Z\" files: \"../etc/passwd\"");
  auto files = ReadBundle(dir.path());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(files.status().message(), HasSubstr("../etc/passwd"));
}

// A bundle is refused before its effective time.
TEST(BundleTest, NotYetEffectiveIsRefused) {
  BundleDir dir;
  KeyPair key = NewKey("ED25519");
  Sign(dir, key);
  auto p = LoadSignedBundle(dir.path(), key.public_pem, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("not effective before 2026-01-01T00:00:00Z"));
}

// A newer version replaces the bundle; an older one is refused and the
// newer keeps serving.
TEST(PolicyEngineTest, OlderVersionIsRefused) {
  BundleDir dir;
  KeyPair key = NewKey("ED25519");
  SetVersion(dir, 5);
  Sign(dir, key);
  PolicyEngine engine(dir.path(), key.public_pem);
  ASSERT_TRUE(engine.Reload(kNow).ok());
  SetVersion(dir, 4);
  Sign(dir, key);
  auto r = engine.Reload(kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("version 4 is older than version 5"));
  EXPECT_EQ(engine.Current()->version, 5u);
  EXPECT_THAT(engine.last_error(), HasSubstr("older"));
}

// Reloading the same bundle is harmless; the same version with other
// content is refused (a change needs a new version).
TEST(PolicyEngineTest, SameVersionOtherContentIsRefused) {
  BundleDir dir;
  KeyPair key = NewKey("P-256");
  Sign(dir, key);
  PolicyEngine engine(dir.path(), key.public_pem);
  ASSERT_TRUE(engine.Reload(kNow).ok());
  auto again = engine.Reload(kNow);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed);
  WriteAll(dir.File("emergency.textproto"), ReadAll(dir.File("emergency.textproto")) + "\n# x\n");
  Sign(dir, key);
  EXPECT_THAT(engine.Reload(kNow).status().message(), HasSubstr("already in force"));
}

// A reload that fails (bad signature, then a signed bundle that does not
// compile) keeps the last good bundle serving, and a later good one loads.
TEST(PolicyEngineTest, ReloadKeepsLastGoodBundle) {
  BundleDir dir;
  KeyPair key = NewKey("ED25519");
  Sign(dir, key);
  PolicyEngine engine(dir.path(), key.public_pem);
  ASSERT_TRUE(engine.Reload(kNow).ok());
  auto good = engine.Current();

  SetVersion(dir, 3);  // not re-signed: the signature no longer verifies
  EXPECT_EQ(engine.Reload(kNow).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine.Current(), good);

  WriteAll(dir.File("emergency.textproto"),
           absl::StrReplaceAll(ReadAll(dir.File("emergency.textproto")),
                               {{"\"PRACTITIONER\"", "\"SURGEON\""}}));
  Sign(dir, key);  // signed, but names an unknown role
  auto bad = engine.Reload(kNow);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("emergency.textproto:"));
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown role \"SURGEON\""));
  EXPECT_EQ(engine.Current(), good);

  BundleDir fixed;
  SetVersion(fixed, 3);
  Sign(fixed, key);
  PolicyEngine engine2(fixed.path(), key.public_pem);
  ASSERT_TRUE(engine2.Reload(kNow).ok());
  EXPECT_EQ(engine2.Current()->version, 3u);
}

// Evaluations running while reloads swap the bundle finish on the snapshot
// they took: a snapshot taken before a reload still decides as version 2
// after it, and concurrent readers always see a whole bundle.
TEST(PolicyEngineTest, InFlightEvaluationsFinishOnTheirBundle) {
  BundleDir dir;
  KeyPair key = NewKey("ED25519");
  Sign(dir, key);
  PolicyEngine engine(dir.path(), key.public_pem);
  ASSERT_TRUE(engine.Reload(kNow).ok());
  std::shared_ptr<const CompiledPolicy> in_flight = engine.Current();

  v1::Request request;
  request.set_action("record.delete");
  request.set_role("HOSPITAL");
  request.set_time("2026-06-01T00:00:00Z");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, decided{0};
  std::thread reader([&] {
    while (!stop) {
      auto snapshot = engine.Current();
      auto d = Evaluate(*snapshot, request);
      if (!d.ok() || d->policy_version() != snapshot->version ||
          d->bundle_hash() != snapshot->bundle_hash_hex) {
        ++bad;
      }
      ++decided;
    }
  });
  for (int version = 3; version <= 5; ++version) {
    SetVersion(dir, version);
    Sign(dir, key);
    auto r = engine.Reload(kNow);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->changed);
  }
  stop = true;
  reader.join();
  auto d = Evaluate(*in_flight, request);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->policy_version(), 2u);
  EXPECT_EQ(engine.Current()->version, 5u);
  EXPECT_EQ(bad, 0);
  EXPECT_GT(decided, 0);
}

}  // namespace
}  // namespace medvault::policy
