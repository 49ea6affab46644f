// Who is calling a public RPC: the organisation of the client certificate,
// and the person acting through it (a practitioner of that hospital, or a
// patient through its portal) named in request metadata. Resolved once per
// call, against the registry database.
#ifndef MEDVAULT_DAEMON_GATEWAY_CALLER_H_
#define MEDVAULT_DAEMON_GATEWAY_CALLER_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/gateway/client_identity.h"
#include "daemon/gateway/licence.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::gateway {

// Metadata keys naming the person who acts (see proto/medvault/v1/types.proto).
inline constexpr char kPractitionerHeader[] = "medvault-practitioner";
inline constexpr char kPatientHeader[] = "medvault-patient";

struct Caller {
  ClientIdentity organization;
  // Whether the organisation is registered here (hospitals: by the regulator).
  bool organization_registered = false;
  // The policy role: HOSPITAL, PRACTITIONER, PATIENT, REGULATOR, INSURER,
  // RESEARCHER, COMPLIANCE.
  std::string policy_role;
  // actor.id for policy: the practitioner, the patient or the organisation.
  std::string actor_id;
  // Set when a practitioner acts.
  std::string practitioner_id;
  std::vector<std::string> specialties;
  // Read from the chain's index once per call (policy's licence facts).
  std::optional<Licence> licence;
  // Set when a patient acts.
  std::string patient_id;

  bool is_practitioner() const { return !practitioner_id.empty(); }
  bool is_patient() const { return !patient_id.empty(); }
  // The audit log's view of the caller.
  v1::AuditActor AuditActor() const;
};

struct GatewayCore;

// UNAUTHENTICATED when the certificate is unusable or revoked since the
// connection was made (the revocation list is checked on every call, not
// only at the handshake), the named practitioner is not registered with
// the calling hospital, or a person is named by an organisation that is not
// a hospital; INVALID_ARGUMENT for both headers or a malformed id;
// UNAVAILABLE when a practitioner's licence cannot be read.
absl::StatusOr<Caller> ResolveCaller(const grpc::ServerContextBase& context, GatewayCore& core);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CALLER_H_
