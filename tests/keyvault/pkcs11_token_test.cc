// The PKCS#11 session pool against a real SoftHSM2 token.
#include "keyvault/pkcs11_token.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/keyvault/test_token.h"

namespace medvault::keyvault {
namespace {

using ::testing::HasSubstr;

// A wrong PIN is PERMISSION_DENIED naming C_Login and the CKR code, never the PIN.
TEST(Pkcs11TokenTest, WrongPinNamesFunctionAndCode) {
  auto t = TestToken::Create(/*sessions=*/0);
  ASSERT_TRUE(t.ok()) << t.status();
  Pkcs11Token::Options options;
  options.module_path = TestToken::kModule;
  options.token = std::string(TestToken::kLabel);
  auto token = Pkcs11Token::Open(options, SecretData("not-the-pin-123"));
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(token.status().message(), HasSubstr("C_Login: CKR_PIN_INCORRECT (0xa0)"));
  EXPECT_THAT(token.status().message(), ::testing::Not(HasSubstr("not-the-pin")));
}

// An unknown label is NOT_FOUND and says how many tokens were seen.
TEST(Pkcs11TokenTest, UnknownLabelIsNotFound) {
  auto t = TestToken::Create(/*sessions=*/0);
  ASSERT_TRUE(t.ok()) << t.status();
  Pkcs11Token::Options options;
  options.module_path = TestToken::kModule;
  options.token = std::string("no-such-token");
  auto token = Pkcs11Token::Open(options, SecretData("x"));
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
}

// After every session is closed behind the pool's back, the next operation
// reconnects, logs in again and succeeds.
TEST(Pkcs11TokenTest, ReconnectsAfterSessionsAreClosed) {
  auto t = TestToken::Create(2);
  ASSERT_TRUE(t.ok()) << t.status();
  Pkcs11Token& token = (*t)->token();
  auto before = token.Describe();
  ASSERT_TRUE(before.ok()) << before.status();
  token.functions()->C_CloseAllSessions(before->slot_id);
  auto after = token.Describe();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->logged_in);
  EXPECT_EQ(token.reconnects(), 1);
}

// Many threads share a small pool; each operation gets a session of its own.
TEST(Pkcs11TokenTest, PoolServesManyThreads) {
  auto t = TestToken::Create(2);
  ASSERT_TRUE(t.ok()) << t.status();
  Pkcs11Token& token = (*t)->token();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 200; ++j) {
        absl::Status s = token.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
          unsigned char random[32];
          P11_RETURN_IF_ERROR(token.functions(), C_GenerateRandom, session, random, sizeof(random));
          return absl::OkStatus();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace medvault::keyvault
