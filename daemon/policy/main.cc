// medvault-policy: enforces the regulator's signed policy bundle.
//
// At start-up (before the sandbox) it reads the regulator's public key and
// loads the bundle directory named in the configuration; a bundle that is
// missing, unsigned, altered or does not compile is logged and the process
// serves without one (every decision a deny) until a Reload succeeds. The
// Reload RPC reads the directory again from inside the sandbox (openat and
// read are in the common allowlist). SIGHUP is not a reload trigger: the
// shared process main (daemon/common/service_main.cc) owns the signal loop
// and offers no hook for it, so reloads come by RPC (`medvaultctl policy
// reload`).
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/field_error.h"
#include "daemon/common/grpc_status.h"
#include "daemon/common/logging.h"
#include "daemon/common/service_main.h"
#include "daemon/policy/evaluator.h"
#include "daemon/policy/policy_engine.h"
#include "daemon/policy/policy_loader.h"
#include "medvault/internal/v1/policy.grpc.pb.h"

namespace medvault::policy {
namespace {

SyscallPolicy PolicyPolicy() {
  // Evaluation is pure computation over the request; a reload reads the
  // bundle directory with openat/read/fstat/close, already in the base.
  return SyscallPolicy::GrpcService();
}

grpc::Status NoBundle() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "no policy bundle is loaded: every decision is a deny");
}

// The evaluator names fields of the policy Request ("action"); the RPCs
// carry it as their field `request`, and BadRequest paths start at the RPC's
// message ("request.action").
grpc::Status RequestError(const absl::Status& status) {
  return ToGrpcStatus(WithFieldPrefix(status, "request"));
}

class PolicyService : public Guardable<internal::v1::Policy::Service> {
 public:
  // `engine` may be null (no bundle configured).
  explicit PolicyService(PolicyEngine* engine) : engine_(engine) {}

  grpc::Status GetPolicyInfo(grpc::ServerContext*, const internal::v1::GetPolicyInfoRequest*,
                             internal::v1::GetPolicyInfoResponse* response) override {
    if (engine_ == nullptr) {
      response->set_last_error("no bundle_dir in the configuration");
      return grpc::Status::OK;
    }
    auto current = engine_->Current();
    response->set_bundle_loaded(current != nullptr);
    if (current != nullptr) {
      response->set_bundle_version(absl::StrCat(current->version));
      response->set_bundle_hash(current->bundle_hash_hex);
      response->set_effective_time(current->effective_time);
      response->set_loaded_time(FormatRfc3339(engine_->loaded_time()));
    }
    response->set_last_error(engine_->last_error());
    return grpc::Status::OK;
  }

  grpc::Status Evaluate(grpc::ServerContext*, const internal::v1::EvaluateRequest* request,
                        internal::v1::EvaluateResponse* response) override {
    auto policy = engine_ != nullptr ? engine_->Current() : nullptr;
    if (policy == nullptr) return NoBundle();
    auto decision = policy::Evaluate(*policy, request->request());
    if (!decision.ok()) return RequestError(decision.status());
    LogDecision(*decision);
    *response->mutable_decision() = *std::move(decision);
    return grpc::Status::OK;
  }

  grpc::Status Explain(grpc::ServerContext*, const internal::v1::ExplainRequest* request,
                       internal::v1::ExplainResponse* response) override {
    auto policy = engine_ != nullptr ? engine_->Current() : nullptr;
    if (policy == nullptr) return NoBundle();
    std::vector<v1::RuleTrace> traces;
    auto decision = policy::Explain(*policy, request->request(), &traces);
    if (!decision.ok()) return RequestError(decision.status());
    *response->mutable_decision() = *std::move(decision);
    for (auto& t : traces) *response->add_rules() = std::move(t);
    return grpc::Status::OK;
  }

  grpc::Status Reload(grpc::ServerContext*, const internal::v1::ReloadRequest*,
                      internal::v1::ReloadResponse* response) override {
    auto result = ReloadNow();
    // A bundle that does not compile is INVALID_ARGUMENT, but its errors
    // ("bundle: no rules") name no field of ReloadRequest.
    if (!result.ok()) return ToGrpcStatus(WithoutFieldViolations(result.status()));
    response->set_changed(result->changed);
    response->set_bundle_version(result->policy->version);
    response->set_bundle_hash(result->policy->bundle_hash_hex);
    return grpc::Status::OK;
  }

  // Reads the bundle directory again (the Reload RPC and SIGHUP). A refused
  // bundle is logged and the last good one keeps serving.
  absl::StatusOr<PolicyEngine::ReloadResult> ReloadNow() {
    if (engine_ == nullptr) {
      return absl::FailedPreconditionError("no bundle_dir in the configuration");
    }
    auto result = engine_->Reload(absl::Now());
    if (!result.ok()) {
      log::Warn("policy.reload_refused", {{"error", result.status()}});
      return result.status();
    }
    if (result->changed) LogLoaded(*result->policy);
    return result;
  }

  static void LogLoaded(const CompiledPolicy& p) {
    log::Info("policy.bundle_loaded", {{"version", static_cast<int64_t>(p.version)},
                                       {"bundle_hash", p.bundle_hash_hex},
                                       {"effective", p.effective_time},
                                       {"rules", static_cast<int64_t>(p.rules.size())}});
  }

 private:
  // Debug only: the gateway records every decision as an audit event (fail
  // closed); this line is for operators tracing a deployment. No facts are
  // logged: they name patients.
  static void LogDecision(const v1::Decision& d) {
    log::Debug("policy.decision", {{"decision_id", d.decision_id()},
                                   {"effect", v1::Effect_Name(d.effect())},
                                   {"rules", absl::StrJoin(d.rule_ids(), ",")},
                                   {"version", static_cast<int64_t>(d.policy_version())}});
  }

  PolicyEngine* engine_;
};

class PolicyProcess : public ServiceProcess {
 public:
  absl::Status Prepare(const config::v1::Config& config) override {
    const auto& pc = config.policy();
    if (pc.bundle_dir().empty()) {
      log::Warn("policy.no_bundle", {{"reason", "no policy.bundle_dir configured; default deny"}});
      return absl::OkStatus();
    }
    std::ifstream in(pc.regulator_public_key_file());
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read policy.regulator_public_key_file ",
                       pc.regulator_public_key_file()));
    }
    std::stringstream key;
    key << in.rdbuf();
    engine_ = std::make_unique<PolicyEngine>(pc.bundle_dir(), key.str());
    // A bad bundle does not stop the process: it serves default deny and
    // says why, and a corrected bundle is picked up by Reload.
    auto loaded = engine_->Reload(absl::Now());
    if (loaded.ok()) {
      PolicyService::LogLoaded(*loaded->policy);
    } else {
      log::Error("policy.bundle_refused", {{"dir", pc.bundle_dir()}, {"error", loaded.status()}});
    }
    service_ = std::make_unique<PolicyService>(engine_.get());
    return absl::OkStatus();
  }
  SyscallPolicy Policy() const override { return PolicyPolicy(); }
  bool Reload() override {
    if (service_ == nullptr) return false;
    (void)service_->ReloadNow();  // logged either way
    return true;
  }
  absl::Status Register(InternalServer& internal) override {
    if (service_ == nullptr) service_ = std::make_unique<PolicyService>(nullptr);
    internal.AddService(service_.get(), *InternalService(Role::kPolicy));
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<PolicyEngine> engine_;
  std::unique_ptr<PolicyService> service_;
};

}  // namespace
}  // namespace medvault::policy

int main(int argc, char** argv) {
  medvault::policy::PolicyProcess process;
  return medvault::ServiceMain(medvault::Role::kPolicy, argc, argv, process);
}
