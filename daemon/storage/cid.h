// Content identifiers (CIDs) as IPFS writes them, limited to what medvault
// stores: CIDv1, multihash sha2-256 (0x12, 32 bytes), codec raw (0x55) for
// leaf blocks or dag-pb (0x70) for UnixFS nodes, shown in base32 (multibase
// prefix "b", lowercase, no padding: "bafk..." / "bafy...").
//
//   binary  = varint(1) varint(codec) varint(0x12) varint(32) digest[32]
//   text    = "b" base32lower(binary)
//
// Parsing refuses everything else with INVALID_ARGUMENT naming what was
// wrong (CIDv0, another multibase, an unknown codec or hash function, a
// truncated digest), so a reference that this store cannot verify never
// gets in.
#ifndef MEDVAULT_DAEMON_STORAGE_CID_H_
#define MEDVAULT_DAEMON_STORAGE_CID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medvault::storage {

enum class Codec : uint64_t { kRaw = 0x55, kDagPb = 0x70 };

class Cid {
 public:
  static constexpr size_t kDigestSize = 32;

  // The CID of `block` under `codec` (SHA-256 of the bytes).
  static Cid Of(Codec codec, absl::string_view block);
  // From text ("bafy...") or from the binary form.
  static absl::StatusOr<Cid> Parse(absl::string_view text);
  static absl::StatusOr<Cid> FromBytes(absl::string_view binary);

  Codec codec() const { return codec_; }
  const std::string& digest() const { return digest_; }
  // Binary form, as dag-pb links carry it.
  std::string bytes() const;
  // "bafy..."/"bafk...".
  std::string ToString() const;
  // The multihash alone (0x12 0x20 digest), which is what a block store
  // keys blocks by: the same bytes under two codecs are one block.
  std::string multihash() const;
  // True when SHA-256(block) is this CID's digest.
  bool Matches(absl::string_view block) const;

  friend bool operator==(const Cid& a, const Cid& b) {
    return a.codec_ == b.codec_ && a.digest_ == b.digest_;
  }
  friend bool operator!=(const Cid& a, const Cid& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Cid& c) {
    return H::combine(std::move(h), static_cast<uint64_t>(c.codec_), c.digest_);
  }

 private:
  Cid(Codec codec, std::string digest) : codec_(codec), digest_(std::move(digest)) {}

  Codec codec_;
  std::string digest_;
};

// RFC 4648 base32, lowercase, no padding (the multibase "b" alphabet), and
// its inverse; Base32Decode accepts upper or lower case and fails on any
// other character or an impossible length.
std::string Base32Encode(absl::string_view data);
absl::StatusOr<std::string> Base32Decode(absl::string_view text);

}  // namespace medvault::storage

#endif  // MEDVAULT_DAEMON_STORAGE_CID_H_
