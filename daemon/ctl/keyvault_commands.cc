#include "daemon/ctl/keyvault_commands.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "daemon/common/secret.h"
#include "medvault/internal/v1/keyvault.grpc.pb.h"

namespace medvault::ctl {
namespace {

std::unique_ptr<internal::v1::KeyVault::Stub> Stub(const config::v1::Config& config) {
  return internal::v1::KeyVault::NewStub(ProcessChannel(config, Role::kKeyvault));
}

// Single-quotes a word for /bin/sh.
std::string ShellQuote(absl::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

// Creates the SoftHSM2 token of the configuration unless it exists. The
// PIN comes from the configured PIN file; the SO PIN is random and written
// beside it (mode 0600). softhsm2-util takes both on its command line,
// which is why this is for development only.
int CreateDevelopmentToken(const config::v1::Config& config) {
  const auto& p = config.keyvault().pkcs11();
  if (p.token_case() != config::v1::Pkcs11::kTokenLabel || p.pin_file().empty()) {
    std::cerr << "medvaultctl: --create-token needs keyvault.pkcs11.token_label and pin_file\n";
    return 2;
  }
  std::string env;
  for (const auto& e : p.module_env()) {
    absl::StrAppend(&env, e.name(), "=", ShellQuote(e.value()), " ");
  }
  std::string show = absl::StrCat(env, "softhsm2-util --show-slots 2>/dev/null");
  FILE* pipe = popen(show.c_str(), "r");
  std::string slots;
  char buf[4096];
  while (pipe != nullptr && fgets(buf, sizeof(buf), pipe) != nullptr) slots += buf;
  if (pipe != nullptr) pclose(pipe);
  if (slots.find(absl::StrCat("Label:            ", p.token_label(), "\n")) != std::string::npos) {
    std::cout << "token \"" << p.token_label() << "\" exists\n";
    return 0;
  }
  auto pin = ReadSecretFile(p.pin_file(), {geteuid()});
  if (!pin.ok()) {
    std::cerr << "medvaultctl: " << pin.status().message() << "\n";
    return 2;
  }
  std::random_device rd;
  std::string so_pin = absl::StrCat(rd(), rd(), rd());
  std::string so_pin_file = p.pin_file() + ".so";
  FILE* out = fopen(so_pin_file.c_str(), "wx");
  if (out == nullptr || fputs(so_pin.c_str(), out) < 0) {
    std::cerr << "medvaultctl: cannot write " << so_pin_file << "\n";
    if (out != nullptr) fclose(out);
    return 1;
  }
  fclose(out);
  chmod(so_pin_file.c_str(), 0600);
  std::string init = absl::StrCat(env, "softhsm2-util --init-token --free --label ",
                                  ShellQuote(p.token_label()), " --pin ", ShellQuote(pin->view()),
                                  " --so-pin ", ShellQuote(so_pin), " >/dev/null");
  int rc = std::system(init.c_str());
  std::fill(init.begin(), init.end(), '\0');
  std::fill(so_pin.begin(), so_pin.end(), '\0');
  if (rc != 0) {
    std::cerr << "medvaultctl: softhsm2-util --init-token failed\n";
    return 1;
  }
  std::cout << "created token \"" << p.token_label() << "\" (SO PIN in " << so_pin_file << ")\n";
  return 0;
}

}  // namespace

int HsmInfo(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(5));
  internal::v1::GetTokenInfoResponse info;
  grpc::Status status = Stub(config)->GetTokenInfo(&context, {}, &info);
  if (!status.ok()) return Report(status, "keyvault GetTokenInfo");
  std::printf(
      "token:        %s (slot %llu)\nmanufacturer: %s\nmodel:        %s\nserial:       %s\n"
      "library:      %s %s\nlogged in:    %s\n",
      info.token_label().c_str(), static_cast<unsigned long long>(info.slot_id()),
      info.manufacturer().c_str(), info.model().c_str(), info.serial_number().c_str(),
      info.library_description().c_str(), info.library_version().c_str(),
      info.logged_in() ? "yes" : "no");
  return 0;
}

int HsmInit(const config::v1::Config& config, bool create_token) {
  if (create_token) {
    if (int rc = CreateDevelopmentToken(config); rc != 0) return rc;
  }
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(60));
  internal::v1::InitializeKeysResponse response;
  grpc::Status status = Stub(config)->InitializeKeys(&context, {}, &response);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "medvaultctl: the keyvault is not running; start medvault and run "
                 "`medvaultctl hsm init` again to create the keys\n";
    return 1;
  }
  if (!status.ok()) return Report(status, "keyvault InitializeKeys");
  if (response.created().empty()) {
    std::cout << "all keys exist\n";
  } else {
    std::cout << "created: " << absl::StrJoin(response.created(), ", ") << "\n";
  }
  return 0;
}

int KeysList(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(10));
  internal::v1::ListKeysResponse response;
  grpc::Status status = Stub(config)->ListKeys(&context, {}, &response);
  if (!status.ok()) return Report(status, "keyvault ListKeys");
  std::printf("%-22s %-10s %-13s %-7s %-9s %-11s %s\n", "LABEL", "ID", "TYPE", "VERSION",
              "SENSITIVE", "EXTRACTABLE", "USAGES");
  for (const auto& k : response.keys()) {
    std::printf("%-22s %-10s %-13s %-7s %-9s %-11s %s\n", k.label().c_str(), k.id().c_str(),
                k.type().c_str(), k.version() ? std::to_string(k.version()).c_str() : "-",
                k.sensitive() && k.always_sensitive() ? "always" : (k.sensitive() ? "yes" : "NO"),
                k.extractable() ? "YES" : (k.never_extractable() ? "never" : "no"),
                absl::StrJoin(k.usages(), ",").c_str());
  }
  std::printf("patients with keys: %llu, crypto-shredded: %llu\n",
              static_cast<unsigned long long>(response.patients()),
              static_cast<unsigned long long>(response.shredded_patients()));
  return 0;
}

int KeysRotate(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(30));
  internal::v1::RotateMasterKeyResponse response;
  grpc::Status status = Stub(config)->RotateMasterKey(&context, {}, &response);
  if (!status.ok()) return Report(status, "keyvault RotateMasterKey");
  std::cout << "master key version " << response.new_version()
            << " created; new data keys use it, older ones still open\n";
  return 0;
}

}  // namespace medvault::ctl
