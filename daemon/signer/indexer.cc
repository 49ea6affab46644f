#include "daemon/signer/indexer.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {
namespace {

// Chain order.
template <typename Event>
void SortByPosition(std::vector<Event>* events) {
  std::stable_sort(events->begin(), events->end(), [](const Event& a, const Event& b) {
    return std::tie(a.position.block_number, a.position.log_index) <
           std::tie(b.position.block_number, b.position.log_index);
  });
}

// `status` with "block N log I: " in front of its message.
absl::Status AtLog(const EventLog& log, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("block ", log.block_number, " log ",
                                                  log.log_index, ": ", status.message()));
}

// A decoded event with the timestamp of its block, appended to `out`.
template <typename Event>
absl::Status Append(const EventLog& log, absl::StatusOr<Event> decoded, uint64_t timestamp,
                    std::vector<Event>* out) {
  if (!decoded.ok()) return AtLog(log, decoded.status());
  decoded->position.block_timestamp = timestamp;
  out->push_back(*std::move(decoded));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Indexer>> Indexer::Create(EventIndex* index, ChainClient* chain,
                                                         IndexerOptions options) {
  if (options.audit_anchor.empty() && options.licence_registry.empty() &&
      options.policy_registry.empty()) {
    return absl::InvalidArgumentError("indexer: no contract to follow");
  }
  for (const auto& [field, address] : {std::pair{"audit_anchor", &options.audit_anchor},
                                       {"licence_registry", &options.licence_registry},
                                       {"policy_registry", &options.policy_registry}}) {
    if (!address->empty() && address->size() != 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("indexer: ", field, " must be 20 bytes, got ", address->size()));
    }
  }
  if (options.confirmations == 0 || options.batch_blocks == 0) {
    return absl::InvalidArgumentError("indexer: confirmations and batch_blocks must be above 0");
  }
  std::unique_ptr<Indexer> indexer(new Indexer(index, chain, std::move(options)));
  RETURN_IF_ERROR(indexer->RefreshCursor());
  return indexer;
}

EventIndexScope Indexer::ScopeOf(const IndexerOptions& options) {
  // Tagged, so that the same address in another role is another scope.
  return EventIndexScope{
      absl::StrCat("anchor:", options.audit_anchor, ";licence:", options.licence_registry,
                   ";policy:", options.policy_registry),
      options.from_block};
}

void Indexer::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Indexer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool Indexer::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void Indexer::Run() {
  for (;;) {
    PollOnce().IgnoreError();  // kept in the status and logged
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.poll_interval);
    if (stopping_) return;
  }
}

IndexerStatus Indexer::status() const {
  absl::MutexLock lock(&mu_);
  IndexerStatus status;
  if (cursor_.next_block > cursor_.from_block) status.indexed_block = cursor_.next_block - 1;
  status.head_block = head_;
  status.synced_at = synced_at_;
  status.error = error_;
  status.reorgs = cursor_.reorgs;
  return status;
}

absl::Status Indexer::RefreshCursor() {
  ASSIGN_OR_RETURN(IndexCursor cursor, index_->Cursor());
  absl::MutexLock lock(&mu_);
  cursor_ = cursor;
  return absl::OkStatus();
}

absl::Status Indexer::PollOnce() {
  absl::Status polled = Poll();
  {
    absl::MutexLock lock(&mu_);
    error_ = polled.ok() ? "" : polled.ToString();
  }
  if (!polled.ok() && polled.ToString() != last_error_) {
    last_error_ = polled.ToString();
    log::Warn("index.retrying", {{"error", polled}});
  } else if (polled.ok() && !last_error_.empty()) {
    last_error_.clear();
    log::Info("index.recovered");
  }
  return polled;
}

absl::Status Indexer::Poll() {
  if (options_.expected_chain_id != 0) {
    ASSIGN_OR_RETURN(uint64_t chain_id, chain_->ChainId());
    if (chain_id != options_.expected_chain_id) {
      return absl::FailedPreconditionError(absl::StrCat("node reports chain id ", chain_id,
                                                        ", configuration expects ",
                                                        options_.expected_chain_id));
    }
  }
  ASSIGN_OR_RETURN(uint64_t head, chain_->BlockNumber());
  {
    absl::MutexLock lock(&mu_);
    head_ = head;
  }
  for (;;) {
    if (stopping()) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string cursor_hash, FollowReorg());
    if (head + 1 < options_.confirmations) break;  // no block is deep enough yet
    const uint64_t target = head + 1 - options_.confirmations;
    IndexCursor cursor;
    {
      absl::MutexLock lock(&mu_);
      cursor = cursor_;
    }
    if (cursor.next_block > target) break;
    const uint64_t to =
        target - cursor.next_block >= batch_ ? cursor.next_block + batch_ - 1 : target;
    RETURN_IF_ERROR(IndexRange(cursor.next_block, to, target, cursor_hash));
    // At the target: no range follows, so the cursor's block is checked
    // again by the next poll only (not here, right after reading it).
    if (to == target) break;
  }
  absl::MutexLock lock(&mu_);
  synced_at_ = options_.clock();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Indexer::FollowReorg() {
  IndexCursor cursor;
  {
    absl::MutexLock lock(&mu_);
    cursor = cursor_;
  }
  if (cursor.next_block <= cursor.from_block) return std::string();  // nothing indexed
  const uint64_t last = cursor.next_block - 1;
  ASSIGN_OR_RETURN(auto hashes, index_->BlockHashes());
  if (hashes.empty() || hashes.front().first != last) {
    return absl::InternalError(absl::StrCat("signer index: no hash of its last block ", last));
  }
  // Newest first: the first remembered block the chain still has is the
  // fork point (the cursor itself when nothing changed).
  for (const auto& [number, hash] : hashes) {
    ASSIGN_OR_RETURN(std::optional<BlockHeader> header, chain_->GetBlockHeader(number));
    if (!header.has_value() || header->hash != hash) continue;
    if (number == last) return hash;
    RETURN_IF_ERROR(index_->Rewind(number));
    log::Warn("index.reorg", {{"fork_block", number},
                              {"indexed_block", last},
                              {"depth", last - number},
                              {"dropped_from", number + 1}});
    RETURN_IF_ERROR(RefreshCursor());
    return hash;
  }
  log::Error("index.deep_reorg",
             {{"indexed_block", last},
              {"oldest_remembered", hashes.back().first},
              {"restart_block", cursor.from_block},
              {"reason", "no remembered block hash is on the chain: the index is read again"}});
  RETURN_IF_ERROR(index_->Reset());
  RETURN_IF_ERROR(RefreshCursor());
  return std::string();
}

absl::StatusOr<BlockHeader> Indexer::Header(uint64_t number) {
  ASSIGN_OR_RETURN(std::optional<BlockHeader> header, chain_->GetBlockHeader(number));
  if (!header.has_value()) {
    return absl::AbortedError(
        absl::StrCat("block ", number, " is not on the node any more (the chain changed)"));
  }
  return *std::move(header);
}

absl::StatusOr<std::vector<EventLog>> Indexer::ReadLogs(uint64_t from, uint64_t to) {
  LogFilter filter;
  for (const std::string* address :
       {&options_.audit_anchor, &options_.licence_registry, &options_.policy_registry}) {
    if (!address->empty()) filter.addresses.push_back(*address);
  }
  filter.topic0 = {AnchoredTopic(), LicenceChangedTopic(), PolicyPublishedTopic()};
  filter.from_block = from;
  filter.to_block = to;
  absl::StatusOr<std::vector<EventLog>> logs = chain_->GetLogs(filter);
  if (!logs.ok()) {
    // Maybe too large an answer for the node: try a smaller range.
    batch_ = static_cast<uint32_t>(std::max<uint64_t>(1, (to - from + 1) / 2));
    return logs.status();
  }
  batch_ = static_cast<uint32_t>(std::min<uint64_t>(options_.batch_blocks, uint64_t{batch_} * 2));
  for (const EventLog& log : *logs) {
    if (log.block_number < from || log.block_number > to) {
      return absl::InternalError(absl::StrCat("eth_getLogs returned a log of block ",
                                              log.block_number, " for blocks ", from, " to ", to));
    }
  }
  return logs;
}

absl::StatusOr<std::map<uint64_t, BlockHeader>> Indexer::ReadHeaders(
    uint64_t window, uint64_t to, const std::vector<EventLog>& logs) {
  std::map<uint64_t, BlockHeader> headers;
  for (uint64_t n = window; n <= to; ++n) {
    ASSIGN_OR_RETURN(headers[n], Header(n));
  }
  for (const EventLog& log : logs) {
    if (!log.removed && !headers.contains(log.block_number)) {
      ASSIGN_OR_RETURN(headers[log.block_number], Header(log.block_number));
    }
  }
  if (!headers.contains(to)) {
    ASSIGN_OR_RETURN(headers[to], Header(to));
  }
  return headers;
}

absl::Status Indexer::IndexRange(uint64_t from, uint64_t to, uint64_t target,
                                 const std::string& cursor_hash) {
  const uint64_t keep = uint64_t{options_.confirmations} + options_.reorg_depth;
  // The blocks near the target, where a reorganisation can happen: each
  // one's hash is remembered and they must form a chain.
  const uint64_t window = std::max(from, target + 1 > keep ? target + 1 - keep : 0);
  ASSIGN_OR_RETURN(BlockHeader last_before, Header(to));
  ASSIGN_OR_RETURN(std::vector<EventLog> logs, ReadLogs(from, to));
  ASSIGN_OR_RETURN(auto headers, ReadHeaders(window, to, logs));

  const absl::Status moved = absl::AbortedError(absl::StrCat(
      "the chain changed while blocks ", from, " to ", to, " were read; reading them again"));
  if (headers[to].hash != last_before.hash) return moved;
  for (uint64_t n = window + 1; n <= to; ++n) {
    if (headers[n].parent_hash != headers[n - 1].hash) return moved;
  }
  if (window == from && !cursor_hash.empty() && headers[from].parent_hash != cursor_hash) {
    return moved;
  }
  IndexBatch batch;
  batch.from_block = from;
  batch.to_block = to;
  RETURN_IF_ERROR(Decode(logs, headers, &batch));
  for (const auto& [number, header] : headers) {
    if (number >= window || number == to) batch.block_hashes.emplace_back(number, header.hash);
  }
  batch.forget_hashes_below = to + 1 > keep ? to + 1 - keep : 0;
  RETURN_IF_ERROR(index_->Commit(batch));
  const size_t events = batch.anchors.size() + batch.licences.size() + batch.policies.size();
  if (events > 0) {
    log::Info("index.read", {{"from_block", from}, {"to_block", to}, {"events", events}});
  }
  return RefreshCursor();
}

absl::Status Indexer::Decode(const std::vector<EventLog>& logs,
                             const std::map<uint64_t, BlockHeader>& headers, IndexBatch* batch) {
  for (const EventLog& log : logs) {
    if (log.removed) continue;
    const BlockHeader& header = headers.at(log.block_number);
    if (log.block_hash != header.hash) {
      return absl::AbortedError(absl::StrCat("a log of block ", log.block_number,
                                             " is of another block with that number (the chain "
                                             "changed while it was read); reading it again"));
    }
    const bool known = log.address == options_.audit_anchor ||
                       log.address == options_.licence_registry ||
                       log.address == options_.policy_registry;
    if (!known) {
      return absl::InternalError(
          absl::StrCat("eth_getLogs returned a log of ", ToHex(log.address), ", not asked for"));
    }
    if (log.topics.empty()) continue;  // an anonymous event: none of ours
    const std::string& topic = log.topics[0];
    const uint64_t time = header.timestamp;
    if (log.address == options_.audit_anchor && topic == AnchoredTopic()) {
      RETURN_IF_ERROR(Append(log, DecodeAnchored(log), time, &batch->anchors));
    } else if (log.address == options_.licence_registry && topic == LicenceChangedTopic()) {
      RETURN_IF_ERROR(Append(log, DecodeLicenceChanged(log), time, &batch->licences));
    } else if (log.address == options_.policy_registry && topic == PolicyPublishedTopic()) {
      RETURN_IF_ERROR(Append(log, DecodePolicyPublished(log), time, &batch->policies));
    }
    // Otherwise another contract's event topic from a followed address: not
    // one this contract emits, so nothing to index.
  }
  SortByPosition(&batch->anchors);
  SortByPosition(&batch->licences);
  SortByPosition(&batch->policies);
  return absl::OkStatus();
}

}  // namespace medvault::signer
