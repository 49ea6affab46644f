// Keys and bundle directories for the policy tests: fresh regulator keys
// made with OpenSSL in the test, and copies of policies/ in temporary
// directories, so no private key is ever a file in the tree.
#ifndef MEDVAULT_TESTS_POLICY_TEST_KEYS_H_
#define MEDVAULT_TESTS_POLICY_TEST_KEYS_H_

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace medvault::policy::testing {

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

// "ED25519" or "P-256".
inline KeyPair NewKey(const std::string& type) {
  EVP_PKEY* key = type == "ED25519" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  auto text = [](BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<size_t>(n));
  };
  KeyPair k{text(priv), text(pub)};
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return k;
}

inline std::string SourceDir() {
  const char* dir = std::getenv("MEDVAULT_SOURCE_DIR");
  return dir != nullptr ? dir : MEDVAULT_TEST_SOURCE_DIR;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// A fresh temporary directory holding a copy of the regulator's bundle
// (policies/ without its tests); removed by the destructor.
class BundleDir {
 public:
  BundleDir() {
    char tmpl[] = "/tmp/medvault-policy-test-XXXXXX";
    path_ = mkdtemp(tmpl);
    CopyFrom(SourceDir() + "/policies");
  }
  ~BundleDir() { std::filesystem::remove_all(path_); }
  BundleDir(const BundleDir&) = delete;
  BundleDir& operator=(const BundleDir&) = delete;

  void CopyFrom(const std::string& src) {
    for (const auto& e : std::filesystem::directory_iterator(src)) {
      if (e.is_regular_file() && e.path().extension() == ".textproto") {
        std::filesystem::copy_file(e.path(), std::filesystem::path(path_) / e.path().filename(),
                                   std::filesystem::copy_options::overwrite_existing);
      }
    }
  }
  std::string File(const std::string& name) const { return absl::StrCat(path_, "/", name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace medvault::policy::testing

#endif  // MEDVAULT_TESTS_POLICY_TEST_KEYS_H_
