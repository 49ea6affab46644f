#include "daemon/common/keccak.h"

#include <cryptopp/keccak.h>

namespace medvault {

std::string Keccak256(absl::string_view data) {
  std::string digest(CryptoPP::Keccak_256::DIGESTSIZE, '\0');
  CryptoPP::Keccak_256().CalculateDigest(reinterpret_cast<CryptoPP::byte*>(digest.data()),
                                         reinterpret_cast<const CryptoPP::byte*>(data.data()),
                                         data.size());
  return digest;
}

}  // namespace medvault
