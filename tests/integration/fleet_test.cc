// Integration tests of the whole fleet: medvaultd and the five sandboxed
// service processes built from this tree, a real SoftHSM2 token, a real
// anvil chain, gRPC over real Unix sockets and a real TLS handshake.
// Each test starts a fleet of its own (see fleet.h).
#include "tests/integration/fleet.h"

#include <grpcpp/grpcpp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/common/users.h"
#include "daemon/medvaultd/supervisor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/v1/system.grpc.pb.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

// CTest names each case "<suite>.<test>" and `ctest -R` is case-sensitive:
// the suite is spelled "fleet" so that `ctest -R fleet` selects these cases.
using fleet = Fleet;

// The restart requirement: a crashed process is back SERVING within this.
constexpr absl::Duration kRestartBudget = absl::Seconds(2);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ServiceUser(Role role) { return absl::StrCat("medvault-", RoleName(role)); }

std::vector<std::string> AllRoleNames() {
  std::vector<std::string> names;
  for (Role role : kStartOrder) names.emplace_back(RoleName(role));
  return names;
}

// Client side of the public API's mutual TLS. Empty cert/key: no client
// certificate is presented.
struct ClientTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// One SystemService.GetSystemInfo call over TLS, as an organisation makes it.
grpc::Status CallGetSystemInfo(const std::string& address, const ClientTls& files,
                               v1::GetSystemInfoResponse* response) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(files.ca_file);
  if (!files.cert_file.empty()) {
    tls.pem_cert_chain = ReadFile(files.cert_file);
    tls.pem_private_key = ReadFile(files.key_file);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // no connection shared between calls
  auto stub = v1::SystemService::NewStub(
      grpc::CreateCustomChannel(address, grpc::SslCredentials(tls), args));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
  return stub->GetSystemInfo(&context, v1::GetSystemInfoRequest(), response);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("gRPC code ", status.error_code(), ": ", status.error_message());
}

// Checks the refusal of a TLS client: the connection fails and nothing of
// the response arrives.
void ExpectRefused(const grpc::Status& status, const v1::GetSystemInfoResponse& response) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(status);
  EXPECT_EQ(response.ByteSizeLong(), 0u) << response.DebugString();
}

// Every component, probed on its Unix socket, and the operator's tool
// agree that all five processes under medvaultd are SERVING.
TEST_F(fleet, AllFiveServingUnderMedvaultd) {
  for (Role role : kStartOrder) {
    SCOPED_TRACE(RoleName(role));
    HealthReport report = CheckHealth(socket_path(role), absl::Seconds(5));
    EXPECT_EQ(report.health, Health::kServing) << report.detail;
    MEDVAULT_EXPECT_OK(ChildPid(role));
  }
  CommandResult health = RunCtl({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.output;
  for (const std::string& name : AllRoleNames()) {
    EXPECT_THAT(health.output, ContainsRegex(name + " +SERVING")) << health.output;
  }
}

// kill -9 of any child: medvaultd starts a new process, SERVING within 2 s.
TEST_F(fleet, KillNineRestartsEachChild) {
  for (Role role : kStartOrder) {
    SCOPED_TRACE(RoleName(role));
    absl::StatusOr<pid_t> old_pid = ChildPid(role);
    MEDVAULT_ASSERT_OK(old_pid);
    const absl::Time killed_at = absl::Now();
    ASSERT_EQ(kill(*old_pid, SIGKILL), 0) << strerror(errno);
    // Waits longer than the budget so that a slow restart is measured, not
    // just reported as missing.
    absl::StatusOr<pid_t> new_pid = WaitRestarted(role, *old_pid, absl::Seconds(30));
    const absl::Duration took = absl::Now() - killed_at;
    MEDVAULT_ASSERT_OK(new_pid);
    std::cout << "[restart] kill -9 " << RoleName(role) << " (pid " << *old_pid
              << "): back SERVING as pid " << *new_pid << " after "
              << absl::ToInt64Milliseconds(took) << " ms\n";
    RecordProperty(absl::StrCat("restart_ms_", RoleName(role)),
                   std::to_string(absl::ToInt64Milliseconds(took)));
    EXPECT_LE(took, kRestartBudget) << RoleName(role) << " took " << took << " to come back";
    MEDVAULT_EXPECT_OK(
        WaitForLogLine({"event=child.exited ", absl::StrCat("child=", RoleName(role), " "),
                        absl::StrCat("child_pid=", *old_pid, " "), "how=\"signal SIGKILL\""},
                       absl::Seconds(5)));
  }
  MEDVAULT_EXPECT_OK(WaitAllServing(absl::Seconds(10)));
}

// A syscall outside a child's seccomp allowlist kills it with SIGSYS, and
// medvaultd restarts it (the SIGUSR2 test hook makes it call mount(2)).
TEST_F(fleet, SeccompViolationKillsWithSigsysAndIsRestarted) {
  for (Role role : kStartOrder) {
    SCOPED_TRACE(RoleName(role));
    absl::StatusOr<pid_t> old_pid = ChildPid(role);
    MEDVAULT_ASSERT_OK(old_pid);
    ASSERT_EQ(kill(*old_pid, SIGUSR2), 0) << strerror(errno);
    MEDVAULT_EXPECT_OK(
        WaitForLogLine({absl::StrCat("proc=", RoleName(role), " pid=", *old_pid, " "),
                        "event=test_hook.forbidden_syscall"},
                       absl::Seconds(10)));
    MEDVAULT_ASSERT_OK(WaitForLogLine(
        {"proc=medvaultd ", "event=child.exited ", absl::StrCat("child=", RoleName(role), " "),
         absl::StrCat("child_pid=", *old_pid, " "), "how=\"signal SIGSYS"},
        absl::Seconds(10)));
    absl::StatusOr<pid_t> new_pid = WaitRestarted(role, *old_pid, absl::Seconds(30));
    MEDVAULT_ASSERT_OK(new_pid);
  }
  EXPECT_THAT(ReadLog(), Not(HasSubstr("test_hook.seccomp_did_not_kill")));
  MEDVAULT_EXPECT_OK(WaitAllServing(absl::Seconds(10)));
}

// An internal method refuses a caller whose uid is not on its allowlist
// (PERMISSION_DENIED, logged with the uid) and serves one that is.
TEST_F(fleet, CallerNotOnAllowlistIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to call as a second uid";
  absl::StatusOr<uid_t> storage_uid = LookupUid("medvault-storage");
  MEDVAULT_ASSERT_OK(storage_uid);

  // medvault-storage is in the socket group, so it reaches the keyvault,
  // but GetTokenInfo is allowed only to medvault-gateway and root.
  CommandResult refused = RunCtlAs("medvault-storage", {"hsm", "info"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("(gRPC code 7)"));  // PERMISSION_DENIED
  EXPECT_THAT(refused.output, Not(HasSubstr("token:")));
  MEDVAULT_EXPECT_OK(WaitForLogLine({"proc=keyvault ", "event=rpc.denied ", "method=GetTokenInfo ",
                                     absl::StrCat(" uid=", *storage_uid, " ")},
                                    absl::Seconds(10)));

  CommandResult allowed = RunCtl({"hsm", "info"});
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_THAT(allowed.output, HasSubstr("token:        medvault-dev"));
}

// The gateway accepts a client certificate issued by the deployment's CA
// and tells the caller who it is and how every component is doing.
TEST_F(fleet, GatewayAcceptsClientFromDeploymentCa) {
  v1::GetSystemInfoResponse info;
  grpc::Status status =
      CallGetSystemInfo(gateway_address(), {ca_cert(), client_cert(), client_key()}, &info);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_THAT(info.caller_subject(), HasSubstr(absl::StrCat("CN=", kClientName)));
  EXPECT_EQ(info.chain_id(), kAnvilChainId);
  std::vector<std::string> names;
  for (const v1::ComponentStatus& component : info.components()) {
    names.push_back(component.name());
    EXPECT_EQ(component.status(), v1::ComponentStatus::SERVING)
        << component.name() << ": " << component.detail();
  }
  EXPECT_THAT(names, UnorderedElementsAreArray(AllRoleNames()));

  // The operator's tool makes the same call.
  CommandResult ctl = RunCtl({"gateway", "info", "--address", gateway_address(), "--ca", ca_cert(),
                              "--cert", client_cert(), "--key", client_key()});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.output;
  EXPECT_THAT(ctl.output, HasSubstr(absl::StrCat("CN=", kClientName)));
}

// A TLS client that presents no certificate gets no answer.
TEST_F(fleet, GatewayRefusesClientWithoutCertificate) {
  const pid_t gateway_pid = ChildPid(Role::kGateway).value_or(-1);
  v1::GetSystemInfoResponse control;
  grpc::Status accepted =
      CallGetSystemInfo(gateway_address(), {ca_cert(), client_cert(), client_key()}, &control);
  ASSERT_TRUE(accepted.ok()) << "control call with a certificate: " << Describe(accepted);

  v1::GetSystemInfoResponse response;
  grpc::Status status = CallGetSystemInfo(gateway_address(), {ca_cert(), "", ""}, &response);
  ExpectRefused(status, response);
  // The gateway, not the client, ended the handshake, for this reason (OpenSSL's words).
  MEDVAULT_EXPECT_OK(
      WaitForLogLine({"proc=gateway ", "Handshake failed", "peer did not return a certificate"},
                     absl::Seconds(5)));
  // ... and goes on serving, in the same process.
  EXPECT_EQ(CheckHealth(socket_path(Role::kGateway), absl::Seconds(5)).health, Health::kServing);
  EXPECT_EQ(ChildPid(Role::kGateway).value_or(0), gateway_pid);
}

// A client certificate issued by another CA is refused, even though the
// client trusts the right CA for the server.
TEST_F(fleet, GatewayRefusesCertificateFromAnotherCa) {
  absl::StatusOr<std::string> other = MakeEnvironmentWithAnotherCa();
  MEDVAULT_ASSERT_OK(other);
  ASSERT_NE(ReadFile(*other + "/pki/ca.pem"), ReadFile(ca_cert())) << "dev-env reused the CA";

  const pid_t gateway_pid = ChildPid(Role::kGateway).value_or(-1);
  v1::GetSystemInfoResponse control;
  grpc::Status accepted =
      CallGetSystemInfo(gateway_address(), {ca_cert(), client_cert(), client_key()}, &control);
  ASSERT_TRUE(accepted.ok()) << "control call with the deployment's certificate: "
                             << Describe(accepted);

  v1::GetSystemInfoResponse response;
  grpc::Status status = CallGetSystemInfo(
      gateway_address(), {ca_cert(), *other + "/pki/client.pem", *other + "/pki/client.key"},
      &response);
  ExpectRefused(status, response);
  // The gateway, not the client, ended the handshake, for this reason (OpenSSL's words).
  MEDVAULT_EXPECT_OK(WaitForLogLine(
      {"proc=gateway ", "Handshake failed", "certificate verify failed"}, absl::Seconds(5)));
  // ... and goes on serving, in the same process.
  EXPECT_EQ(CheckHealth(socket_path(Role::kGateway), absl::Seconds(5)).health, Health::kServing);
  EXPECT_EQ(ChildPid(Role::kGateway).value_or(0), gateway_pid);
}

// Started as root, every child runs as its own user with the socket group
// only, no_new_privs, a seccomp filter and no capability at all.
TEST_F(fleet, ChildrenAreSandboxedWhenRoot) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root: only a process started as root switches users and drops "
                    "capabilities";
  }
  absl::StatusOr<gid_t> socket_gid = LookupGid("medvault");
  MEDVAULT_ASSERT_OK(socket_gid);
  for (Role role : kStartOrder) {
    SCOPED_TRACE(RoleName(role));
    const std::string user = ServiceUser(role);
    passwd* pw = getpwnam(user.c_str());
    ASSERT_NE(pw, nullptr) << "no user " << user << " (scripts/create-users)";
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    absl::StatusOr<pid_t> pid = ChildPid(role);
    MEDVAULT_ASSERT_OK(pid);
    absl::StatusOr<std::map<std::string, std::string>> status = ReadProcStatus(*pid);
    MEDVAULT_ASSERT_OK(status);
    std::map<std::string, std::string>& s = *status;

    // Real, effective, saved and filesystem ids.
    EXPECT_EQ(s["Uid"], absl::StrCat(uid, "\t", uid, "\t", uid, "\t", uid));
    EXPECT_EQ(s["Gid"], absl::StrCat(gid, "\t", gid, "\t", gid, "\t", gid));
    std::vector<std::string> groups = absl::StrSplit(s["Groups"], ' ', absl::SkipEmpty());
    EXPECT_THAT(groups, UnorderedElementsAre(std::to_string(*socket_gid)));
    EXPECT_EQ(s["NoNewPrivs"], "1");
    EXPECT_EQ(s["Seccomp"], "2");  // SECCOMP_MODE_FILTER
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
      EXPECT_EQ(s[set], "0000000000000000") << set;
    }
  }
}

// SIGTERM to medvaultd stops every child in order and medvaultd exits 0,
// leaving no process of the fleet behind.
TEST_F(fleet, StopsCleanlyOnSigterm) {
  for (Role role : kStartOrder) MEDVAULT_ASSERT_OK(ChildPid(role));
  absl::StatusOr<int> status = StopMedvaultd(kStopGrace);
  MEDVAULT_ASSERT_OK(status);
  EXPECT_EQ(supervisor::DescribeExit(*status), "exit code 0");
  EXPECT_THAT(FleetProcesses(), IsEmpty());
  for (const std::string& name : AllRoleNames()) {
    MEDVAULT_EXPECT_OK(WaitForLogLine(
        {"event=child.stopped ", absl::StrCat("child=", name, " "), "how=\"exit code 0\""},
        absl::ZeroDuration()));
  }
  MEDVAULT_EXPECT_OK(
      WaitForLogLine({"proc=medvaultd ", "event=stopped ", "result=OK"}, absl::ZeroDuration()));
}

// A process that keeps crashing makes medvaultd give up loudly: it names the
// process, stops the whole fleet and exits non-zero (the default allows 5
// crashes a minute; the sixth is one too many).
TEST_F(fleet, CrashLoopStopsTheFleet) {
  constexpr int kCrashes = 6;
  absl::StatusOr<pid_t> pid = ChildPid(Role::kPolicy);
  MEDVAULT_ASSERT_OK(pid);
  for (int crash = 1; crash <= kCrashes; ++crash) {
    SCOPED_TRACE(absl::StrCat("crash ", crash));
    ASSERT_EQ(kill(*pid, SIGKILL), 0) << strerror(errno);
    if (crash == kCrashes) break;
    absl::StatusOr<pid_t> next = WaitRestarted(Role::kPolicy, *pid, absl::Seconds(30));
    MEDVAULT_ASSERT_OK(next);
    pid = next;
  }
  absl::StatusOr<int> status = WaitMedvaultdExit(kStopGrace);
  MEDVAULT_ASSERT_OK(status);
  EXPECT_EQ(supervisor::DescribeExit(*status), "exit code 1");
  MEDVAULT_EXPECT_OK(WaitForLogLine(
      {"proc=medvaultd ", "event=fleet.giving_up ", "medvault-policy is crash-looping"},
      absl::ZeroDuration()));
  EXPECT_THAT(FleetProcesses(), IsEmpty());
}

// The operator's internal calls work end to end: the keyvault is logged in
// to the SoftHSM2 token and the signer reads anvil's chain id.
TEST_F(fleet, InternalRpcsWorkEndToEnd) {
  CommandResult hsm = RunCtl({"hsm", "info"});
  EXPECT_EQ(hsm.exit_code, 0) << hsm.output;
  EXPECT_THAT(hsm.output, HasSubstr("token:        medvault-dev"));
  EXPECT_THAT(hsm.output, HasSubstr("logged in:    yes"));

  CommandResult chain = RunCtl({"chain", "info"});
  EXPECT_EQ(chain.exit_code, 0) << chain.output;
  EXPECT_THAT(chain.output, HasSubstr(absl::StrCat("chain id:     ", kAnvilChainId)));
}

}  // namespace
}  // namespace medvault::integration
