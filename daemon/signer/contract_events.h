// The events of the medvault contracts that the indexer follows
// (indexer.h), decoded from eth_getLogs entries:
//   AuditAnchor     Anchored(bytes32 indexed logId, uint64 treeSize,
//                            bytes32 rootHash, address indexed operator)
//   LicenceRegistry LicenceChanged(bytes32 indexed practitioner,
//                            Status previousStatus, Status status,
//                            uint64 validUntil, bytes32 evidenceHash)
//   PolicyRegistry  PolicyPublished(uint64 indexed version, bytes32 bundleHash)
//
// Log encoding (Solidity ABI specification, "Events"): topics[0] =
// keccak256 of the canonical signature (an enum is uint8 there), then one
// 32-byte topic per indexed argument in order; `data` is the ABI encoding
// of the other arguments, one 32-byte word each (all are static here).
// uint64 and uint8 are big-endian and left-padded with zeros, an address
// is left-padded to a word.
//
// The decoders check everything the contracts guarantee (the number of
// topics, the data size, the zero padding, the enum range) and answer
// INVALID_ARGUMENT naming the event and field otherwise: such a log is not
// from the contract the index believes it is, and is never stored.
#ifndef MEDVAULT_DAEMON_SIGNER_CONTRACT_EVENTS_H_
#define MEDVAULT_DAEMON_SIGNER_CONTRACT_EVENTS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/signer/json_rpc_client.h"

namespace medvault::signer {

// topics[0] of each event: keccak256 of its canonical signature, 32 bytes.
const std::string& AnchoredTopic();
const std::string& LicenceChangedTopic();
const std::string& PolicyPublishedTopic();

// Where an event is on chain. The block's timestamp is not in a log; the
// indexer fills it from the block header.
struct EventPosition {
  uint64_t block_number = 0;
  std::string block_hash;        // 32 bytes
  std::string transaction_hash;  // 32 bytes
  uint32_t log_index = 0;
  uint64_t block_timestamp = 0;  // seconds since the epoch
};

struct AnchoredEvent {
  std::string log_id;  // 32 bytes
  uint64_t tree_size = 0;
  std::string root_hash;         // 32 bytes
  std::string operator_address;  // 20 bytes
  EventPosition position;
};

struct LicenceChangedEvent {
  std::string practitioner;     // 32 bytes
  uint8_t previous_status = 0;  // LicenceRegistry.Status, 0..kLicenceStatusMax
  uint8_t status = 0;
  uint64_t valid_until = 0;
  std::string evidence_hash;  // 32 bytes
  EventPosition position;
};

struct PolicyPublishedEvent {
  uint64_t version = 0;
  std::string bundle_hash;  // 32 bytes
  EventPosition position;
};

// The position of `log` (without the timestamp).
EventPosition PositionOf(const EventLog& log);

// Each decodes a log whose topics[0] is the event's topic; the position is
// taken from the log. INVALID_ARGUMENT naming the field when the log does
// not have the event's shape.
absl::StatusOr<AnchoredEvent> DecodeAnchored(const EventLog& log);
absl::StatusOr<LicenceChangedEvent> DecodeLicenceChanged(const EventLog& log);
absl::StatusOr<PolicyPublishedEvent> DecodePolicyPublished(const EventLog& log);

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_CONTRACT_EVENTS_H_
