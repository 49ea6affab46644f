#include "daemon/gateway/record_cipher.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/status_macros.h"

namespace medvault::gateway {
namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kSegmentCiphertextSize = kRecordSegmentSize + kRecordTagSize;
constexpr uint64_t kMaxSegmentIndex = 0xffffffff;
// Bounds the associated data so that it fits OpenSSL's int lengths with
// room to spare; the gateway's is a few hundred bytes.
constexpr size_t kMaxAssociatedDataSize = 1 << 20;
// Offsets in the header.
constexpr size_t kVersionOffset = 4;
constexpr size_t kSegmentSizeOffset = 5;
constexpr size_t kNoncePrefixOffset = 9;
static_assert(kNoncePrefixOffset + kRecordNoncePrefixSize == kRecordHeaderSize);

void AppendBigEndian32(uint32_t value, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(value >> shift));
}

uint32_t ReadBigEndian32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Empties a buffer that may hold plaintext, wiping its bytes first.
void Wipe(std::string* s) {
  OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

absl::Status CheckAssociatedData(absl::string_view associated_data) {
  if (associated_data.size() > kMaxAssociatedDataSize) {
    return absl::InvalidArgumentError("record cipher: associated data longer than 1 MiB");
  }
  return absl::OkStatus();
}

}  // namespace

namespace record_internal {

// The AES-256-GCM context of one record (its key schedule), the aad of
// every segment and the index of the next one.
class SegmentCipher {
 public:
  static absl::StatusOr<std::unique_ptr<SegmentCipher>> Create(const SecretData& key,
                                                               bool encrypt) {
    if (key.size() != kRecordKeySize) {
      return absl::InvalidArgumentError("record cipher: the data key must be 32 bytes");
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr ||
        EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr, encrypt) != 1) {
      EVP_CIPHER_CTX_free(ctx);
      return absl::InternalError("record cipher: cannot set up AES-256-GCM");
    }
    return absl::WrapUnique(new SegmentCipher(ctx));
  }
  // OpenSSL's GCM implementation wipes its key schedule when freed
  // (OPENSSL_clear_free of the provider context).
  ~SegmentCipher() { EVP_CIPHER_CTX_free(ctx_); }

  // Called once, before the first segment.
  void Start(absl::string_view header, absl::string_view associated_data) {
    aad_ = absl::StrCat(header, associated_data);
    std::memcpy(prefix_, header.data() + kNoncePrefixOffset, kRecordNoncePrefixSize);
  }

  // Appends the next segment: the ciphertext of `plaintext` and its tag.
  absl::Status Seal(absl::string_view plaintext, bool last, std::string* out) {
    if (next_index_ > kMaxSegmentIndex) {
      return absl::OutOfRangeError("record cipher: record longer than 2^32 segments");
    }
    size_t start = out->size();
    out->resize(start + plaintext.size() + kRecordTagSize);
    uint8_t* dst = reinterpret_cast<uint8_t*>(out->data() + start);
    int len = 0;
    bool ok = Begin(last) &&
              (plaintext.empty() || EVP_EncryptUpdate(ctx_, dst, &len, Bytes(plaintext),
                                                      static_cast<int>(plaintext.size())) == 1) &&
              EVP_EncryptFinal_ex(ctx_, dst + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kRecordTagSize,
                                  dst + plaintext.size()) == 1;
    if (!ok) {
      out->resize(start);
      return absl::InternalError("record cipher: AES-256-GCM encryption failed");
    }
    ++next_index_;
    return absl::OkStatus();
  }

  // Appends the plaintext of the next segment, or nothing when it does not
  // authenticate.
  absl::Status Open(absl::string_view segment, bool last, std::string* out) {
    if (segment.size() < kRecordTagSize) {
      return absl::DataLossError("record is truncated: the last segment is missing");
    }
    if (next_index_ > kMaxSegmentIndex) {
      return absl::DataLossError("record is longer than 2^32 segments");
    }
    size_t size = segment.size() - kRecordTagSize;
    uint8_t tag[kRecordTagSize];
    std::memcpy(tag, segment.data() + size, kRecordTagSize);
    size_t start = out->size();
    out->resize(start + size);
    uint8_t* dst = reinterpret_cast<uint8_t*>(out->data() + start);
    int len = 0;
    bool ok = Begin(last) &&
              (size == 0 ||
               EVP_DecryptUpdate(ctx_, dst, &len, Bytes(segment), static_cast<int>(size)) == 1) &&
              EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kRecordTagSize, tag) == 1;
    bool authentic = ok && EVP_DecryptFinal_ex(ctx_, dst + len, &len) == 1;
    if (!authentic) {
      OPENSSL_cleanse(dst, size);
      out->resize(start);
      if (!ok) return absl::InternalError("record cipher: AES-256-GCM decryption failed");
      return absl::DataLossError(absl::StrCat(
          "record segment ", next_index_,
          " does not authenticate: wrong key or associated data, or the record was modified, "
          "reordered, cut short or extended"));
    }
    ++next_index_;
    return absl::OkStatus();
  }

 private:
  explicit SegmentCipher(EVP_CIPHER_CTX* ctx) : ctx_(ctx) {}

  // Sets the nonce of segment next_index_ (keeping the key) and feeds the
  // aad.
  bool Begin(bool last) {
    uint8_t nonce[kNonceSize];
    std::memcpy(nonce, prefix_, kRecordNoncePrefixSize);
    for (int i = 0; i < 4; ++i) nonce[7 + i] = static_cast<uint8_t>(next_index_ >> (24 - 8 * i));
    nonce[11] = last ? 1 : 0;
    int len = 0;
    return EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, -1) == 1 &&
           EVP_CipherUpdate(ctx_, nullptr, &len, Bytes(aad_), static_cast<int>(aad_.size())) == 1;
  }

  EVP_CIPHER_CTX* const ctx_;
  std::string aad_;
  uint8_t prefix_[kRecordNoncePrefixSize] = {};
  uint64_t next_index_ = 0;
};

}  // namespace record_internal

using record_internal::SegmentCipher;

uint64_t CiphertextSize(uint64_t plaintext_size) {
  uint64_t segments =
      std::max<uint64_t>(1, (plaintext_size + kRecordSegmentSize - 1) / kRecordSegmentSize);
  return kRecordHeaderSize + plaintext_size + segments * kRecordTagSize;
}

std::string RecordAssociatedData(absl::string_view patient_id, absl::string_view record_id,
                                 absl::string_view content_type) {
  std::string out;
  for (absl::string_view field : {patient_id, record_id, content_type}) {
    AppendBigEndian32(static_cast<uint32_t>(field.size()), &out);
    out.append(field.data(), field.size());
  }
  return out;
}

// RecordEncryptor

absl::StatusOr<std::unique_ptr<RecordEncryptor>> RecordEncryptor::Create(
    const SecretData& key, std::string associated_data) {
  RETURN_IF_ERROR(CheckAssociatedData(associated_data));
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentCipher> cipher, SegmentCipher::Create(key, true));
  std::string header(kRecordMagic);
  header.push_back(static_cast<char>(kRecordVersion));
  AppendBigEndian32(kRecordSegmentSize, &header);
  header.resize(kRecordHeaderSize);
  if (RAND_bytes(reinterpret_cast<uint8_t*>(header.data() + kNoncePrefixOffset),
                 kRecordNoncePrefixSize) != 1) {
    return absl::InternalError("record cipher: no random bytes for the nonce prefix");
  }
  cipher->Start(header, associated_data);
  return absl::WrapUnique(new RecordEncryptor(std::move(cipher), std::move(header)));
}

RecordEncryptor::RecordEncryptor(std::unique_ptr<SegmentCipher> cipher, std::string header)
    : cipher_(std::move(cipher)), header_(std::move(header)) {
  // Never grown past this, so no copy of the plaintext is left behind in a
  // freed allocation.
  buffer_.reserve(kRecordSegmentSize);
}

RecordEncryptor::~RecordEncryptor() { Wipe(&buffer_); }

absl::Status RecordEncryptor::Usable() const {
  if (done_) return absl::FailedPreconditionError("record encryptor: already finished or failed");
  return absl::OkStatus();
}

absl::Status RecordEncryptor::Update(absl::string_view plaintext, std::string* out) {
  RETURN_IF_ERROR(Usable());
  if (!header_written_) {
    out->append(header_);
    header_written_ = true;
  }
  absl::Status status = SealFullSegments(plaintext, out);
  if (!status.ok()) {
    done_ = true;
    Wipe(&buffer_);
  }
  return status;
}

// Seals every segment that is full and followed by more plaintext (so not
// the last); keeps the rest in buffer_.
absl::Status RecordEncryptor::SealFullSegments(absl::string_view plaintext, std::string* out) {
  while (!plaintext.empty()) {
    if (buffer_.size() == kRecordSegmentSize) {
      RETURN_IF_ERROR(cipher_->Seal(buffer_, /*last=*/false, out));
      Wipe(&buffer_);
    }
    // Whole segments straight from the input, without a copy.
    while (buffer_.empty() && plaintext.size() > kRecordSegmentSize) {
      RETURN_IF_ERROR(cipher_->Seal(plaintext.substr(0, kRecordSegmentSize), false, out));
      plaintext.remove_prefix(kRecordSegmentSize);
    }
    size_t take = std::min(plaintext.size(), kRecordSegmentSize - buffer_.size());
    buffer_.append(plaintext.data(), take);
    plaintext.remove_prefix(take);
  }
  return absl::OkStatus();
}

absl::Status RecordEncryptor::Finish(std::string* out) {
  RETURN_IF_ERROR(Usable());
  done_ = true;
  if (!header_written_) {
    out->append(header_);
    header_written_ = true;
  }
  absl::Status status = cipher_->Seal(buffer_, /*last=*/true, out);
  Wipe(&buffer_);
  return status;
}

// RecordDecryptor

absl::StatusOr<std::unique_ptr<RecordDecryptor>> RecordDecryptor::Create(
    const SecretData& key, std::string associated_data) {
  RETURN_IF_ERROR(CheckAssociatedData(associated_data));
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentCipher> cipher, SegmentCipher::Create(key, false));
  return absl::WrapUnique(new RecordDecryptor(std::move(cipher), std::move(associated_data)));
}

RecordDecryptor::RecordDecryptor(std::unique_ptr<SegmentCipher> cipher, std::string associated_data)
    : cipher_(std::move(cipher)), associated_data_(std::move(associated_data)) {
  buffer_.reserve(kSegmentCiphertextSize);
}

RecordDecryptor::~RecordDecryptor() = default;

absl::Status RecordDecryptor::Usable() const {
  if (done_) return absl::FailedPreconditionError("record decryptor: already finished or failed");
  return absl::OkStatus();
}

absl::Status RecordDecryptor::Update(absl::string_view ciphertext, std::string* out) {
  RETURN_IF_ERROR(Usable());
  absl::Status status = Consume(ciphertext, out);
  if (!status.ok()) done_ = true;
  return status;
}

// Opens every segment that is full and followed by more ciphertext (so not
// the last); keeps the rest in buffer_.
absl::Status RecordDecryptor::Consume(absl::string_view ciphertext, std::string* out) {
  if (header_.size() < kRecordHeaderSize) RETURN_IF_ERROR(ReadHeader(&ciphertext));
  while (!ciphertext.empty()) {
    if (buffer_.size() == kSegmentCiphertextSize) {
      RETURN_IF_ERROR(cipher_->Open(buffer_, /*last=*/false, out));
      buffer_.clear();
    }
    while (buffer_.empty() && ciphertext.size() > kSegmentCiphertextSize) {
      RETURN_IF_ERROR(cipher_->Open(ciphertext.substr(0, kSegmentCiphertextSize), false, out));
      ciphertext.remove_prefix(kSegmentCiphertextSize);
    }
    size_t take = std::min(ciphertext.size(), kSegmentCiphertextSize - buffer_.size());
    buffer_.append(ciphertext.data(), take);
    ciphertext.remove_prefix(take);
  }
  return absl::OkStatus();
}

// Moves header bytes from *ciphertext into header_ and checks the header
// once it is complete. Its authenticity is checked with the first segment.
absl::Status RecordDecryptor::ReadHeader(absl::string_view* ciphertext) {
  size_t take = std::min(ciphertext->size(), kRecordHeaderSize - header_.size());
  header_.append(ciphertext->data(), take);
  ciphertext->remove_prefix(take);
  if (header_.size() < kRecordHeaderSize) return absl::OkStatus();
  if (absl::string_view(header_).substr(0, 4) != kRecordMagic) {
    return absl::DataLossError("not a medvault record: unknown magic");
  }
  if (uint8_t version = header_[kVersionOffset]; version != kRecordVersion) {
    return absl::DataLossError(absl::StrCat("unsupported record version ", version));
  }
  if (uint32_t size = ReadBigEndian32(header_.data() + kSegmentSizeOffset);
      size != kRecordSegmentSize) {
    return absl::DataLossError(absl::StrCat("unsupported record segment size ", size));
  }
  cipher_->Start(header_, associated_data_);
  return absl::OkStatus();
}

absl::Status RecordDecryptor::Finish(std::string* out) {
  RETURN_IF_ERROR(Usable());
  done_ = true;
  if (header_.size() < kRecordHeaderSize) {
    return absl::DataLossError("record is truncated: incomplete header");
  }
  return cipher_->Open(buffer_, /*last=*/true, out);
}

}  // namespace medvault::gateway
