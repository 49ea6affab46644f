#include "daemon/ctl/ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "daemon/common/files.h"
#include "daemon/common/status_macros.h"
#include "daemon/ctl/ca_x509.h"
#include "daemon/gateway/client_identity.h"

namespace medvault::ca {
namespace {

using x509::KeyPtr;
using x509::RevokedEntry;
using x509::X509Ptr;

constexpr size_t kMaxNameLength = 64;  // X.520 ub-organization-name
constexpr size_t kMaxDnsName = 253;

std::string Path(const std::string& dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

// WriteFileAtomically for a path: the CA's files and the issued key and
// certificate (--out, a path prefix) are named by path.
absl::Status WriteAtomic(const std::string& path, absl::string_view data, mode_t mode) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  return WriteFileAtomically(AT_FDCWD, dir, path.substr(slash + 1), data, mode);
}

// An exclusive flock on the CA directory, held for the object's life, so
// two operators' issue/revoke cannot interleave their index rewrites.
class DirLock {
 public:
  static absl::StatusOr<DirLock> Take(const std::string& dir) {
    ASSIGN_OR_RETURN(Fd fd, OpenDirectory(AT_FDCWD, dir));
    if (flock(fd.get(), LOCK_EX) != 0) return ErrnoStatus("flock", dir);
    return DirLock(std::move(fd));
  }

 private:
  explicit DirLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing it releases the lock
};

// --- Validation: every message names the flag ----------------------------------

absl::Status CheckText(absl::string_view flag, absl::string_view value) {
  bool ok = !value.empty() && value.size() <= kMaxNameLength;
  // No control characters: the indexes are tab- and newline-separated.
  for (unsigned char c : value) ok &= c >= 0x20 && c != 0x7f;
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": 1 to ", kMaxNameLength, " characters, no control characters"));
}

absl::Status CheckDays(absl::string_view flag, int days) {
  if (days >= 1 && days <= 36500) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, " must be between 1 and 36500"));
}

bool IsDnsName(absl::string_view name) {
  if (absl::StartsWith(name, "*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > kMaxDnsName) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') return false;
    }
  }
  return true;
}

bool IsIpAddress(const std::string& ip) {
  unsigned char buf[16];
  return inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

absl::Status ValidateIssue(const IssueOptions& o) {
  if (o.dir.empty()) return absl::InvalidArgumentError("--dir is required");
  if (o.out_prefix.empty()) return absl::InvalidArgumentError("--out is required");
  if (auto s = gateway::ValidateOrganizationId(o.organization_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--org: ", s.message()));
  }
  if (!o.display_name.empty()) RETURN_IF_ERROR(CheckText("--name", o.display_name));
  RETURN_IF_ERROR(CheckDays("--days", o.days));
  if (o.server) {
    if (!o.role.empty()) return absl::InvalidArgumentError("--role is for client certificates");
    if (o.dns_names.empty() && o.ip_addresses.empty()) {
      return absl::InvalidArgumentError("--server needs at least one --dns or --ip");
    }
  } else {
    if (!gateway::IsClientRole(o.role)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--role \"", o.role, "\" is not one of ", gateway::ClientRoleList()));
    }
    if (!o.dns_names.empty() || !o.ip_addresses.empty()) {
      return absl::InvalidArgumentError("--dns and --ip are for --server certificates");
    }
  }
  for (const std::string& name : o.dns_names) {
    if (!IsDnsName(name)) return absl::InvalidArgumentError(absl::StrCat("--dns \"", name, "\""));
  }
  for (const std::string& ip : o.ip_addresses) {
    if (!IsIpAddress(ip)) return absl::InvalidArgumentError(absl::StrCat("--ip \"", ip, "\""));
  }
  return absl::OkStatus();
}

// --- The CA directory --------------------------------------------------------------

struct Authority {
  X509Ptr cert;
  KeyPtr key;
};

absl::StatusOr<Authority> LoadAuthority(const std::string& dir) {
  std::string cert_path = Path(dir, kCertFile);
  if (!PathExists(AT_FDCWD, cert_path)) {
    return absl::NotFoundError(absl::StrCat(dir, " holds no CA (medvaultctl ca init)"));
  }
  Authority ca;
  ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(AT_FDCWD, cert_path));
  auto cert = x509::ParseCertificate(pem);
  if (!cert.ok())
    return absl::DataLossError(absl::StrCat(cert_path, ": ", cert.status().message()));
  ca.cert = *std::move(cert);
  // ReadSecretFile refuses a key someone else owns or others can read.
  ASSIGN_OR_RETURN(SecretData key_pem, ReadSecretFile(Path(dir, kKeyFile), {geteuid()}));
  ASSIGN_OR_RETURN(ca.key, x509::ParsePrivateKey(key_pem));
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(Path(dir, kKeyFile), " is not the key of ", cert_path));
  }
  return ca;
}

// The tab-separated lines of `path`; an absent file has none.
absl::StatusOr<std::vector<std::vector<std::string>>> ReadIndex(const std::string& path) {
  auto text = ReadWholeFile(AT_FDCWD, path);
  if (absl::IsNotFound(text.status())) return std::vector<std::vector<std::string>>();
  if (!text.ok()) return text.status();
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    rows.push_back(absl::StrSplit(line, '\t'));
  }
  return rows;
}

absl::Status AppendIndex(const std::string& path, const std::vector<std::string>& fields) {
  auto text = ReadWholeFile(AT_FDCWD, path);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  std::string data = text.ok() ? *std::move(text) : "";
  absl::StrAppend(&data, absl::StrJoin(fields, "\t"), "\n");
  return WriteAtomic(path, data, 0644);
}

absl::StatusOr<bool> WasIssued(const std::string& dir, const std::string& serial_hex) {
  ASSIGN_OR_RETURN(auto rows, ReadIndex(Path(dir, kIssuedFile)));
  return std::any_of(rows.begin(), rows.end(),
                     [&](const auto& row) { return row.front() == serial_hex; });
}

absl::StatusOr<std::vector<RevokedEntry>> ReadRevoked(const std::string& dir) {
  std::string path = Path(dir, kRevokedFile);
  ASSIGN_OR_RETURN(auto rows, ReadIndex(path));
  std::vector<RevokedEntry> out;
  for (const auto& row : rows) {
    RevokedEntry e;
    std::string error;
    auto malformed = absl::DataLossError(absl::StrCat(path, ": malformed line for ", row.front()));
    if (row.size() != 3) return malformed;
    auto reason = ParseReason(row[2]);
    if (!reason.ok() || !absl::ParseTime(x509::kTimeFormat, row[1], &e.when, &error)) {
      return malformed;
    }
    e.serial_hex = row[0];
    e.reason = *reason;
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<x509::CrlContents> ReadCrl(const std::string& dir) {
  std::string path = Path(dir, kCrlFile);
  ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(AT_FDCWD, path));
  auto crl = x509::ParseCrl(pem);
  if (!crl.ok()) return absl::DataLossError(absl::StrCat(path, ": ", crl.status().message()));
  return crl;
}

// Signs and writes the CRL of `revoked` with the number after the current one.
absl::StatusOr<uint64_t> Republish(const std::string& dir, const Authority& ca,
                                   const std::vector<RevokedEntry>& revoked, int crl_days) {
  ASSIGN_OR_RETURN(x509::CrlContents current, ReadCrl(dir));
  uint64_t number = current.crl_number + 1;
  ASSIGN_OR_RETURN(std::string pem,
                   x509::SignCrl(ca.cert.get(), ca.key.get(), revoked, number, crl_days));
  RETURN_IF_ERROR(WriteAtomic(Path(dir, kCrlFile), pem, 0644));
  return number;
}

absl::StatusOr<X509Ptr> BuildLeaf(const IssueOptions& o, const Authority& ca, EVP_PKEY* key) {
  x509::NamePtr subject(X509_NAME_new());
  RETURN_IF_ERROR(x509::AddName(subject.get(), NID_organizationName,
                                o.display_name.empty() ? o.organization_id : o.display_name));
  if (!o.server) RETURN_IF_ERROR(x509::AddName(subject.get(), NID_organizationalUnitName, o.role));
  RETURN_IF_ERROR(x509::AddName(subject.get(), NID_commonName, o.organization_id));
  ASSIGN_OR_RETURN(X509Ptr cert, x509::NewCertificate(subject.get(), key, o.days));
  X509* c = cert.get();
  X509* issuer = ca.cert.get();
  if (!X509_set_issuer_name(c, X509_get_subject_name(issuer))) return x509::OpenSslError("issuer");
  RETURN_IF_ERROR(x509::AddExt(c, issuer, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(x509::AddExt(c, issuer, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(
      x509::AddExt(c, issuer, NID_ext_key_usage, o.server ? "serverAuth" : "clientAuth"));
  RETURN_IF_ERROR(x509::AddExt(c, issuer, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(x509::AddExt(c, issuer, NID_authority_key_identifier, "keyid:always"));
  if (o.server) {
    // Safe to join: ValidateIssue allowed no ',' or ':' in DNS names, and
    // inet_pton-valid addresses contain no ','.
    std::vector<std::string> names;
    for (const auto& dns : o.dns_names) names.push_back(absl::StrCat("DNS:", dns));
    for (const auto& ip : o.ip_addresses) names.push_back(absl::StrCat("IP:", ip));
    RETURN_IF_ERROR(x509::AddExt(c, issuer, NID_subject_alt_name, absl::StrJoin(names, ",")));
  }
  if (ASN1_TIME_compare(X509_get0_notAfter(c), X509_get0_notAfter(issuer)) > 0) {
    return absl::InvalidArgumentError(absl::StrCat("--days ", o.days, ": the CA expires on ",
                                                   x509::NotAfterText(issuer), ", before that"));
  }
  RETURN_IF_ERROR(x509::Sign(c, ca.key.get()));
  return cert;
}

}  // namespace

absl::StatusOr<Reason> ParseReason(absl::string_view name) {
  for (Reason r : {Reason::kUnspecified, Reason::kKeyCompromise, Reason::kSuperseded,
                   Reason::kCessationOfOperation}) {
    if (ReasonName(r) == name) return r;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--reason \"", name,
      "\" is not one of keyCompromise, superseded, cessationOfOperation, unspecified"));
}

absl::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kKeyCompromise:
      return "keyCompromise";
    case Reason::kSuperseded:
      return "superseded";
    case Reason::kCessationOfOperation:
      return "cessationOfOperation";
    case Reason::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::Status Init(const InitOptions& o) {
  if (o.dir.empty()) return absl::InvalidArgumentError("--dir is required");
  RETURN_IF_ERROR(CheckText("--name", o.name));
  RETURN_IF_ERROR(CheckDays("--days", o.days));
  RETURN_IF_ERROR(CheckDays("--crl-days", o.crl_days));
  RETURN_IF_ERROR(MakeDirectory(AT_FDCWD, o.dir, 0700));
  ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(o.dir));
  for (const char* name : {kKeyFile, kCertFile, kCrlFile}) {
    if (PathExists(AT_FDCWD, Path(o.dir, name))) {
      return absl::AlreadyExistsError(absl::StrCat(o.dir, " already holds a CA (", name, ")"));
    }
  }
  Authority ca;
  ASSIGN_OR_RETURN(ca.key, x509::GenerateKey());
  x509::NamePtr subject(X509_NAME_new());
  RETURN_IF_ERROR(x509::AddName(subject.get(), NID_commonName, o.name));
  ASSIGN_OR_RETURN(ca.cert, x509::NewCertificate(subject.get(), ca.key.get(), o.days));
  X509* c = ca.cert.get();
  if (!X509_set_issuer_name(c, subject.get())) return x509::OpenSslError("issuer");
  RETURN_IF_ERROR(x509::AddExt(c, c, NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(x509::AddExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(x509::AddExt(c, c, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(x509::Sign(c, ca.key.get()));
  ASSIGN_OR_RETURN(SecretData key_pem, x509::PrivateKeyPem(ca.key.get()));
  ASSIGN_OR_RETURN(std::string cert_pem, x509::CertificatePem(c));
  ASSIGN_OR_RETURN(std::string crl_pem, x509::SignCrl(c, ca.key.get(), {}, 1, o.crl_days));
  RETURN_IF_ERROR(WriteAtomic(Path(o.dir, kKeyFile), key_pem.view(), 0600));
  RETURN_IF_ERROR(WriteAtomic(Path(o.dir, kCertFile), cert_pem, 0644));
  RETURN_IF_ERROR(WriteAtomic(Path(o.dir, kIssuedFile), "", 0644));
  RETURN_IF_ERROR(WriteAtomic(Path(o.dir, kRevokedFile), "", 0644));
  return WriteAtomic(Path(o.dir, kCrlFile), crl_pem, 0644);
}

absl::StatusOr<Issued> Issue(const IssueOptions& o) {
  RETURN_IF_ERROR(ValidateIssue(o));
  ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(o.dir));
  ASSIGN_OR_RETURN(Authority ca, LoadAuthority(o.dir));
  Issued out;
  out.key_file = absl::StrCat(o.out_prefix, ".key");
  out.cert_file = absl::StrCat(o.out_prefix, ".pem");
  for (const std::string& path : {out.key_file, out.cert_file}) {
    if (PathExists(AT_FDCWD, path)) {
      return absl::AlreadyExistsError(absl::StrCat("--out: ", path, " exists; not overwritten"));
    }
  }
  ASSIGN_OR_RETURN(KeyPtr key, x509::GenerateKey());
  ASSIGN_OR_RETURN(X509Ptr cert, BuildLeaf(o, ca, key.get()));
  out.serial_hex = openssl::SerialHex(X509_get0_serialNumber(cert.get()));
  out.subject = openssl::SubjectText(X509_get_subject_name(cert.get()));
  out.not_after = x509::NotAfterText(cert.get());
  ASSIGN_OR_RETURN(bool duplicate, WasIssued(o.dir, out.serial_hex));
  if (duplicate) return absl::InternalError("random serial collided; run again");
  ASSIGN_OR_RETURN(SecretData key_pem, x509::PrivateKeyPem(key.get()));
  ASSIGN_OR_RETURN(std::string cert_pem, x509::CertificatePem(cert.get()));
  RETURN_IF_ERROR(
      AppendIndex(Path(o.dir, kIssuedFile),
                  {out.serial_hex, out.subject, o.server ? "server" : o.role, out.not_after}));
  RETURN_IF_ERROR(WriteAtomic(out.key_file, key_pem.view(), 0600));
  RETURN_IF_ERROR(WriteAtomic(out.cert_file, cert_pem, 0644));
  return out;
}

absl::StatusOr<Revoked> Revoke(const std::string& dir, absl::string_view serial, Reason reason,
                               int crl_days) {
  auto canonical = gateway::CanonicalSerialHex(serial);
  if (!canonical.ok()) return absl::InvalidArgumentError(canonical.status().message());
  RETURN_IF_ERROR(CheckDays("--crl-days", crl_days));
  Revoked out;
  out.serial_hex = *canonical;
  ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(dir));
  ASSIGN_OR_RETURN(Authority ca, LoadAuthority(dir));
  ASSIGN_OR_RETURN(bool issued, WasIssued(dir, out.serial_hex));
  if (!issued) {
    return absl::NotFoundError(
        absl::StrCat("serial ", out.serial_hex, " was not issued by this CA (", kIssuedFile, ")"));
  }
  ASSIGN_OR_RETURN(std::vector<RevokedEntry> revoked, ReadRevoked(dir));
  ASSIGN_OR_RETURN(x509::CrlContents crl, ReadCrl(dir));
  bool listed = std::any_of(revoked.begin(), revoked.end(),
                            [&](const RevokedEntry& e) { return e.serial_hex == out.serial_hex; });
  bool in_crl =
      std::find(crl.serials.begin(), crl.serials.end(), out.serial_hex) != crl.serials.end();
  out.revoked_count = revoked.size();
  if (listed && in_crl) {
    out.already_revoked = true;
    out.crl_number = crl.crl_number;
    return out;
  }
  // revoked.txt first: a crash before the CRL is written leaves the serial
  // listed but not published, which the next revoke of it repairs.
  if (!listed) {
    RevokedEntry e{out.serial_hex, absl::FromTimeT(absl::ToTimeT(absl::Now())), reason};
    RETURN_IF_ERROR(
        AppendIndex(Path(dir, kRevokedFile),
                    {e.serial_hex, absl::FormatTime(x509::kTimeFormat, e.when, absl::UTCTimeZone()),
                     std::string(ReasonName(reason))}));
    revoked.push_back(std::move(e));
  }
  out.revoked_count = revoked.size();
  ASSIGN_OR_RETURN(out.crl_number, Republish(dir, ca, revoked, crl_days));
  return out;
}

absl::StatusOr<uint64_t> RefreshCrl(const std::string& dir, int crl_days) {
  RETURN_IF_ERROR(CheckDays("--crl-days", crl_days));
  ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(dir));
  ASSIGN_OR_RETURN(Authority ca, LoadAuthority(dir));
  ASSIGN_OR_RETURN(std::vector<RevokedEntry> revoked, ReadRevoked(dir));
  return Republish(dir, ca, revoked, crl_days);
}

absl::StatusOr<std::string> SerialOfCertificateFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(AT_FDCWD, path));
  auto cert = x509::ParseCertificate(pem);
  if (!cert.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a PEM certificate"));
  return openssl::SerialHex(X509_get0_serialNumber(cert->get()));
}

}  // namespace medvault::ca
