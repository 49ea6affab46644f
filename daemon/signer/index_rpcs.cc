#include "daemon/signer/index_rpcs.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/audit_anchor_abi.h"

namespace medvault::signer {
namespace {

namespace v1 = ::medvault::internal::v1;

// FAILED_PRECONDITION unless the indexer follows the contract `field` of
// IndexerOptions (`config_key` names it in the configuration).
absl::Status RequireFollowed(const Indexer* indexer, std::string IndexerOptions::*field,
                             absl::string_view config_key) {
  if (indexer == nullptr || (indexer->options().*field).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(config_key, " is not configured: its events are not indexed"));
  }
  return absl::OkStatus();
}

// A list's `limit`: 0 means 100, at most 1000.
absl::StatusOr<uint32_t> ListLimit(uint32_t limit) {
  if (limit > 1000) return absl::InvalidArgumentError("limit: must be at most 1000");
  return limit == 0 ? 100 : limit;
}

// The id in a ListLicenceEvents cursor (decimal digits only); 0 for none.
absl::StatusOr<int64_t> CursorId(const std::string& after) {
  if (after.empty()) return 0;
  int64_t id = 0;
  const bool digits = after.size() <= 19 && std::all_of(after.begin(), after.end(), [](char c) {
                        return absl::ascii_isdigit(static_cast<unsigned char>(c));
                      });
  if (!digits || !absl::SimpleAtoi(after, &id)) {
    return absl::InvalidArgumentError(
        "after: not a cursor from ListLicenceEvents (empty, or a next_cursor)");
  }
  return id;
}

void ToProto(const IndexerStatus& status, v1::IndexStatus* out) {
  out->set_indexed_block(status.indexed_block);
  out->set_head_block(status.head_block);
  out->set_synced_ms(status.synced_at.has_value() ? absl::ToUnixMillis(*status.synced_at) : 0);
  out->set_error(status.error);
  out->set_reorgs(status.reorgs);
}

void ToProto(const EventPosition& position, v1::EventPosition* out) {
  out->set_block_number(position.block_number);
  out->set_block_hash(position.block_hash);
  out->set_transaction_hash(position.transaction_hash);
  out->set_log_index(position.log_index);
  out->set_block_timestamp(position.block_timestamp);
}

void ToProto(const LicenceChangedEvent& event, v1::LicenceEvent* out) {
  out->set_practitioner(event.practitioner);
  // The decoder admits LicenceRegistry.Status values only: the same numbers.
  out->set_previous_status(static_cast<v1::LicenceStatus>(event.previous_status));
  out->set_status(static_cast<v1::LicenceStatus>(event.status));
  out->set_valid_until(event.valid_until);
  out->set_evidence_hash(event.evidence_hash);
  ToProto(event.position, out->mutable_position());
}

}  // namespace

absl::Status GetIndexStatus(const Indexer* indexer, v1::IndexStatus* response) {
  if (indexer == nullptr) {
    return absl::FailedPreconditionError(
        "no contract is configured (signer.anchor_contract, licence_registry, policy_registry): "
        "nothing is indexed");
  }
  ToProto(indexer->status(), response);
  return absl::OkStatus();
}

absl::Status ListLicenceEvents(const Indexer* indexer, const v1::ListLicenceEventsRequest& request,
                               v1::ListLicenceEventsResponse* response) {
  RETURN_IF_ERROR(
      RequireFollowed(indexer, &IndexerOptions::licence_registry, "signer.licence_registry"));
  ASSIGN_OR_RETURN(uint32_t limit, ListLimit(request.limit()));
  ASSIGN_OR_RETURN(int64_t after, CursorId(request.after()));
  ToProto(indexer->status(), response->mutable_index());
  ASSIGN_OR_RETURN(auto events, indexer->index()->LicenceEventsAfter(after, limit));
  for (const auto& [id, event] : events) ToProto(event, response->add_events());
  response->set_next_cursor(events.empty() ? request.after() : absl::StrCat(events.back().first));
  return absl::OkStatus();
}

absl::Status GetLicence(const Indexer* indexer, const v1::GetLicenceRequest& request,
                        v1::GetLicenceResponse* response) {
  RETURN_IF_ERROR(
      RequireFollowed(indexer, &IndexerOptions::licence_registry, "signer.licence_registry"));
  RETURN_IF_ERROR(abi::CheckBytes32(request.practitioner(), "practitioner"));
  ToProto(indexer->status(), response->mutable_index());
  ASSIGN_OR_RETURN(auto licence, indexer->index()->LatestLicence(request.practitioner()));
  if (!licence.has_value()) {
    return absl::NotFoundError("practitioner: no LicenceChanged event for this key in the index");
  }
  ToProto(*licence, response->mutable_licence());
  return absl::OkStatus();
}

absl::Status ListPolicyPublications(const Indexer* indexer,
                                    const v1::ListPolicyPublicationsRequest& request,
                                    v1::ListPolicyPublicationsResponse* response) {
  RETURN_IF_ERROR(
      RequireFollowed(indexer, &IndexerOptions::policy_registry, "signer.policy_registry"));
  ASSIGN_OR_RETURN(uint32_t limit, ListLimit(request.limit()));
  ToProto(indexer->status(), response->mutable_index());
  ASSIGN_OR_RETURN(auto publications, indexer->index()->PolicyPublications(limit));
  for (const PolicyPublishedEvent& event : publications) {
    v1::PolicyPublication* out = response->add_publications();
    out->set_version(event.version);
    out->set_bundle_hash(event.bundle_hash);
    ToProto(event.position, out->mutable_position());
  }
  return absl::OkStatus();
}

absl::Status ListAnchorEvents(const Indexer* indexer, const v1::ListAnchorEventsRequest& request,
                              v1::ListAnchorEventsResponse* response) {
  RETURN_IF_ERROR(
      RequireFollowed(indexer, &IndexerOptions::audit_anchor, "signer.anchor_contract"));
  RETURN_IF_ERROR(abi::CheckBytes32(request.log_id(), "log_id"));
  ASSIGN_OR_RETURN(uint32_t limit, ListLimit(request.limit()));
  ToProto(indexer->status(), response->mutable_index());
  ASSIGN_OR_RETURN(auto events, indexer->index()->AnchorEvents(request.log_id(), limit));
  for (const AnchoredEvent& event : events) {
    v1::AnchorEvent* out = response->add_events();
    out->set_log_id(event.log_id);
    out->set_tree_size(event.tree_size);
    out->set_root_hash(event.root_hash);
    out->set_operator_(event.operator_address);
    ToProto(event.position, out->mutable_position());
  }
  return absl::OkStatus();
}

}  // namespace medvault::signer
