// The clinical API's refusals through the real fleet, each with the status
// code a client sees and proof that nothing changed: forged and replayed
// patient consents, a practitioner acting through another hospital's
// certificate, a revoked certificate, bad input, unknown objects, a dispute
// transition its state does not allow, a record over the size limit, and an
// upload while storage is down.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr char kFhir[] = R"({"resourceType": "Observation", "status": "final"})";
// Small limits so the refusals come quickly (EditConfig).
constexpr uint64_t kMaxRecordBytes = 256 * 1024;
constexpr int kBackendTimeoutMs = 2000;

class ClinicalErrorsTest : public ClinicalTest {
 protected:
  void EditConfig(std::string& config) override {
    const std::string state_dir = absl::StrCat("  state_dir: \"", dir(), "/data/gateway\"\n");
    ASSERT_THAT(config, HasSubstr(state_dir));
    absl::StrReplaceAll(
        {{state_dir, absl::StrCat(state_dir, "  max_record_bytes: ", kMaxRecordBytes,
                                  "\n  backend_timeout_ms: ", kBackendTimeoutMs, "\n")}},
        &config);
  }

  // Hospital A (the fleet's client certificate) with patient-7 and dr-ash;
  // hospital B (pki/city) with dr-bell; both doctors licensed; one record.
  void Populate() {
    ASSERT_NO_FATAL_FAILURE(Issue("city", "city-general", "hospital"));
    ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
    ASSERT_NO_FATAL_FAILURE(RegisterHospital("city-general"));
    MEDVAULT_ASSERT_OK(
        SetLicence(RegisterPractitioner("client", "dr-ash", "GMC-1000001"), "active"));
    MEDVAULT_ASSERT_OK(
        SetLicence(RegisterPractitioner("city", "dr-bell", "GMC-2000002"), "active"));
    ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
    grpc::Status s = Upload(dr_ash_, Header("application/fhir+json"), kFhir, &record_);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  static v1::RecordHeader Header(const std::string& content_type) {
    v1::RecordHeader header;
    header.set_patient_id("patient-7");
    header.set_category(v1::GENERAL);
    header.set_content_type(content_type);
    return header;
  }

  std::vector<std::string> RecordIds() const {
    std::vector<std::string> ids;
    for (const v1::Record& r : List(patient_, "patient-7")) ids.push_back(r.record_id());
    return ids;
  }
  std::vector<v1::Grant> Grants() const {
    v1::ListGrantsRequest request;
    request.set_patient_id("patient-7");
    v1::ListGrantsResponse response;
    grpc::Status s = Access(patient_)->ListGrants(Context(patient_).get(), request, &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return {response.grants().begin(), response.grants().end()};
  }

  v1::GrantAccessRequest GrantToBell() const {
    v1::GrantAccessRequest grant;
    grant.set_patient_id("patient-7");
    grant.set_grantee_id("dr-bell");
    grant.mutable_scope()->set_scope(v1::ALL);
    grant.add_purposes(v1::TREATMENT);
    *grant.mutable_not_after() =
        TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() + absl::Hours(48)));
    return grant;
  }

  const As a_{"client"};
  const As dr_ash_{"client", Acting::kPractitioner, "dr-ash"};
  const As dr_bell_{"city", Acting::kPractitioner, "dr-bell"};
  const As patient_{"client", Acting::kPatient, "patient-7"};
  const As regulator_{"regulator"};
  v1::Record record_;
};

// A consent signed by another key, a signature over a different decision,
// and a replayed signature are refused; no grant appears and the request
// stays pending.
TEST_F(ClinicalErrorsTest, ForgedAndReplayedConsentsChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  v1::RequestAccessRequest ask;
  ask.set_patient_id("patient-7");
  ask.mutable_scope()->set_scope(v1::ALL);
  ask.set_purpose(v1::TREATMENT);
  *ask.mutable_not_after() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() + absl::Hours(48)));
  ask.set_reason("second opinion");
  v1::AccessRequest pending;
  grpc::Status s = Access(dr_bell_)->RequestAccess(Context(dr_bell_).get(), ask, &pending);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // Signed by a key that is not the patient's registered address.
  v1::PrepareConsentRequest prepare;
  prepare.mutable_decide_access_request()->set_request_id(pending.request_id());
  prepare.mutable_decide_access_request()->set_approve(true);
  absl::StatusOr<v1::PatientConsent> consent = Sign(patient_, prepare, kOtherKey);
  MEDVAULT_ASSERT_OK(consent);
  v1::DecideAccessRequestRequest decide = prepare.decide_access_request();
  *decide.mutable_consent() = *consent;
  v1::AccessRequest decided;
  s = Access(patient_)->DecideAccessRequest(Context(patient_).get(), decide, &decided);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);

  // The patient's signature of a denial, sent as an approval.
  prepare.mutable_decide_access_request()->set_approve(false);
  consent = Sign(patient_, prepare);
  MEDVAULT_ASSERT_OK(consent);
  *decide.mutable_consent() = *consent;  // decide still says approve
  s = Access(patient_)->DecideAccessRequest(Context(patient_).get(), decide, &decided);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);

  // Nothing changed: the request is pending, nobody holds a grant, and
  // dr-bell still cannot read.
  v1::ListAccessRequestsRequest list;
  list.set_patient_id("patient-7");
  v1::ListAccessRequestsResponse requests;
  s = Access(patient_)->ListAccessRequests(Context(patient_).get(), list, &requests);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(requests.requests_size(), 1);
  EXPECT_EQ(requests.requests(0).state(), v1::AccessRequest::PENDING);
  EXPECT_THAT(Grants(), IsEmpty());
  std::string read;
  v1::ReadBasis treatment;
  treatment.set_purpose(v1::TREATMENT);
  s = Read(dr_bell_, record_.record_id(), treatment, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);

  // A grant signed by the patient works once; the same signature again is
  // a replay.
  v1::PrepareConsentRequest grant_prepare;
  *grant_prepare.mutable_grant_access() = GrantToBell();
  consent = Sign(patient_, grant_prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::GrantAccessRequest grant = grant_prepare.grant_access();
  *grant.mutable_consent() = *consent;
  v1::Grant granted;
  s = Access(patient_)->GrantAccess(Context(patient_).get(), grant, &granted);
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::Grant replayed;
  s = Access(a_)->GrantAccess(Context(a_).get(), grant, &replayed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("nonce"));
  std::vector<v1::Grant> grants = Grants();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].grant_id(), granted.grant_id());
  s = Read(dr_bell_, record_.record_id(), treatment, &read);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(read, kFhir);

  // Hospital B does not care for the patient: it cannot attest the
  // patient's revocation, nor act as the patient. The grant stays.
  v1::RevokeAccessRequest revoke;
  revoke.set_grant_id(granted.grant_id());
  revoke.mutable_consent()->mutable_attestation()->set_statement("patient phoned us");
  const As b{"city"};
  v1::Grant revoked;
  s = Access(b)->RevokeAccess(Context(b).get(), revoke, &revoked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("caring for the patient"));
  const As patient_through_b{"city", Acting::kPatient, "patient-7"};
  s = Access(patient_through_b)->RevokeAccess(Context(patient_through_b).get(), revoke, &revoked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  s = Read(patient_through_b, record_.record_id(), v1::ReadBasis(), &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("not under the care of city-general"));
  grants = Grants();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].status(), v1::Grant::ACTIVE);
  // Hospital A, which cares for the patient, can.
  revoke.mutable_consent()->mutable_attestation()->set_statement(
      "in person at the records desk, photo id checked");
  s = Access(a_)->RevokeAccess(Context(a_).get(), revoke, &revoked);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(revoked.status(), v1::Grant::REVOKED);
}

// Who the caller is: a doctor of hospital A through hospital B's
// certificate, and a revoked certificate, are refused and write nothing.
TEST_F(ClinicalErrorsTest, WrongHospitalAndRevokedCertificateChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::vector<std::string> records = RecordIds();
  const std::vector<std::string> objects = StoredObjects();

  const As ash_through_city{"city", Acting::kPractitioner, "dr-ash"};
  v1::Record out;
  grpc::Status s = Upload(ash_through_city, Header("application/fhir+json"), kFhir, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("not registered with city-general"));
  v1::EmergencyAccessRequest emergency;
  emergency.set_patient_id("patient-7");
  emergency.set_reason("collapsed in the car park");
  v1::EmergencyAccessSession session;
  s = Access(ash_through_city)
          ->EmergencyAccess(Context(ash_through_city).get(), emergency, &session);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);

  // Hospital B's certificate is revoked while its connection is open.
  auto open = Access(dr_bell_);
  s = open->EmergencyAccess(Context(dr_bell_).get(), emergency, &session);
  ASSERT_TRUE(s.ok()) << Describe(s);
  CommandResult r = RunCommand(
      {binary("medvaultctl"), "ca", "revoke", "--dir", pki(), "--cert", pki() + "/city.pem"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  v1::EmergencyAccessSession refused;
  s = open->EmergencyAccess(Context(dr_bell_).get(), emergency, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  std::string read;
  v1::ReadBasis basis;
  basis.set_purpose(v1::EMERGENCY);
  basis.set_emergency_access_id(session.emergency_access_id());
  s = Read(dr_bell_, record_.record_id(), basis, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);  // no handshake
  EXPECT_THAT(read, IsEmpty());

  EXPECT_EQ(RecordIds(), records);
  EXPECT_THAT(StoredObjects(), UnorderedElementsAreArray(objects));
  // The access history shows the one emergency access that was opened and
  // no read under it.
  v1::GetAccessHistoryRequest history_request;
  history_request.set_patient_id("patient-7");
  v1::GetAccessHistoryResponse history;
  s = Access(patient_)->GetAccessHistory(Context(patient_).get(), history_request, &history);
  ASSERT_TRUE(s.ok()) << Describe(s);
  int reads_by_bell = 0;
  for (const auto& e : history.entries()) {
    reads_by_bell += e.practitioner_id() == "dr-bell" && !e.record_id().empty() && e.allowed();
  }
  EXPECT_EQ(reads_by_bell, 0) << history.DebugString();
}

// Bad input names the field; unknown objects are NOT_FOUND; a transition
// the dispute's state does not allow is FAILED_PRECONDITION; a record over
// the limit is RESOURCE_EXHAUSTED. None of them stores or records
// anything.
TEST_F(ClinicalErrorsTest, InputStateAndSizeErrorsChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::vector<std::string> records = RecordIds();
  const std::vector<std::string> objects = StoredObjects();

  v1::Record out;
  grpc::Status s = Upload(a_, Header("application/fhir+json"), R"({"status": "final"})", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), ElementsAre("data"));
  EXPECT_THAT(s.error_message(), HasSubstr("resourceType"));
  s = Upload(a_, Header("application/pdf"), "not a PDF at all", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), ElementsAre("data"));
  v1::RecordHeader no_category = Header("application/fhir+json");
  no_category.clear_category();
  s = Upload(a_, no_category, kFhir, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), ElementsAre("header.category"));

  const std::string too_big = "%PDF-1.7\n" + std::string(kMaxRecordBytes, 'x');
  s = Upload(a_, Header("application/pdf"), too_big, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(s);

  // A record id of the right form that does not exist.
  std::string unknown = record_.record_id();
  unknown.back() = unknown.back() == '0' ? '1' : '0';
  std::string read;
  v1::ReadBasis basis;
  s = Read(patient_, unknown, basis, &read);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);

  // A dispute cannot be upheld before review starts.
  v1::PrepareConsentRequest prepare;
  prepare.mutable_file_dispute()->set_patient_id("patient-7");
  prepare.mutable_file_dispute()->set_record_id(record_.record_id());
  prepare.mutable_file_dispute()->set_evidence("the status was preliminary");
  absl::StatusOr<v1::PatientConsent> consent = Sign(patient_, prepare);
  MEDVAULT_ASSERT_OK(consent);
  v1::FileDisputeRequest file = prepare.file_dispute();
  *file.mutable_consent() = *consent;
  v1::Dispute dispute;
  s = Disputes(patient_)->FileDispute(Context(patient_).get(), file, &dispute);
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::TransitionDisputeRequest uphold;
  uphold.set_dispute_id(dispute.dispute_id());
  uphold.set_action(v1::TransitionDisputeRequest::UPHOLD);
  uphold.set_rationale("premature");
  v1::Dispute after;
  s = Disputes(regulator_)->TransitionDispute(Context(regulator_).get(), uphold, &after);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  v1::GetDisputeRequest get;
  get.set_dispute_id(dispute.dispute_id());
  s = Disputes(regulator_)->GetDispute(Context(regulator_).get(), get, &after);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(after.state(), "FILED");
  EXPECT_EQ(after.events_size(), 1);
  // An amendment answers an upheld dispute only, named by a dispute id.
  v1::AmendmentHeader amendment;
  amendment.set_record_id(record_.record_id());
  amendment.set_reason("corrected");
  amendment.set_content_type("application/fhir+json");
  amendment.set_dispute_id(dispute.dispute_id());
  s = Amend(dr_ash_, amendment, kFhir, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("UPHELD"));
  amendment.set_dispute_id("nope");
  s = Amend(dr_ash_, amendment, kFhir, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), ElementsAre("header.dispute_id"));
  s = Disputes(regulator_)->GetDispute(Context(regulator_).get(), get, &after);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(after.amendment_id(), IsEmpty());

  EXPECT_EQ(RecordIds(), records);
  EXPECT_THAT(StoredObjects(), UnorderedElementsAreArray(objects));
}

// Storage stopped: the upload fails UNAVAILABLE within the backend
// deadline; once storage is back there is no record row and no object.
TEST_F(ClinicalErrorsTest, UploadWhileStorageIsDownLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::vector<std::string> records = RecordIds();
  const std::vector<std::string> objects = StoredObjects();

  absl::StatusOr<pid_t> storage = ChildPid(Role::kStorage);
  MEDVAULT_ASSERT_OK(storage);
  ASSERT_EQ(kill(*storage, SIGSTOP), 0);
  v1::Record out;
  const std::string pdf = "%PDF-1.7\n" + std::string(100 * 1024, 'p');
  grpc::Status s = Upload(a_, Header("application/pdf"), pdf, &out);
  ASSERT_EQ(kill(*storage, SIGCONT), 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("storage"));
  EXPECT_THAT(out.record_id(), IsEmpty());

  MEDVAULT_ASSERT_OK(WaitServing(Role::kStorage, absl::Seconds(30)));
  EXPECT_EQ(RecordIds(), records);
  // The storage process may still be finishing the abandoned Put: give it
  // a moment, then nothing new may be pinned.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_THAT(StoredObjects(), UnorderedElementsAreArray(objects));
  // And the same upload works now that storage is back.
  s = Upload(a_, Header("application/pdf"), pdf, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(RecordIds().size(), records.size() + 1);
}

// A client that cancels half way through an upload has not uploaded a
// (truncated) record: no row, no object.
TEST_F(ClinicalErrorsTest, CancelledUploadLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::vector<std::string> records = RecordIds();
  const std::vector<std::string> objects = StoredObjects();

  auto stub = Records(a_);
  auto context = Context(a_);
  v1::Record out;
  auto writer = stub->UploadRecord(context.get(), &out);
  v1::UploadRecordRequest message;
  *message.mutable_header() = Header("application/pdf");
  ASSERT_TRUE(writer->Write(message));
  message.set_data("%PDF-1.7\n" + std::string(512 * 1024, 'q'));
  ASSERT_TRUE(writer->Write(message));
  // Give the gateway time to take the data in before the stream breaks.
  absl::SleepFor(absl::Milliseconds(500));
  context->TryCancel();
  grpc::Status s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << Describe(s);

  absl::SleepFor(absl::Seconds(1));  // the gateway notices and cleans up
  EXPECT_EQ(RecordIds(), records);
  EXPECT_THAT(StoredObjects(), UnorderedElementsAreArray(objects));
}

// An organisation over gateway.calls_per_second is RESOURCE_EXHAUSTED;
// another organisation is not affected, and the first recovers.
class RateLimitTest : public ClinicalTest {
 protected:
  void EditConfig(std::string& config) override {
    const std::string state_dir = absl::StrCat("  state_dir: \"", dir(), "/data/gateway\"\n");
    ASSERT_THAT(config, HasSubstr(state_dir));
    absl::StrReplaceAll({{state_dir, absl::StrCat(state_dir, "  calls_per_second: 5\n")}}, &config);
  }
};

TEST_F(RateLimitTest, AnOrganisationOverItsRateIsRefused) {
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  const As a{"client"};
  v1::GetPractitionerRequest request;
  request.set_practitioner_id("nobody");
  v1::Practitioner out;
  int refused = 0, answered = 0;
  auto stub = Registry(a);
  for (int i = 0; i < 30; ++i) {
    grpc::Status s = stub->GetPractitioner(Context(a).get(), request, &out);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      EXPECT_THAT(s.error_message(), HasSubstr("calls_per_second"));
    } else {
      ++answered;
      EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
    }
  }
  // Bursts of 10 at 5 a second: most of 30 quick calls are refused.
  EXPECT_GE(refused, 10);
  EXPECT_GE(answered, 10);
  // The regulator has its own budget.
  ASSERT_NO_FATAL_FAILURE(RegisterHospital("city-general"));
  absl::SleepFor(absl::Seconds(1));
  grpc::Status s = stub->GetPractitioner(Context(a).get(), request, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
}

}  // namespace
}  // namespace medvault::integration
