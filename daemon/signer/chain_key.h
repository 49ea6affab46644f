// ChainKey: the chain operator key as the signer sees it — an address and
// a way to have a digest signed. The key itself stays in the keyvault's HSM
// (KeyvaultChainKey, keyvault_chain_key.h); tests use a fake.
#ifndef MEDVAULT_DAEMON_SIGNER_CHAIN_KEY_H_
#define MEDVAULT_DAEMON_SIGNER_CHAIN_KEY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {

class ChainKey {
 public:
  virtual ~ChainKey() = default;
  // The key's Ethereum address, 20 bytes.
  virtual absl::StatusOr<std::string> Address() = 0;
  // Signs a 32-byte digest: r, s (low-s) and the recovery id.
  virtual absl::StatusOr<EthSignature> SignDigest(absl::string_view digest) = 0;
};

}  // namespace medvault::signer

#endif  // MEDVAULT_DAEMON_SIGNER_CHAIN_KEY_H_
