// Who is calling the public API, and whether their certificate still counts.
//
// Every caller presents a client certificate issued by the deployment's CA
// (`medvaultctl ca issue`). Its subject carries the caller's identity:
//   CN = organisation id (1..64 of [a-z0-9._-]),
//   O  = display name,
//   OU = role: hospital, regulator, compliance, insurer, research, device.
// The CA publishes revoked serials in a CRL (`medvaultctl ca revoke`); the
// gateway refuses a revoked certificate at the TLS handshake, so a revoked
// organisation never reaches a service.
#ifndef MEDVAULT_DAEMON_GATEWAY_CLIENT_IDENTITY_H_
#define MEDVAULT_DAEMON_GATEWAY_CLIENT_IDENTITY_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/server_context.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/common/secret.h"

namespace medvault::gateway {

// The roles a client certificate may name in its OU.
bool IsClientRole(absl::string_view role);
// "hospital, regulator, ...", for error messages and help texts.
const char* ClientRoleList();
// OK if IsPseudonymousId(id) (ids.h); INVALID_ARGUMENT naming
// the rule otherwise.
absl::Status ValidateOrganizationId(absl::string_view id);
// A certificate serial as medvault writes it everywhere (CRL index, logs,
// ClientIdentity): lower-case hex without separators, as OpenSSL's
// BN_bn2hex prints it. Accepts upper case, "0x" and "aa:bb" forms;
// INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> CanonicalSerialHex(absl::string_view hex);

struct ClientIdentity {
  std::string organization_id;  // subject CN
  std::string role;             // subject OU, one of IsClientRole
  std::string display_name;     // subject O; the organisation id when absent
  std::string serial_hex;       // CanonicalSerialHex form
  std::string subject;          // RFC 2253, e.g. "CN=st-mary,OU=hospital,O=St Mary"
};

// Reads the identity from a PEM certificate (the leaf only). The chain is
// not checked here: the TLS handshake did that. INVALID_ARGUMENT if the PEM
// does not parse; UNAUTHENTICATED if CN or OU is missing or repeated, the
// organisation id is malformed or the role unknown.
absl::StatusOr<ClientIdentity> ParseClientIdentity(absl::string_view peer_cert_pem);

class RevocationList;

// The identity of the caller of the current RPC, from the certificate gRPC
// put in the call's auth context. UNAUTHENTICATED without one. With
// `revocations`, also refuses a certificate revoked after its connection
// was made: the handshake check alone would let an open connection keep
// calling (Check()'s codes: UNAUTHENTICATED revoked, UNAVAILABLE no CRL).
absl::StatusOr<ClientIdentity> CallerIdentity(const grpc::ServerContextBase& context,
                                              RevocationList* revocations = nullptr);

// The CA's CRL file, re-read when it changes.
//
// Each Check() stats the file (one newfstatat) and reloads it when its
// inode, size, mtime or ctime differ from the last attempt. A CRL is only
// accepted if it parses, its issuer is the CA's subject, its signature
// verifies with the CA's key and its crlNumber is not older than the one
// loaded; otherwise the previous good list stays and the error is kept for
// status(). Until a good list has been loaded every certificate is refused
// (fail closed). An expired CRL (nextUpdate passed) is still used: refusing
// every hospital because the operator was late is worse than a stale list;
// next_update() lets the caller warn about it. Thread-safe.
class RevocationList {
 public:
  // `ca_pem` is the CA certificate (the first one in the PEM is used).
  // INVALID_ARGUMENT if it does not parse. The file is read at once; see
  // status() for the outcome.
  static absl::StatusOr<std::unique_ptr<RevocationList>> Create(std::string crl_file,
                                                                absl::string_view ca_pem);
  ~RevocationList();

  // OK if `serial_hex` (CanonicalSerialHex form) is not revoked.
  // UNAUTHENTICATED if it is; UNAVAILABLE if no good CRL was ever loaded.
  absl::Status Check(absl::string_view serial_hex) ABSL_LOCKS_EXCLUDED(mu_);
  // Re-reads the file if it changed; returns the outcome of the latest
  // attempt (OK when the list in use is the file's current content).
  absl::Status Refresh() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);
  // Of the list in use; 0 and InfinitePast before the first good load.
  uint64_t crl_number() const ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time next_update() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t revoked_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct Ca;  // the parsed CA certificate, OpenSSL types kept out of here

  RevocationList(std::string crl_file, std::unique_ptr<Ca> ca);
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Load(const std::string& pem) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const std::string crl_file_;
  const std::unique_ptr<Ca> ca_;

  mutable absl::Mutex mu_;
  // Guarded by mu_.
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  uint64_t crl_number_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_update_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::flat_hash_set<std::string> revoked_ ABSL_GUARDED_BY(mu_);
};

// Runs after OpenSSL has verified the client's chain against the client CA:
// refuses (UNAUTHENTICATED, which fails the handshake) a certificate whose
// identity is unusable or whose serial the CRL lists. Synchronous: a stat
// and a hash lookup, a CRL parse when the file changed.
class RevokingCertificateVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit RevokingCertificateVerifier(std::shared_ptr<RevocationList> revocations);

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> callback, grpc::Status* sync_status) override;
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::shared_ptr<RevocationList> revocations_;
};

// Mutual-TLS server credentials for the public API: the server's chain and
// key, client certificates required and verified against `client_ca_pem`,
// then RevokingCertificateVerifier. `private_key` is consumed and wiped
// (gRPC keeps its own copy). INVALID_ARGUMENT if a PEM is empty or the CA
// does not parse.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsServerCredentials(
    const std::string& cert_chain_pem, SecretData private_key, const std::string& client_ca_pem,
    std::shared_ptr<RevocationList> revocations);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CLIENT_IDENTITY_H_
