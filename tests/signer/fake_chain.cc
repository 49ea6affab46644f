#include "tests/signer/fake_chain.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace medvault::signer::testing {

uint64_t NonceOf(absl::string_view raw) { return static_cast<uint8_t>(raw[6]); }

absl::StatusOr<EthSignature> FakeKey::SignDigest(absl::string_view digest) {
  digests.push_back(std::string(digest));
  return EthSignature{absl::StrCat("\x01", digest.substr(1)), std::string(32, '\x02'), 1};
}

absl::StatusOr<std::vector<EventLog>> AnchoringChain::GetLogs(const LogFilter&) {
  return absl::UnimplementedError("not used by anchoring");
}

absl::StatusOr<std::optional<BlockHeader>> AnchoringChain::GetBlockHeader(uint64_t) {
  return absl::UnimplementedError("not used by anchoring");
}

}  // namespace medvault::signer::testing
