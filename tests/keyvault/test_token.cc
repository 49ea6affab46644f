#include "tests/keyvault/test_token.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"

namespace medvault::keyvault {

absl::StatusOr<std::unique_ptr<TestToken>> TestToken::Create(int sessions) {
  std::unique_ptr<TestToken> t(new TestToken());
  char tmpl[] = "/tmp/medvault-token-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  t->dir_ = tmpl;
  std::filesystem::create_directory(t->dir_ + "/tokens");
  std::string conf = t->dir_ + "/softhsm2.conf";
  std::ofstream(conf) << "directories.tokendir = " << t->dir_ << "/tokens\n"
                      << "objectstore.backend = file\nlog.level = ERROR\n";
  // Each test process points SoftHSM2 at its own token directory.
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  std::random_device rd;
  t->pin_ = absl::StrCat(rd(), rd());
  std::string cmd = absl::StrCat("softhsm2-util --init-token --free --label ", kLabel, " --pin ",
                                 t->pin_, " --so-pin ", rd(), rd(), " >/dev/null");
  if (std::system(cmd.c_str()) != 0)
    return absl::InternalError("softhsm2-util --init-token failed");
  if (sessions == 0) return t;
  auto token = t->Reopen(sessions);
  if (!token.ok()) return token.status();
  t->token_ = *std::move(token);
  return t;
}

absl::StatusOr<std::unique_ptr<Pkcs11Token>> TestToken::Reopen(int sessions) const {
  Pkcs11Token::Options options;
  options.module_path = kModule;
  options.token = std::string(kLabel);
  options.sessions = sessions;
  return Pkcs11Token::Open(options, SecretData(pin_));
}

TestToken::~TestToken() {
  token_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace medvault::keyvault
