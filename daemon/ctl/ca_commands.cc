#include "daemon/ctl/ca_commands.h"

#include <cstdio>
#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "daemon/gateway/client_identity.h"

namespace medvault::ctl {
namespace {

constexpr char kReasons[] = "keyCompromise, superseded, cessationOfOperation or unspecified";

// Bad input is the operator's to fix (2); anything else failed (1). The
// messages never hold key material: ca.h's functions keep it out.
int Fail(absl::string_view what, const absl::Status& status) {
  std::cerr << "medvaultctl: " << what << ": " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

CLI::Option* AddDir(CLI::App* sub, std::string& dir) {
  return sub->add_option("--dir", dir, "CA directory (ca.key, ca.pem, crl.pem, issued.txt, ...)")
      ->required();
}

}  // namespace

CaCommands::CaCommands(CLI::App& app) {
  auto* ca = app.add_subcommand("ca", "the deployment's client-certificate authority (offline)");
  ca->require_subcommand(1);
  ca->footer(
      "The gateway trusts DIR/ca.pem (gateway.tls.client_ca_file) and reloads DIR/crl.pem "
      "(gateway.tls.crl_file) at the next handshake after it changes. Keep DIR/ca.key offline.");

  init_ = ca->add_subcommand("init", "create a CA: P-256 key, self-signed certificate, empty CRL");
  AddDir(init_, init_options_.dir);
  init_->add_option("--name", init_options_.name, "the CA's common name")->capture_default_str();
  init_->add_option("--days", init_options_.days, "validity of the CA certificate")
      ->capture_default_str();
  init_->add_option("--crl-days", init_options_.crl_days, "nextUpdate of the CRL, in days")
      ->capture_default_str();

  issue_ = ca->add_subcommand(
      "issue", "issue a key and certificate: an organisation's client certificate, or --server");
  AddDir(issue_, issue_options_.dir);
  issue_
      ->add_option("--org", issue_options_.organization_id,
                   "organisation id, the subject CN: 1 to 64 of a-z 0-9 . _ -")
      ->required();
  issue_->add_option(
      "--role", issue_options_.role,
      absl::StrCat("the subject OU (client certificates): ", gateway::ClientRoleList()));
  issue_->add_option("--name", issue_options_.display_name,
                     "display name, the subject O (default: the organisation id)");
  issue_->add_option("--days", issue_options_.days, "validity")->capture_default_str();
  issue_->add_flag("--server", issue_options_.server,
                   "a server certificate (serverAuth) for the gateway instead of a client one");
  issue_->add_option("--dns", issue_options_.dns_names, "server: a DNS subjectAltName (repeat)");
  issue_->add_option("--ip", issue_options_.ip_addresses, "server: an IP subjectAltName (repeat)");
  issue_
      ->add_option("--out", issue_options_.out_prefix,
                   "writes PREFIX.key (mode 0600) and PREFIX.pem; never overwrites")
      ->required();

  revoke_ = ca->add_subcommand("revoke", "revoke a certificate and publish a new CRL");
  AddDir(revoke_, dir_);
  auto* serial = revoke_->add_option("--serial", serial_, "serial in hex (as issue printed it)");
  auto* cert = revoke_->add_option("--cert", cert_file_, "the certificate (PEM) to revoke");
  serial->excludes(cert);
  revoke_->add_option("--reason", reason_, kReasons)->capture_default_str();
  revoke_->add_option("--crl-days", crl_days_, "nextUpdate of the new CRL, in days")
      ->capture_default_str();

  crl_ = ca->add_subcommand(
      "crl", "re-sign the CRL with fresh dates (run it before nextUpdate, e.g. monthly)");
  AddDir(crl_, dir_);
  crl_->add_option("--crl-days", crl_days_, "nextUpdate of the new CRL, in days")
      ->capture_default_str();
}

std::optional<int> CaCommands::Run() {
  if (init_->parsed()) return Init();
  if (issue_->parsed()) return Issue();
  if (revoke_->parsed()) return Revoke();
  if (crl_->parsed()) return Crl();
  return std::nullopt;
}

int CaCommands::Init() {
  const ca::InitOptions& o = init_options_;
  if (absl::Status s = ca::Init(o); !s.ok()) return Fail("ca init", s);
  std::printf(
      "CA \"%s\" created in %s (valid %d days)\n"
      "  %s/ca.pem   give to the gateway (tls.client_ca_file) and to clients\n"
      "  %s/crl.pem  give to the gateway (tls.crl_file); crlNumber 1, nothing revoked\n"
      "  %s/ca.key   the CA's private key: keep it offline\n",
      o.name.c_str(), o.dir.c_str(), o.days, o.dir.c_str(), o.dir.c_str(), o.dir.c_str());
  return 0;
}

int CaCommands::Issue() {
  auto issued = ca::Issue(issue_options_);
  if (!issued.ok()) return Fail("ca issue", issued.status());
  std::printf("issued serial %s\n  subject   %s\n  not after %s\n  %s\n  %s (mode 0600)\n",
              issued->serial_hex.c_str(), issued->subject.c_str(), issued->not_after.c_str(),
              issued->cert_file.c_str(), issued->key_file.c_str());
  return 0;
}

int CaCommands::Revoke() {
  if (serial_.empty() == cert_file_.empty()) {
    std::cerr << "medvaultctl: ca revoke: give exactly one of --serial and --cert\n";
    return 2;
  }
  auto reason = ca::ParseReason(reason_);
  if (!reason.ok()) return Fail("ca revoke", reason.status());
  std::string serial = serial_;
  if (!cert_file_.empty()) {
    auto from_cert = ca::SerialOfCertificateFile(cert_file_);
    if (!from_cert.ok()) return Fail("ca revoke --cert", from_cert.status());
    serial = *from_cert;
  }
  auto revoked = ca::Revoke(dir_, serial, *reason, crl_days_);
  if (!revoked.ok()) return Fail("ca revoke", revoked.status());
  if (revoked->already_revoked) {
    std::printf("serial %s was already revoked; %s/crl.pem unchanged (crlNumber %llu)\n",
                revoked->serial_hex.c_str(), dir_.c_str(),
                static_cast<unsigned long long>(revoked->crl_number));
    return 0;
  }
  std::printf(
      "revoked serial %s (%s)\n%s/crl.pem: crlNumber %llu, %zu revoked; install it as the "
      "gateway's tls.crl_file\n",
      revoked->serial_hex.c_str(), reason_.c_str(), dir_.c_str(),
      static_cast<unsigned long long>(revoked->crl_number), revoked->revoked_count);
  return 0;
}

int CaCommands::Crl() {
  auto number = ca::RefreshCrl(dir_, crl_days_);
  if (!number.ok()) return Fail("ca crl", number.status());
  std::printf("%s/crl.pem re-signed: crlNumber %llu, next update in %d days\n", dir_.c_str(),
              static_cast<unsigned long long>(*number), crl_days_);
  return 0;
}

}  // namespace medvault::ctl
