// Reads back the deployment's key objects (label "medvault-*") and their
// security attributes from the token: what `medvaultctl keys list` shows.
// Never reads a key's value.
#ifndef MEDVAULT_KEYVAULT_KEY_LISTING_H_
#define MEDVAULT_KEYVAULT_KEY_LISTING_H_

#include <vector>

#include "absl/status/statusor.h"
#include "keyvault/pkcs11_token.h"
#include "medvault/internal/v1/keyvault.pb.h"

namespace medvault::keyvault {

// Secret and private keys, sorted by label.
absl::StatusOr<std::vector<internal::v1::KeyInfo>> ListTokenKeys(Pkcs11Token& token);

}  // namespace medvault::keyvault

#endif  // MEDVAULT_KEYVAULT_KEY_LISTING_H_
