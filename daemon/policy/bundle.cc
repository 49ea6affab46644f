#include "daemon/policy/bundle.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/common/status_macros.h"

namespace medvault::policy {
namespace {

constexpr size_t kMaxFileBytes = 4 << 20;
constexpr int kMaxFiles = 256;
constexpr char kHashDomain[] = "medvault.policy.bundle.v1";

// Reads a whole file; NOT_FOUND when it cannot be opened.
absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxFileBytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ": larger than 4 MiB"));
    }
  }
  return data;
}

bool SafeName(const std::string& name) {
  if (name.empty() || name.front() == '/' || name == kManifestFile || name == kSignatureFile) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

void AppendEntry(std::string* out, absl::string_view name, absl::string_view bytes) {
  auto put = [out](uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(name.size(), 4);
  out->append(name.data(), name.size());
  put(bytes.size(), 8);
  out->append(bytes.data(), bytes.size());
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Ed25519 signs the message itself; ECDSA P-256 hashes it with SHA-256.
absl::StatusOr<const EVP_MD*> DigestFor(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) return nullptr;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len) == 1 &&
        absl::string_view(group) == "prime256v1") {
      return EVP_sha256();
    }
  }
  return absl::InvalidArgumentError("the regulator's key must be Ed25519 or ECDSA P-256");
}

}  // namespace

absl::StatusOr<BundleFiles> ReadBundle(const std::string& dir) {
  BundleFiles b;
  ASSIGN_OR_RETURN(b.manifest_text, ReadWhole(absl::StrCat(dir, "/", kManifestFile)));
  RETURN_IF_ERROR(ParseTextProto(b.manifest_text, kManifestFile, &b.manifest));
  if (b.manifest.files_size() > kMaxFiles) {
    return absl::ResourceExhaustedError(absl::StrCat(kManifestFile, ": more than 256 files"));
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& name : b.manifest.files()) {
    if (!SafeName(name) || !seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          kManifestFile, ": files: \"", absl::CHexEscape(name),
          "\" must be a relative path without \".\" or \"..\", listed once"));
    }
    ASSIGN_OR_RETURN(std::string text, ReadWhole(absl::StrCat(dir, "/", name)));
    b.files.push_back({name, std::move(text)});
  }
  auto sig = ReadWhole(absl::StrCat(dir, "/", kSignatureFile));
  if (sig.ok()) {
    b.signature = *std::move(sig);
  } else if (!absl::IsNotFound(sig.status())) {
    return sig.status();
  }
  return b;
}

std::string BundleHash(const BundleFiles& bundle) {
  std::string framed(kHashDomain, sizeof kHashDomain);  // with its NUL
  AppendEntry(&framed, kManifestFile, bundle.manifest_text);
  for (const SourceFile& f : bundle.files) AppendEntry(&framed, f.name, f.text);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(framed.data()), framed.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

absl::StatusOr<std::string> SignBundleHash(const std::string& private_key_pem,
                                           const std::string& hash) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())), BIO_free);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError("not a PEM private key");
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestFor(key.get()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(hash.data()),
                     hash.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(hash.data()), hash.size()) != 1) {
    return absl::InternalError("signing failed");
  }
  sig.resize(len);
  return sig;
}

absl::Status VerifyBundleSignature(const std::string& public_key_pem, const std::string& hash,
                                   const std::string& signature) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())), BIO_free);
  Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return absl::InvalidArgumentError("the regulator's key is not a PEM public key");
  ASSIGN_OR_RETURN(const EVP_MD* md, DigestFor(key.get()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(hash.data()),
                       hash.size()) != 1) {
    return absl::FailedPreconditionError(
        "bundle signature does not verify against the regulator's key: the bundle was altered "
        "after signing, or signed by another key");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const CompiledPolicy>> CompileBundle(const BundleFiles& bundle) {
  const v1::BundleManifest& m = bundle.manifest;
  if (m.version() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kManifestFile, ": version: required, at least 1"));
  }
  auto effective = ParseRfc3339(m.effective_time());
  if (!effective.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kManifestFile, ": effective_time: ", effective.status().message()));
  }
  if (bundle.files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kManifestFile, ": files: at least one required"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledPolicy> policy, CompilePolicy(bundle.files));
  policy->version = m.version();
  policy->bundle_hash = BundleHash(bundle);
  policy->bundle_hash_hex = absl::BytesToHexString(policy->bundle_hash);
  policy->effective_time = FormatRfc3339(*effective);
  return std::shared_ptr<const CompiledPolicy>(std::move(policy));
}

absl::StatusOr<std::shared_ptr<const CompiledPolicy>> LoadSignedBundle(
    const std::string& dir, const std::string& public_key_pem, absl::Time now) {
  ASSIGN_OR_RETURN(BundleFiles bundle, ReadBundle(dir));
  if (bundle.signature.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle in ", dir, " is unsigned (no ", kSignatureFile, ")"));
  }
  // The signature is checked before a single rule is compiled: the policy
  // compiler only ever sees what the regulator signed.
  RETURN_IF_ERROR(VerifyBundleSignature(public_key_pem, BundleHash(bundle), bundle.signature));
  ASSIGN_OR_RETURN(auto policy, CompileBundle(bundle));
  auto effective = ParseRfc3339(policy->effective_time);
  if (effective.ok() && now < *effective) {
    return absl::FailedPreconditionError(absl::StrCat("bundle version ", policy->version,
                                                      " is not effective before ",
                                                      policy->effective_time));
  }
  return policy;
}

}  // namespace medvault::policy
