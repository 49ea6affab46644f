// Record encryption: chunked AES-256-GCM, the STREAM construction of Tink's
// streaming AEAD and of age, so that a record of any size (64 MiB and more)
// is encrypted and decrypted in memory bounded by one segment, on its way
// to or from storage.
//
// Format, version 1 (integers big-endian):
//
//   record    = header || segment_0 || ... || segment_n          (n >= 0)
//   header    = "MVR1" (4) || version 0x01 (1) || segment_size (4)
//               || nonce_prefix (7)                              16 bytes
//   segment_i = AES-256-GCM ciphertext of plaintext_i || tag (16)
//     key     = the record's 32-byte data key
//     nonce_i = nonce_prefix (7) || i (4) || last (1)            12 bytes
//               last = 0x01 for segment_n, 0x00 for every other
//     aad     = header || associated_data
//
// plaintext_0 .. plaintext_{n-1} are exactly segment_size bytes and
// plaintext_n is 0 to segment_size bytes, so an empty record is the header
// and one 16-byte segment. segment_size is always kRecordSegmentSize; it is
// in the header (and so authenticated) so that a later version may change
// it. nonce_prefix is random for every record.
//
// What each part detects: the index in the nonce, segments reordered or
// dropped; the last flag, a record cut at a segment boundary or with data
// appended after its end; the header in the aad, a changed segment size or
// prefix; associated_data, a record moved to another patient, record id or
// content type (RecordAssociatedData).
//
// Nonce budget: a nonce repeats only when one key encrypts two records with
// the same random 56-bit prefix. Data keys are made per record (the
// keyvault's DataKeyContext names the record), so a key should encrypt at
// most a few thousand records (2^12 records: collision chance 2^-32). A
// record has at most 2^32 segments (256 TiB).
#ifndef MEDVAULT_DAEMON_GATEWAY_RECORD_CIPHER_H_
#define MEDVAULT_DAEMON_GATEWAY_RECORD_CIPHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/common/secret.h"

namespace medvault::gateway {

inline constexpr size_t kRecordSegmentSize = 64 * 1024;
inline constexpr size_t kRecordHeaderSize = 16;
inline constexpr size_t kRecordNoncePrefixSize = 7;
inline constexpr size_t kRecordTagSize = 16;
inline constexpr size_t kRecordKeySize = 32;
inline constexpr char kRecordMagic[] = "MVR1";
inline constexpr uint8_t kRecordVersion = 1;

// The size of the encrypted record of `plaintext_size` bytes.
uint64_t CiphertextSize(uint64_t plaintext_size);

// The associated data the gateway binds a record to: each field as a 4-byte
// big-endian length and its bytes, so that no two different triples give
// the same bytes.
std::string RecordAssociatedData(absl::string_view patient_id, absl::string_view record_id,
                                 absl::string_view content_type);

namespace record_internal {
class SegmentCipher;
}  // namespace record_internal

// Encrypts one record. Feed the plaintext in pieces of any size to Update,
// then call Finish once; each call appends to *out what it can: the header
// and every segment its input completes. At most one segment of plaintext
// is held between calls, and wiped once it is sealed. Not thread-safe.
class RecordEncryptor {
 public:
  // INVALID_ARGUMENT when `key` is not kRecordKeySize bytes; INTERNAL when
  // OpenSSL or its random generator fails. The key is copied into the
  // cipher's key schedule, which is wiped when the encryptor is destroyed.
  static absl::StatusOr<std::unique_ptr<RecordEncryptor>> Create(const SecretData& key,
                                                                 std::string associated_data);
  ~RecordEncryptor();
  RecordEncryptor(const RecordEncryptor&) = delete;
  RecordEncryptor& operator=(const RecordEncryptor&) = delete;

  // Appends to *out; `plaintext` must not point into *out. OUT_OF_RANGE
  // past 2^32 segments; FAILED_PRECONDITION after Finish or a failed call.
  absl::Status Update(absl::string_view plaintext, std::string* out);
  // Appends the last segment (and the header if nothing came before).
  absl::Status Finish(std::string* out);

 private:
  RecordEncryptor(std::unique_ptr<record_internal::SegmentCipher> cipher, std::string header);
  absl::Status Usable() const;
  absl::Status SealFullSegments(absl::string_view plaintext, std::string* out);

  std::unique_ptr<record_internal::SegmentCipher> cipher_;
  std::string header_;
  std::string buffer_;  // plaintext not sealed yet; capacity one segment
  bool header_written_ = false;
  bool done_ = false;  // finished or failed
};

// Decrypts one record made by RecordEncryptor under the same key and
// associated data. Feed the ciphertext in pieces of any size to Update,
// then call Finish once; each call appends to *out the plaintext of the
// segments it completes. Not thread-safe.
//
// Every byte appended to *out belongs to an authentic segment, but the
// record is whole (not cut short) only when Finish returns OK: until then
// treat the plaintext as unverified (stream it to a temporary file, say,
// and delete that on error). *out is the caller's: reserve it, or wipe it,
// if it must not leave plaintext behind in freed memory.
//
// Errors: DATA_LOSS for anything that is not an authentic record under this
// key and associated data: wrong key or associated data, a modified byte,
// an unknown magic, version or segment size, segments reordered, a record
// cut short (a missing last segment) or data after the last segment. A
// failed segment appends nothing. After an error, or after Finish, every
// call returns FAILED_PRECONDITION.
class RecordDecryptor {
 public:
  // INVALID_ARGUMENT when `key` is not kRecordKeySize bytes; INTERNAL when
  // OpenSSL fails.
  static absl::StatusOr<std::unique_ptr<RecordDecryptor>> Create(const SecretData& key,
                                                                 std::string associated_data);
  ~RecordDecryptor();
  RecordDecryptor(const RecordDecryptor&) = delete;
  RecordDecryptor& operator=(const RecordDecryptor&) = delete;

  // Appends to *out; `ciphertext` must not point into *out.
  absl::Status Update(absl::string_view ciphertext, std::string* out);
  absl::Status Finish(std::string* out);

 private:
  RecordDecryptor(std::unique_ptr<record_internal::SegmentCipher> cipher,
                  std::string associated_data);
  absl::Status Usable() const;
  absl::Status Consume(absl::string_view ciphertext, std::string* out);
  absl::Status ReadHeader(absl::string_view* ciphertext);

  std::unique_ptr<record_internal::SegmentCipher> cipher_;
  std::string associated_data_;
  std::string header_;  // the first kRecordHeaderSize bytes, as they arrive
  std::string buffer_;  // ciphertext of a segment not opened yet
  bool done_ = false;   // finished or failed
};

}  // namespace medvault::gateway

#endif  // MEDVAULT_DAEMON_GATEWAY_RECORD_CIPHER_H_
