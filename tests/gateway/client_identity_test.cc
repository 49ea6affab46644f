// The gateway's client-certificate checks (daemon/gateway/client_identity.h)
// over real TLS handshakes on a loopback port, with certificates and CRLs
// from the real CA code (daemon/ctl/ca.h).
#include "daemon/gateway/client_identity.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/common/files.h"
#include "daemon/common/grpc_status.h"
#include "daemon/ctl/ca.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/v1/system.grpc.pb.h"

namespace medvault::gateway {
namespace {

using ::testing::HasSubstr;

MATCHER_P(StatusIs, code, "") {
  const absl::Status& status = arg;
  *result_listener << "status is " << status;
  return status.code() == code;
}

std::string Read(const std::string& path) {
  auto text = ReadWholeFile(AT_FDCWD, path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

// Answers with the caller's identity as "org|role|display name|serial",
// revocation checked on every call.
class IdentityEcho : public v1::SystemService::Service {
 public:
  std::shared_ptr<RevocationList> revocations;

 private:
  grpc::Status GetSystemInfo(grpc::ServerContext* context, const v1::GetSystemInfoRequest*,
                             v1::GetSystemInfoResponse* response) override {
    auto id = CallerIdentity(*context, revocations.get());
    if (!id.ok()) return ToGrpcStatus(id.status());
    response->set_caller_subject(absl::StrCat(id->organization_id, "|", id->role, "|",
                                              id->display_name, "|", id->serial_hex));
    return grpc::Status::OK;
  }
};

class ClientIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "identity_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    ca_dir_ = root_ + "/ca";
    ASSERT_TRUE(ca::Init({.dir = ca_dir_, .name = "test CA"}).ok());
    ca::IssueOptions o;
    o.dir = ca_dir_;
    o.organization_id = "gateway";
    o.server = true;
    o.ip_addresses = {"127.0.0.1"};
    o.out_prefix = root_ + "/server";
    auto server = ca::Issue(o);
    ASSERT_TRUE(server.ok()) << server.status();
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(root_);
  }

  ca::Issued IssueClient(const std::string& org, const std::string& ca_dir = "") {
    ca::IssueOptions o;
    o.dir = ca_dir.empty() ? ca_dir_ : ca_dir;
    o.organization_id = org;
    o.role = "hospital";
    o.display_name = "Hospital " + org;
    o.out_prefix = root_ + "/" + org;
    auto issued = ca::Issue(o);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *issued : ca::Issued();
  }

  // The gateway's credentials on 127.0.0.1, any free port.
  void StartServer() {
    auto list = RevocationList::Create(ca_dir_ + "/crl.pem", Read(ca_dir_ + "/ca.pem"));
    ASSERT_TRUE(list.ok()) << list.status();
    revocations_ = std::move(*list);
    service_.revocations = revocations_;
    auto credentials = MutualTlsServerCredentials(Read(root_ + "/server.pem"),
                                                  SecretData(Read(root_ + "/server.key")),
                                                  Read(ca_dir_ + "/ca.pem"), revocations_);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  // A channel of its own (its own subchannel pool, so its own connection
  // and TLS handshake) with `client`'s certificate.
  std::shared_ptr<grpc::Channel> Connect(const ca::Issued& client) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = Read(ca_dir_ + "/ca.pem");
    tls.pem_cert_chain = Read(client.cert_file);
    tls.pem_private_key = Read(client.key_file);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), grpc::SslCredentials(tls),
                                     args);
  }

  // One call on `channel`; the identity echo on success.
  static absl::StatusOr<std::string> CallOn(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetSystemInfoResponse response;
    grpc::Status status =
        v1::SystemService::NewStub(channel)->GetSystemInfo(&context, {}, &response);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return response.caller_subject();
  }

  // One call on a new connection.
  absl::StatusOr<std::string> Call(const ca::Issued& client) { return CallOn(Connect(client)); }

  std::string root_;
  std::string ca_dir_;
  IdentityEcho service_;
  std::shared_ptr<RevocationList> revocations_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A valid certificate gets through, and the service sees its identity.
TEST_F(ClientIdentityTest, ValidCertificateIsAcceptedAndIdentified) {
  ca::Issued client = IssueClient("st-mary");
  StartServer();
  auto echo = Call(client);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, absl::StrCat("st-mary|hospital|Hospital st-mary|", client.serial_hex));
}

// After `ca revoke` writes a new CRL, the next connection with that
// certificate is refused at the handshake; the server was not restarted
// and other certificates still work.
TEST_F(ClientIdentityTest, RevokedCertificateIsRefusedWithoutRestart) {
  ca::Issued revoked = IssueClient("st-mary");
  ca::Issued other = IssueClient("st-john");
  StartServer();
  ASSERT_TRUE(Call(revoked).ok());
  ASSERT_TRUE(ca::Revoke(ca_dir_, revoked.serial_hex, ca::Reason::kKeyCompromise).ok());
  EXPECT_THAT(Call(revoked).status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(Call(other).ok());
  EXPECT_EQ(revocations_->crl_number(), 2u);
}

// A connection made before the revocation is refused on its next call
// (CallerIdentity with the list): connections outlive revocations.
TEST_F(ClientIdentityTest, OpenConnectionIsRefusedAfterRevocation) {
  ca::Issued client = IssueClient("st-mary");
  StartServer();
  auto channel = Connect(client);
  ASSERT_TRUE(CallOn(channel).ok());
  ASSERT_TRUE(ca::Revoke(ca_dir_, client.serial_hex, ca::Reason::kKeyCompromise).ok());
  auto refused = CallOn(channel);
  EXPECT_THAT(refused.status(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(refused.status().message(), HasSubstr("revoked"));
}

// OpenSSL still verifies the chain with an external verifier installed: a
// certificate from another CA, same organisation id, is refused.
TEST_F(ClientIdentityTest, CertificateFromAnotherCaIsRefused) {
  std::string other_ca = root_ + "/other-ca";
  ASSERT_TRUE(ca::Init({.dir = other_ca, .name = "test CA"}).ok());  // same subject, even
  ca::Issued forged = IssueClient("st-mary", other_ca);
  StartServer();
  EXPECT_THAT(Call(forged).status(), StatusIs(absl::StatusCode::kUnavailable));
}

// A corrupt CRL file is reported and the previous list stays in force: the
// revoked certificate stays refused, the others accepted; a good CRL
// written afterwards is picked up.
TEST_F(ClientIdentityTest, CorruptCrlKeepsPreviousList) {
  ca::Issued revoked = IssueClient("st-mary");
  ca::Issued other = IssueClient("st-john");
  ASSERT_TRUE(ca::Revoke(ca_dir_, revoked.serial_hex, ca::Reason::kUnspecified).ok());
  StartServer();
  std::string good = Read(ca_dir_ + "/crl.pem");
  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, ca_dir_, "crl.pem", "-----BEGIN X509 CRL-----\n").ok());
  EXPECT_THAT(Call(revoked).status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(Call(other).ok());
  EXPECT_THAT(revocations_->status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(revocations_->revoked_count(), 1u);

  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, ca_dir_, "crl.pem", good).ok());
  EXPECT_TRUE(revocations_->Refresh().ok());
}

// Without a good CRL ever loaded, every certificate is refused.
TEST_F(ClientIdentityTest, NoValidCrlFailsClosed) {
  ca::Issued client = IssueClient("st-mary");
  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, ca_dir_, "crl.pem", "garbage").ok());
  StartServer();
  EXPECT_THAT(revocations_->Check(client.serial_hex), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Call(client).status(), StatusIs(absl::StatusCode::kUnavailable));
}

// Regression guard: a validly signed but older CRL (a restored backup, an
// attacker's replay) must not un-revoke a certificate.
TEST_F(ClientIdentityTest, OlderCrlIsRejected) {
  ca::Issued client = IssueClient("st-mary");
  std::string old_crl = Read(ca_dir_ + "/crl.pem");
  ASSERT_TRUE(ca::Revoke(ca_dir_, client.serial_hex, ca::Reason::kUnspecified).ok());
  auto list = RevocationList::Create(ca_dir_ + "/crl.pem", Read(ca_dir_ + "/ca.pem"));
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, ca_dir_, "crl.pem", old_crl).ok());
  EXPECT_THAT((*list)->Check(client.serial_hex), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT((*list)->status().message(), HasSubstr("older"));
}

// A CRL signed by another CA is not believed, even with the same issuer name.
TEST_F(ClientIdentityTest, CrlFromAnotherCaIsRejected) {
  std::string other_ca = root_ + "/other-ca";
  ASSERT_TRUE(ca::Init({.dir = other_ca, .name = "test CA"}).ok());
  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, ca_dir_, "crl.pem", Read(other_ca + "/crl.pem")).ok());
  auto list = RevocationList::Create(ca_dir_ + "/crl.pem", Read(ca_dir_ + "/ca.pem"));
  ASSERT_TRUE(list.ok());
  EXPECT_THAT((*list)->status().message(), HasSubstr("signature"));
  EXPECT_THAT((*list)->Check("01"), StatusIs(absl::StatusCode::kUnavailable));
}

// The identity parser refuses certificates without a usable identity.
TEST_F(ClientIdentityTest, ParseClientIdentityRefusesUnusableCertificates) {
  EXPECT_THAT(ParseClientIdentity("not a certificate").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The server certificate has a CN but no OU (role).
  auto server = ParseClientIdentity(Read(root_ + "/server.pem"));
  EXPECT_THAT(server.status(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(server.status().message(), HasSubstr("OU"));
  EXPECT_TRUE(IsClientRole("device"));
  EXPECT_FALSE(IsClientRole("Hospital"));
  EXPECT_TRUE(ValidateOrganizationId("st-mary.hospital_1").ok());
  EXPECT_FALSE(ValidateOrganizationId(std::string(65, 'a')).ok());
}

}  // namespace
}  // namespace medvault::gateway
