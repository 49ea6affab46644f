// What the tests of the anchoring code (anchorer_test.cc,
// outbox_worker_test.cc) share around their fake nodes: the chain key's
// address, a key that signs without a keyvault, the nonce of a raw
// transaction, and the node calls anchoring never makes.
#ifndef MEDVAULT_TESTS_SIGNER_FAKE_CHAIN_H_
#define MEDVAULT_TESTS_SIGNER_FAKE_CHAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/signer/chain_key.h"
#include "daemon/signer/json_rpc_client.h"

namespace medvault::signer::testing {

// The fake key's address.
inline const std::string kSender(20, '\x5e');

// The nonce inside a raw transaction of these tests: 0x02, the list header
// (0xf8 and a length byte), chain id 31337 (0x82 7a 69), then the nonce,
// which must be below 0x80 (one byte).
uint64_t NonceOf(absl::string_view raw);

// Signs anything, recording each digest. The signature differs per digest
// (so a replacement has its own hash) and its r never starts with a zero
// byte (so the encoding's length is fixed).
class FakeKey : public ChainKey {
 public:
  absl::StatusOr<std::string> Address() override { return kSender; }
  absl::StatusOr<EthSignature> SignDigest(absl::string_view digest) override;

  std::vector<std::string> digests;
};

// A node for anchoring: events and headers are never read (UNIMPLEMENTED).
class AnchoringChain : public ChainClient {
 public:
  absl::StatusOr<std::vector<EventLog>> GetLogs(const LogFilter&) override;
  absl::StatusOr<std::optional<BlockHeader>> GetBlockHeader(uint64_t) override;
};

}  // namespace medvault::signer::testing

#endif  // MEDVAULT_TESTS_SIGNER_FAKE_CHAIN_H_
