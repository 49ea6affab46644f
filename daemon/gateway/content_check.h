// What the gateway accepts as the content of a record: a fixed list of
// content types, and for each a check that the bytes are what the type
// says (a FHIR R4 resource, a PDF, a PNG, ...). The checks look at the
// shape only; they do not make a document safe to open.
//
// Errors are INVALID_ARGUMENT naming the request field
// (field_error.h): "content_type: ..." for a type that is not allowed,
// "data: ..." for bytes that do not match it. They never quote the bytes
// of the record.
#ifndef MEDVAULT_DAEMON_GATEWAY_CONTENT_CHECK_H_
#define MEDVAULT_DAEMON_GATEWAY_CONTENT_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::gateway {

inline constexpr absl::string_view kContentTypeFhirJson = "application/fhir+json";
inline constexpr absl::string_view kContentTypePdf = "application/pdf";
inline constexpr absl::string_view kContentTypePng = "image/png";
inline constexpr absl::string_view kContentTypeJpeg = "image/jpeg";
inline constexpr absl::string_view kContentTypeDicom = "application/dicom";
inline constexpr absl::string_view kContentTypeText = "text/plain";
// A segment of live vitals (a serialized medvault.v1.VitalsSegment). Only
// the gateway writes records of this type (vitals_segments.h), so it is
// not among the types IsAllowedContentType accepts from a client.
inline constexpr absl::string_view kContentTypeVitalsSegment =
    "application/vnd.medvault.vitals-segment+protobuf";

// Whether `content_type` is one of the kContentType* above. Compared
// exactly: no parameters ("; charset=..."), lower case only, so that one
// type has one spelling in the records and the associated data.
bool IsAllowedContentType(absl::string_view content_type);

// OK when `data` is a record of `content_type`:
//   application/fhir+json  a JSON object whose "resourceType" is a FHIR R4
//                          resource type (FhirResourceType)
//   application/pdf        starts with "%PDF-"
//   image/png              starts with the PNG signature 89 50 4E 47 0D 0A 1A 0A
//   image/jpeg             starts with FF D8 FF (SOI and the next marker)
//   application/dicom      a 128-byte preamble, then "DICM" (DICOM part 10)
//   text/plain             valid UTF-8 (RFC 3629: no overlong forms, no
//                          surrogates, nothing above U+10FFFF)
//   application/vnd.medvault.vitals-segment+protobuf
//                          a medvault.v1.VitalsSegment with at least one
//                          sample (written by the gateway only)
absl::Status CheckRecordContent(absl::string_view content_type, absl::string_view data);

// The "resourceType" of the FHIR JSON resource `data`: INVALID_ARGUMENT
// ("data: ...") unless `data` is a JSON object whose "resourceType" is a
// string naming a FHIR R4 resource type. Parsed with protobuf's JSON
// parser, which refuses duplicate keys and invalid UTF-8 but lets some
// non-standard JSON through (unquoted keys, single quotes, a trailing
// comma); the rest of the resource is not validated against FHIR.
absl::StatusOr<std::string> FhirResourceType(absl::string_view data);

// Whether `name` is one of the 146 resource types of FHIR R4 (4.0.1),
// exactly as the specification spells them ("Patient", "Observation").
bool IsFhirR4ResourceType(absl::string_view name);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_CONTENT_CHECK_H_
