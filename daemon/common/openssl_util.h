// Small pieces every OpenSSL user here needs: owning pointers for OpenSSL
// objects, memory BIOs, and the text forms of serials, names and times
// that the CA writes and the gateway reads back, so both sides agree.
#ifndef MEDVAULT_DAEMON_COMMON_OPENSSL_UTIL_H_
#define MEDVAULT_DAEMON_COMMON_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace medvault::openssl {

// std::unique_ptr deleter calling OpenSSL's free function F.
template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BIGNUM, BN_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Free<X509_CRL, X509_CRL_free>>;
using IntegerPtr = std::unique_ptr<ASN1_INTEGER, Free<ASN1_INTEGER, ASN1_INTEGER_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME, X509_NAME_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;

// A read-only BIO over `data`, which must outlive it.
BioPtr MemBio(absl::string_view data);
// Everything written to a memory BIO.
std::string BioText(BIO* bio);

// Lower-case hex without leading zeros ("" if it cannot be converted): the
// one text form of a certificate serial.
std::string BignumHex(const BIGNUM* bn);
std::string SerialHex(const ASN1_INTEGER* serial);
// RFC 2253 without escaping UTF-8: "CN=st-mary,OU=hospital,O=St Mary".
std::string SubjectText(const X509_NAME* name);
// InfinitePast for a null or unreadable time.
absl::Time ToTime(const ASN1_TIME* time);

}  // namespace medvault::openssl

#endif  // MEDVAULT_DAEMON_COMMON_OPENSSL_UTIL_H_
