// The client-certificate CA (daemon/ctl/ca.h): what it writes is checked
// with OpenSSL itself (X509_verify_cert, CRL parsing), not with ca.cc.
#include "daemon/ctl/ca.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/files.h"
#include "daemon/common/openssl_util.h"
#include "daemon/gateway/client_identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::ca {
namespace {

using ::testing::HasSubstr;

MATCHER_P(StatusIs, code, "") {
  const absl::Status& status = arg;
  *result_listener << "status is " << status;
  return status.code() == code;
}

using openssl::CrlPtr;
using openssl::Free;
using openssl::MemBio;
using openssl::X509Ptr;
using IntPtr = openssl::IntegerPtr;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX, X509_STORE_CTX_free>>;

std::string Read(const std::string& path) {
  auto text = ReadWholeFile(AT_FDCWD, path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

X509Ptr ReadCert(const std::string& path) {
  std::string pem = Read(path);
  auto bio = MemBio(pem);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

CrlPtr ReadCrl(const std::string& path) {
  std::string pem = Read(path);
  auto bio = MemBio(pem);
  return CrlPtr(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
}

uint64_t CrlNumber(X509_CRL* crl) {
  IntPtr n(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr)));
  uint64_t v = 0;
  EXPECT_NE(n, nullptr);
  if (n) ASN1_INTEGER_get_uint64(&v, n.get());
  return v;
}

bool CrlLists(X509_CRL* crl, const std::string& serial_hex) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(
        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr);
    char* hex = BN_bn2hex(bn);
    bool match = absl::AsciiStrToLower(hex) == serial_hex;
    OPENSSL_free(hex);
    BN_free(bn);
    if (match) return true;
  }
  return false;
}

// OpenSSL's verdict on `cert` against the CA, with the CRL when given.
int Verify(X509* ca, X509* cert, X509_CRL* crl = nullptr) {
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca);
  if (crl != nullptr) {
    X509_STORE_add_crl(store.get(), crl);
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class CaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ca_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/ca";
    ASSERT_TRUE(Init({.dir = dir_, .name = "test CA"}).ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  IssueOptions Client(const std::string& org, const std::string& role = "hospital") {
    IssueOptions o;
    o.dir = dir_;
    o.organization_id = org;
    o.role = role;
    o.out_prefix = root_ + "/" + org;
    return o;
  }
  Issued MustIssue(const IssueOptions& options) {
    auto issued = Issue(options);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *issued : Issued();
  }

  std::string root_;
  std::string dir_;
};

// init writes a CA certificate with the right extensions, a 0600 key and an
// empty CRL numbered 1 that the CA's key signed.
TEST_F(CaTest, InitWritesCaCertificateKeyAndEmptyCrl) {
  X509Ptr ca = ReadCert(dir_ + "/ca.pem");
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  X509_EXTENSION* bc =
      X509_get_ext(ca.get(), X509_get_ext_by_NID(ca.get(), NID_basic_constraints, -1));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(X509_EXTENSION_get_critical(bc), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_EQ(Mode(dir_ + "/ca.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/crl.pem"), 0644u);
  EXPECT_THAT(Read(dir_ + "/ca.key"), HasSubstr("BEGIN PRIVATE KEY"));
  CrlPtr crl = ReadCrl(dir_ + "/crl.pem");
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(CrlNumber(crl.get()), 1u);
  EXPECT_EQ(X509_CRL_get_REVOKED(crl.get()), nullptr);  // no entries at all
  EXPECT_NE(X509_CRL_get0_nextUpdate(crl.get()), nullptr);
}

// A directory that already holds a CA is never overwritten.
TEST_F(CaTest, InitRefusesExistingCa) {
  std::string before = Read(dir_ + "/ca.key");
  EXPECT_THAT(Init({.dir = dir_}), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Read(dir_ + "/ca.key"), before);
}

// A client certificate verifies against the CA for TLS client use, carries
// the identity the gateway reads, and is recorded in issued.txt.
TEST_F(CaTest, IssuedClientCertificateVerifiesAndCarriesIdentity) {
  IssueOptions options = Client("st-mary");
  options.display_name = "St Mary Hospital";
  Issued issued = MustIssue(options);
  X509Ptr ca = ReadCert(dir_ + "/ca.pem");
  X509Ptr cert = ReadCert(issued.cert_file);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(Verify(ca.get(), cert.get()), X509_V_OK);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  EXPECT_GE(issued.serial_hex.size(), 30u);  // 128 random bits
  EXPECT_EQ(Mode(issued.key_file), 0600u);

  auto id = gateway::ParseClientIdentity(Read(issued.cert_file));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->organization_id, "st-mary");
  EXPECT_EQ(id->role, "hospital");
  EXPECT_EQ(id->display_name, "St Mary Hospital");
  EXPECT_EQ(id->serial_hex, issued.serial_hex);
  EXPECT_EQ(id->subject, issued.subject);
  EXPECT_THAT(Read(dir_ + "/issued.txt"),
              HasSubstr(absl::StrCat(issued.serial_hex, "\t", issued.subject, "\thospital\t")));
}

// A server certificate has serverAuth and the requested names, and no role.
TEST_F(CaTest, ServerCertificateHasNamesAndServerAuth) {
  IssueOptions options = Client("gateway", "");
  options.server = true;
  options.dns_names = {"localhost"};
  options.ip_addresses = {"127.0.0.1", "::1"};
  Issued issued = MustIssue(options);
  X509Ptr cert = ReadCert(issued.cert_file);
  ASSERT_NE(cert, nullptr);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_THAT(gateway::ParseClientIdentity(Read(issued.cert_file)).status(),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

// Bad flags are INVALID_ARGUMENT naming the flag; nothing is written.
TEST_F(CaTest, IssueRejectsBadInputNamingTheFlag) {
  auto bad_role = Issue(Client("st-mary", "doctor"));
  EXPECT_THAT(bad_role.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad_role.status().message(), HasSubstr("--role"));
  auto bad_org = Issue(Client("St Mary"));
  EXPECT_THAT(bad_org.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad_org.status().message(), HasSubstr("--org"));
  IssueOptions long_life = Client("st-mary");
  long_life.days = 20000;  // the CA lives 3650 days
  EXPECT_THAT(Issue(long_life).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  IssueOptions no_names = Client("gw", "");
  no_names.server = true;
  EXPECT_THAT(Issue(no_names).status().message(), HasSubstr("--dns"));
  EXPECT_EQ(Read(dir_ + "/issued.txt"), "");
  EXPECT_FALSE(PathExists(AT_FDCWD, root_ + "/st-mary.key"));
}

// issue never overwrites an existing key or certificate.
TEST_F(CaTest, IssueRefusesToOverwrite) {
  MustIssue(Client("st-mary"));
  std::string key = Read(root_ + "/st-mary.key");
  EXPECT_THAT(Issue(Client("st-mary")).status(), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Read(root_ + "/st-mary.key"), key);
}

// Revoking publishes a CRL listing every revoked serial, with a crlNumber
// one higher each time; OpenSSL then refuses the certificate.
TEST_F(CaTest, RevokeListsSerialAndIncrementsCrlNumber) {
  Issued a = MustIssue(Client("st-mary"));
  Issued b = MustIssue(Client("acme-insurance", "insurer"));
  auto first = Revoke(dir_, a.serial_hex, Reason::kKeyCompromise);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->crl_number, 2u);
  // Upper case with colons, as other tools print serials, is the same serial.
  std::string upper = absl::AsciiStrToUpper(b.serial_hex);
  auto second =
      Revoke(dir_, absl::StrCat(upper.substr(0, 2), ":", upper.substr(2)), Reason::kUnspecified);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->crl_number, 3u);
  EXPECT_EQ(second->revoked_count, 2u);

  X509Ptr ca = ReadCert(dir_ + "/ca.pem");
  CrlPtr crl = ReadCrl(dir_ + "/crl.pem");
  ASSERT_NE(crl, nullptr);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(CrlNumber(crl.get()), 3u);
  EXPECT_TRUE(CrlLists(crl.get(), a.serial_hex));
  EXPECT_TRUE(CrlLists(crl.get(), b.serial_hex));
  X509Ptr cert = ReadCert(a.cert_file);
  EXPECT_EQ(Verify(ca.get(), cert.get(), crl.get()), X509_V_ERR_CERT_REVOKED);
  EXPECT_THAT(Read(dir_ + "/revoked.txt"), HasSubstr(a.serial_hex + "\t"));
}

// A serial the CA never issued is NOT_FOUND and the CRL stays as it was.
TEST_F(CaTest, RevokeUnknownSerialIsNotFound) {
  std::string before = Read(dir_ + "/crl.pem");
  EXPECT_THAT(Revoke(dir_, "0123456789abcdef", Reason::kUnspecified).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Revoke(dir_, "not hex", Reason::kUnspecified).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Read(dir_ + "/crl.pem"), before);
}

// Revoking twice changes nothing the second time.
TEST_F(CaTest, RevokeTwiceIsNoOp) {
  Issued a = MustIssue(Client("st-mary"));
  ASSERT_TRUE(Revoke(dir_, a.serial_hex, Reason::kSuperseded).ok());
  std::string crl = Read(dir_ + "/crl.pem");
  auto again = Revoke(dir_, a.serial_hex, Reason::kSuperseded);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_revoked);
  EXPECT_EQ(again->crl_number, 2u);
  EXPECT_EQ(Read(dir_ + "/crl.pem"), crl);
}

// Regression: a crash between writing revoked.txt and crl.pem must not
// leave a revoked serial unpublished for good; revoking it again repairs.
TEST_F(CaTest, RevokeAgainRepublishesWhenCrlLostTheSerial) {
  Issued a = MustIssue(Client("st-mary"));
  std::string old_crl = Read(dir_ + "/crl.pem");
  ASSERT_TRUE(Revoke(dir_, a.serial_hex, Reason::kKeyCompromise).ok());
  ASSERT_TRUE(WriteFileAtomically(AT_FDCWD, dir_, "crl.pem", old_crl).ok());
  auto again = Revoke(dir_, a.serial_hex, Reason::kKeyCompromise);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->already_revoked);
  CrlPtr crl = ReadCrl(dir_ + "/crl.pem");
  EXPECT_TRUE(CrlLists(crl.get(), a.serial_hex));
}

// The CRL can be re-signed with fresh dates; the revoked list stays.
TEST_F(CaTest, RefreshCrlKeepsRevokedAndIncrements) {
  Issued a = MustIssue(Client("st-mary"));
  ASSERT_TRUE(Revoke(dir_, a.serial_hex, Reason::kUnspecified).ok());
  auto number = RefreshCrl(dir_);
  ASSERT_TRUE(number.ok()) << number.status();
  EXPECT_EQ(*number, 3u);
  EXPECT_TRUE(CrlLists(ReadCrl(dir_ + "/crl.pem").get(), a.serial_hex));
}

// A CA key others can read is refused, not used.
TEST_F(CaTest, WorldReadableCaKeyIsRefused) {
  ASSERT_EQ(chmod((dir_ + "/ca.key").c_str(), 0644), 0);
  EXPECT_FALSE(Issue(Client("st-mary")).ok());
}

// Serials are accepted in the forms other tools print them.
TEST(CanonicalSerialHexTest, AcceptsCommonForms) {
  EXPECT_EQ(*gateway::CanonicalSerialHex("0x0A:1B"), "0a1b");
  EXPECT_EQ(*gateway::CanonicalSerialHex("A1B2"), "a1b2");
  EXPECT_FALSE(gateway::CanonicalSerialHex("").ok());
  EXPECT_FALSE(gateway::CanonicalSerialHex("-12").ok());
  EXPECT_FALSE(gateway::CanonicalSerialHex(std::string(41, 'a')).ok());
}

}  // namespace
}  // namespace medvault::ca
