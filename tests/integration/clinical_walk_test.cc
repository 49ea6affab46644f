// The clinical workflow end to end through the real fleet (SoftHSM2 keyvault,
// the regulator's signed policy, storage, signer on anvil with the contracts
// deployed), over mutual TLS with certificates of the fleet's CA: licences on
// chain, registration, uploads, a request the patient approves with an
// EIP-712 signature, reads, revocation, emergency access, the access
// history, a dispute the regulator upholds, an amendment, a suspension.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kFhirObservation[] = R"({
  "resourceType": "Observation",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
  "valueQuantity": {"value": 72, "unit": "beats/minute"}
})";
constexpr char kFhirCorrected[] = R"({
  "resourceType": "Observation",
  "status": "amended",
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
  "valueQuantity": {"value": 62, "unit": "beats/minute"}
})";

// A small PDF: what the content check needs is the header; the rest is
// bytes that must come back unchanged, including every byte value.
std::string Pdf() {
  std::string pdf = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
  for (uint32_t i = 0; i < 300000; ++i) pdf.push_back(static_cast<char>((i * 7919u) >> 3));
  return pdf + "\n%%EOF\n";
}

google::protobuf::Timestamp In(absl::Duration d) {
  return TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() + d));
}

v1::ReadBasis Basis(v1::Purpose purpose, const std::string& emergency_access_id = "") {
  v1::ReadBasis basis;
  basis.set_purpose(purpose);
  basis.set_emergency_access_id(emergency_access_id);
  return basis;
}

class ClinicalWalkTest : public ClinicalTest {};

TEST_F(ClinicalWalkTest, FromLicencesToSuspension) {
  // Hospital A is the fleet's own client certificate; B gets one now.
  const std::string hospital_a = kClientName;
  const std::string hospital_b = "city-general";
  ASSERT_NO_FATAL_FAILURE(Issue("city", hospital_b, "hospital"));
  const As regulator{"regulator"};
  const As a{"client"};
  const As dr_ash{"client", Acting::kPractitioner, "dr-ash"};
  const As dr_bell{"city", Acting::kPractitioner, "dr-bell"};
  const As patient{"client", Acting::kPatient, "patient-7"};

  // The regulator registers both hospitals; each registers its doctor; the
  // regulator licenses both doctors on chain.
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(hospital_a));
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(hospital_b));
  const std::string ash_licence = RegisterPractitioner("client", "dr-ash", "GMC-1000001");
  const std::string bell_licence = RegisterPractitioner("city", "dr-bell", "GMC-2000002");
  MEDVAULT_ASSERT_OK(SetLicence(ash_licence, "active"));
  MEDVAULT_ASSERT_OK(SetLicence(bell_licence, "active"));

  // Hospital A registers the patient and uploads a FHIR record (written by
  // its doctor) and a PDF.
  ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
  v1::RecordHeader header;
  header.set_patient_id("patient-7");
  header.set_category(v1::VITALS);
  header.set_content_type("application/fhir+json");
  v1::Record fhir;
  grpc::Status s = Upload(dr_ash, header, kFhirObservation, &fhir);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(fhir.fhir_resource_type(), "Observation");
  EXPECT_EQ(fhir.author_organization_id(), hospital_a);
  EXPECT_EQ(fhir.author_practitioner_id(), "dr-ash");
  EXPECT_EQ(fhir.size(), std::string(kFhirObservation).size());
  EXPECT_THAT(fhir.cid(), ::testing::StartsWith("baf"));
  header.set_category(v1::IMAGING);
  header.set_content_type("application/pdf");
  const std::string pdf_bytes = Pdf();
  v1::Record pdf;
  s = Upload(a, header, pdf_bytes, &pdf);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(pdf.size(), pdf_bytes.size());
  EXPECT_THAT(StoredObjects(), ::testing::IsSupersetOf({fhir.cid(), pdf.cid()}));

  // Hospital B's doctor cannot read yet, and asks.
  std::string read;
  s = Read(dr_bell, fhir.record_id(), Basis(v1::TREATMENT), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  v1::RequestAccessRequest ask;
  ask.set_patient_id("patient-7");
  ask.mutable_scope()->set_scope(v1::ALL);
  ask.set_purpose(v1::TREATMENT);
  *ask.mutable_not_after() = In(absl::Hours(24 * 7));
  ask.set_reason("referral for cardiology review");
  v1::AccessRequest pending;
  s = Access(dr_bell)->RequestAccess(Context(dr_bell).get(), ask, &pending);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(pending.state(), v1::AccessRequest::PENDING);
  EXPECT_EQ(pending.organization_id(), hospital_b);

  // The patient sees the request and approves it with their wallet's
  // EIP-712 signature.
  v1::ListAccessRequestsRequest list_requests;
  list_requests.set_patient_id("patient-7");
  v1::ListAccessRequestsResponse requests;
  s = Access(patient)->ListAccessRequests(Context(patient).get(), list_requests, &requests);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(requests.requests_size(), 1);
  EXPECT_EQ(requests.requests(0).request_id(), pending.request_id());
  v1::PrepareConsentRequest prepare;
  prepare.mutable_decide_access_request()->set_request_id(pending.request_id());
  prepare.mutable_decide_access_request()->set_approve(true);
  absl::StatusOr<v1::PatientConsent> consent = Sign(patient, prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::DecideAccessRequestRequest decide = prepare.decide_access_request();
  *decide.mutable_consent() = *consent;
  v1::AccessRequest approved;
  s = Access(patient)->DecideAccessRequest(Context(patient).get(), decide, &approved);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(approved.state(), v1::AccessRequest::APPROVED);
  ASSERT_FALSE(approved.grant_id().empty());

  // The doctor reads both records: the bytes are the ones uploaded.
  s = Read(dr_bell, fhir.record_id(), Basis(v1::TREATMENT), &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(read, kFhirObservation);
  s = Read(dr_bell, pdf.record_id(), Basis(v1::TREATMENT), &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_TRUE(read == pdf_bytes) << "the PDF read back differs (" << read.size() << " bytes)";

  // The patient revokes the grant (signed); the doctor is refused.
  prepare.Clear();
  prepare.mutable_revoke_access()->set_grant_id(approved.grant_id());
  consent = Sign(patient, prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::RevokeAccessRequest revoke = prepare.revoke_access();
  *revoke.mutable_consent() = *consent;
  v1::Grant revoked;
  s = Access(patient)->RevokeAccess(Context(patient).get(), revoke, &revoked);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(revoked.status(), v1::Grant::REVOKED);
  s = Read(dr_bell, fhir.record_id(), Basis(v1::TREATMENT), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("decision"));

  // Emergency: the doctor opens break-glass access with a reason and reads.
  v1::EmergencyAccessRequest emergency;
  emergency.set_patient_id("patient-7");
  emergency.set_reason("unconscious in the emergency department, suspected arrhythmia");
  v1::EmergencyAccessSession session;
  s = Access(dr_bell)->EmergencyAccess(Context(dr_bell).get(), emergency, &session);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(session.decision().rule_ids(), Contains("emergency.break_glass"));
  s = Read(dr_bell, fhir.record_id(), Basis(v1::EMERGENCY, session.emergency_access_id()), &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(read, kFhirObservation);

  // The patient sees who read what, and under which grant or emergency.
  v1::GetAccessHistoryRequest history_request;
  history_request.set_patient_id("patient-7");
  v1::GetAccessHistoryResponse history;
  s = Access(patient)->GetAccessHistory(Context(patient).get(), history_request, &history);
  ASSERT_TRUE(s.ok()) << Describe(s);
  bool emergency_read = false, grant_read = false, refused_read = false;
  for (const v1::AccessHistoryEntry& e : history.entries()) {
    if (e.practitioner_id() != "dr-bell" || e.record_id() != fhir.record_id()) continue;
    EXPECT_EQ(e.organization_id(), hospital_b);
    emergency_read |= e.allowed() && e.emergency_access_id() == session.emergency_access_id();
    grant_read |= e.allowed() && e.grant_id() == approved.grant_id();
    refused_read |= !e.allowed();
  }
  EXPECT_TRUE(emergency_read) << history.DebugString();
  EXPECT_TRUE(grant_read) << history.DebugString();
  EXPECT_TRUE(refused_read) << history.DebugString();

  // The patient disputes the FHIR record (signed); the regulator reviews and
  // upholds it.
  prepare.Clear();
  v1::FileDisputeRequest* file = prepare.mutable_file_dispute();
  file->set_patient_id("patient-7");
  file->set_record_id(fhir.record_id());
  file->set_evidence("my resting heart rate was 62 that day: see the attached ECG");
  consent = Sign(patient, prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::FileDisputeRequest filing = prepare.file_dispute();
  *filing.mutable_consent() = *consent;
  v1::Dispute dispute;
  s = Disputes(patient)->FileDispute(Context(patient).get(), filing, &dispute);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(dispute.state(), "FILED");
  v1::TransitionDisputeRequest transition;
  transition.set_dispute_id(dispute.dispute_id());
  transition.set_action(v1::TransitionDisputeRequest::START_REVIEW);
  s = Disputes(regulator)->TransitionDispute(Context(regulator).get(), transition, &dispute);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(dispute.state(), "UNDER_REVIEW");
  transition.set_action(v1::TransitionDisputeRequest::UPHOLD);
  transition.set_rationale("the device log confirms 62 bpm");
  s = Disputes(regulator)->TransitionDispute(Context(regulator).get(), transition, &dispute);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(dispute.state(), "UPHELD");
  std::vector<std::string> obligations;
  for (const auto& o : dispute.obligations()) obligations.push_back(o.name());
  EXPECT_THAT(obligations, Contains("append_amendment"));

  // Hospital A appends an amendment; the original stays, linked to it.
  v1::AmendmentHeader amendment;
  amendment.set_record_id(fhir.record_id());
  amendment.set_reason("heart rate corrected after the upheld dispute");
  amendment.set_content_type("application/fhir+json");
  amendment.set_dispute_id(dispute.dispute_id());
  v1::Record amended;
  s = Amend(dr_ash, amendment, kFhirCorrected, &amended);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(amended.amends_record_id(), fhir.record_id());
  std::vector<v1::Record> records = List(patient, "patient-7");
  bool original_linked = false;
  for (const v1::Record& r : records) {
    if (r.record_id() == fhir.record_id()) {
      original_linked = std::find(r.amended_by().begin(), r.amended_by().end(),
                                  amended.record_id()) != r.amended_by().end();
    }
  }
  EXPECT_TRUE(original_linked) << "ListRecords does not link the original to its amendment";
  EXPECT_EQ(records.size(), 3u);
  s = Read(patient, fhir.record_id(), Basis(v1::PATIENT_ACCESS), &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(read, kFhirObservation) << "the original was overwritten";
  v1::GetDisputeRequest get_dispute;
  get_dispute.set_dispute_id(dispute.dispute_id());
  s = Disputes(regulator)->GetDispute(Context(regulator).get(), get_dispute, &dispute);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(dispute.amendment_id(), amended.record_id());
  EXPECT_GE(dispute.events_size(), 3);

  // The regulator suspends dr-bell's licence: refused everything, even in
  // an emergency; dr-ash is unaffected.
  MEDVAULT_ASSERT_OK(SetLicence(bell_licence, "suspended"));
  s = Access(dr_bell)->EmergencyAccess(Context(dr_bell).get(), emergency, &session);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("licence"));
  s = Read(dr_bell, fhir.record_id(), Basis(v1::EMERGENCY, session.emergency_access_id()), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  s = Access(dr_bell)->RequestAccess(Context(dr_bell).get(), ask, &pending);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  header.set_category(v1::GENERAL);
  header.set_content_type("application/fhir+json");
  s = Upload(dr_ash, header, kFhirCorrected, &amended);
  EXPECT_TRUE(s.ok()) << Describe(s);
}

// An insurer reads only what the patient consented to, for the named claim:
// the consented category, not another one, and not for another claim.
TEST_F(ClinicalWalkTest, InsurerReadsOnlyWhatTheClaimCovers) {
  ASSERT_NO_FATAL_FAILURE(Issue("insurer", "acme-insurance", "insurer"));
  const As insurer{"insurer"};
  const As a{"client"};
  const As patient{"client", Acting::kPatient, "patient-7"};
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
  v1::RecordHeader header;
  header.set_patient_id("patient-7");
  header.set_content_type("application/fhir+json");
  header.set_category(v1::LAB_RESULT);
  v1::Record lab, mental;
  grpc::Status s = Upload(a, header, kFhirObservation, &lab);
  ASSERT_TRUE(s.ok()) << Describe(s);
  header.set_category(v1::MENTAL_HEALTH);
  s = Upload(a, header, kFhirCorrected, &mental);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // A grant names only registered organisations: the regulator registers
  // the insurer.
  v1::RegisterOrganizationRequest register_insurer;
  register_insurer.set_organization_id("acme-insurance");
  register_insurer.set_display_name("Acme Health Insurance");
  register_insurer.set_role(v1::ORGANIZATION_ROLE_INSURER);
  v1::Organization registered;
  const As regulator{"regulator"};
  s = Registry(regulator)->RegisterOrganization(Context(regulator).get(), register_insurer,
                                                &registered);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // The insurer's id is not a hospital: it registers no patient.
  v1::RegisterPatientRequest as_hospital;
  as_hospital.set_patient_id("patient-8");
  as_hospital.set_address(kPatientAddress);
  v1::Patient not_registered;
  s = Registry(insurer)->RegisterPatient(Context(insurer).get(), as_hospital, &not_registered);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);

  // Before any consent the insurer reads nothing.
  v1::ReadBasis claim;
  claim.set_purpose(v1::CLAIM);
  claim.set_claim_id("claim-42");
  std::string read;
  s = Read(insurer, lab.record_id(), claim, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);

  // The patient consents: lab results, for claim-42, to acme-insurance.
  v1::PrepareConsentRequest prepare;
  v1::GrantAccessRequest* grant = prepare.mutable_grant_access();
  grant->set_patient_id("patient-7");
  grant->set_grantee_id("acme-insurance");
  grant->mutable_scope()->set_scope(v1::CATEGORIES);
  grant->mutable_scope()->add_categories(v1::LAB_RESULT);
  grant->add_purposes(v1::CLAIM);
  grant->set_claim_id("claim-42");
  *grant->mutable_not_after() = In(absl::Hours(24 * 30));
  absl::StatusOr<v1::PatientConsent> consent = Sign(patient, prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::GrantAccessRequest request = prepare.grant_access();
  *request.mutable_consent() = *consent;
  v1::Grant granted;
  s = Access(patient)->GrantAccess(Context(patient).get(), request, &granted);
  ASSERT_TRUE(s.ok()) << Describe(s);

  s = Read(insurer, lab.record_id(), claim, &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(read, kFhirObservation);
  s = Read(insurer, mental.record_id(), claim, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  v1::ReadBasis other_claim = claim;
  other_claim.set_claim_id("claim-43");
  s = Read(insurer, lab.record_id(), other_claim, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  // ListRecords shows the insurer the consented record only.
  v1::ListRecordsRequest list;
  list.set_patient_id("patient-7");
  *list.mutable_basis() = claim;
  v1::ListRecordsResponse listed;
  s = Records(insurer)->ListRecords(Context(insurer).get(), list, &listed);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(listed.records_size(), 1);
  EXPECT_EQ(listed.records(0).record_id(), lab.record_id());
}

}  // namespace
}  // namespace medvault::integration
