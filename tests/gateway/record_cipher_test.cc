// The record format (record_cipher.h): round trips in pieces of any size,
// every kind of tampering refused, and the bytes on disk as documented.
#include "daemon/gateway/record_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace medvault::gateway {
namespace {

using ::testing::HasSubstr;

MATCHER_P(StatusIs, code, "") { return arg.code() == code; }

constexpr size_t kSeg = kRecordSegmentSize;
constexpr size_t kSegCt = kRecordSegmentSize + kRecordTagSize;

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  if (n > 0) RAND_bytes(reinterpret_cast<uint8_t*>(s.data()), static_cast<int>(n));
  return s;
}

SecretData Key(char fill = 'k') { return SecretData(std::string(kRecordKeySize, fill)); }
std::string Ad() { return RecordAssociatedData("patient-1", "record-7", "application/pdf"); }

// Piece sizes that straddle segment boundaries in every way.
const std::vector<size_t> kOddPieces = {1, 7, 4093, 65535, 65537, 3, 131073, 100000};

// Feeds `input` to `update` in kOddPieces-sized pieces (or whole).
template <typename Cipher>
absl::Status Feed(Cipher& cipher, absl::string_view input, bool in_pieces, std::string* out) {
  for (size_t i = 0; !input.empty(); ++i) {
    size_t n = in_pieces ? std::min(input.size(), kOddPieces[i % kOddPieces.size()]) : input.size();
    if (absl::Status s = cipher.Update(input.substr(0, n), out); !s.ok()) return s;
    input.remove_prefix(n);
  }
  return cipher.Finish(out);
}

std::string Encrypt(absl::string_view plaintext, const SecretData& key, const std::string& ad,
                    bool in_pieces = false) {
  auto encryptor = RecordEncryptor::Create(key, ad);
  EXPECT_TRUE(encryptor.ok()) << encryptor.status();
  std::string out;
  absl::Status s = Feed(**encryptor, plaintext, in_pieces, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

absl::StatusOr<std::string> Decrypt(absl::string_view record, const SecretData& key,
                                    const std::string& ad, bool in_pieces = false) {
  auto decryptor = RecordDecryptor::Create(key, ad);
  if (!decryptor.ok()) return decryptor.status();
  std::string out;
  if (absl::Status s = Feed(**decryptor, record, in_pieces, &out); !s.ok()) return s;
  return out;
}

class RoundTripTest : public ::testing::TestWithParam<size_t> {};

// Any size, fed whole or in odd pieces, comes back intact, and the record
// has the size CiphertextSize promises.
TEST_P(RoundTripTest, DecryptsWhatWasEncrypted) {
  std::string plaintext = RandomBytes(GetParam());
  for (bool pieces : {false, true}) {
    std::string record = Encrypt(plaintext, Key(), Ad(), pieces);
    EXPECT_EQ(record.size(), CiphertextSize(plaintext.size()));
    for (bool decrypt_pieces : {false, true}) {
      auto decrypted = Decrypt(record, Key(), Ad(), decrypt_pieces);
      ASSERT_TRUE(decrypted.ok()) << decrypted.status();
      EXPECT_TRUE(*decrypted == plaintext) << "size " << plaintext.size();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, RoundTripTest,
                         ::testing::Values(0, 1, kSeg - 1, kSeg, kSeg + 1, 2 * kSeg,
                                           (1 << 20) + 7));

// Sizes: one segment per started 64 KiB, and one (empty) for nothing.
TEST(CiphertextSizeTest, OneTagPerSegment) {
  EXPECT_EQ(CiphertextSize(0), 16u + 16u);
  EXPECT_EQ(CiphertextSize(1), 16u + 1 + 16);
  EXPECT_EQ(CiphertextSize(kSeg), 16u + kSeg + 16);
  EXPECT_EQ(CiphertextSize(kSeg + 1), 16u + kSeg + 1 + 32);
  EXPECT_EQ(CiphertextSize(64u << 20), 16u + (64u << 20) + 1024 * 16);
}

// Output comes out as segments complete, so memory stays bounded: a
// segment is released as soon as the next byte shows it is not the last.
TEST(RecordEncryptorTest, StreamsSegmentsAsTheyComplete) {
  auto encryptor = RecordEncryptor::Create(Key(), Ad());
  ASSERT_TRUE(encryptor.ok());
  std::string out;
  ASSERT_TRUE((*encryptor)->Update(std::string(kSeg, 'a'), &out).ok());
  EXPECT_EQ(out.size(), kRecordHeaderSize);  // the segment might be the last
  ASSERT_TRUE((*encryptor)->Update("b", &out).ok());
  EXPECT_EQ(out.size(), kRecordHeaderSize + kSegCt);
  // "b" and 3 segments of 'c': three more full segments, one byte held.
  ASSERT_TRUE((*encryptor)->Update(std::string(3 * kSeg, 'c'), &out).ok());
  EXPECT_EQ(out.size(), kRecordHeaderSize + 4 * kSegCt);
  ASSERT_TRUE((*encryptor)->Finish(&out).ok());
  EXPECT_EQ(out.size(), CiphertextSize(4 * kSeg + 1));
  EXPECT_THAT((*encryptor)->Update("x", &out), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*encryptor)->Finish(&out), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// The decryptor also hands out each segment once it is known not to be
// the last one.
TEST(RecordDecryptorTest, StreamsSegmentsAsTheyComplete) {
  std::string record = Encrypt(std::string(2 * kSeg + 5, 'p'), Key(), Ad());
  auto decryptor = RecordDecryptor::Create(Key(), Ad());
  ASSERT_TRUE(decryptor.ok());
  std::string out;
  ASSERT_TRUE((*decryptor)->Update(record.substr(0, kRecordHeaderSize + kSegCt), &out).ok());
  EXPECT_EQ(out.size(), 0u);
  ASSERT_TRUE((*decryptor)->Update(record.substr(kRecordHeaderSize + kSegCt, 1), &out).ok());
  EXPECT_EQ(out.size(), kSeg);
  ASSERT_TRUE((*decryptor)->Update(record.substr(kRecordHeaderSize + kSegCt + 1), &out).ok());
  EXPECT_EQ(out.size(), 2 * kSeg);
  ASSERT_TRUE((*decryptor)->Finish(&out).ok());
  EXPECT_EQ(out, std::string(2 * kSeg + 5, 'p'));
}

// Two encryptions of the same plaintext differ (random nonce prefix).
TEST(RecordEncryptorTest, RandomNoncePrefixPerRecord) {
  EXPECT_NE(Encrypt("same", Key(), Ad()), Encrypt("same", Key(), Ad()));
}

// A key of the wrong size is refused at Create.
TEST(RecordEncryptorTest, RefusesKeyOfWrongSize) {
  for (size_t n : {0, 16, 31, 33}) {
    SecretData key(std::string(n, 'k'));
    EXPECT_THAT(RecordEncryptor::Create(key, Ad()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(RecordDecryptor::Create(key, Ad()).status(),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

// Each field is length-prefixed, so moving bytes between fields changes
// the associated data.
TEST(RecordAssociatedDataTest, LengthPrefixedFields) {
  EXPECT_EQ(RecordAssociatedData("ab", "c", ""), std::string("\0\0\0\x02"
                                                             "ab\0\0\0\x01"
                                                             "c\0\0\0\0",
                                                             15));
  EXPECT_NE(RecordAssociatedData("ab", "c", "t"), RecordAssociatedData("a", "bc", "t"));
}

// A multi-segment record (3 segments) and its DATA_LOSS-checked variants.
class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plaintext_ = RandomBytes(2 * kSeg + 100);
    record_ = Encrypt(plaintext_, Key(), Ad());
    ASSERT_EQ(record_.size(), kRecordHeaderSize + 2 * kSegCt + 100 + kRecordTagSize);
  }
  // Decrypts `record` whole and in pieces; both must be DATA_LOSS.
  void ExpectDataLoss(const std::string& record, const SecretData& key, const std::string& ad) {
    for (bool pieces : {false, true}) {
      auto result = Decrypt(record, key, ad, pieces);
      EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kDataLoss)) << result.status();
    }
  }
  std::string Segment(int i) const {
    return record_.substr(kRecordHeaderSize + i * kSegCt, i < 2 ? kSegCt : std::string::npos);
  }

  std::string plaintext_;
  std::string record_;
};

// The wrong key or the wrong associated data open nothing.
TEST_F(TamperTest, WrongKeyOrAssociatedData) {
  ExpectDataLoss(record_, Key('x'), Ad());
  ExpectDataLoss(record_, Key(), RecordAssociatedData("patient-2", "record-7", "application/pdf"));
  ExpectDataLoss(record_, Key(), RecordAssociatedData("patient-1", "record-7", "text/plain"));
  ExpectDataLoss(record_, Key(), "");
}

// Any flipped bit, in the header, a segment's body or a tag, is caught.
TEST_F(TamperTest, FlippedByte) {
  for (size_t at : {size_t{0}, size_t{4}, size_t{8}, size_t{12}, kRecordHeaderSize,
                    kRecordHeaderSize + kSeg + 3, kRecordHeaderSize + kSegCt + 9,
                    record_.size() - kRecordTagSize - 1, record_.size() - 1}) {
    std::string bad = record_;
    bad[at] ^= 0x01;
    SCOPED_TRACE(at);
    ExpectDataLoss(bad, Key(), Ad());
  }
}

// Cut at a segment boundary (the last segment missing), inside a segment,
// inside the header, or to nothing at all.
TEST_F(TamperTest, Truncated) {
  for (size_t size :
       {kRecordHeaderSize + 2 * kSegCt, kRecordHeaderSize + kSegCt, kRecordHeaderSize,
        record_.size() - 1, kRecordHeaderSize + kSegCt + 10, kRecordHeaderSize + 5, size_t{0}}) {
    SCOPED_TRACE(size);
    ExpectDataLoss(record_.substr(0, size), Key(), Ad());
  }
}

// Bytes after the last segment: one, a copy of a segment, another record.
TEST_F(TamperTest, DataAfterTheLastSegment) {
  ExpectDataLoss(record_ + "x", Key(), Ad());
  ExpectDataLoss(record_ + Segment(1), Key(), Ad());
  ExpectDataLoss(record_ + Encrypt("more", Key(), Ad()), Key(), Ad());
  // A full-size last segment followed by more.
  std::string full = Encrypt(RandomBytes(kSeg), Key(), Ad());
  ExpectDataLoss(full + std::string(kSegCt, '\0'), Key(), Ad());
}

// Segments swapped, dropped or duplicated.
TEST_F(TamperTest, ReorderedSegments) {
  std::string header = record_.substr(0, kRecordHeaderSize);
  ExpectDataLoss(header + Segment(1) + Segment(0) + Segment(2), Key(), Ad());
  ExpectDataLoss(header + Segment(0) + Segment(2), Key(), Ad());
  ExpectDataLoss(header + Segment(0) + Segment(0) + Segment(1) + Segment(2), Key(), Ad());
}

// Segments of another record under the same key (another nonce prefix).
TEST_F(TamperTest, SegmentsSplicedFromAnotherRecord) {
  std::string other = Encrypt(plaintext_, Key(), Ad());
  ExpectDataLoss(record_.substr(0, kRecordHeaderSize) + other.substr(kRecordHeaderSize), Key(),
                 Ad());
  ExpectDataLoss(other.substr(0, kRecordHeaderSize + kSegCt) + Segment(1) + Segment(2), Key(),
                 Ad());
}

// A segment that fails appends nothing, and the decryptor stays failed.
TEST_F(TamperTest, FailedSegmentAppendsNothing) {
  std::string bad = record_;
  bad[kRecordHeaderSize + kSegCt + 1] ^= 0x80;  // segment 1
  auto decryptor = RecordDecryptor::Create(Key(), Ad());
  ASSERT_TRUE(decryptor.ok());
  std::string out;
  auto status = (*decryptor)->Update(bad, &out);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(status.message()), HasSubstr("segment 1"));
  EXPECT_EQ(out, plaintext_.substr(0, kSeg));  // segment 0 only
  EXPECT_THAT((*decryptor)->Update("x", &out), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT((*decryptor)->Finish(&out), StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Unknown magic, version or segment size are refused before any segment.
TEST_F(TamperTest, UnknownHeader) {
  for (auto [at, value] : std::vector<std::pair<size_t, char>>{{0, 'X'}, {4, 2}, {6, 2}}) {
    std::string bad = record_;
    bad[at] = value;
    auto result = Decrypt(bad, Key(), Ad());
    EXPECT_THAT(result.status(), StatusIs(absl::StatusCode::kDataLoss));
  }
}

// The bytes are what the header comment documents: segment 0 and the last
// segment open with plain OpenSSL, nonce = prefix || index || last flag and
// aad = header || associated data.
TEST_F(TamperTest, FormatIsAsDocumented) {
  ASSERT_EQ(record_.substr(0, 4), "MVR1");
  EXPECT_EQ(record_[4], 1);
  EXPECT_EQ(record_.substr(5, 4), std::string("\x00\x01\x00\x00", 4));  // 65536
  std::string header = record_.substr(0, kRecordHeaderSize);
  auto open = [&](const std::string& segment, uint32_t index, bool last) -> std::string {
    std::string nonce = header.substr(9, 7);
    for (int shift = 24; shift >= 0; shift -= 8) nonce.push_back(char(index >> shift));
    nonce.push_back(last ? 1 : 0);
    std::string aad = header + Ad();
    size_t n = segment.size() - 16;
    std::string tag = segment.substr(n), out(n, '\0');
    auto u = [](const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); };
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    std::string key(kRecordKeySize, 'k');
    int len = 0, ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, u(key), u(nonce));
    ok &= EVP_DecryptUpdate(ctx, nullptr, &len, u(aad), int(aad.size()));
    ok &= EVP_DecryptUpdate(ctx, reinterpret_cast<uint8_t*>(out.data()), &len, u(segment), int(n));
    ok &= EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data());
    ok &= EVP_DecryptFinal_ex(ctx, nullptr, &len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? out : "<does not authenticate>";
  };
  EXPECT_TRUE(open(Segment(0), 0, false) == plaintext_.substr(0, kSeg));
  EXPECT_TRUE(open(Segment(2), 2, true) == plaintext_.substr(2 * kSeg));
  EXPECT_EQ(open(Segment(2), 2, false), "<does not authenticate>");
  EXPECT_EQ(open(Segment(0), 0, true), "<does not authenticate>");
}

}  // namespace
}  // namespace medvault::gateway
