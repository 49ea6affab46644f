// The clinical API (medvault.v1) as the people of a test call it: a Fleet
// with its contracts deployed, certificates of the fleet's CA for each
// organisation, and the calls of the walk (registration, uploads, reads,
// patient decisions signed with the patient's Ethereum key by cast).
#ifndef MEDVAULT_TESTS_INTEGRATION_CLINICAL_CLIENT_H_
#define MEDVAULT_TESTS_INTEGRATION_CLINICAL_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "medvault/v1/access.grpc.pb.h"
#include "medvault/v1/audit.grpc.pb.h"
#include "medvault/v1/consent.grpc.pb.h"
#include "medvault/v1/disputes.grpc.pb.h"
#include "medvault/v1/records.grpc.pb.h"
#include "medvault/v1/registry.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/integration/gateway_client.h"

namespace medvault::integration {

// anvil's first two development accounts: the patient's wallet, and a key
// that is not the patient's.
inline constexpr char kPatientKey[] =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
inline constexpr char kPatientAddress[] = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
inline constexpr char kOtherKey[] =
    "0x59c6995e998f97a5a0044966f0a8ef1f0d3cd1c2f2ad2d8b4fa1b4c2b1b1e5b7";

// Who is calling: the certificate (pki/<cert>.pem) and who acts through it.
struct As {
  explicit As(std::string cert_name, Acting who = Acting::kOrganization, std::string who_id = "")
      : cert(std::move(cert_name)), acting(who), id(std::move(who_id)) {}
  std::string cert;
  Acting acting;
  std::string id;
};

std::string Describe(const grpc::Status& status);

// The fleet and the calls of its public API, without the contracts.
class GatewayTest : public Fleet {
 protected:
  std::string pki() const { return dir() + "/pki"; }
  // Issues pki/<name>.pem and .key for organisation `org` in `role`.
  void Issue(const std::string& name, const std::string& org, const std::string& role) const;

  std::unique_ptr<v1::RegistryService::Stub> Registry(const As& as) const;
  std::unique_ptr<v1::RecordService::Stub> Records(const As& as) const;
  std::unique_ptr<v1::AccessService::Stub> Access(const As& as) const;
  std::unique_ptr<v1::DisputeService::Stub> Disputes(const As& as) const;
  std::unique_ptr<v1::ConsentService::Stub> Consent(const As& as) const;
  std::unique_ptr<grpc::ClientContext> Context(const As& as) const {
    return ActingAs(as.acting, as.id);
  }
  // Every event of the audit log, read through AuditService as `reader`
  // (a compliance or regulator certificate); a test failure for an entry
  // that does not parse.
  std::vector<v1::AuditEvent> AuditEvents(const As& reader) const;

  // --- Registration ---
  // As the regulator (pki/regulator).
  grpc::Status TryRegisterHospital(const std::string& id, v1::Hospital* out = nullptr) const;
  // As the hospital of pki/<cert>.
  grpc::Status TryRegisterPatient(const std::string& cert, const std::string& id,
                                  const std::string& address, v1::Patient* out) const;
  // The same, each a test failure when refused.
  void RegisterHospital(const std::string& id) const;
  // Registers a practitioner with the hospital of `cert`; returns the
  // licence key as 0x + 64 hex, as `medvaultctl chain set-licence` takes it.
  std::string RegisterPractitioner(const std::string& cert, const std::string& id,
                                   const std::string& licence_number) const;
  void RegisterPatient(const std::string& cert, const std::string& id) const;

  // --- Records ---
  grpc::Status Upload(const As& as, const v1::RecordHeader& header, const std::string& data,
                      v1::Record* out) const;
  grpc::Status Amend(const As& as, const v1::AmendmentHeader& header, const std::string& data,
                     v1::Record* out) const;
  // GetRecord: the record's bytes (the header message is checked to name it).
  grpc::Status Read(const As& as, const std::string& record_id, const v1::ReadBasis& basis,
                    std::string* data) const;
  // The patient's records as ListRecords shows them to `as`.
  std::vector<v1::Record> List(const As& as, const std::string& patient_id) const;

  // --- The patient's signature ---
  // PrepareConsent for `request` (its nonce and expiry set here), signed by
  // `key` with cast over the typed data the gateway returned.
  absl::StatusOr<v1::PatientConsent> Sign(const As& as, v1::PrepareConsentRequest request,
                                          const char* key = kPatientKey) const;

  // The patient's pinned objects in storage (`medvaultctl storage ls`).
  std::vector<std::string> StoredObjects() const;
};

// The same with the contracts deployed, so licences are on chain.
class ClinicalTest : public GatewayTest {
 protected:
  // SetUp of Fleet, EditConfig, then DeployContracts (which restarts
  // medvaultd with the edited configuration).
  void SetUp() override;
  virtual void EditConfig(std::string& /*config*/) {}
};

}  // namespace medvault::integration

#endif  // MEDVAULT_TESTS_INTEGRATION_CLINICAL_CLIENT_H_
