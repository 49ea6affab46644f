// The deployment's client-certificate authority, kept in one directory:
//
//   ca.key       the CA's P-256 private key, PKCS#8 PEM, mode 0600
//   ca.pem       the self-signed CA certificate (CA:TRUE, keyCertSign,
//                cRLSign), what the gateway's tls.client_ca_file names
//   crl.pem      the CRL the gateway reloads (tls.crl_file), signed by the
//                CA, with a crlNumber that grows with every rewrite
//   issued.txt   one line per issued certificate, tab-separated:
//                  serial_hex  subject  role  not_after
//                (role "server" for server certificates; not_after RFC 3339
//                UTC; serial in gateway::CanonicalSerialHex form)
//   revoked.txt  one line per revoked certificate, tab-separated:
//                  serial_hex  revoked_at  reason
//                the CRL is rebuilt from this file
//
// Every file is replaced atomically (temporary file, fsync, rename, fsync
// of the directory). issue and revoke take an exclusive flock on the
// directory, so two operators cannot interleave. No function returns or
// logs a private key.
//
// Errors: INVALID_ARGUMENT for bad input (the message names the flag),
// ALREADY_EXISTS when init finds a CA or issue would overwrite a file,
// NOT_FOUND for a missing CA or an unknown serial, anything else for I/O
// or OpenSSL failures.
#ifndef MEDVAULT_DAEMON_CTL_CA_H_
#define MEDVAULT_DAEMON_CTL_CA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::ca {

inline constexpr char kKeyFile[] = "ca.key";
inline constexpr char kCertFile[] = "ca.pem";
inline constexpr char kCrlFile[] = "crl.pem";
inline constexpr char kIssuedFile[] = "issued.txt";
inline constexpr char kRevokedFile[] = "revoked.txt";

struct InitOptions {
  std::string dir;  // created (0700) if missing; must not hold a CA yet
  std::string name = "medvault CA";
  int days = 3650;
  int crl_days = 30;  // nextUpdate of every CRL this CA writes
};

struct IssueOptions {
  std::string dir;
  std::string organization_id;  // CN; gateway::ValidateOrganizationId
  std::string role;             // OU; a gateway::IsClientRole (client certificates only)
  std::string display_name;     // O; the organisation id when empty
  int days = 365;               // must end before the CA expires
  bool server = false;          // serverAuth with DNS/IP names instead of a role
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::string out_prefix;  // writes <prefix>.key (0600) and <prefix>.pem
};

struct Issued {
  std::string serial_hex;
  std::string subject;
  std::string not_after;  // RFC 3339 UTC
  std::string key_file;
  std::string cert_file;
};

enum class Reason { kUnspecified, kKeyCompromise, kSuperseded, kCessationOfOperation };

// "keyCompromise" -> kKeyCompromise, etc. (RFC 5280 names).
absl::StatusOr<Reason> ParseReason(absl::string_view name);
absl::string_view ReasonName(Reason reason);

struct Revoked {
  std::string serial_hex;
  bool already_revoked = false;  // nothing was changed
  uint64_t crl_number = 0;       // of the CRL now in DIR/crl.pem
  size_t revoked_count = 0;
};

// Creates the CA: key, certificate, an empty CRL (crlNumber 1) and empty
// indexes.
absl::Status Init(const InitOptions& options);

// Issues a key and certificate signed by the CA and records it in
// issued.txt (before the files are written, so a certificate on disk is
// always revocable).
absl::StatusOr<Issued> Issue(const IssueOptions& options);

// Revokes `serial` (any form CanonicalSerialHex accepts) and writes a new
// CRL. A serial this CA never issued is NOT_FOUND. Revoking again changes
// nothing (already_revoked), unless the CRL lost the serial (a crash
// between the two writes), in which case the CRL is rewritten.
absl::StatusOr<Revoked> Revoke(const std::string& dir, absl::string_view serial, Reason reason,
                               int crl_days = 30);

// Re-signs the CRL with a fresh lastUpdate/nextUpdate and the next
// crlNumber, which it returns; the revoked list is unchanged. Run it
// before nextUpdate passes.
absl::StatusOr<uint64_t> RefreshCrl(const std::string& dir, int crl_days = 30);

// The serial of the first certificate in a PEM file, canonical form.
absl::StatusOr<std::string> SerialOfCertificateFile(const std::string& path);

}  // namespace medvault::ca

#endif  // MEDVAULT_DAEMON_CTL_CA_H_
