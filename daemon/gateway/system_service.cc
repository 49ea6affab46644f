#include "daemon/gateway/system_service.h"

#include <grpcpp/grpcpp.h>

#include "daemon/common/health_client.h"
#include "daemon/common/logging.h"
#include "daemon/common/roles.h"
#include "daemon/common/version.h"

namespace medvault::gateway {
namespace {

constexpr absl::Duration kInternalTimeout = absl::Seconds(2);

v1::ComponentStatus::Status ToProto(Health health) {
  switch (health) {
    case Health::kServing:
      return v1::ComponentStatus::SERVING;
    case Health::kNotServing:
      return v1::ComponentStatus::NOT_SERVING;
    case Health::kUnreachable:
      return v1::ComponentStatus::UNREACHABLE;
  }
  return v1::ComponentStatus::STATUS_UNSPECIFIED;
}

std::string FirstProperty(const grpc::AuthContext& auth, const char* name) {
  auto values = auth.FindPropertyValues(name);
  return values.empty() ? std::string() : std::string(values.front().data(), values.front().size());
}

}  // namespace

std::string CallerSubject(const grpc::ServerContext& context) {
  auto auth = context.auth_context();
  if (auth == nullptr) return "";
  std::string subject = FirstProperty(*auth, "x509_subject");
  if (subject.empty()) subject = "CN=" + FirstProperty(*auth, "x509_common_name");
  return subject;
}

SystemService::SystemService(const config::v1::Config& config)
    : config_(config),
      signer_(internal::v1::Signer::NewStub(grpc::CreateChannel(
          "unix:" + SocketPath(config, Role::kSigner), grpc::InsecureChannelCredentials()))) {}

grpc::Status SystemService::GetSystemInfo(grpc::ServerContext* context,
                                          const v1::GetSystemInfoRequest*,
                                          v1::GetSystemInfoResponse* response) {
  response->set_version(kVersion);
  response->set_caller_subject(CallerSubject(*context));
  auto* gateway = response->add_components();
  gateway->set_name("gateway");
  gateway->set_status(v1::ComponentStatus::SERVING);
  for (Role role : kStartOrder) {
    if (role == Role::kGateway) continue;
    HealthReport report = CheckHealth(SocketPath(config_, role), kInternalTimeout);
    auto* component = response->add_components();
    component->set_name(std::string(RoleName(role)));
    component->set_status(ToProto(report.health));
    component->set_detail(report.detail);
  }
  grpc::ClientContext signer_context;
  signer_context.set_deadline(absl::ToChronoTime(absl::Now() + kInternalTimeout));
  internal::v1::GetChainInfoResponse chain;
  grpc::Status status =
      signer_->GetChainInfo(&signer_context, internal::v1::GetChainInfoRequest(), &chain);
  if (status.ok()) {
    response->set_chain_id(chain.chain_id());
  } else {
    log::Warn("signer.chain_info_failed",
              {{"code", static_cast<int>(status.error_code())}, {"error", status.error_message()}});
  }
  log::Info("rpc.system_info", {{"caller", response->caller_subject()}});
  return grpc::Status::OK;
}

}  // namespace medvault::gateway
