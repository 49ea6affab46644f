#include "tests/integration/clinical_client.h"

#include <fstream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "tests/integration/test_status.h"
#include "tests/signer/cast_tool.h"

namespace medvault::integration {
namespace {

// Uploads go in chunks of this size, as a client streams a file.
constexpr size_t kChunk = 64 * 1024;

template <typename Request, typename Header>
grpc::Status StreamUp(grpc::ClientWriter<Request>& writer, const Header& header,
                      const std::string& data, Header* (Request::*mutable_header)()) {
  Request first;
  *(first.*mutable_header)() = header;
  if (!writer.Write(first)) return writer.Finish();
  for (size_t at = 0; at < data.size(); at += kChunk) {
    Request part;
    part.set_data(data.substr(at, kChunk));
    if (!writer.Write(part)) break;  // the server answered early: Finish says why
  }
  writer.WritesDone();
  return writer.Finish();
}

}  // namespace

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("gRPC code ", status.error_code(), ": ", status.error_message());
}

void ClinicalTest::SetUp() {
  Fleet::SetUp();
  if (HasFatalFailure()) return;
  std::optional<std::string> config = ReadWholeFile(config_path());
  ASSERT_TRUE(config.has_value());
  EditConfig(*config);
  std::ofstream(config_path(), std::ios::trunc) << *config;
  // Restarts medvaultd, which reads the edited configuration.
  MEDVAULT_ASSERT_OK(DeployContracts());
}

void GatewayTest::Issue(const std::string& name, const std::string& org,
                        const std::string& role) const {
  CommandResult r = RunCommand({binary("medvaultctl"), "ca", "issue", "--dir", pki(), "--org", org,
                                "--role", role, "--out", pki() + "/" + name});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

std::unique_ptr<v1::RegistryService::Stub> GatewayTest::Registry(const As& as) const {
  return v1::RegistryService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
}
std::unique_ptr<v1::RecordService::Stub> GatewayTest::Records(const As& as) const {
  return v1::RecordService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
}
std::vector<v1::AuditEvent> GatewayTest::AuditEvents(const As& reader) const {
  auto audit = v1::AuditService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + reader.cert));
  std::vector<v1::AuditEvent> events;
  for (uint64_t start = 0;; start += 1000) {
    v1::GetEntriesRequest request;
    request.set_start(start);
    request.set_count(1000);
    v1::GetEntriesResponse response;
    grpc::Status s = audit->GetEntries(Context(reader).get(), request, &response);
    if (!s.ok() || response.entries().empty()) break;
    for (const auto& e : response.entries()) {
      v1::AuditEvent event;
      EXPECT_TRUE(event.ParseFromString(e.leaf()));
      events.push_back(event);
    }
  }
  return events;
}
std::unique_ptr<v1::AccessService::Stub> GatewayTest::Access(const As& as) const {
  return v1::AccessService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
}
std::unique_ptr<v1::DisputeService::Stub> GatewayTest::Disputes(const As& as) const {
  return v1::DisputeService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
}
std::unique_ptr<v1::ConsentService::Stub> GatewayTest::Consent(const As& as) const {
  return v1::ConsentService::NewStub(
      GatewayChannel(gateway_address(), ca_cert(), pki() + "/" + as.cert));
}

grpc::Status GatewayTest::TryRegisterHospital(const std::string& id, v1::Hospital* out) const {
  v1::RegisterHospitalRequest request;
  request.set_organization_id(id);
  request.set_display_name(absl::StrCat("Hospital ", id));
  v1::Hospital ignored;
  const As regulator{"regulator"};
  return Registry(regulator)->RegisterHospital(Context(regulator).get(), request,
                                               out != nullptr ? out : &ignored);
}

grpc::Status GatewayTest::TryRegisterPatient(const std::string& cert, const std::string& id,
                                             const std::string& address, v1::Patient* out) const {
  v1::RegisterPatientRequest request;
  request.set_patient_id(id);
  request.set_address(address);
  const As hospital{cert};
  return Registry(hospital)->RegisterPatient(Context(hospital).get(), request, out);
}

void GatewayTest::RegisterHospital(const std::string& id) const {
  grpc::Status s = TryRegisterHospital(id);
  ASSERT_TRUE(s.ok()) << Describe(s);
}

std::string GatewayTest::RegisterPractitioner(const std::string& cert, const std::string& id,
                                              const std::string& licence_number) const {
  v1::RegisterPractitionerRequest request;
  request.set_practitioner_id(id);
  request.set_licence_number(licence_number);
  request.add_specialties("EMERGENCY_MEDICINE");
  v1::Practitioner out;
  const As hospital{cert};
  grpc::Status s = Registry(hospital)->RegisterPractitioner(Context(hospital).get(), request, &out);
  EXPECT_TRUE(s.ok()) << Describe(s);
  return "0x" + absl::BytesToHexString(out.licence_key());
}

void GatewayTest::RegisterPatient(const std::string& cert, const std::string& id) const {
  v1::Patient out;
  grpc::Status s = TryRegisterPatient(cert, id, kPatientAddress, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
}

grpc::Status GatewayTest::Upload(const As& as, const v1::RecordHeader& header,
                                 const std::string& data, v1::Record* out) const {
  auto stub = Records(as);
  auto context = Context(as);
  auto writer = stub->UploadRecord(context.get(), out);
  return StreamUp(*writer, header, data, &v1::UploadRecordRequest::mutable_header);
}

grpc::Status GatewayTest::Amend(const As& as, const v1::AmendmentHeader& header,
                                const std::string& data, v1::Record* out) const {
  auto stub = Records(as);
  auto context = Context(as);
  auto writer = stub->AmendRecord(context.get(), out);
  return StreamUp(*writer, header, data, &v1::AmendRecordRequest::mutable_header);
}

grpc::Status GatewayTest::Read(const As& as, const std::string& record_id,
                               const v1::ReadBasis& basis, std::string* data) const {
  auto stub = Records(as);
  auto context = Context(as);
  v1::GetRecordRequest request;
  request.set_record_id(record_id);
  *request.mutable_basis() = basis;
  auto reader = stub->GetRecord(context.get(), request);
  v1::GetRecordResponse part;
  data->clear();
  bool header_seen = false;
  while (reader->Read(&part)) {
    if (part.has_record()) {
      EXPECT_FALSE(header_seen) << "two headers";
      EXPECT_EQ(part.record().record_id(), record_id);
      header_seen = true;
    } else {
      data->append(part.data());
    }
  }
  grpc::Status status = reader->Finish();
  if (status.ok()) {
    EXPECT_TRUE(header_seen) << "no header before the data";
  }
  return status;
}

std::vector<v1::Record> GatewayTest::List(const As& as, const std::string& patient_id) const {
  v1::ListRecordsRequest request;
  request.set_patient_id(patient_id);
  v1::ListRecordsResponse response;
  grpc::Status s = Records(as)->ListRecords(Context(as).get(), request, &response);
  EXPECT_TRUE(s.ok()) << Describe(s);
  return {response.records().begin(), response.records().end()};
}

absl::StatusOr<v1::PatientConsent> GatewayTest::Sign(const As& as,
                                                     v1::PrepareConsentRequest request,
                                                     const char* key) const {
  static std::mt19937_64 random{std::random_device{}()};
  request.set_nonce(random());
  *request.mutable_expires_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
  v1::PrepareConsentResponse prepared;
  grpc::Status s = Consent(as)->PrepareConsent(Context(as).get(), request, &prepared);
  if (!s.ok()) return absl::InternalError("PrepareConsent: " + Describe(s));
  absl::StatusOr<std::string> signature = signer::testing::RunCast(
      {"wallet", "sign", "--data", "--private-key", key, prepared.typed_data_json()});
  if (!signature.ok()) return signature.status();
  v1::PatientConsent consent;
  consent.mutable_signature()->set_nonce(request.nonce());
  *consent.mutable_signature()->mutable_expires_at() = request.expires_at();
  consent.mutable_signature()->set_signature(
      absl::HexStringToBytes(absl::StripPrefix(*signature, "0x")));
  return consent;
}

std::vector<std::string> GatewayTest::StoredObjects() const {
  CommandResult r = RunCtl({"storage", "ls"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> cids;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "baf")) cids.emplace_back(line.substr(0, line.find(' ')));
  }
  return cids;
}

}  // namespace medvault::integration
