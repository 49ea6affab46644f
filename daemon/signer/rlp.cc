#include "daemon/signer/rlp.h"

namespace medvault::signer::rlp {
namespace {

// Big-endian bytes of `value` without leading zeros (empty for 0).
std::string MinimalBigEndian(uint64_t value) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    uint8_t byte = static_cast<uint8_t>(value >> shift);
    if (byte != 0 || !out.empty()) out.push_back(static_cast<char>(byte));
  }
  return out;
}

// The prefix of a payload of `length` bytes: `short_base` + length when it is
// at most 55, else `short_base` + 55 + the length of the length, then the length.
std::string LengthPrefix(uint8_t short_base, uint64_t length) {
  if (length <= 55) return std::string(1, static_cast<char>(short_base + length));
  std::string length_bytes = MinimalBigEndian(length);
  std::string out(1, static_cast<char>(short_base + 55 + length_bytes.size()));
  out += length_bytes;
  return out;
}

}  // namespace

std::string EncodeBytes(absl::string_view bytes) {
  if (bytes.size() == 1 && static_cast<uint8_t>(bytes[0]) < 0x80) return std::string(bytes);
  std::string out = LengthPrefix(0x80, bytes.size());
  out.append(bytes.data(), bytes.size());
  return out;
}

std::string EncodeUint(uint64_t value) { return EncodeBytes(MinimalBigEndian(value)); }

std::string EncodeBigEndianUint(absl::string_view big_endian) {
  while (!big_endian.empty() && big_endian.front() == '\0') big_endian.remove_prefix(1);
  return EncodeBytes(big_endian);
}

std::string EncodeList(absl::Span<const std::string> encoded_items) {
  size_t length = 0;
  for (const std::string& item : encoded_items) length += item.size();
  std::string out = LengthPrefix(0xc0, length);
  out.reserve(out.size() + length);
  for (const std::string& item : encoded_items) out += item;
  return out;
}

}  // namespace medvault::signer::rlp
