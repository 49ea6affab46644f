// Live vitals through the real fleet (SoftHSM2 keyvault, the regulator's
// signed policy, storage, signer on anvil with the contracts deployed), over
// mutual TLS: a simulated 250 Hz 3-lead ECG device with its own `device`
// certificate publishes for five seconds while two practitioners with
// grants watch; one grant is revoked mid-stream and that watch must end
// within a second; the device disconnects and resumes from its last
// acknowledgement; the other watcher sees exactly the bytes the device
// sent, and so do the stored segments read back through RecordService;
// refusals and the watch sessions' audit events are checked too.
#include <atomic>
#include <cmath>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "medvault/v1/audit.grpc.pb.h"
#include "medvault/v1/vitals.grpc.pb.h"
#include "tests/integration/clinical_client.h"
#include "tests/integration/test_status.h"

namespace medvault::integration {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kDevice[] = "ecg-monitor-1";
constexpr char kSegmentType[] = "application/vnd.medvault.vitals-segment+protobuf";
// 250 Hz, three leads, a message every 10 frames (40 ms), for 5 seconds.
constexpr int kHz = 250;
constexpr int kLeads = 3;
constexpr int kFramesPerMessage = 10;
constexpr int kMessages = 125;
constexpr int kRevokeAtMessage = 55;
constexpr int kDisconnectAtMessage = 85;
constexpr absl::Duration kStream = absl::Minutes(2);

// The samples of message `m`: frames m*10 .. m*10+9, each lead one sample.
std::vector<v1::VitalSample> EcgMessage(int m, absl::Time start) {
  static const char* kLead[kLeads] = {"ECG lead I", "ECG lead II", "ECG lead III"};
  std::vector<v1::VitalSample> samples;
  for (int f = m * kFramesPerMessage; f < (m + 1) * kFramesPerMessage; ++f) {
    for (int lead = 0; lead < kLeads; ++lead) {
      v1::VitalSample s;
      s.set_sequence(static_cast<uint64_t>(f * kLeads + lead + 1));
      *s.mutable_time() = TimeUtil::MicrosecondsToTimestamp(
          absl::ToUnixMicros(start + absl::Microseconds(1000000 / kHz) * f));
      s.set_channel(kLead[lead]);
      // A crude beat: a spike every 200 frames over a slow wave, in mV.
      s.set_value(0.05 * (f % 50) / 50.0 + (f % 200 == 0 ? 1.2 : 0.0) - 0.1 * lead);
      s.set_unit("mV");
      samples.push_back(s);
    }
  }
  return samples;
}

std::string Bytes(const std::vector<v1::VitalSample>& samples) {
  std::string out;
  for (const auto& s : samples) out += s.SerializeAsString();
  return out;
}

// One watcher's stream, read on its own thread.
class WatchSession {
 public:
  WatchSession(std::unique_ptr<v1::VitalsService::Stub> stub,
               std::unique_ptr<grpc::ClientContext> ctx, const v1::WatchRequest& request)
      : stub_(std::move(stub)), context_(std::move(ctx)) {
    reader_ = stub_->Watch(context_.get(), request);
    thread_ = std::thread([this] { Run(); });
  }
  ~WatchSession() { Stop(); }

  // Waits for the first message (the watcher is registered by then).
  bool WaitStarted(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
               absl::Condition(
                   +[](WatchSession* w) { return w->started_ || w->ended_; }, this),
               timeout) &&
           started_;
  }
  // Waits until `n` samples came or the stream ended.
  size_t WaitSamples(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return samples_.size() >= n || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return samples_.size();
  }
  bool WaitEnded(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
  }
  void Stop() {
    if (!thread_.joinable()) return;
    context_->TryCancel();
    thread_.join();
  }

  std::vector<v1::VitalSample> samples() {
    absl::MutexLock lock(&mu_);
    return samples_;
  }
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  absl::Time ended_at() {
    absl::MutexLock lock(&mu_);
    return ended_at_;
  }
  std::string session_id() {
    absl::MutexLock lock(&mu_);
    return session_id_;
  }
  uint64_t dropped() {
    absl::MutexLock lock(&mu_);
    return dropped_;
  }

 private:
  void Run() {
    v1::WatchResponse message;
    while (reader_->Read(&message)) {
      absl::MutexLock lock(&mu_);
      if (message.has_started()) {
        started_ = true;
        session_id_ = message.started().session_id();
      }
      dropped_ += message.dropped_samples();
      for (const auto& s : message.samples()) samples_.push_back(s);
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    ended_at_ = absl::Now();
    status_ = status;
    ended_ = true;
  }

  std::unique_ptr<v1::VitalsService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader_;
  absl::Mutex mu_;
  bool started_ = false;
  bool ended_ = false;
  std::string session_id_;
  std::vector<v1::VitalSample> samples_;
  uint64_t dropped_ = 0;
  grpc::Status status_;
  absl::Time ended_at_;
  std::thread thread_;
};

// One Publish stream of the device; acknowledgements read on a thread.
class PublishSession {
 public:
  PublishSession(std::unique_ptr<v1::VitalsService::Stub> stub,
                 std::unique_ptr<grpc::ClientContext> ctx)
      : stub_(std::move(stub)), context_(std::move(ctx)) {
    stream_ = stub_->Publish(context_.get());
    thread_ = std::thread([this] { Run(); });
  }
  ~PublishSession() {
    if (thread_.joinable()) {
      context_->TryCancel();
      thread_.join();
    }
  }
  // The resume point, once the server said it; nullopt if the stream ended.
  std::optional<uint64_t> WaitStarted() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](PublishSession* p) { return p->started_.has_value() || p->ended_; }, this));
    return started_;
  }
  bool Send(const std::vector<v1::VitalSample>& samples) {
    v1::PublishRequest request;
    for (const auto& s : samples) *request.add_samples() = s;
    return stream_->Write(request);
  }
  // Ends the stream cleanly; returns the status once every ack was read.
  grpc::Status Finish() {
    stream_->WritesDone();
    thread_.join();
    return status_;
  }
  // Drops the connection as a device losing its network would.
  void Cut() {
    context_->TryCancel();
    thread_.join();
  }
  uint64_t acked() {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  grpc::Status status() { return status_; }

 private:
  void Run() {
    v1::PublishResponse response;
    while (stream_->Read(&response)) {
      absl::MutexLock lock(&mu_);
      if (response.has_started()) started_ = response.started().stored_through();
      if (response.has_ack()) {
        EXPECT_GE(response.ack().acked_through(), acked_);
        acked_ = response.ack().acked_through();
      }
    }
    grpc::Status status = stream_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = status;
    ended_ = true;
  }

  std::unique_ptr<v1::VitalsService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PublishRequest, v1::PublishResponse>> stream_;
  absl::Mutex mu_;
  std::optional<uint64_t> started_;
  bool ended_ = false;
  uint64_t acked_ = 0;
  grpc::Status status_;
  std::thread thread_;
};

class VitalsTest : public ClinicalTest {
 protected:
  // Segments every second (so acks come during the test) and tree heads
  // every 200 ms (so the audit log's entries are readable soon).
  void EditConfig(std::string& config) override {
    const std::string state_dir = absl::StrCat("  state_dir: \"", dir(), "/data/gateway\"\n");
    ASSERT_THAT(config, HasSubstr(state_dir));
    absl::StrReplaceAll({{state_dir, absl::StrCat(state_dir,
                                                  "  audit { tree_head_interval_ms: 200 }\n"
                                                  "  vitals { segment_ms: 1000 }\n")}},
                        &config);
  }

  std::unique_ptr<v1::VitalsService::Stub> Vitals(const std::string& cert) const {
    return v1::VitalsService::NewStub(
        GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + cert));
  }
  std::unique_ptr<WatchSession> StartWatch(const As& as) const {
    v1::WatchRequest request;
    request.set_patient_id("patient-7");
    request.set_device_id(kDevice);
    return std::make_unique<WatchSession>(Vitals(as.cert), ActingAs(as.acting, as.id, kStream),
                                          request);
  }
  std::unique_ptr<PublishSession> StartPublish(const std::string& cert) const {
    return std::make_unique<PublishSession>(Vitals(cert),
                                            ActingAs(Acting::kOrganization, "", kStream));
  }

  // The patient grants `practitioner` their vitals for treatment (signed).
  v1::Grant GrantVitals(const std::string& practitioner,
                        absl::Duration valid_for = absl::Hours(24)) const {
    v1::PrepareConsentRequest prepare;
    v1::GrantAccessRequest* grant = prepare.mutable_grant_access();
    grant->set_patient_id("patient-7");
    grant->set_grantee_id(practitioner);
    grant->mutable_scope()->set_scope(v1::CATEGORIES);
    grant->mutable_scope()->add_categories(v1::VITALS);
    grant->add_purposes(v1::TREATMENT);
    *grant->mutable_not_after() =
        TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(absl::Now() + valid_for));
    absl::StatusOr<v1::PatientConsent> consent = Sign(patient_, prepare);
    EXPECT_TRUE(consent.ok()) << consent.status();
    v1::GrantAccessRequest request = prepare.grant_access();
    *request.mutable_consent() = consent.value_or(v1::PatientConsent());
    v1::Grant granted;
    grpc::Status s = Access(patient_)->GrantAccess(Context(patient_).get(), request, &granted);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return granted;
  }

  // Enrols `device_id` to patient-7, as `as` (of the hospital "client").
  grpc::Status Enroll(const As& as, v1::Device* device, const std::string& device_id = kDevice) {
    v1::EnrollDeviceRequest enroll;
    enroll.set_device_id(device_id);
    enroll.set_patient_id("patient-7");
    return Vitals("client")->EnrollDevice(Context(as).get(), enroll, device);
  }

  const As hospital_{"client"};
  const As dr_ash_{"client", Acting::kPractitioner, "dr-ash"};
  const As dr_bell_{"client", Acting::kPractitioner, "dr-bell"};
  const As dr_cole_{"client", Acting::kPractitioner, "dr-cole"};
  const As patient_{"client", Acting::kPatient, "patient-7"};
  const As regulator_{"regulator"};
};

TEST_F(VitalsTest, EcgStreamToTwoWatchersOneRevoked) {
  // The hospital, three licensed doctors, the patient; the device's and a
  // rogue device's certificates.
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  for (const auto& [id, number] : std::vector<std::pair<std::string, std::string>>{
           {"dr-ash", "GMC-1000001"}, {"dr-bell", "GMC-1000002"}, {"dr-cole", "GMC-1000003"}}) {
    MEDVAULT_ASSERT_OK(SetLicence(RegisterPractitioner("client", id, number), "active"));
  }
  ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
  ASSERT_NO_FATAL_FAILURE(Issue("ecg", kDevice, "device"));
  ASSERT_NO_FATAL_FAILURE(Issue("rogue", "ecg-rogue", "device"));

  // The hospital enrols the device; a device cannot enrol itself.
  v1::Device device;
  grpc::Status s = Enroll(hospital_, &device);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(device.status(), v1::Device::ACTIVE);
  EXPECT_EQ(device.stored_through(), 0u);
  s = Enroll(hospital_, &device);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(s);
  s = Enroll(hospital_, &device, "Not An Id");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(BadRequestFields(s), Contains("device_id"));

  // Grants for Ash and Bell; Cole has none.
  const v1::Grant ash_grant = GrantVitals("dr-ash");
  const v1::Grant bell_grant = GrantVitals("dr-bell");
  ASSERT_FALSE(HasFailure());

  // Refusals: a device never enrolled, a doctor without a grant, a bad id.
  {
    auto rogue = StartPublish("rogue");
    EXPECT_FALSE(rogue->WaitStarted().has_value());
    EXPECT_EQ(rogue->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << Describe(rogue->status());
    auto cole = StartWatch(dr_cole_);
    EXPECT_FALSE(cole->WaitStarted(absl::Seconds(20)));
    EXPECT_EQ(cole->status().error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << Describe(cole->status());
    v1::WatchRequest bad;
    bad.set_patient_id("patient-7");
    bad.set_device_id("Bad Id");
    WatchSession invalid(Vitals("client"), ActingAs(Acting::kPractitioner, "dr-ash"), bad);
    ASSERT_TRUE(invalid.WaitEnded(absl::Seconds(20)));
    EXPECT_EQ(invalid.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(BadRequestFields(invalid.status()), Contains("device_id"));
  }

  // Both doctors watch before the device starts.
  auto ash = StartWatch(dr_ash_);
  auto bell = StartWatch(dr_bell_);
  ASSERT_TRUE(ash->WaitStarted(absl::Seconds(20))) << Describe(ash->status());
  ASSERT_TRUE(bell->WaitStarted(absl::Seconds(20))) << Describe(bell->status());

  // The device publishes in real time; mid-stream the patient revokes
  // Bell's grant (attested by the hospital), and later the device loses
  // its connection and resumes.
  std::vector<v1::VitalSample> sent;
  const absl::Time start = absl::Now();
  auto publish = StartPublish("ecg");
  std::optional<uint64_t> resume = publish->WaitStarted();
  ASSERT_TRUE(resume.has_value()) << Describe(publish->status());
  EXPECT_EQ(*resume, 0u);
  std::thread revoker;
  absl::Time revoke_called, revoke_returned;
  uint64_t acked_before_cut = 0, resumed_from = 0;
  for (int m = 0; m < kMessages; ++m) {
    absl::SleepFor(start + absl::Milliseconds(40) * m - absl::Now());
    std::vector<v1::VitalSample> samples = EcgMessage(m, start);
    sent.insert(sent.end(), samples.begin(), samples.end());
    if (m == kRevokeAtMessage) {
      revoker = std::thread([&] {
        v1::RevokeAccessRequest revoke;
        revoke.set_grant_id(bell_grant.grant_id());
        revoke.mutable_consent()->mutable_attestation()->set_statement(
            "the patient asked at the ward desk to stop Dr Bell's monitoring");
        v1::Grant revoked;
        revoke_called = absl::Now();
        grpc::Status r = Access(patient_)->RevokeAccess(Context(patient_).get(), revoke, &revoked);
        revoke_returned = absl::Now();
        EXPECT_TRUE(r.ok()) << Describe(r);
      });
    }
    if (m == kDisconnectAtMessage) {
      publish->Send(samples);  // written, maybe not read: the device must resend it
      acked_before_cut = publish->acked();
      publish->Cut();
      publish = StartPublish("ecg");
      resume = publish->WaitStarted();
      ASSERT_TRUE(resume.has_value()) << Describe(publish->status());
      resumed_from = *resume;
      // Nothing acknowledged is lost; nothing beyond what was sent is claimed.
      EXPECT_GE(resumed_from, acked_before_cut);
      EXPECT_LE(resumed_from, sent.back().sequence());
      std::vector<v1::VitalSample> unacked;
      for (const auto& s : sent) {
        if (s.sequence() > resumed_from) unacked.push_back(s);
      }
      for (size_t at = 0; at < unacked.size(); at += 300) {
        ASSERT_TRUE(publish->Send(
            {unacked.begin() + at, unacked.begin() + std::min(at + 300, unacked.size())}));
      }
      continue;
    }
    ASSERT_TRUE(publish->Send(samples)) << "message " << m;
  }
  s = publish->Finish();
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(publish->acked(), sent.back().sequence());
  EXPECT_GT(acked_before_cut, 0u) << "no acknowledgement before the connection was cut";
  std::cout << sent.size() << " samples sent; at the cut " << acked_before_cut
            << " acknowledged, resumed after " << resumed_from << "\n";
  revoker.join();

  // Bell's watch ended PERMISSION_DENIED within a second of the revoke.
  ASSERT_TRUE(bell->WaitEnded(absl::Seconds(5)));
  EXPECT_EQ(bell->status().error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(bell->status());
  const absl::Duration revoke_to_end = bell->ended_at() - revoke_returned;
  std::cout << "revoke returned -> watch ended: " << revoke_to_end
            << " (from the call: " << bell->ended_at() - revoke_called << ")\n";
  RecordProperty("revoke_to_end_ms", absl::StrCat(absl::ToInt64Milliseconds(revoke_to_end)));
  EXPECT_LT(revoke_to_end, absl::Seconds(1));
  std::vector<v1::VitalSample> bell_saw = bell->samples();
  ASSERT_LT(bell_saw.size(), sent.size());
  EXPECT_EQ(Bytes(bell_saw), Bytes({sent.begin(), sent.begin() + bell_saw.size()}));

  // Ash saw exactly the bytes the device sent: every sample once, in
  // order, the resend after the reconnect included.
  EXPECT_EQ(ash->WaitSamples(sent.size(), absl::Seconds(10)), sent.size());
  EXPECT_EQ(ash->dropped(), 0u);
  const std::string sent_bytes = Bytes(sent);
  EXPECT_TRUE(Bytes(ash->samples()) == sent_bytes)
      << ash->samples().size() << " samples watched, " << sent.size() << " sent";
  ash->Stop();
  EXPECT_EQ(ash->status().error_code(), grpc::StatusCode::CANCELLED);

  // The segments read back through RecordService by Ash hold every sample
  // once; Bell reads none any more.
  std::vector<v1::Record> records = List(dr_ash_, "patient-7");
  std::map<uint64_t, std::vector<v1::VitalSample>> segments;
  for (const v1::Record& r : records) {
    ASSERT_EQ(r.content_type(), kSegmentType);
    EXPECT_EQ(r.category(), v1::VITALS);
    std::string data;
    v1::ReadBasis basis;
    basis.set_purpose(v1::TREATMENT);
    s = Read(dr_ash_, r.record_id(), basis, &data);
    ASSERT_TRUE(s.ok()) << Describe(s);
    v1::VitalsSegment segment;
    ASSERT_TRUE(segment.ParseFromString(data));
    EXPECT_EQ(segment.device_id(), kDevice);
    ASSERT_GT(segment.samples_size(), 0);
    segments[segment.samples(0).sequence()] = {segment.samples().begin(), segment.samples().end()};
  }
  std::vector<v1::VitalSample> stored;
  for (auto& [first, samples] : segments)
    stored.insert(stored.end(), samples.begin(), samples.end());
  EXPECT_GE(segments.size(), 5u);
  EXPECT_TRUE(Bytes(stored) == sent_bytes) << stored.size() << " samples stored, " << sent.size()
                                           << " sent, in " << segments.size() << " segments";
  EXPECT_TRUE(List(dr_bell_, "patient-7").empty());

  // A malformed sample is INVALID_ARGUMENT naming it, and stores nothing.
  {
    auto bad = StartPublish("ecg");
    ASSERT_EQ(bad->WaitStarted(), std::optional<uint64_t>(sent.back().sequence()));
    v1::VitalSample nan = sent.back();
    nan.set_sequence(sent.back().sequence() + 1);
    nan.set_value(std::nan(""));
    bad->Send({nan});
    s = bad->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
    EXPECT_THAT(BadRequestFields(s), Contains("samples[0].value"));
  }

  // Each watch session is in the audit log: its start with the decision,
  // its end with what was delivered and why it ended.
  std::map<std::string, v1::AuditEvent> starts, ends;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && ends.size() < 2) {
    for (const v1::AuditEvent& e : AuditEvents(regulator_)) {
      if (!e.has_vitals_watch()) continue;
      const std::string& id = e.vitals_watch().session_id();
      if (e.action() == "vitals.watch" && e.outcome() == v1::AuditEvent::SUCCEEDED) starts[id] = e;
      if (e.action() == "vitals.watch_end") ends[id] = e;
    }
    if (ends.size() < 2) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(starts.count(ash->session_id())) << "no start event for Ash's session";
  ASSERT_TRUE(starts.count(bell->session_id())) << "no start event for Bell's session";
  const v1::AuditEvent& ash_start = starts[ash->session_id()];
  EXPECT_EQ(ash_start.actor().practitioner_id(), "dr-ash");
  EXPECT_EQ(ash_start.grant_id(), ash_grant.grant_id());
  EXPECT_EQ(ash_start.subject_id(), kDevice);
  EXPECT_THAT(ash_start.rule_ids(), Contains("vitals.practitioner_watches_with_grant"));
  ASSERT_TRUE(ends.count(ash->session_id())) << "no end event for Ash's session";
  ASSERT_TRUE(ends.count(bell->session_id())) << "no end event for Bell's session";
  const v1::VitalsWatchSession& ash_end = ends[ash->session_id()].vitals_watch();
  EXPECT_EQ(ash_end.samples(), sent.size());
  EXPECT_EQ(ash_end.bytes(), sent_bytes.size());
  EXPECT_EQ(ash_end.end_reason(), "client_ended");
  const v1::VitalsWatchSession& bell_end = ends[bell->session_id()].vitals_watch();
  EXPECT_EQ(bell_end.samples(), bell_saw.size());
  EXPECT_EQ(bell_end.end_reason(), "access_revoked");

  // The patient's access history shows who watched, and who was refused.
  v1::GetAccessHistoryRequest history_request;
  history_request.set_patient_id("patient-7");
  v1::GetAccessHistoryResponse history;
  s = Access(patient_)->GetAccessHistory(Context(patient_).get(), history_request, &history);
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::map<std::string, int> allowed, refused;
  for (const v1::AccessHistoryEntry& e : history.entries()) {
    if (e.action() != "vitals.watch") continue;
    (e.allowed() ? allowed : refused)[e.practitioner_id()]++;
  }
  EXPECT_EQ(allowed["dr-ash"], 1);
  EXPECT_EQ(allowed["dr-bell"], 1);
  EXPECT_EQ(refused["dr-bell"], 1);  // the recheck after the revocation
  EXPECT_EQ(refused["dr-cole"], 1);
}

// A newer stream of a device ends the older one (ABORTED); revoking the
// device ends its open Publish stream (PERMISSION_DENIED) and its watchers'
// streams (FAILED_PRECONDITION); it publishes no more.
TEST_F(VitalsTest, RevokedDeviceStopsPublishing) {
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
  ASSERT_NO_FATAL_FAILURE(Issue("ecg", kDevice, "device"));
  v1::Device device;
  grpc::Status s = Enroll(hospital_, &device);
  ASSERT_TRUE(s.ok()) << Describe(s);

  auto watch = StartWatch(patient_);  // the patient watches their own
  ASSERT_TRUE(watch->WaitStarted(absl::Seconds(20))) << Describe(watch->status());
  auto publish = StartPublish("ecg");
  ASSERT_TRUE(publish->WaitStarted().has_value()) << Describe(publish->status());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(publish->Send(EcgMessage(0, start)));
  EXPECT_EQ(watch->WaitSamples(30, absl::Seconds(10)), 30u);

  // A second stream of the device takes over: the first stores and
  // acknowledges what it received, then ends ABORTED, and the second
  // starts after it.
  auto newer = StartPublish("ecg");
  EXPECT_EQ(newer->WaitStarted(), std::optional<uint64_t>(30)) << Describe(newer->status());
  s = publish->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << Describe(s);
  EXPECT_EQ(publish->acked(), 30u);
  publish = std::move(newer);

  v1::RevokeDeviceRequest revoke;
  revoke.set_device_id(kDevice);
  s = Vitals("client")->RevokeDevice(Context(patient_).get(), revoke, &device);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(device.status(), v1::Device::REVOKED);
  ASSERT_TRUE(watch->WaitEnded(absl::Seconds(5)));
  EXPECT_EQ(watch->status().error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(watch->status());
  // The revocation ended the open stream by itself: the device's own
  // half-close, sent only now, would have ended it OK.
  s = publish->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  // What was sent before the revocation was stored once.
  std::vector<v1::Record> records = List(patient_, "patient-7");
  EXPECT_EQ(records.size(), 1u);
  auto again = StartPublish("ecg");
  EXPECT_FALSE(again->WaitStarted().has_value());
  EXPECT_EQ(again->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// A grant that expires while its holder watches ends the watch within a
// second: nothing revokes it; the watch decides again when the grant's
// not_after passes.
TEST_F(VitalsTest, GrantExpiryEndsTheWatch) {
  ASSERT_NO_FATAL_FAILURE(RegisterHospital(kClientName));
  MEDVAULT_ASSERT_OK(SetLicence(RegisterPractitioner("client", "dr-ash", "GMC-1000001"), "active"));
  ASSERT_NO_FATAL_FAILURE(RegisterPatient("client", "patient-7"));
  v1::Device device;
  grpc::Status s = Enroll(dr_ash_, &device);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(device.enrolled_by_practitioner_id(), "dr-ash");
  const v1::Grant grant = GrantVitals("dr-ash", absl::Seconds(6));
  ASSERT_FALSE(HasFailure());
  const absl::Time expiry = absl::FromUnixSeconds(grant.not_after().seconds());
  auto watch = StartWatch(dr_ash_);
  ASSERT_TRUE(watch->WaitStarted(absl::Seconds(20))) << Describe(watch->status());
  ASSERT_TRUE(watch->WaitEnded(absl::Seconds(20)));
  EXPECT_EQ(watch->status().error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(watch->status());
  const absl::Duration after_expiry = watch->ended_at() - expiry;
  std::cout << "grant expired -> watch ended: " << after_expiry << "\n";
  EXPECT_GE(after_expiry, absl::ZeroDuration());
  EXPECT_LT(after_expiry, absl::Seconds(1));
}

}  // namespace
}  // namespace medvault::integration
