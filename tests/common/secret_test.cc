// SecretData and secret files: only private files are accepted.
#include "daemon/common/secret.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/medvault-secret-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
    chmod(path.c_str(), mode);
    return path;
  }

  std::string dir_;
};

// A 0600 file of ours is read, without its trailing newline.
TEST_F(SecretFileTest, ReadsPrivateFileWithoutNewline) {
  auto secret = ReadSecretFile(Write("pin", "1234abcd\n", 0600), {geteuid()});
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->view(), "1234abcd");
}

// A file others may read is refused, and the error never shows the content.
TEST_F(SecretFileTest, RefusesGroupReadableFile) {
  auto secret = ReadSecretFile(Write("pin", "topsecret", 0640), {geteuid()});
  ASSERT_FALSE(secret.ok());
  EXPECT_THAT(secret.status().message(), HasSubstr("0640"));
  EXPECT_THAT(secret.status().message(), Not(HasSubstr("topsecret")));
}

// A file owned by someone not on the list is refused.
TEST_F(SecretFileTest, RefusesFileOfAnotherOwner) {
  auto secret = ReadSecretFile(Write("pin", "x", 0600), {geteuid() + 1});
  ASSERT_FALSE(secret.ok());
  EXPECT_THAT(secret.status().message(), HasSubstr("owned by uid"));
}

// Empty files and symlinks are refused.
TEST_F(SecretFileTest, RefusesEmptyFileAndSymlink) {
  EXPECT_FALSE(ReadSecretFile(Write("empty", "\n", 0600), {geteuid()}).ok());
  std::string target = Write("real", "x", 0600);
  std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(ReadSecretFile(link, {geteuid()}).ok());
}

// Equality is by content; moving leaves the source empty.
TEST(SecretDataTest, ComparesAndMoves) {
  SecretData a("same"), b("same"), c("diff");
  EXPECT_TRUE(a.ConstantTimeEquals(b));
  EXPECT_FALSE(a.ConstantTimeEquals(c));
  SecretData moved(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(moved.ConstantTimeEquals(b));
}

}  // namespace
}  // namespace medvault
