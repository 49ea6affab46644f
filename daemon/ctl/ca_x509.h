// The OpenSSL side of the CA (ca.h): building and signing certificates and
// CRLs in memory. No file system here, except reading a certificate.
// Internal to medvault::ca; failures are INTERNAL with OpenSSL's reason.
#ifndef MEDVAULT_DAEMON_CTL_CA_X509_H_
#define MEDVAULT_DAEMON_CTL_CA_X509_H_

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/common/openssl_util.h"
#include "daemon/common/secret.h"
#include "daemon/ctl/ca.h"

namespace medvault::ca::x509 {

using openssl::KeyPtr;
using openssl::NamePtr;
using openssl::X509Ptr;

// RFC 3339 in UTC, as the indexes write times: 2025-01-31T12:00:00Z.
inline constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%SZ";

// The OpenSSL error queue as INTERNAL "<what>: <reason>", queue emptied.
absl::Status OpenSslError(absl::string_view what);

// A fresh P-256 key.
absl::StatusOr<KeyPtr> GenerateKey();
// `key` as unencrypted PKCS#8 PEM; the intermediate buffer is secure memory.
absl::StatusOr<SecretData> PrivateKeyPem(EVP_PKEY* key);
// A PEM private key, as ca.key holds it.
absl::StatusOr<KeyPtr> ParsePrivateKey(const SecretData& pem);

std::string NotAfterText(const X509* cert);  // RFC 3339 UTC

// Appends `nid`=`value` (UTF-8) to `name`.
absl::Status AddName(X509_NAME* name, int nid, const std::string& value);
// Adds an extension in openssl.cnf syntax ("critical,CA:TRUE"); `issuer`
// is the CA certificate, or `cert` itself when self-signed.
absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value);

// A v3 certificate with a random positive 128-bit serial, valid from a few
// minutes ago (clock skew) for `days`, with `subject` and `key`. The caller
// sets the issuer and extensions, then signs.
absl::StatusOr<X509Ptr> NewCertificate(const X509_NAME* subject, EVP_PKEY* key, int days);
absl::Status Sign(X509* cert, EVP_PKEY* issuer_key);

absl::StatusOr<std::string> CertificatePem(X509* cert);
absl::StatusOr<X509Ptr> ParseCertificate(const std::string& pem);

struct RevokedEntry {
  std::string serial_hex;
  absl::Time when;
  Reason reason = Reason::kUnspecified;
};

// A v2 CRL of `revoked` signed by the CA: issuer, lastUpdate now,
// nextUpdate in `days`, crlNumber, authorityKeyIdentifier; PEM.
absl::StatusOr<std::string> SignCrl(X509* ca_cert, EVP_PKEY* ca_key,
                                    const std::vector<RevokedEntry>& revoked, uint64_t crl_number,
                                    int days);

struct CrlContents {
  uint64_t crl_number = 0;
  std::vector<std::string> serials;  // canonical hex
};
// Parses (does not verify) a PEM CRL that must have a crlNumber.
absl::StatusOr<CrlContents> ParseCrl(const std::string& pem);

}  // namespace medvault::ca::x509

#endif  // MEDVAULT_DAEMON_CTL_CA_X509_H_
