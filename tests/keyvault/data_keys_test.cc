// The key hierarchy on a real SoftHSM2 token: master keys, derived patient
// keys, data key blobs, crypto-shredding, rotation and database keys.
#include "keyvault/data_keys.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keyvault/test_token.h"

namespace medvault::keyvault {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DataKeyContext Ctx(const std::string& patient, const std::string& record = "rec-1",
                   const std::string& purpose = "record") {
  return DataKeyContext{patient, record, purpose};
}

class DataKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TestToken::Create();
    ASSERT_TRUE(t.ok()) << t.status();
    test_token_ = *std::move(t);
    Open();
    auto created = keys_->InitializeMissing({"gateway", "signer"});
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_THAT(*created, ::testing::ElementsAre("medvault-master-v1", "database-key-gateway",
                                                 "database-key-signer"));
  }

  void Open(size_t cache = 1024) {
    keys_.reset();
    KeyHierarchy::Options options{test_token_->dir(), cache};
    auto keys = KeyHierarchy::Open(test_token_->token(), options);
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *std::move(keys);
  }

  // Objects of `cls` on the token (on_token) or in sessions.
  size_t CountObjects(bool on_token) {
    Pkcs11Token& token = test_token_->token();
    size_t count = 0;
    EXPECT_TRUE(token
                    .Run([&](CK_SESSION_HANDLE s) -> absl::Status {
                      CK_BBOOL flag = on_token ? CK_TRUE : CK_FALSE;
                      CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &flag, sizeof(flag)}};
                      P11_RETURN_IF_ERROR(token.functions(), C_FindObjectsInit, s, tmpl, 1);
                      CK_OBJECT_HANDLE h[256];
                      CK_ULONG n = 0;
                      do {
                        P11_RETURN_IF_ERROR(token.functions(), C_FindObjects, s, h, 256, &n);
                        count += n;
                      } while (n > 0);
                      P11_RETURN_IF_ERROR(token.functions(), C_FindObjectsFinal, s);
                      return absl::OkStatus();
                    })
                    .ok());
    return count;
  }

  std::unique_ptr<TestToken> test_token_;
  std::unique_ptr<KeyHierarchy> keys_;
};

// A data key opens under its context and gives back the same 32 bytes.
TEST_F(DataKeysTest, RoundTrip) {
  auto key = keys_->Generate(Ctx("patient-1"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->plaintext.size(), 32u);
  EXPECT_EQ(key->blob.size(), KeyHierarchy::kBlobSize);
  EXPECT_EQ(key->master_version, 1u);
  auto opened = keys_->Decrypt(key->blob, Ctx("patient-1"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->ConstantTimeEquals(key->plaintext));
  auto other = keys_->Generate(Ctx("patient-1"));
  EXPECT_FALSE(other->plaintext.ConstantTimeEquals(key->plaintext)) << "keys must be fresh";
}

// Flipping any single bit of a blob makes it refuse to open.
TEST_F(DataKeysTest, EveryFlippedBitIsRefused) {
  auto key = keys_->Generate(Ctx("patient-1"));
  ASSERT_TRUE(key.ok()) << key.status();
  for (size_t byte = 0; byte < key->blob.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = key->blob;
      altered[byte] = static_cast<char>(altered[byte] ^ (1 << bit));
      auto opened = keys_->Decrypt(altered, Ctx("patient-1"));
      ASSERT_FALSE(opened.ok()) << "byte " << byte << " bit " << bit;
      EXPECT_THAT(opened.status().message(), Not(HasSubstr("\\x")));
    }
  }
}

// A blob opens only under the exact patient, record and purpose.
TEST_F(DataKeysTest, ContextMismatchIsRefused) {
  ASSERT_TRUE(keys_->Generate(Ctx("patient-2")).ok());
  auto key = keys_->Generate(Ctx("patient-1", "rec-1", "record"));
  ASSERT_TRUE(key.ok());
  for (const DataKeyContext& wrong :
       {Ctx("patient-2", "rec-1", "record"), Ctx("patient-1", "rec-2", "record"),
        Ctx("patient-1", "rec-1", "vitals")}) {
    auto opened = keys_->Decrypt(key->blob, wrong);
    EXPECT_FALSE(opened.ok()) << wrong.patient_id << "/" << wrong.record_id << "/" << wrong.purpose;
  }
  auto opened = keys_->Decrypt(key->blob, Ctx("patient-1", "rec-2", "record"));
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(opened.status().message(), HasSubstr("does not open under this context"));
}

// Malformed input gets INVALID_ARGUMENT naming the field.
TEST_F(DataKeysTest, BadInputNamesTheField) {
  EXPECT_THAT(keys_->Generate(Ctx("")).status().message(), HasSubstr("context.patient_id"));
  EXPECT_THAT(keys_->Generate(Ctx("p", "rec/../1")).status().message(),
              HasSubstr("context.record_id"));
  EXPECT_THAT(keys_->Generate(Ctx("p", "r", std::string(65, 'x'))).status().message(),
              HasSubstr("context.purpose"));
  EXPECT_THAT(keys_->Decrypt("short", Ctx("p")).status().message(), HasSubstr("wrapped_key"));
  EXPECT_EQ(keys_->Decrypt(std::string(KeyHierarchy::kBlobSize, 'x'), Ctx("p")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// After crypto-shredding a patient, none of its data keys opens and no new
// one is made; other patients are unaffected.
TEST_F(DataKeysTest, ShreddingOnePatientLeavesOthersIntact) {
  std::vector<std::string> shredded_blobs;
  for (int i = 0; i < 5; ++i) {
    shredded_blobs.push_back(keys_->Generate(Ctx("doomed", "rec-" + std::to_string(i)))->blob);
  }
  auto kept = keys_->Generate(Ctx("kept"));
  ASSERT_TRUE(kept.ok());
  auto destroyed = keys_->Shred("doomed");
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u);
  for (int i = 0; i < 5; ++i) {
    auto opened = keys_->Decrypt(shredded_blobs[i], Ctx("doomed", "rec-" + std::to_string(i)));
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  }
  EXPECT_EQ(keys_->Generate(Ctx("doomed")).status().code(), absl::StatusCode::kFailedPrecondition);
  auto opened = keys_->Decrypt(kept->blob, Ctx("kept"));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(opened->ConstantTimeEquals(kept->plaintext));
  // Also after a restart, when no cached key could help.
  Open();
  EXPECT_FALSE(keys_->Decrypt(shredded_blobs[0], Ctx("doomed", "rec-0")).ok());
}

// Rotation: new keys use the new master version, old blobs still open, and
// a rewrap moves a blob to the newest version with the same plaintext.
TEST_F(DataKeysTest, RotationKeepsOldBlobsAndRewrapMovesThem) {
  auto old_key = keys_->Generate(Ctx("patient-1"));
  ASSERT_TRUE(old_key.ok());
  auto version = keys_->RotateMaster();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 2u);
  auto new_key = keys_->Generate(Ctx("patient-1"));
  ASSERT_TRUE(new_key.ok());
  EXPECT_EQ(new_key->master_version, 2u);
  EXPECT_TRUE(
      keys_->Decrypt(old_key->blob, Ctx("patient-1"))->ConstantTimeEquals(old_key->plaintext));
  auto moved = keys_->Rewrap(old_key->blob, Ctx("patient-1"));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->master_version, 2u);
  EXPECT_NE(moved->blob, old_key->blob);
  EXPECT_TRUE(
      keys_->Decrypt(moved->blob, Ctx("patient-1"))->ConstantTimeEquals(old_key->plaintext));
  // Rotation survives a restart: the versions are found on the token again.
  Open();
  EXPECT_EQ(keys_->latest_master_version(), 2u);
  EXPECT_TRUE(keys_->Decrypt(old_key->blob, Ctx("patient-1")).ok());
}

// The token holds a constant number of objects however many patients there
// are; derived patient keys live in sessions, at most the cache's size, and
// evicted ones are derived again on demand.
TEST_F(DataKeysTest, ConstantObjectCountForManyPatients) {
  Open(/*cache=*/8);
  const size_t token_objects = CountObjects(true);
  std::vector<std::pair<std::string, std::string>> blobs;
  for (int i = 0; i < 200; ++i) {
    std::string patient = "patient-" + std::to_string(i);
    auto key = keys_->Generate(Ctx(patient));
    ASSERT_TRUE(key.ok()) << key.status();
    blobs.emplace_back(patient, key->blob);
  }
  EXPECT_EQ(CountObjects(true), token_objects);
  EXPECT_LE(CountObjects(false), 8u);
  for (const auto& [patient, blob] : blobs) {
    ASSERT_TRUE(keys_->Decrypt(blob, Ctx(patient)).ok()) << patient;
  }
}

// The master key reads back sensitive and never extractable, and neither
// its value nor a wrap of it can be had.
TEST_F(DataKeysTest, MasterKeyCannotLeaveTheToken) {
  Pkcs11Token& token = test_token_->token();
  CK_FUNCTION_LIST* f = token.functions();
  ASSERT_TRUE(
      token
          .Run([&](CK_SESSION_HANDLE s) -> absl::Status {
            std::string label = "medvault-master-v1";
            CK_ATTRIBUTE find[] = {{CKA_LABEL, label.data(), label.size()}};
            P11_RETURN_IF_ERROR(f, C_FindObjectsInit, s, find, 1);
            CK_OBJECT_HANDLE master = 0;
            CK_ULONG n = 0;
            P11_RETURN_IF_ERROR(f, C_FindObjects, s, &master, 1, &n);
            P11_RETURN_IF_ERROR(f, C_FindObjectsFinal, s);
            EXPECT_EQ(n, 1u);
            CK_BBOOL sensitive = 0, extractable = 1, always = 0, never = 0;
            CK_ATTRIBUTE attrs[] = {{CKA_SENSITIVE, &sensitive, 1},
                                    {CKA_EXTRACTABLE, &extractable, 1},
                                    {CKA_ALWAYS_SENSITIVE, &always, 1},
                                    {CKA_NEVER_EXTRACTABLE, &never, 1}};
            P11_RETURN_IF_ERROR(f, C_GetAttributeValue, s, master, attrs, 4);
            EXPECT_TRUE(sensitive && !extractable && always && never);
            uint8_t value[64];
            CK_ATTRIBUTE value_attr = {CKA_VALUE, value, sizeof(value)};
            EXPECT_EQ(f->C_GetAttributeValue(s, master, &value_attr, 1), CKR_ATTRIBUTE_SENSITIVE);
            // A session AES key allowed to wrap, used to try wrapping the master.
            CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
            CK_KEY_TYPE type = CKK_AES;
            CK_ULONG len = 32;
            CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
            CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                                   {CKA_KEY_TYPE, &type, sizeof(type)},
                                   {CKA_VALUE_LEN, &len, sizeof(len)},
                                   {CKA_TOKEN, &no, 1},
                                   {CKA_WRAP, &yes, 1}};
            CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
            CK_OBJECT_HANDLE wrapping = 0;
            P11_RETURN_IF_ERROR(f, C_GenerateKey, s, &gen, tmpl, 5, &wrapping);
            CK_MECHANISM wrap{CKM_AES_KEY_WRAP_PAD, nullptr, 0};
            uint8_t wrapped[128];
            CK_ULONG wrapped_len = sizeof(wrapped);
            EXPECT_NE(f->C_WrapKey(s, &wrap, wrapping, master, wrapped, &wrapped_len), CKR_OK);
            f->C_DestroyObject(s, wrapping);
            return absl::OkStatus();
          })
          .ok());
}

// Database keys: the same 32 bytes on every unwrap, before and after a
// rotation and a restart; an altered file is DATA_LOSS; names are checked.
TEST_F(DataKeysTest, DatabaseKeys) {
  auto gateway = keys_->DatabaseKey("gateway");
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  EXPECT_EQ(gateway->size(), 32u);
  auto signer = keys_->DatabaseKey("signer");
  ASSERT_TRUE(signer.ok());
  EXPECT_FALSE(signer->ConstantTimeEquals(*gateway));
  ASSERT_TRUE(keys_->RotateMaster().ok());
  Open();
  EXPECT_TRUE(keys_->DatabaseKey("gateway")->ConstantTimeEquals(*gateway));
  EXPECT_EQ(keys_->DatabaseKey("policy").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(keys_->DatabaseKey("../x").status().code(), absl::StatusCode::kInvalidArgument);

  std::string path = test_token_->dir() + "/database-key-signer.blob";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[30] ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_EQ(keys_->DatabaseKey("signer").status().code(), absl::StatusCode::kDataLoss);
}

// Without initialisation there is no master key, and the error says what to do.
TEST(DataKeysUninitialisedTest, RefusesUntilInitialised) {
  auto t = TestToken::Create();
  ASSERT_TRUE(t.ok()) << t.status();
  auto keys = KeyHierarchy::Open((*t)->token(), {(*t)->dir(), 16});
  ASSERT_TRUE(keys.ok()) << keys.status();
  auto key = (*keys)->Generate(Ctx("p"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(key.status().message(), HasSubstr("medvaultctl hsm init"));
  EXPECT_EQ((*keys)->RotateMaster().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace medvault::keyvault
