#include "daemon/storage/cid.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/str_cat.h"

namespace medvault::storage {
namespace {

constexpr uint64_t kCidVersion = 1;
constexpr uint64_t kSha256 = 0x12;
constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads one unsigned varint (multiformats: at most 9 bytes, minimally
// encoded) from the front of `in`.
absl::StatusOr<uint64_t> ReadVarint(absl::string_view& in, absl::string_view what) {
  uint64_t v = 0;
  for (size_t i = 0; i < 9; ++i) {
    if (i >= in.size()) return absl::InvalidArgumentError(absl::StrCat("cid: truncated ", what));
    uint8_t byte = static_cast<uint8_t>(in[i]);
    v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (byte == 0 && i > 0) {
        return absl::InvalidArgumentError(absl::StrCat("cid: ", what, " is not minimally encoded"));
      }
      in.remove_prefix(i + 1);
      return v;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("cid: ", what, " varint is too long"));
}

std::string Sha256(absl::string_view data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
         reinterpret_cast<uint8_t*>(digest.data()));
  return digest;
}

}  // namespace

std::string Base32Encode(absl::string_view data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : data) {
    buffer = (buffer << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 0x1f]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 0x1f]);
  return out;
}

absl::StatusOr<std::string> Base32Decode(absl::string_view text) {
  // Lengths that leave 1, 3 or 6 characters over cannot come from whole bytes.
  size_t tail = text.size() % 8;
  if (tail == 1 || tail == 3 || tail == 6) {
    return absl::InvalidArgumentError("cid: base32 text has an impossible length");
  }
  std::string out;
  out.reserve(text.size() * 5 / 8);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'a' && c <= 'z') {
      v = c - 'a';
    } else if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      return absl::InvalidArgumentError("cid: character outside the base32 alphabet");
    }
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  // Leftover bits must be zero padding, so that each CID has one spelling.
  if ((buffer & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("cid: base32 text has non-zero padding bits");
  }
  return out;
}

Cid Cid::Of(Codec codec, absl::string_view block) { return Cid(codec, Sha256(block)); }

absl::StatusOr<Cid> Cid::Parse(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("cid: empty");
  if (text.size() == 46 && text.substr(0, 2) == "Qm") {
    return absl::InvalidArgumentError("cid: CIDv0 (\"Qm...\") is not accepted; use CIDv1 base32");
  }
  if (text[0] != 'b') {
    return absl::InvalidArgumentError(absl::StrCat("cid: multibase prefix '", text.substr(0, 1),
                                                   "' is not supported; only base32 ('b') is"));
  }
  auto binary = Base32Decode(text.substr(1));
  if (!binary.ok()) return binary.status();
  return FromBytes(*binary);
}

absl::StatusOr<Cid> Cid::FromBytes(absl::string_view in) {
  auto version = ReadVarint(in, "version");
  if (!version.ok()) return version.status();
  if (*version != kCidVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("cid: version ", *version, " is not supported; only CIDv1 is"));
  }
  auto codec = ReadVarint(in, "codec");
  if (!codec.ok()) return codec.status();
  if (*codec != static_cast<uint64_t>(Codec::kRaw) &&
      *codec != static_cast<uint64_t>(Codec::kDagPb)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cid: codec 0x", absl::Hex(*codec),
                     " is not supported; only raw (0x55) and dag-pb (0x70)"));
  }
  auto hash = ReadVarint(in, "hash function");
  if (!hash.ok()) return hash.status();
  if (*hash != kSha256) {
    return absl::InvalidArgumentError(absl::StrCat("cid: hash function 0x", absl::Hex(*hash),
                                                   " is not supported; only sha2-256 (0x12)"));
  }
  auto length = ReadVarint(in, "digest length");
  if (!length.ok()) return length.status();
  if (*length != kDigestSize || in.size() != kDigestSize) {
    return absl::InvalidArgumentError(absl::StrCat("cid: a sha2-256 digest is 32 bytes, got ",
                                                   in.size(), " (declared ", *length, ")"));
  }
  return Cid(static_cast<Codec>(*codec), std::string(in));
}

std::string Cid::multihash() const {
  std::string out;
  AppendVarint(out, kSha256);
  AppendVarint(out, kDigestSize);
  out += digest_;
  return out;
}

std::string Cid::bytes() const {
  std::string out;
  AppendVarint(out, kCidVersion);
  AppendVarint(out, static_cast<uint64_t>(codec_));
  out += multihash();
  return out;
}

std::string Cid::ToString() const { return "b" + Base32Encode(bytes()); }

bool Cid::Matches(absl::string_view block) const {
  std::string actual = Sha256(block);
  return CRYPTO_memcmp(actual.data(), digest_.data(), kDigestSize) == 0;
}

}  // namespace medvault::storage
