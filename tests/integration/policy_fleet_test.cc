// medvault-policy inside the real fleet with the development bundle that
// scripts/dev-env signs: served at start, SIGHUP reloads it, an altered
// bundle is refused while the last good one keeps serving, and a newer
// bundle signed by the regulator's key is picked up.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "medvault/internal/v1/policy.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using policy_fleet = Fleet;

std::string Slurp(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

TEST_F(policy_fleet, SighupReloadsKeepingTheLastGoodBundle) {
  const std::string bundle = dir() + "/policy-bundle";
  CommandResult info = RunCtl({"policy", "info"});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_THAT(info.output, HasSubstr("version:   2"));

  absl::StatusOr<pid_t> pid = ChildPid(Role::kPolicy);
  MEDVAULT_ASSERT_OK(pid);

  // One byte of a signed file changed: refused, version 2 still served.
  const std::string licence = bundle + "/licence.textproto";
  const std::string original = Slurp(licence);
  std::ofstream(licence, std::ios::trunc) << original << "\n# altered\n";
  ASSERT_EQ(kill(*pid, SIGHUP), 0);
  MEDVAULT_ASSERT_OK(WaitForLogLine({"policy.reload_refused"}, absl::Seconds(10)));
  info = RunCtl({"policy", "info"});
  EXPECT_THAT(info.output, HasSubstr("version:   2"));
  EXPECT_THAT(info.output, HasSubstr("last load refused"));

  // Version 3 signed with the regulator's (development) key: loaded.
  std::ofstream(licence, std::ios::trunc) << original;
  const std::string manifest = bundle + "/manifest.textproto";
  std::string text = Slurp(manifest);
  ASSERT_THAT(text, HasSubstr("version: 2\n"));
  absl::StrReplaceAll({{"version: 2\n", "version: 3\n"}}, &text);
  std::ofstream(manifest, std::ios::trunc) << text;
  CommandResult sign =
      RunCtl({"policy", "sign", bundle, "--key", dir() + "/regulator/policy-regulator.key"});
  ASSERT_EQ(sign.exit_code, 0) << sign.output;
  ASSERT_EQ(kill(*pid, SIGHUP), 0);
  MEDVAULT_ASSERT_OK(WaitForLogLine({"policy.bundle_loaded", "version=3"}, absl::Seconds(10)));
  info = RunCtl({"policy", "info"});
  EXPECT_THAT(info.output, HasSubstr("version:   3"));

  // The process was not restarted by any of this.
  absl::StatusOr<pid_t> after = ChildPid(Role::kPolicy);
  MEDVAULT_ASSERT_OK(after);
  EXPECT_EQ(*after, *pid);
}

// Break-glass by a licensed practitioner of a registered hospital.
constexpr char kEmergencyRead[] = R"pb(
  action: "record.read_emergency"
  role: "PRACTITIONER"
  time: "2026-06-01T12:00:00Z"
  request_id: "fleet-test-1"
  facts {
    key: "actor.id"
    value { string_value: "dr-ana" }
  }
  facts {
    key: "actor.organization_id"
    value { string_value: "hospital-1" }
  }
  facts {
    key: "actor.organization_registered"
    value { bool_value: true }
  }
  facts {
    key: "licence.status"
    value { string_value: "ACTIVE" }
  }
  facts {
    key: "licence.expires_at"
    value { string_value: "2027-01-01T00:00:00Z" }
  }
  facts {
    key: "licence.verified_at"
    value { string_value: "2026-06-01T08:00:00Z" }
  }
  facts {
    key: "patient.id"
    value { string_value: "patient-7" }
  }
  facts {
    key: "emergency.reason"
    value { string_value: "anaphylaxis" }
  }
)pb";

grpc::Status Evaluate(const std::string& socket, const policy::v1::Request& request,
                      internal::v1::EvaluateResponse* response) {
  auto stub = internal::v1::Policy::NewStub(
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  internal::v1::EvaluateRequest wrapped;
  *wrapped.mutable_request() = request;
  return stub->Evaluate(&context, wrapped, response);
}

TEST_F(policy_fleet, EvaluatesOverTheSocketAndNamesBadFields) {
  policy::v1::Request request;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kEmergencyRead, &request));
  internal::v1::EvaluateResponse response;
  grpc::Status status = Evaluate(socket_path(Role::kPolicy), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.decision().effect(), policy::v1::ALLOW) << response.DebugString();
  EXPECT_THAT(response.decision().rule_ids(), ::testing::Contains("emergency.break_glass"));
  EXPECT_EQ(response.decision().obligations_size(), 3) << response.DebugString();
  EXPECT_EQ(response.decision().decision_id().size(), 32u);

  // A suspended licence denies break-glass, naming the rule.
  (*request.mutable_facts())["licence.status"].set_string_value("SUSPENDED");
  status = Evaluate(socket_path(Role::kPolicy), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.decision().effect(), policy::v1::DENY);
  EXPECT_THAT(response.decision().rule_ids(), ::testing::Contains("licence.suspended_or_revoked"));

  // Malformed requests are refused, not decided, and the message names
  // what was wrong; so do the google.rpc.BadRequest details, with paths in
  // EvaluateRequest.
  policy::v1::Request unknown_action = request;
  unknown_action.set_action("record.teleport");
  status = Evaluate(socket_path(Role::kPolicy), unknown_action, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("record.teleport"));
  EXPECT_THAT(BadRequestFields(status), ElementsAre("request.action"));

  policy::v1::Request unknown_fact = request;
  (*unknown_fact.mutable_facts())["patient.shoe_size"].set_string_value("42");
  status = Evaluate(socket_path(Role::kPolicy), unknown_fact, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("patient.shoe_size"));
  EXPECT_THAT(BadRequestFields(status), ElementsAre("request.facts[\"patient.shoe_size\"]"));
}

}  // namespace
}  // namespace medvault::integration
