#include "daemon/signer/contract_events.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/audit_anchor_abi.h"
#include "daemon/signer/registry_abi.h"

namespace medvault::signer {
namespace {

using abi::kWord;

// The log is an `event` (topics[0] is `topic`) with `topics` topics
// (topics[0] included) and `words` data words.
absl::Status CheckShape(const EventLog& log, absl::string_view event, const std::string& topic0,
                        size_t topics, size_t words) {
  if (log.topics.size() != topics) {
    return absl::InvalidArgumentError(
        absl::StrCat(event, ": ", log.topics.size(), " topics, expected ", topics));
  }
  for (const std::string& topic : log.topics) {
    if (topic.size() != kWord) {
      return absl::InvalidArgumentError(absl::StrCat(event, ": a topic is not 32 bytes"));
    }
  }
  if (log.data.size() != words * kWord) {
    return absl::InvalidArgumentError(
        absl::StrCat(event, ": ", log.data.size(), " bytes of data, expected ", words * kWord));
  }
  if (log.topics[0] != topic0) {
    return absl::InvalidArgumentError(absl::StrCat(event, ": topics[0] is another event's"));
  }
  return absl::OkStatus();
}

absl::string_view Word(const EventLog& log, size_t i) {
  return absl::string_view(log.data).substr(i * kWord, kWord);
}

absl::StatusOr<uint64_t> Uint64Of(absl::string_view word, absl::string_view event,
                                  absl::string_view field) {
  uint64_t value = 0;
  if (!abi::WordToUint64(word, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(event, ".", field, ": not a uint64 (bits above 64 are set)"));
  }
  return value;
}

// A LicenceRegistry.Status word: a uint8 that names one of the enum's values.
absl::StatusOr<uint8_t> StatusOf(absl::string_view word, absl::string_view field) {
  ASSIGN_OR_RETURN(uint64_t value, Uint64Of(word, "LicenceChanged", field));
  if (value > kLicenceStatusMax) {
    return absl::InvalidArgumentError(absl::StrCat("LicenceChanged.", field, ": ", value,
                                                   " is not a LicenceRegistry.Status (0 to ",
                                                   kLicenceStatusMax, ")"));
  }
  return static_cast<uint8_t>(value);
}

absl::StatusOr<std::string> AddressOf(absl::string_view word, absl::string_view event,
                                      absl::string_view field) {
  if (word.substr(0, kWord - 20).find_first_not_of('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(event, ".", field, ": not an address (the 12 high bytes are not zero)"));
  }
  return std::string(word.substr(kWord - 20));
}

}  // namespace

const std::string& AnchoredTopic() {
  static const std::string* topic =
      new std::string(Keccak256("Anchored(bytes32,uint64,bytes32,address)"));
  return *topic;
}

const std::string& LicenceChangedTopic() {
  // Solidity writes an enum as uint8 in the canonical signature.
  static const std::string* topic =
      new std::string(Keccak256("LicenceChanged(bytes32,uint8,uint8,uint64,bytes32)"));
  return *topic;
}

const std::string& PolicyPublishedTopic() {
  static const std::string* topic = new std::string(Keccak256("PolicyPublished(uint64,bytes32)"));
  return *topic;
}

EventPosition PositionOf(const EventLog& log) {
  EventPosition position;
  position.block_number = log.block_number;
  position.block_hash = log.block_hash;
  position.transaction_hash = log.transaction_hash;
  position.log_index = log.log_index;
  return position;
}

absl::StatusOr<AnchoredEvent> DecodeAnchored(const EventLog& log) {
  constexpr absl::string_view kEvent = "Anchored";
  RETURN_IF_ERROR(CheckShape(log, kEvent, AnchoredTopic(), 3, 2));
  AnchoredEvent event;
  event.log_id = log.topics[1];
  ASSIGN_OR_RETURN(event.operator_address, AddressOf(log.topics[2], kEvent, "operator"));
  ASSIGN_OR_RETURN(event.tree_size, Uint64Of(Word(log, 0), kEvent, "treeSize"));
  event.root_hash = std::string(Word(log, 1));
  event.position = PositionOf(log);
  return event;
}

absl::StatusOr<LicenceChangedEvent> DecodeLicenceChanged(const EventLog& log) {
  constexpr absl::string_view kEvent = "LicenceChanged";
  RETURN_IF_ERROR(CheckShape(log, kEvent, LicenceChangedTopic(), 2, 4));
  LicenceChangedEvent event;
  event.practitioner = log.topics[1];
  ASSIGN_OR_RETURN(event.previous_status, StatusOf(Word(log, 0), "previousStatus"));
  ASSIGN_OR_RETURN(event.status, StatusOf(Word(log, 1), "status"));
  ASSIGN_OR_RETURN(event.valid_until, Uint64Of(Word(log, 2), kEvent, "validUntil"));
  event.evidence_hash = std::string(Word(log, 3));
  event.position = PositionOf(log);
  return event;
}

absl::StatusOr<PolicyPublishedEvent> DecodePolicyPublished(const EventLog& log) {
  constexpr absl::string_view kEvent = "PolicyPublished";
  RETURN_IF_ERROR(CheckShape(log, kEvent, PolicyPublishedTopic(), 2, 1));
  PolicyPublishedEvent event;
  ASSIGN_OR_RETURN(event.version, Uint64Of(log.topics[1], kEvent, "version"));
  event.bundle_hash = std::string(Word(log, 0));
  event.position = PositionOf(log);
  return event;
}

}  // namespace medvault::signer
