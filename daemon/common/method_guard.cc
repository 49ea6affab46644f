#include "daemon/common/method_guard.h"

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/server_context.h>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/users.h"
#include "google/protobuf/descriptor.h"

namespace medvault {
namespace {

using grpc::internal::MethodHandler;
using grpc::internal::RpcMethod;

class GuardHandler : public MethodHandler {
 public:
  GuardHandler(MethodHandler* inner, std::string method,
               std::shared_ptr<const MethodAllowlist> allowlist, const PeerRegistry* peers)
      : inner_(inner),
        method_(std::move(method)),
        denied_message_(absl::StrCat("caller may not call ", method_)),
        denied_(denied_message_),
        allowlist_(std::move(allowlist)),
        peers_(peers) {}

  // Runs first for methods with a request message: a refused caller's
  // request is dropped undecoded.
  void* Deserialize(grpc_call* call, grpc_byte_buffer* req, grpc::Status* status,
                    void** handler_data) override {
    char* peer = grpc_call_get_peer(call);
    bool allowed = Decide(peer, /*log=*/false);
    gpr_free(peer);
    if (!allowed) {
      // Drops the payload; the status keeps the real handler from ever
      // running on a missing request.
      denied_.Deserialize(call, req, status, handler_data);
      *status = Denied();
      return nullptr;
    }
    return inner_->Deserialize(call, req, status, handler_data);
  }

  void RunHandler(const HandlerParameter& param) override {
    if (Decide(param.server_context->peer(), /*log=*/true)) {
      inner_->RunHandler(param);
    } else {
      denied_.RunHandler(param);
    }
  }

 private:
  grpc::Status Denied() const {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, denied_message_);
  }

  bool Decide(absl::string_view peer, bool log) const {
    std::optional<PeerCredentials> creds = peers_->Lookup(peer);
    if (!creds.has_value()) {
      if (log) {
        log::Warn("rpc.denied",
                  {{"method", method_}, {"peer", peer}, {"reason", "unknown peer credentials"}});
      }
      return false;
    }
    if (allowlist_->IsAllowed(method_, creds->uid)) return true;
    if (log) {
      log::Warn("rpc.denied", {{"method", method_},
                               {"uid", static_cast<uint64_t>(creds->uid)},
                               {"user", UserName(creds->uid)},
                               {"pid", static_cast<int64_t>(creds->pid)},
                               {"reason", "caller not on the method's allowlist"}});
    }
    return false;
  }

  MethodHandler* inner_;  // owned by the real service
  std::string method_;
  std::string denied_message_;
  // Answers PERMISSION_DENIED the way gRPC answers unknown methods.
  grpc::internal::ErrorMethodHandler<grpc::StatusCode::PERMISSION_DENIED> denied_;
  std::shared_ptr<const MethodAllowlist> allowlist_;
  const PeerRegistry* peers_;
};

RpcMethod::RpcType TypeOf(const google::protobuf::MethodDescriptor& m) {
  if (m.client_streaming() && m.server_streaming()) return RpcMethod::BIDI_STREAMING;
  if (m.client_streaming()) return RpcMethod::CLIENT_STREAMING;
  if (m.server_streaming()) return RpcMethod::SERVER_STREAMING;
  return RpcMethod::NORMAL_RPC;
}

}  // namespace

absl::StatusOr<MethodAllowlist> MethodAllowlist::FromConfig(
    const config::v1::Process& process, const google::protobuf::ServiceDescriptor& service) {
  MethodAllowlist list;
  for (const auto& entry : process.allow()) {
    if (service.FindMethodByName(entry.method()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(service.full_name(), " has no method ", entry.method()));
    }
    for (const std::string& caller : entry.callers()) {
      auto uid = LookupUid(caller);
      if (!uid.ok()) return uid.status();
      list.Allow(entry.method(), *uid);
    }
  }
  return list;
}

bool MethodAllowlist::IsAllowed(const std::string& method, uid_t uid) const {
  auto it = allowed_.find(method);
  return it != allowed_.end() && it->second.contains(uid);
}

GuardedService::GuardedService(GuardableService* inner,
                               const google::protobuf::ServiceDescriptor& descriptor,
                               MethodAllowlist allowlist, const PeerRegistry* peers)
    : allowlist_(std::make_shared<const MethodAllowlist>(std::move(allowlist))) {
  for (int i = 0; i < descriptor.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& m = *descriptor.method(i);
    paths_.push_back(absl::StrCat("/", descriptor.full_name(), "/", m.name()));
    AddMethod(new grpc::internal::RpcServiceMethod(
        paths_.back().c_str(), TypeOf(m),
        new GuardHandler(inner->Handler(i), m.name(), allowlist_, peers)));
  }
}

}  // namespace medvault
