// medvault.v1.AuditService: the audit log's signed tree heads, entries and
// proofs, for the compliance office and the regulator (policy action
// audit.read_log). Proofs are against signed heads only: a size beyond the
// latest signed head is refused, as a client can check nothing else.
#ifndef MEDVAULT_DAEMON_GATEWAY_AUDIT_SERVICE_H_
#define MEDVAULT_DAEMON_GATEWAY_AUDIT_SERVICE_H_

#include <string>

#include "daemon/gateway/core.h"
#include "medvault/v1/audit.grpc.pb.h"

namespace medvault::gateway {

class AuditService final : public v1::AuditService::Service {
 public:
  AuditService(GatewayCore& core, std::string log_id) : core_(core), log_id_(std::move(log_id)) {}

  grpc::Status GetSignedTreeHead(grpc::ServerContext* context,
                                 const v1::GetSignedTreeHeadRequest* request,
                                 v1::SignedTreeHead* response) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* context,
                                 const v1::GetInclusionProofRequest* request,
                                 v1::InclusionProof* response) override;
  grpc::Status GetConsistencyProof(grpc::ServerContext* context,
                                   const v1::GetConsistencyProofRequest* request,
                                   v1::ConsistencyProof* response) override;
  grpc::Status GetEntries(grpc::ServerContext* context, const v1::GetEntriesRequest* request,
                          v1::GetEntriesResponse* response) override;
  grpc::Status GetLogPublicKey(grpc::ServerContext* context,
                               const v1::GetLogPublicKeyRequest* request,
                               v1::GetLogPublicKeyResponse* response) override;

 private:
  // Asks policy for audit.read_log and runs `body` in the transaction that
  // appends this call's audit event, with the latest signed head.
  absl::Status Run(const Caller& caller, absl::string_view method,
                   absl::FunctionRef<absl::Status(sqlite3*, const v1::SignedTreeHead&)> body);

  GatewayCore& core_;
  const std::string log_id_;
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_AUDIT_SERVICE_H_
