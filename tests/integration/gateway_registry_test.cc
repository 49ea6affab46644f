// The gateway's RegistryService through the real fleet, over mutual TLS
// with certificates of the fleet's own CA (medvaultctl ca): the regulator
// registers a hospital, the hospital its patients and practitioners; bad
// input, wrong roles, a practitioner of another hospital and a revoked
// certificate are refused, and nothing changes.
#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/v1/registry.grpc.pb.h"
#include "medvault/v1/system.grpc.pb.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class GatewayRegistryTest : public GatewayTest {};

TEST_F(GatewayRegistryTest, RegulatorRegistersHospitalsHospitalsRegisterPatients) {
  // Until the regulator registers it, the hospital registers nobody.
  v1::Patient patient;
  grpc::Status early = TryRegisterPatient("client", "patient-1", kPatientAddress, &patient);
  EXPECT_EQ(early.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(early);
  EXPECT_THAT(early.error_message(), HasSubstr("decision"));

  v1::Hospital hospital;
  grpc::Status s = TryRegisterHospital(kClientName, &hospital);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(hospital.organization_id(), kClientName);
  grpc::Status again = TryRegisterHospital(kClientName);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(again);

  // A hospital cannot register hospitals.
  v1::RegisterHospitalRequest self;
  self.set_organization_id("another-one");
  self.set_display_name("Another");
  v1::Hospital unused;
  grpc::Status not_regulator =
      Registry(As{"client"})
          ->RegisterHospital(ActingAs(Acting::kOrganization).get(), self, &unused);
  EXPECT_EQ(not_regulator.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(not_regulator);

  s = TryRegisterPatient("client", "patient-1", absl::AsciiStrToLower(kPatientAddress), &patient);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(patient.address(), kPatientAddress);  // EIP-55 checksummed
  EXPECT_THAT(patient.care_organizations(), ElementsAre(kClientName));

  // The same patient with another key is refused; with the same key from a
  // second hospital, that hospital joins the patient's care.
  Issue("city", "city-general", "hospital");
  ASSERT_TRUE(TryRegisterHospital("city-general").ok());
  grpc::Status other_key = TryRegisterPatient(
      "city", "patient-1", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", &patient);
  EXPECT_EQ(other_key.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(other_key);
  s = TryRegisterPatient("city", "patient-1", kPatientAddress, &patient);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(patient.care_organizations(), ElementsAre(kClientName, "city-general"));
}

TEST_F(GatewayRegistryTest, BadInputNamesTheField) {
  ASSERT_TRUE(TryRegisterHospital(kClientName).ok());
  v1::Patient patient;
  grpc::Status bad_id = TryRegisterPatient("client", "Patient One", kPatientAddress, &patient);
  EXPECT_EQ(bad_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(bad_id);
  EXPECT_THAT(BadRequestFields(bad_id), ElementsAre("patient_id"));
  grpc::Status bad_address = TryRegisterPatient("client", "patient-2", "0x1234", &patient);
  EXPECT_EQ(bad_address.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(bad_address);
  EXPECT_THAT(BadRequestFields(bad_address), ElementsAre("address"));

  v1::RegisterPractitionerRequest practitioner;
  practitioner.set_practitioner_id("dr-lee");
  practitioner.set_licence_number("GMC-1234567");
  practitioner.add_specialties("ASTROLOGY");
  v1::Practitioner out;
  grpc::Status bad_specialty =
      Registry(As{"client"})
          ->RegisterPractitioner(ActingAs(Acting::kOrganization).get(), practitioner, &out);
  EXPECT_EQ(bad_specialty.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << Describe(bad_specialty);
  EXPECT_THAT(BadRequestFields(bad_specialty), ElementsAre("specialties[0]"));

  // The refused call registered nothing: the same practitioner with a
  // valid specialty is new, not ALREADY_EXISTS.
  practitioner.set_specialties(0, "CARDIOLOGY");
  grpc::Status s =
      Registry(As{"client"})
          ->RegisterPractitioner(ActingAs(Acting::kOrganization).get(), practitioner, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(out.licence_key().size(), 32u);
}

TEST_F(GatewayRegistryTest, PractitionerOfAnotherHospitalIsRefused) {
  ASSERT_TRUE(TryRegisterHospital(kClientName).ok());
  Issue("city", "city-general", "hospital");
  ASSERT_TRUE(TryRegisterHospital("city-general").ok());
  v1::RegisterPractitionerRequest practitioner;
  practitioner.set_practitioner_id("dr-lee");
  practitioner.set_licence_number("GMC-1234567");
  practitioner.add_specialties("CARDIOLOGY");
  v1::Practitioner out;
  ASSERT_TRUE(Registry(As{"client"})
                  ->RegisterPractitioner(ActingAs(Acting::kOrganization).get(), practitioner, &out)
                  .ok());
  // dr-lee works for the clinic; through city-general's certificate they
  // are nobody.
  v1::GetPractitionerRequest get;
  get.set_practitioner_id("dr-lee");
  grpc::Status s =
      Registry(As{"city"})
          ->GetPractitioner(ActingAs(Acting::kPractitioner, "dr-lee").get(), get, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("not registered with city-general"));
}

TEST_F(GatewayRegistryTest, RevokedCertificateIsRefusedOnOpenAndNewConnections) {
  Issue("city", "city-general", "hospital");
  ASSERT_TRUE(TryRegisterHospital("city-general").ok());
  // The certificate works, and its connection stays open.
  auto open = Registry(As{"city"});
  v1::RegisterPatientRequest request;
  request.set_patient_id("patient-9");
  request.set_address(kPatientAddress);
  v1::Patient patient;
  grpc::Status s = open->RegisterPatient(ActingAs(Acting::kOrganization).get(), request, &patient);
  ASSERT_TRUE(s.ok()) << Describe(s);

  CommandResult r = RunCommand(
      {binary("medvaultctl"), "ca", "revoke", "--dir", pki(), "--cert", pki() + "/city.pem"});
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // On the connection made before the revocation: refused per call.
  request.set_patient_id("patient-10");
  v1::Patient refused;
  s = open->RegisterPatient(ActingAs(Acting::kOrganization).get(), request, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  EXPECT_EQ(refused.ByteSizeLong(), 0u);
  // A new connection fails its handshake.
  s = TryRegisterPatient("city", "patient-10", kPatientAddress, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);
  EXPECT_EQ(refused.ByteSizeLong(), 0u);
  // Nothing was registered by the refused calls, and other certificates
  // still work: the clinic registers patient-10 as a new patient.
  ASSERT_TRUE(TryRegisterHospital(kClientName).ok());
  s = TryRegisterPatient("client", "patient-10", kPatientAddress, &patient);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(patient.care_organizations(), ElementsAre(kClientName));
}

}  // namespace
}  // namespace medvault::integration
