#include "daemon/ctl/ca_x509.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"

namespace medvault::ca::x509 {
namespace {

using openssl::BioPtr;
using openssl::BioText;
using openssl::BnPtr;
using openssl::CrlPtr;
using openssl::Free;
using openssl::SerialHex;
using IntPtr = openssl::IntegerPtr;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION, X509_EXTENSION_free>>;
using TimePtr = std::unique_ptr<ASN1_TIME, Free<ASN1_TIME, ASN1_TIME_free>>;
using EnumPtr = std::unique_ptr<ASN1_ENUMERATED, Free<ASN1_ENUMERATED, ASN1_ENUMERATED_free>>;

constexpr int kBackdateSeconds = 300;

int ReasonCode(Reason reason) {
  switch (reason) {
    case Reason::kKeyCompromise:
      return CRL_REASON_KEY_COMPROMISE;
    case Reason::kSuperseded:
      return CRL_REASON_SUPERSEDED;
    case Reason::kCessationOfOperation:
      return CRL_REASON_CESSATION_OF_OPERATION;
    case Reason::kUnspecified:
      break;
  }
  return CRL_REASON_UNSPECIFIED;
}

absl::Status AddRevoked(X509_CRL* crl, const RevokedEntry& e) {
  X509_REVOKED* r = X509_REVOKED_new();
  BIGNUM* bn = nullptr;
  bool ok = BN_hex2bn(&bn, e.serial_hex.c_str()) != 0;
  BnPtr serial(bn);
  IntPtr number(ok ? BN_to_ASN1_INTEGER(serial.get(), nullptr) : nullptr);
  TimePtr when(ASN1_TIME_set(nullptr, absl::ToTimeT(e.when)));
  ok = r && number && when && X509_REVOKED_set_serialNumber(r, number.get()) &&
       X509_REVOKED_set_revocationDate(r, when.get());
  // RFC 5280 5.3.1: a reasonCode of unspecified SHOULD be absent.
  if (ok && e.reason != Reason::kUnspecified) {
    EnumPtr code(ASN1_ENUMERATED_new());
    ok = code && ASN1_ENUMERATED_set(code.get(), ReasonCode(e.reason)) &&
         X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, code.get(), 0, 0);
  }
  if (!ok || !X509_CRL_add0_revoked(crl, r)) {
    X509_REVOKED_free(r);
    return OpenSslError(absl::StrCat("revoked entry ", e.serial_hex));
  }
  return absl::OkStatus();
}

absl::Status AddCrlExtensions(X509_CRL* crl, X509* ca_cert, uint64_t crl_number) {
  IntPtr number(ASN1_INTEGER_new());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert, nullptr, nullptr, crl, 0);
  ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!number || !ASN1_INTEGER_set_uint64(number.get(), crl_number) ||
      !X509_CRL_add1_ext_i2d(crl, NID_crl_number, number.get(), 0, 0) || !aki ||
      !X509_CRL_add_ext(crl, aki.get(), -1)) {
    return OpenSslError("CRL extensions");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status OpenSslError(absl::string_view what) {
  char text[256] = "unknown error";
  if (unsigned long e = ERR_peek_last_error(); e != 0) ERR_error_string_n(e, text, sizeof(text));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", text));
}

absl::StatusOr<KeyPtr> GenerateKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating a P-256 key");
  return key;
}

absl::StatusOr<SecretData> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("encoding the private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return SecretData(absl::string_view(data, static_cast<size_t>(n)));
}

absl::StatusOr<KeyPtr> ParsePrivateKey(const SecretData& pem) {
  BioPtr bio = openssl::MemBio(pem.view());
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("reading the private key");
  return key;
}

std::string NotAfterText(const X509* cert) {
  absl::Time t = openssl::ToTime(X509_get0_notAfter(cert));
  if (t == absl::InfinitePast()) return "";
  return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone());
}

absl::Status AddName(X509_NAME* name, int nid, const std::string& value) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(value.c_str());
  if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, bytes, -1, -1, 0)) {
    return OpenSslError(absl::StrCat("subject ", OBJ_nid2sn(nid), " \"", value, "\""));
  }
  return absl::OkStatus();
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid), " ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> NewCertificate(const X509_NAME* subject, EVP_PKEY* key, int days) {
  X509Ptr cert(X509_new());
  BnPtr serial(BN_new());
  if (!cert || !serial) return OpenSslError("allocating a certificate");
  do {  // 128 random bits; zero is not a valid serial
    if (!BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)) {
      return OpenSslError("serial");
    }
  } while (BN_is_zero(serial.get()));
  if (!X509_set_version(cert.get(), X509_VERSION_3) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) ||
      !X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) ||
      !X509_set_subject_name(cert.get(), subject) || !X509_set_pubkey(cert.get(), key)) {
    return OpenSslError("building the certificate");
  }
  return cert;
}

absl::Status Sign(X509* cert, EVP_PKEY* issuer_key) {
  if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0) return OpenSslError("signing");
  return absl::OkStatus();
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("encoding the certificate");
  return BioText(bio.get());
}

absl::StatusOr<X509Ptr> ParseCertificate(const std::string& pem) {
  BioPtr bio = openssl::MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM X.509 certificate");
  }
  return cert;
}

absl::StatusOr<std::string> SignCrl(X509* ca_cert, EVP_PKEY* ca_key,
                                    const std::vector<RevokedEntry>& revoked, uint64_t crl_number,
                                    int days) {
  CrlPtr crl(X509_CRL_new());
  TimePtr last(X509_gmtime_adj(nullptr, 0));
  TimePtr next(X509_time_adj_ex(nullptr, days, 0, nullptr));
  if (!crl || !last || !next || !X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert)) ||
      !X509_CRL_set1_lastUpdate(crl.get(), last.get()) ||
      !X509_CRL_set1_nextUpdate(crl.get(), next.get())) {
    return OpenSslError("building the CRL");
  }
  for (const RevokedEntry& e : revoked) RETURN_IF_ERROR(AddRevoked(crl.get(), e));
  RETURN_IF_ERROR(AddCrlExtensions(crl.get(), ca_cert, crl_number));
  X509_CRL_sort(crl.get());
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) ||
      !PEM_write_bio_X509_CRL(bio.get(), crl.get())) {
    return OpenSslError("signing the CRL");
  }
  return BioText(bio.get());
}

absl::StatusOr<CrlContents> ParseCrl(const std::string& pem) {
  BioPtr bio = openssl::MemBio(pem);
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  IntPtr number(crl ? static_cast<ASN1_INTEGER*>(
                          X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr))
                    : nullptr);
  CrlContents out;
  if (!number || !ASN1_INTEGER_get_uint64(&out.crl_number, number.get())) {
    ERR_clear_error();
    return absl::DataLossError("not a PEM CRL with a crlNumber");
  }
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    out.serials.push_back(
        SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i))));
  }
  return out;
}

}  // namespace medvault::ca::x509
