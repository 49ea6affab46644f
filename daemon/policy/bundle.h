// Policy bundles: reading, hashing, signing and verifying them.
//
// A bundle is a directory holding
//   manifest.textproto   a medvault.policy.v1.BundleManifest listing the files
//   <the listed files>   medvault.policy.v1.PolicyFile each
//   bundle.sig           the regulator's detached signature
// Nothing else in the directory is read.
//
// Bundle hash (what the PolicyRegistry contract records, as bytes32):
//   SHA-256( "medvault.policy.bundle.v1" 0x00
//            || entry("manifest.textproto", manifest bytes)
//            || entry(name, bytes) for each file, in manifest order )
//   entry(name, bytes) = u32be(len(name)) || name || u64be(len(bytes)) || bytes
// over the exact bytes of the files, not a re-serialization: what compliance
// officers reviewed is what is hashed, and every byte counts (a comment
// changed is a new bundle). The lengths make the framing unambiguous.
//
// Signature: over the 32-byte bundle hash, by the regulator's key:
//   Ed25519: PureEdDSA over the 32 bytes, the 64-byte raw signature;
//   ECDSA P-256: ECDSA with SHA-256 over the 32 bytes, DER-encoded.
// bundle.sig holds the raw signature bytes. The key type is taken from the
// regulator's public key (PEM, SubjectPublicKeyInfo); no other type is
// accepted.
#ifndef MEDVAULT_DAEMON_POLICY_BUNDLE_H_
#define MEDVAULT_DAEMON_POLICY_BUNDLE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/policy/compiled_policy.h"
#include "daemon/policy/policy_loader.h"
#include "medvault/policy/v1/policy.pb.h"

namespace medvault::policy {

inline constexpr char kManifestFile[] = "manifest.textproto";
inline constexpr char kSignatureFile[] = "bundle.sig";

struct BundleFiles {
  std::string manifest_text;
  v1::BundleManifest manifest;
  std::vector<SourceFile> files;  // in manifest order
  std::string signature;          // empty when bundle.sig is missing
};

// Reads the manifest and the files it lists. NOT_FOUND for a missing file,
// INVALID_ARGUMENT for a manifest that does not parse or lists a bad name
// (absolute, "..", repeated), RESOURCE_EXHAUSTED for a file over 4 MiB or
// more than 256 files.
absl::StatusOr<BundleFiles> ReadBundle(const std::string& dir);

// The 32-byte bundle hash (see above).
std::string BundleHash(const BundleFiles& bundle);

// Signs `hash` with a PEM private key (Ed25519 or EC P-256).
absl::StatusOr<std::string> SignBundleHash(const std::string& private_key_pem,
                                           const std::string& hash);

// OK when `signature` over `hash` verifies against the PEM public key;
// FAILED_PRECONDITION otherwise. INVALID_ARGUMENT for an unusable key.
absl::Status VerifyBundleSignature(const std::string& public_key_pem, const std::string& hash,
                                   const std::string& signature);

// Checks the manifest (version, effective time, files) and compiles the
// files, without looking at the signature: for `medvaultctl policy lint`
// and `test`, which run on a bundle before the regulator signs it.
absl::StatusOr<std::shared_ptr<const CompiledPolicy>> CompileBundle(const BundleFiles& bundle);

// What medvault-policy loads: reads `dir`, refuses it unless it is signed
// by `public_key_pem` and effective at `now`, and compiles it. Errors:
// FAILED_PRECONDITION for an unsigned bundle, a signature that does not
// verify (an altered byte, another key) or a bundle not yet effective;
// INVALID_ARGUMENT for files that do not compile (with file:line).
absl::StatusOr<std::shared_ptr<const CompiledPolicy>> LoadSignedBundle(
    const std::string& dir, const std::string& public_key_pem, absl::Time now);

}  // namespace medvault::policy

#endif  // MEDVAULT_DAEMON_POLICY_BUNDLE_H_
