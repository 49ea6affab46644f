// Content checks of a record's bytes against its content type, and the
// field the refusal names.
#include "daemon/gateway/content_check.h"

#include <string>

#include "daemon/common/field_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// OK, or the one field named by the status' BadRequest.
std::string FieldOf(const absl::Status& status) {
  if (status.ok()) return "ok";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  auto bad = BadRequestOf(status);
  if (!bad || bad->field_violations_size() != 1) return "<no field>";
  return bad->field_violations(0).field();
}

std::string Check(absl::string_view content_type, absl::string_view data) {
  return FieldOf(CheckRecordContent(content_type, data));
}

std::string Dicom(absl::string_view magic) {
  return std::string(128, '\0') + std::string(magic) + "rest of the file";
}

// The six allowed types, exactly spelled; nothing else.
TEST(ContentCheckTest, AllowedContentTypes) {
  for (const char* type : {"application/fhir+json", "application/pdf", "image/png", "image/jpeg",
                           "application/dicom", "text/plain"}) {
    EXPECT_TRUE(IsAllowedContentType(type)) << type;
  }
  for (const char* type : {"", "image/gif", "text/html", "application/json", "Application/PDF",
                           "text/plain; charset=utf-8", "application/pdf "}) {
    EXPECT_FALSE(IsAllowedContentType(type)) << type;
    EXPECT_EQ(Check(type, "anything"), "content_type") << type;
  }
}

// The refusal of a content type quotes it, escaped and cut short.
TEST(ContentCheckTest, UnknownContentTypeMessage) {
  absl::Status status = CheckRecordContent("image/gif\n" + std::string(500, 'x'), "GIF89a");
  EXPECT_THAT(std::string(status.message()), HasSubstr("content_type: \"image/gif\\n"));
  EXPECT_LT(status.message().size(), 400u);
}

// FHIR JSON: an object with a known R4 resourceType.
TEST(ContentCheckTest, FhirJson) {
  const char* fhir = "application/fhir+json";
  EXPECT_EQ(Check(fhir, R"({"resourceType": "Patient", "id": "p1", "active": true})"), "ok");
  EXPECT_EQ(Check(fhir, R"({"resourceType":"Bundle","type":"collection","entry":[]})"), "ok");
  EXPECT_EQ(Check(fhir, R"(  {"id": 1, "resourceType": "Observation"}  )"), "ok");
  for (const char* bad :
       {"", "not json", R"({"resourceType": "Patient")", R"(["Patient"])", R"("Patient")", "42",
        R"({"id": "p1"})", R"({"resourceType": 7})", R"({"resourceType": "patient"})",
        R"({"resourceType": "Resource"})", R"({"resourceType": "DomainResource"})",
        R"({"resourceType": "NutritionProduct"})", R"({"resourceType": "Patient"} trailing)",
        R"({"resourceType": "Patient", "resourceType": "Bundle"})"}) {
    EXPECT_EQ(Check(fhir, bad), "data") << bad;
  }
}

// The resource type is returned; the record's bytes are never quoted in an
// error.
TEST(ContentCheckTest, FhirResourceType) {
  auto type = FhirResourceType(R"({"resourceType": "AllergyIntolerance"})");
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(*type, "AllergyIntolerance");
  for (const char* bad : {R"({"resourceType": "SECRET-NAME"})", R"({"name": SECRET-NAME})"}) {
    absl::Status status = FhirResourceType(bad).status();
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("SECRET"))) << status;
    EXPECT_THAT(std::string(status.message()), testing::StartsWith("data: "));
  }
}

// The full R4 list, spot-checked at both ends and in between.
TEST(ContentCheckTest, FhirR4ResourceTypes) {
  for (const char* name : {"Account",
                           "AllergyIntolerance",
                           "Bundle",
                           "CarePlan",
                           "Composition",
                           "Condition",
                           "Consent",
                           "DiagnosticReport",
                           "DocumentReference",
                           "Encounter",
                           "ImagingStudy",
                           "Immunization",
                           "MedicationRequest",
                           "Observation",
                           "Organization",
                           "Parameters",
                           "Patient",
                           "Practitioner",
                           "Procedure",
                           "QuestionnaireResponse",
                           "ServiceRequest",
                           "Specimen",
                           "SubstanceNucleicAcid",
                           "VisionPrescription"}) {
    EXPECT_TRUE(IsFhirR4ResourceType(name)) << name;
  }
  for (const char* name :
       {"", "Resource", "DomainResource", "patient", "Patient ", "MedicationUsage", "Zzz"}) {
    EXPECT_FALSE(IsFhirR4ResourceType(name)) << name;
  }
}

// PDF, PNG, JPEG and DICOM by their signatures.
TEST(ContentCheckTest, MagicNumbers) {
  EXPECT_EQ(Check("application/pdf", "%PDF-1.7\n..."), "ok");
  EXPECT_EQ(Check("application/pdf", "%PDF"), "data");
  EXPECT_EQ(Check("application/pdf", " %PDF-1.7"), "data");
  EXPECT_EQ(Check("image/png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)), "ok");
  EXPECT_EQ(Check("image/png", "\x89PNG\r\n"), "data");
  EXPECT_EQ(Check("image/jpeg", "\xff\xd8\xff\xe0\0\x10JFIF"), "ok");
  EXPECT_EQ(Check("image/jpeg", "\xff\xd8"), "data");
  EXPECT_EQ(Check("image/jpeg", "%PDF-1.7"), "data");
  EXPECT_EQ(Check("application/dicom", Dicom("DICM")), "ok");
  EXPECT_EQ(Check("application/dicom", Dicom("DICX")), "data");
  EXPECT_EQ(Check("application/dicom", "DICM"), "data");
  EXPECT_EQ(Check("application/dicom", std::string(131, '\0')), "data");
  EXPECT_EQ(Check("image/png", ""), "data");
}

// text/plain: strict UTF-8.
TEST(ContentCheckTest, TextMustBeUtf8) {
  for (const char* good : {"", "plain ascii\n", "caf\xc3\xa9", "\xe2\x82\xac 10",
                           "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbd"}) {
    EXPECT_EQ(Check("text/plain", good), "ok") << good;
  }
  for (const char* bad :
       {"\xff", "caf\xe9", "\xc3", "\xe2\x82", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\x80", "ok\xc3\x28"}) {
    EXPECT_EQ(Check("text/plain", bad), "data") << testing::PrintToString(bad);
  }
  EXPECT_THAT(std::string(CheckRecordContent("text/plain", "abc\xff").message()),
              HasSubstr("byte 3"));
}

// A vitals segment (written by the gateway only) must parse as one and
// hold a sample; a client may not name the type.
TEST(ContentCheckTest, VitalsSegment) {
  const std::string type(kContentTypeVitalsSegment);
  EXPECT_FALSE(IsAllowedContentType(type));
  v1::VitalsSegment segment;
  segment.set_device_id("ecg-1");
  EXPECT_EQ(Check(type, segment.SerializeAsString()), "data");  // no sample
  v1::VitalSample* sample = segment.add_samples();
  sample->set_sequence(1);
  sample->set_channel("ECG lead II");
  EXPECT_EQ(Check(type, segment.SerializeAsString()), "ok");
  EXPECT_EQ(Check(type, "\xff\xff not a protobuf"), "data");
  EXPECT_EQ(Check(type, segment.SerializeAsString().substr(0, 8)), "data");  // cut short
}

}  // namespace
}  // namespace medvault::gateway
