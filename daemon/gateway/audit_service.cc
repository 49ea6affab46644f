#include "daemon/gateway/audit_service.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/field_error.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"

namespace medvault::gateway {
namespace {

constexpr char kMethodPrefix[] = "/medvault.v1.AuditService/";
constexpr uint32_t kMaxEntries = 1000;

void AddHashes(const std::vector<merkle::Hash>& hashes,
               google::protobuf::RepeatedPtrField<std::string>& out) {
  for (const merkle::Hash& h : hashes) out.Add(merkle::ToBytes(h));
}

}  // namespace

absl::Status AuditService::Run(
    const Caller& caller, absl::string_view method,
    absl::FunctionRef<absl::Status(sqlite3*, const v1::SignedTreeHead&)> body) {
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method(absl::StrCat(kMethodPrefix, method));
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(caller, "audit.read_log", Facts(), now, event));
  FillAuditEvent(caller, "audit.read_log", now, decision, event);
  return CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::SignedTreeHead> head, LatestTreeHead(db));
    if (!head.has_value()) {
      return absl::FailedPreconditionError("no tree head is signed yet; retry in a moment");
    }
    head->set_log_id(log_id_);
    return body(db, *head);
  });
}

grpc::Status AuditService::GetSignedTreeHead(grpc::ServerContext* context,
                                             const v1::GetSignedTreeHeadRequest*,
                                             v1::SignedTreeHead* response) {
  return Serve(core_, context, [&](const Caller& caller) {
    return Run(caller, "GetSignedTreeHead", [&](sqlite3*, const v1::SignedTreeHead& head) {
      *response = head;
      return absl::OkStatus();
    });
  });
}

grpc::Status AuditService::GetInclusionProof(grpc::ServerContext* context,
                                             const v1::GetInclusionProofRequest* request,
                                             v1::InclusionProof* response) {
  return Serve(core_, context, [&](const Caller& caller) {
    return Run(
        caller, "GetInclusionProof",
        [&](sqlite3* db, const v1::SignedTreeHead& head) -> absl::Status {
          const uint64_t size = request->tree_size() == 0 ? head.tree_size() : request->tree_size();
          if (size > head.tree_size()) {
            return InvalidField("tree_size",
                                absl::StrCat("at most the signed head's size, ", head.tree_size()));
          }
          if (request->leaf_index() >= size) {
            return InvalidField("leaf_index", absl::StrCat("below the tree size, ", size));
          }
          ASSIGN_OR_RETURN(auto proof, AuditInclusionProof(db, request->leaf_index(), size));
          ASSIGN_OR_RETURN(auto leaves, AuditLeaves(db, request->leaf_index(), 1));
          if (leaves.size() != 1) {
            return absl::DataLossError("registry database: an audit event is missing");
          }
          response->set_leaf_index(request->leaf_index());
          response->set_tree_size(size);
          AddHashes(proof, *response->mutable_audit_path());
          response->set_leaf(std::move(leaves[0].second));
          return absl::OkStatus();
        });
  });
}

grpc::Status AuditService::GetConsistencyProof(grpc::ServerContext* context,
                                               const v1::GetConsistencyProofRequest* request,
                                               v1::ConsistencyProof* response) {
  return Serve(core_, context, [&](const Caller& caller) {
    return Run(
        caller, "GetConsistencyProof",
        [&](sqlite3* db, const v1::SignedTreeHead& head) -> absl::Status {
          const uint64_t second =
              request->second_tree_size() == 0 ? head.tree_size() : request->second_tree_size();
          if (second > head.tree_size()) {
            return InvalidField("second_tree_size",
                                absl::StrCat("at most the signed head's size, ", head.tree_size()));
          }
          if (request->first_tree_size() == 0 || request->first_tree_size() > second) {
            return InvalidField("first_tree_size",
                                absl::StrCat("from 1 to the second size, ", second));
          }
          ASSIGN_OR_RETURN(auto proof,
                           AuditConsistencyProof(db, request->first_tree_size(), second));
          response->set_first_tree_size(request->first_tree_size());
          response->set_second_tree_size(second);
          AddHashes(proof, *response->mutable_proof());
          return absl::OkStatus();
        });
  });
}

grpc::Status AuditService::GetEntries(grpc::ServerContext* context,
                                      const v1::GetEntriesRequest* request,
                                      v1::GetEntriesResponse* response) {
  return Serve(core_, context, [&](const Caller& caller) {
    return Run(caller, "GetEntries",
               [&](sqlite3* db, const v1::SignedTreeHead& head) -> absl::Status {
                 if (request->count() == 0 || request->count() > kMaxEntries) {
                   return InvalidField("count", absl::StrCat("from 1 to ", kMaxEntries));
                 }
                 if (request->start() >= head.tree_size()) {
                   return InvalidField(
                       "start", absl::StrCat("below the signed head's size, ", head.tree_size()));
                 }
                 const uint64_t count =
                     std::min<uint64_t>(request->count(), head.tree_size() - request->start());
                 ASSIGN_OR_RETURN(auto leaves, AuditLeaves(db, request->start(), count));
                 for (auto& [index, leaf] : leaves) {
                   v1::LogEntry* entry = response->add_entries();
                   entry->set_leaf_index(index);
                   entry->set_leaf(std::move(leaf));
                 }
                 return absl::OkStatus();
               });
  });
}

grpc::Status AuditService::GetLogPublicKey(grpc::ServerContext* context,
                                           const v1::GetLogPublicKeyRequest*,
                                           v1::GetLogPublicKeyResponse* response) {
  return Serve(core_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(Run(caller, "GetLogPublicKey",
                        [](sqlite3*, const v1::SignedTreeHead&) { return absl::OkStatus(); }));
    grpc::ClientContext call;
    core_.backends.SetDeadline(call);
    internal::v1::GetLogPublicKeyResponse key;
    grpc::Status status = core_.backends.keyvault().GetLogPublicKey(
        &call, internal::v1::GetLogPublicKeyRequest(), &key);
    if (!status.ok()) return BackendError("keyvault", "GetLogPublicKey", status);
    response->set_public_key(key.public_key());
    return absl::OkStatus();
  });
}

}  // namespace medvault::gateway
