// medvault-policy: enforces the regulator's signed policy bundle. Until the
// bundle loader exists, no bundle is loaded and the process says so.
#include "daemon/common/service_main.h"
#include "medvault/internal/v1/policy.grpc.pb.h"

namespace medvault::policy {
namespace {

SyscallPolicy PolicyPolicy() {
  // Evaluation is pure computation over the request: nothing beyond the
  // common gRPC base.
  return SyscallPolicy::GrpcService();
}

class PolicyService : public Guardable<internal::v1::Policy::Service> {
 public:
  grpc::Status GetPolicyInfo(grpc::ServerContext*, const internal::v1::GetPolicyInfoRequest*,
                             internal::v1::GetPolicyInfoResponse* response) override {
    response->set_bundle_loaded(false);
    return grpc::Status::OK;
  }
};

class PolicyProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config&) override { return absl::OkStatus(); }
  SyscallPolicy Policy() const override { return PolicyPolicy(); }
  absl::Status Register(InternalServer& internal) override {
    internal.AddService(&service_, *InternalService(Role::kPolicy));
    return absl::OkStatus();
  }

 private:
  PolicyService service_;
};

}  // namespace
}  // namespace medvault::policy

int main(int argc, char** argv) {
  medvault::policy::PolicyProcess process;
  return medvault::ServiceMain(medvault::Role::kPolicy, argc, argv, process);
}
