#include "daemon/gateway/client_identity.h"

#include <fcntl.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <array>
#include <ctime>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "daemon/common/files.h"
#include "daemon/common/logging.h"
#include "daemon/common/openssl_util.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/ids.h"

namespace medvault::gateway {
namespace {

using openssl::BioPtr;
using openssl::BnPtr;
using openssl::CrlPtr;
using openssl::IntegerPtr;
using openssl::MemBio;
using openssl::SerialHex;
using openssl::X509Ptr;

constexpr std::array<absl::string_view, 6> kClientRoles = {"hospital", "regulator", "compliance",
                                                           "insurer",  "research",  "device"};
// RFC 5280 4.1.2.2: serials are at most 20 octets.
constexpr size_t kMaxSerialHex = 40;

// The single value of `nid` in `name`; nullopt if absent, UNAUTHENTICATED if
// repeated (two OUs would make the role ambiguous).
absl::StatusOr<std::optional<std::string>> OneEntry(const X509_NAME* name, int nid,
                                                    absl::string_view label) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return std::nullopt;
  if (X509_NAME_get_index_by_NID(name, nid, index) >= 0) {
    return absl::UnauthenticatedError(absl::StrCat("client certificate has more than one ", label));
  }
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  if (n < 0) {
    return absl::UnauthenticatedError(absl::StrCat("client certificate ", label, " is not text"));
  }
  std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return value;
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

bool IsClientRole(absl::string_view role) {
  for (absl::string_view r : kClientRoles) {
    if (r == role) return true;
  }
  return false;
}

const char* ClientRoleList() {
  static const std::string* list = new std::string(absl::StrJoin(kClientRoles, ", "));
  return list->c_str();
}

absl::Status ValidateOrganizationId(absl::string_view id) {
  if (IsPseudonymousId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("organisation id \"", id, "\" must be 1 to 64 characters of a-z 0-9 . _ -"));
}

absl::StatusOr<std::string> CanonicalSerialHex(absl::string_view hex) {
  std::string digits = absl::StrReplaceAll(hex, {{":", ""}});
  if (absl::StartsWithIgnoreCase(digits, "0x")) digits.erase(0, 2);
  bool ok = !digits.empty() && digits.size() <= kMaxSerialHex;
  for (char c : digits) ok &= absl::ascii_isxdigit(c);
  BIGNUM* bn = nullptr;
  if (!ok || BN_hex2bn(&bn, digits.c_str()) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("serial \"", hex, "\" is not a hexadecimal certificate serial"));
  }
  BnPtr owned(bn);
  return openssl::BignumHex(bn);
}

absl::StatusOr<ClientIdentity> ParseClientIdentity(absl::string_view peer_cert_pem) {
  BioPtr bio = MemBio(peer_cert_pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InvalidArgumentError("client certificate is not a PEM X.509");
  const X509_NAME* name = X509_get_subject_name(cert.get());
  ClientIdentity id;
  id.subject = openssl::SubjectText(name);
  id.serial_hex = SerialHex(X509_get0_serialNumber(cert.get()));
  ASSIGN_OR_RETURN(auto cn, OneEntry(name, NID_commonName, "CN"));
  ASSIGN_OR_RETURN(auto ou, OneEntry(name, NID_organizationalUnitName, "OU"));
  ASSIGN_OR_RETURN(auto o, OneEntry(name, NID_organizationName, "O"));
  if (!cn.has_value()) return absl::UnauthenticatedError("client certificate has no CN");
  if (!ou.has_value()) return absl::UnauthenticatedError("client certificate has no OU (role)");
  if (absl::Status s = ValidateOrganizationId(*cn); !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat("client certificate CN: ", s.message()));
  }
  if (!IsClientRole(*ou)) {
    return absl::UnauthenticatedError(absl::StrCat("client certificate role (OU) \"", *ou,
                                                   "\" is not one of ", ClientRoleList()));
  }
  id.organization_id = *std::move(cn);
  id.role = *std::move(ou);
  id.display_name = o.has_value() ? *std::move(o) : id.organization_id;
  return id;
}

absl::StatusOr<ClientIdentity> CallerIdentity(const grpc::ServerContextBase& context,
                                              RevocationList* revocations) {
  auto auth = context.auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("call has no TLS client certificate");
  auto values = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (values.empty()) return absl::UnauthenticatedError("call has no TLS client certificate");
  ASSIGN_OR_RETURN(ClientIdentity id, ParseClientIdentity(absl::string_view(
                                          values.front().data(), values.front().size())));
  if (revocations != nullptr) RETURN_IF_ERROR(revocations->Check(id.serial_hex));
  return id;
}

// --- RevocationList ------------------------------------------------------

struct RevocationList::Ca {
  X509Ptr cert;
};

absl::StatusOr<std::unique_ptr<RevocationList>> RevocationList::Create(std::string crl_file,
                                                                       absl::string_view ca_pem) {
  BioPtr bio = MemBio(ca_pem);
  auto ca = std::make_unique<Ca>();
  ca->cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (ca->cert == nullptr) return absl::InvalidArgumentError("CA certificate is not a PEM X.509");
  std::unique_ptr<RevocationList> list(new RevocationList(std::move(crl_file), std::move(ca)));
  list->Refresh().IgnoreError();  // kept in status(); Check() fails closed until it loads
  return list;
}

RevocationList::RevocationList(std::string crl_file, std::unique_ptr<Ca> ca)
    : crl_file_(std::move(crl_file)),
      ca_(std::move(ca)),
      status_(absl::UnavailableError("CRL not read yet")) {}

RevocationList::~RevocationList() = default;

absl::Status RevocationList::Check(absl::string_view serial_hex) {
  absl::MutexLock lock(&mu_);
  RefreshLocked().IgnoreError();  // a bad new file leaves the previous list in force
  if (!loaded_) {
    return absl::UnavailableError(
        absl::StrCat("no valid CRL loaded, every client refused: ", status_.message()));
  }
  if (revoked_.contains(serial_hex)) {
    return absl::UnauthenticatedError(
        absl::StrCat("client certificate serial ", serial_hex, " is revoked"));
  }
  return absl::OkStatus();
}

absl::Status RevocationList::Refresh() {
  absl::MutexLock lock(&mu_);
  return RefreshLocked();
}

absl::Status RevocationList::RefreshLocked() {
  struct stat st {};
  if (stat(crl_file_.c_str(), &st) != 0) {
    stamp_ = FileStamp();  // read again as soon as it is back
    status_ = ErrnoStatus("stat", crl_file_);
    return status_;
  }
  FileStamp now{st.st_dev, st.st_ino, st.st_size, Nanos(st.st_mtim), Nanos(st.st_ctim)};
  if (now == stamp_) return status_;
  // Remembered even if the load fails, so a bad file is parsed once, not
  // on every handshake.
  stamp_ = now;
  auto pem = ReadWholeFile(AT_FDCWD, crl_file_);
  status_ = pem.ok() ? Load(*pem) : pem.status();
  if (status_.ok()) {
    log::Info("crl.loaded", {{"file", crl_file_},
                             {"crl_number", crl_number_},
                             {"revoked", static_cast<uint64_t>(revoked_.size())}});
  } else {
    log::Warn("crl.rejected",
              {{"file", crl_file_}, {"error", status_}, {"kept_previous", loaded_}});
  }
  return status_;
}

absl::Status RevocationList::Load(const std::string& pem) {
  auto refuse = [this](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat("CRL ", crl_file_, ": ", why));
  };
  BioPtr bio = MemBio(pem);
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (crl == nullptr) return refuse("not a PEM X.509 CRL");
  X509* ca = ca_->cert.get();
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca)) != 0) {
    return refuse("issuer is not the client CA");
  }
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca)) != 1) {
    return refuse("signature does not verify with the client CA's key");
  }
  IntegerPtr number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr)));
  uint64_t n = 0;
  if (number == nullptr || ASN1_INTEGER_get_uint64(&n, number.get()) != 1) {
    return refuse("no crlNumber");
  }
  // An older CRL, even correctly signed, would un-revoke certificates.
  if (loaded_ && n < crl_number_) {
    return refuse(absl::StrCat("crlNumber ", n, " is older than the loaded ", crl_number_));
  }
  absl::flat_hash_set<std::string> revoked;
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    revoked.insert(SerialHex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i))));
  }
  revoked_ = std::move(revoked);
  crl_number_ = n;
  next_update_ = openssl::ToTime(X509_CRL_get0_nextUpdate(crl.get()));
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status RevocationList::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

uint64_t RevocationList::crl_number() const {
  absl::MutexLock lock(&mu_);
  return crl_number_;
}

absl::Time RevocationList::next_update() const {
  absl::MutexLock lock(&mu_);
  return next_update_;
}

size_t RevocationList::revoked_count() const {
  absl::MutexLock lock(&mu_);
  return revoked_.size();
}

// --- Handshake ---------------------------------------------------------------

RevokingCertificateVerifier::RevokingCertificateVerifier(
    std::shared_ptr<RevocationList> revocations)
    : revocations_(std::move(revocations)) {}

bool RevokingCertificateVerifier::Verify(
    grpc::experimental::TlsCustomVerificationCheckRequest* request,
    std::function<void(grpc::Status)>, grpc::Status* sync_status) {
  grpc::string_ref pem = request->peer_cert();
  auto identity = ParseClientIdentity(absl::string_view(pem.data(), pem.size()));
  absl::Status status =
      identity.ok() ? revocations_->Check(identity->serial_hex) : identity.status();
  if (status.ok()) {
    *sync_status = grpc::Status::OK;
  } else {
    log::Warn("tls.client_refused",
              {{"subject", identity.ok() ? identity->subject : ""}, {"error", status}});
    // Whatever went wrong, to the peer it is one thing: not accepted.
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(status.message()));
  }
  return true;  // synchronous
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsServerCredentials(
    const std::string& cert_chain_pem, SecretData private_key, const std::string& client_ca_pem,
    std::shared_ptr<RevocationList> revocations) {
  if (cert_chain_pem.empty() || private_key.empty() || client_ca_pem.empty()) {
    return absl::InvalidArgumentError("server certificate, key and client CA are all required");
  }
  BioPtr bio = MemBio(client_ca_pem);
  if (X509Ptr ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)); ca == nullptr) {
    return absl::InvalidArgumentError("client CA is not a PEM X.509 certificate");
  }
  if (revocations == nullptr) return absl::InvalidArgumentError("a revocation list is required");
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs(1);
  pairs[0].private_key.assign(private_key.view().data(), private_key.view().size());
  pairs[0].certificate_chain = cert_chain_pem;
  auto provider =
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(client_ca_pem, pairs);
  // The provider keeps its own copy; ours is wiped now.
  OPENSSL_cleanse(pairs[0].private_key.data(), pairs[0].private_key.size());
  private_key = SecretData();

  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // OpenSSL verifies the chain against the client CA first; the verifier
  // only sees certificates that passed.
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<RevokingCertificateVerifier>(
          std::move(revocations)));
  auto credentials = grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) return absl::InternalError("gRPC refused the TLS options");
  return credentials;
}

}  // namespace medvault::gateway
