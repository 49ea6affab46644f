#include "daemon/gateway/content_check.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/field_error.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {
namespace {

constexpr std::array<absl::string_view, 6> kAllowedContentTypes = {
    kContentTypeFhirJson, kContentTypePdf,   kContentTypePng,
    kContentTypeJpeg,     kContentTypeDicom, kContentTypeText,
};

// The resource types of FHIR R4 (4.0.1), in byte order for binary search:
// https://hl7.org/fhir/R4/resourcelist.html. std::string_view, whose
// comparisons are constexpr, for the static_assert below.
constexpr std::array<std::string_view, 146> kFhirR4ResourceTypes = {
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
};
// Also fails when a name is missing: the empty strings that would fill the
// array sort first.
static_assert(std::is_sorted(kFhirR4ResourceTypes.begin(), kFhirR4ResourceTypes.end()));

constexpr absl::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);
constexpr absl::string_view kJpegStart("\xff\xd8\xff", 3);
constexpr size_t kDicomPreambleSize = 128;

// The offset of the first byte that is not part of valid UTF-8, or npos.
size_t InvalidUtf8Offset(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t more;  // continuation bytes
    uint32_t cp;
    uint32_t min;  // smallest code point of this length, to refuse overlong forms
    if ((c & 0xe0) == 0xc0) {
      more = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      more = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      more = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (s.size() - i <= more) return i;
    for (size_t k = 1; k <= more; ++k) {
      uint8_t d = s[i + k];
      if ((d & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += more + 1;
  }
  return absl::string_view::npos;
}

absl::Status CheckPrefix(absl::string_view data, absl::string_view prefix, absl::string_view what) {
  if (!absl::StartsWith(data, prefix)) {
    return InvalidField("data", absl::StrCat("not ", what, ": the signature is missing"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsAllowedContentType(absl::string_view content_type) {
  return std::find(kAllowedContentTypes.begin(), kAllowedContentTypes.end(), content_type) !=
         kAllowedContentTypes.end();
}

bool IsFhirR4ResourceType(absl::string_view name) {
  return std::binary_search(kFhirR4ResourceTypes.begin(), kFhirR4ResourceTypes.end(),
                            std::string_view(name.data(), name.size()));
}

absl::StatusOr<std::string> FhirResourceType(absl::string_view data) {
  // Parsed as a Value, not a Struct, to tell "not JSON" from "not an
  // object". The parser's own message is not passed on: it quotes the
  // input, which is a patient's record.
  google::protobuf::Value value;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(data.data(), data.size()), &value)
           .ok()) {
    return InvalidField("data", "not valid JSON");
  }
  if (!value.has_struct_value()) {
    return InvalidField("data", "a FHIR resource must be a JSON object");
  }
  const auto& fields = value.struct_value().fields();
  auto it = fields.find("resourceType");
  if (it == fields.end()) return InvalidField("data", "the FHIR resource has no resourceType");
  if (!it->second.has_string_value()) {
    return InvalidField("data", "the resourceType of a FHIR resource must be a string");
  }
  if (!IsFhirR4ResourceType(it->second.string_value())) {
    return InvalidField("data", "the resourceType is not a FHIR R4 resource type");
  }
  return it->second.string_value();
}

absl::Status CheckRecordContent(absl::string_view content_type, absl::string_view data) {
  if (content_type == kContentTypeFhirJson) return FhirResourceType(data).status();
  if (content_type == kContentTypePdf) return CheckPrefix(data, "%PDF-", "a PDF document");
  if (content_type == kContentTypePng) return CheckPrefix(data, kPngSignature, "a PNG image");
  if (content_type == kContentTypeJpeg) return CheckPrefix(data, kJpegStart, "a JPEG image");
  if (content_type == kContentTypeDicom) {
    if (data.size() < kDicomPreambleSize ||
        !absl::StartsWith(data.substr(kDicomPreambleSize), "DICM")) {
      return InvalidField("data", "not a DICOM file: no \"DICM\" after the 128-byte preamble");
    }
    return absl::OkStatus();
  }
  if (content_type == kContentTypeText) {
    if (size_t at = InvalidUtf8Offset(data); at != absl::string_view::npos) {
      return InvalidField("data", absl::StrCat("text/plain must be UTF-8: invalid at byte ", at));
    }
    return absl::OkStatus();
  }
  if (content_type == kContentTypeVitalsSegment) {
    v1::VitalsSegment segment;
    if (!segment.ParseFromString(std::string(data)) || segment.samples_size() == 0) {
      return InvalidField("data", "not a vitals segment with at least one sample");
    }
    return absl::OkStatus();
  }
  return InvalidField(
      "content_type",
      absl::StrCat("\"", absl::CHexEscape(content_type.substr(0, 100)),
                   "\" is not allowed; allowed: ", absl::StrJoin(kAllowedContentTypes, ", ")));
}

}  // namespace medvault::gateway
