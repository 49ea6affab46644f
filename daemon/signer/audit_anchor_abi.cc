#include "daemon/signer/audit_anchor_abi.h"

#include "absl/strings/str_cat.h"
#include "daemon/common/keccak.h"
#include "daemon/signer/eth_tx.h"

namespace medvault::signer {
namespace abi {

std::string Uint64Word(uint64_t value) {
  std::string word(kWord, '\0');
  for (int i = 0; i < 8; ++i) word[kWord - 1 - i] = static_cast<char>(value >> (8 * i));
  return word;
}

std::string AddressWord(absl::string_view address) {
  return absl::StrCat(std::string(kWord - address.size(), '\0'), address);
}

bool WordToUint64(absl::string_view word, uint64_t* value) {
  *value = 0;
  if (word.size() != kWord) return false;
  for (size_t i = 0; i < kWord - 8; ++i) {
    if (word[i] != '\0') return false;
  }
  for (size_t i = kWord - 8; i < kWord; ++i) {
    *value = (*value << 8) | static_cast<uint8_t>(word[i]);
  }
  return true;
}

absl::Status CheckBytes32(absl::string_view value, absl::string_view field) {
  if (value.size() != kWord) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be 32 bytes, got ", value.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckNonZero32(absl::string_view value, absl::string_view field) {
  if (absl::Status s = CheckBytes32(value, field); !s.ok()) return s;
  if (value.find_first_not_of('\0') == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be all zero"));
  }
  return absl::OkStatus();
}

}  // namespace abi

using abi::CheckBytes32;
using abi::kWord;
using abi::Uint64Word;
using abi::WordToUint64;

std::string Selector(absl::string_view signature) { return Keccak256(signature).substr(0, 4); }

absl::StatusOr<std::string> EncodeAnchorCall(absl::string_view log_id, uint64_t tree_size,
                                             absl::string_view root_hash) {
  if (auto s = CheckBytes32(log_id, "log_id"); !s.ok()) return s;
  if (auto s = CheckBytes32(root_hash, "root_hash"); !s.ok()) return s;
  return absl::StrCat(Selector("anchor(bytes32,uint64,bytes32)"), log_id, Uint64Word(tree_size),
                      root_hash);
}

absl::StatusOr<std::string> EncodeLatestCall(absl::string_view log_id) {
  if (auto s = CheckBytes32(log_id, "log_id"); !s.ok()) return s;
  return absl::StrCat(Selector("latest(bytes32)"), log_id);
}

absl::StatusOr<Checkpoint> DecodeLatestResult(absl::string_view output) {
  if (output.size() != 4 * kWord) {
    return absl::InvalidArgumentError(
        absl::StrCat("latest(): expected 128 bytes of output, got ", output.size()));
  }
  Checkpoint c;
  c.root_hash = std::string(output.substr(kWord, kWord));
  if (!WordToUint64(output.substr(0, kWord), &c.tree_size) ||
      !WordToUint64(output.substr(2 * kWord, kWord), &c.timestamp) ||
      !WordToUint64(output.substr(3 * kWord, kWord), &c.block_number)) {
    return absl::InvalidArgumentError("latest(): a uint64 output word is out of range");
  }
  return c;
}

AnchorRevert DecodeAnchorRevert(absl::string_view data) {
  AnchorRevert r;
  absl::string_view selector = data.substr(0, 4);
  absl::string_view args = data.size() >= 4 ? data.substr(4) : absl::string_view();
  if (selector == Selector("AlreadyAnchored(bytes32,uint64,bytes32)") && args.size() == 3 * kWord &&
      WordToUint64(args.substr(kWord, kWord), &r.tree_size)) {
    r.kind = AnchorRevert::Kind::kAlreadyAnchored;
    r.description = absl::StrCat("AlreadyAnchored(tree size ", r.tree_size, ")");
  } else if (selector == Selector("TreeSizeNotIncreasing(bytes32,uint64,uint64)") &&
             args.size() == 3 * kWord &&
             WordToUint64(args.substr(kWord, kWord), &r.latest_tree_size) &&
             WordToUint64(args.substr(2 * kWord, kWord), &r.tree_size)) {
    r.kind = AnchorRevert::Kind::kTreeSizeNotIncreasing;
    r.description = absl::StrCat("TreeSizeNotIncreasing(latest ", r.latest_tree_size, ", given ",
                                 r.tree_size, ")");
  } else if (selector == Selector("NotOperator(address)") && args.size() == kWord) {
    r.kind = AnchorRevert::Kind::kNotOperator;
    r.account = std::string(args.substr(12));
    r.description = absl::StrCat("NotOperator(", ToHex(r.account), ")");
  } else {
    r.description = absl::StrCat("revert data ", ToHex(data));
  }
  return r;
}

}  // namespace medvault::signer
