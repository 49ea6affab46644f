#include "daemon/gateway/research_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/sqlite.h"
#include "daemon/common/status_macros.h"
#include "daemon/gateway/audit_log.h"
#include "daemon/gateway/privacy.h"
#include "daemon/gateway/statistics.h"

namespace medvault::gateway {
namespace {

constexpr char kRefusedBudget[] = "privacy_budget_exhausted";

// What `organization_id` spent after `since`.
absl::StatusOr<v1::PrivacyAmount> SpentSince(sqlite3* db, const std::string& organization_id,
                                             absl::Time since) {
  SqliteStatement q(db, RegistryDb::kOwner,
                    "SELECT COALESCE(SUM(epsilon_micros), 0), COALESCE(SUM(delta_femtos), 0) "
                    "FROM privacy_spends WHERE organization_id = ? AND time > ?");
  RETURN_IF_ERROR(q.status());
  q.BindText(1, organization_id).Bind(2, DbTime(since));
  RETURN_IF_ERROR(q.Step().status());
  v1::PrivacyAmount spent;
  spent.set_epsilon_micros(q.Int(0));
  spent.set_delta_femtos(q.Int(1));
  return spent;
}

std::string Amount(int64_t epsilon_micros, int64_t delta_femtos) {
  return absl::StrCat("epsilon ", static_cast<double>(epsilon_micros) / privacy::kEpsilonUnit,
                      ", delta ", static_cast<double>(delta_femtos) / privacy::kDeltaUnit);
}

}  // namespace

grpc::Status ResearchService::CountPatients(grpc::ServerContext* context,
                                            const v1::CountPatientsRequest* request,
                                            v1::CountPatientsResponse* response) {
  return Serve(core_, context,
               [&](const Caller& c) { return DoCountPatients(c, *request, *response); });
}

absl::Status ResearchService::DoCountPatients(const Caller& caller,
                                              const v1::CountPatientsRequest& request,
                                              v1::CountPatientsResponse& response) {
  const v1::StatisticsQuery& query = request.query();
  RETURN_IF_ERROR(CheckStatisticsQuery("query", query));
  const absl::Time now = absl::Now();
  v1::AuditEvent event;
  event.set_method("/medvault.v1.ResearchService/CountPatients");
  *event.mutable_statistics_query() = query;
  Facts facts;
  facts.String("request.purpose", "RESEARCH")
      .Set("query.dimensions", DimensionNames(query))
      .Set("query.categories", CountedCategories(query));
  ASSIGN_OR_RETURN(auto decision,
                   core_.authorizer.Authorize(caller, "stats.query", std::move(facts), now, event));
  FillAuditEvent(caller, "stats.query", now, decision, event);
  absl::StatusOr<ReleasePlan> plan = ReleasePlanOf(decision);
  if (!plan.ok()) {
    log::Error("research.policy_without_release_plan",
               {{"decision_id", decision.decision_id()}, {"error", plan.status()}});
    return plan.status();
  }

  // The answer is computed before the budget is spent, and thrown away
  // unseen if the budget does not allow it.
  privacy::SecureRandom random;
  std::vector<privacy::Cell> cells;
  RETURN_IF_ERROR(core_.db.Read([&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(cells,
                     CountPatientGroups(db, query, plan->mechanism.max_contributions, random));
    return absl::OkStatus();
  }));
  std::vector<privacy::ReleasedCell> released =
      privacy::Release(cells, plan->k, plan->mechanism, random);

  const std::string& organization = caller.organization.organization_id;
  // For the Gaussian mechanism, what is proven (privacy.h) is charged.
  const int64_t epsilon = plan->mechanism.ChargedEpsilonMicros();
  const int64_t delta = plan->mechanism.delta_femtos;
  event.mutable_privacy_spent()->set_epsilon_micros(epsilon);
  event.mutable_privacy_spent()->set_delta_femtos(delta);
  v1::PrivacyAmount remaining;
  absl::Status spent = CommitWithAudit(core_.db, event, [&](sqlite3* db) -> absl::Status {
    ASSIGN_OR_RETURN(v1::PrivacyAmount before,
                     SpentSince(db, organization, now - plan->budget_period));
    const int64_t epsilon_left = plan->budget_epsilon_micros - before.epsilon_micros();
    const int64_t delta_left = plan->budget_delta_femtos - before.delta_femtos();
    if (epsilon > epsilon_left || delta > delta_left) {
      return absl::ResourceExhaustedError(
          absl::StrCat("privacy budget of ", organization, " exhausted: ",
                       Amount(std::max<int64_t>(0, epsilon_left), std::max<int64_t>(0, delta_left)),
                       " left within ", absl::FormatDuration(plan->budget_period),
                       "; this query costs ", Amount(epsilon, delta)));
    }
    SqliteStatement q(db, RegistryDb::kOwner,
                      "INSERT INTO privacy_spends (organization_id, time, epsilon_micros, "
                      "delta_femtos, decision_id) VALUES (?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(q.status());
    q.BindText(1, organization).Bind(2, DbTime(now)).Bind(3, epsilon).Bind(4, delta);
    q.BindText(5, decision.decision_id());
    RETURN_IF_ERROR(q.Step().status());
    remaining.set_epsilon_micros(epsilon_left - epsilon);
    remaining.set_delta_femtos(delta_left - delta);
    return absl::OkStatus();
  });
  if (absl::IsResourceExhausted(spent)) {
    // Refused after policy allowed it: logged as a denial that spent
    // nothing.
    event.set_outcome(v1::AuditEvent::DENIED);
    event.set_refusal(kRefusedBudget);
    event.clear_privacy_spent();
    RETURN_IF_ERROR(
        core_.db.Write([&](sqlite3*) { return core_.db.audit_appender().Append(event).status(); }));
  }
  RETURN_IF_ERROR(spent);

  for (const privacy::ReleasedCell& cell : released) {
    if (cell.suppressed) continue;
    v1::StatisticsCell* out = response.add_cells();
    out->mutable_key()->Assign(cell.key.begin(), cell.key.end());
    out->set_patients(cell.value);
  }
  response.set_k(plan->k);
  response.set_mechanism(plan->mechanism_name);
  response.set_max_contributions(plan->mechanism.max_contributions);
  *response.mutable_spent() = event.privacy_spent();
  *response.mutable_remaining() = remaining;
  *response.mutable_decision() = PublicDecision(decision);
  return absl::OkStatus();
}

}  // namespace medvault::gateway
