#include "daemon/gateway/authorizer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/core.h"

namespace medvault::gateway {

Facts& Facts::String(absl::string_view name, absl::string_view value) {
  (*request_.mutable_facts())[std::string(name)].set_string_value(std::string(value));
  return *this;
}
Facts& Facts::Bool(absl::string_view name, bool value) {
  (*request_.mutable_facts())[std::string(name)].set_bool_value(value);
  return *this;
}
Facts& Facts::Time(absl::string_view name, absl::Time value) {
  return String(name, PolicyTime(value));
}
Facts& Facts::Set(absl::string_view name, const std::vector<std::string>& values) {
  auto* list = (*request_.mutable_facts())[std::string(name)].mutable_list_value();
  for (const auto& v : values) list->add_values(v);
  return *this;
}

std::string PolicyTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

namespace {

// licence.* facts from what the caller's licence read found. Without an
// entry there is no licence.status, and policy denies (status unknown).
void AddLicenceFacts(const Licence& licence, Facts& facts) {
  if (const char* status = PolicyLicenceStatus(licence.status)) {
    facts.String("licence.status", status);
  }
  if (licence.valid_until != 0) {
    facts.Time("licence.expires_at",
               absl::FromUnixSeconds(static_cast<int64_t>(licence.valid_until)));
  }
  // The index's last complete sync is when the status was last confirmed.
  if (licence.synced_ms > 0)
    facts.Time("licence.verified_at", absl::FromUnixMillis(licence.synced_ms));
}

}  // namespace

absl::StatusOr<policy::v1::Decision> Authorizer::Decide(const Caller& caller,
                                                        absl::string_view action, Facts facts,
                                                        absl::Time now) {
  facts.String("actor.id", caller.actor_id)
      .String("actor.organization_id", caller.organization.organization_id)
      .Bool("actor.organization_registered", caller.organization_registered);
  if (caller.is_practitioner()) facts.Set("actor.specialties", caller.specialties);
  if (caller.licence.has_value()) AddLicenceFacts(*caller.licence, facts);
  internal::v1::EvaluateRequest request;
  *request.mutable_request() = std::move(facts.request());
  request.mutable_request()->set_action(std::string(action));
  request.mutable_request()->set_role(caller.policy_role);
  request.mutable_request()->set_time(PolicyTime(now));
  grpc::ClientContext context;
  backends_.SetDeadline(context);
  internal::v1::EvaluateResponse response;
  grpc::Status status = backends_.policy().Evaluate(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    // No bundle loaded: default deny, but say why.
    return absl::UnavailableError("policy has no bundle loaded; every request is refused");
  }
  if (!status.ok()) return BackendError("policy", "Evaluate", status);
  return std::move(*response.mutable_decision());
}

absl::StatusOr<policy::v1::Decision> Authorizer::Authorize(const Caller& caller,
                                                           absl::string_view action, Facts facts,
                                                           absl::Time now, v1::AuditEvent denied) {
  ASSIGN_OR_RETURN(policy::v1::Decision decision, Decide(caller, action, std::move(facts), now));
  if (decision.effect() == policy::v1::ALLOW) return decision;
  FillAuditEvent(caller, action, now, decision, denied);
  denied.set_outcome(v1::AuditEvent::DENIED);
  absl::Status logged =
      db_.Write([&](sqlite3*) { return db_.audit_appender().Append(denied).status(); });
  if (!logged.ok()) {
    // Still a deny; the caller learns nothing more, the operator does.
    log::Error("audit.denial_not_logged",
               {{"decision_id", decision.decision_id()}, {"error", logged}});
  }
  std::string rules =
      decision.rule_ids().empty() ? "no rule allows it" : absl::StrJoin(decision.rule_ids(), ", ");
  return absl::PermissionDeniedError(absl::StrCat("policy denied ", action, ": decision ",
                                                  decision.decision_id(), ", rule ", rules));
}

void FillAuditEvent(const Caller& caller, absl::string_view action, absl::Time now,
                    const policy::v1::Decision& decision, v1::AuditEvent& event) {
  *event.mutable_time() = ToTimestamp(now);
  *event.mutable_actor() = caller.AuditActor();
  event.set_action(std::string(action));
  event.set_outcome(decision.effect() == policy::v1::ALLOW ? v1::AuditEvent::SUCCEEDED
                                                           : v1::AuditEvent::DENIED);
  event.set_decision_id(decision.decision_id());
  *event.mutable_rule_ids() = decision.rule_ids();
  event.set_policy_version(decision.policy_version());
  event.clear_obligations();
  event.clear_obligation_details();
  for (const auto& o : decision.obligations()) {
    event.add_obligations(o.name());
    v1::Obligation* detail = event.add_obligation_details();
    detail->set_name(o.name());
    detail->set_due(o.due());
  }
}

v1::Decision PublicDecision(const policy::v1::Decision& decision) {
  v1::Decision out;
  out.set_decision_id(decision.decision_id());
  *out.mutable_rule_ids() = decision.rule_ids();
  out.set_policy_version(decision.policy_version());
  for (const auto& o : decision.obligations()) {
    auto* ob = out.add_obligations();
    ob->set_name(o.name());
    ob->set_due(o.due());
  }
  return out;
}

}  // namespace medvault::gateway
