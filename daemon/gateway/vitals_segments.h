// How a device's live samples become stored records: StoreVitalsSegment
// follows the record write path of RecordService (a fresh data key from
// the keyvault, record_cipher, storage Put, the records row and its audit
// event in one transaction), plus the segment's row and the device's new
// stored_through in that same transaction. The Publish stream decides when
// (vitals_publish.cc).
#ifndef MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_
#define MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/gateway/core.h"
#include "daemon/gateway/vitals_hub.h"
#include "medvault/v1/audit.pb.h"
#include "medvault/v1/records.pb.h"
#include "medvault/v1/vitals.pb.h"

namespace medvault::gateway {

// Stores the samples of `batches` (at least one sample, in sequence order)
// of `device` as one VITALS record of content type
// kContentTypeVitalsSegment, authored by the
// hospital that enrolled the device, and appends `event` (completed with
// the record and its CID) in the same transaction. Returns the record.
// UNAVAILABLE when the keyvault or storage fails; nothing is kept then.
absl::StatusOr<v1::Record> StoreVitalsSegment(GatewayCore& core, const v1::Device& device,
                                              v1::AuditEvent event,
                                              const std::vector<VitalsBatchPtr>& batches);

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_VITALS_SEGMENTS_H_
