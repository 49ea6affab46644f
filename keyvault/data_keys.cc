#include "keyvault/data_keys.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"

namespace medvault::keyvault {
namespace {

constexpr char kBlobMagic[] = "MVDK";
constexpr char kDbMagic[] = "MVDB";
constexpr uint8_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 13;   // magic, version, generation, master version
constexpr size_t kDbHeaderSize = 9;  // magic, version, master version
constexpr size_t kIvSize = 12;
constexpr size_t kKeySize = 32;
constexpr size_t kTagSize = 16;
constexpr char kMasterLabelPrefix[] = "medvault-master-v";

void AppendU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
void AppendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
uint32_t ReadU32(absl::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void AppendField(std::string& out, absl::string_view field) {
  AppendU16(out, field.size());
  out.append(field.data(), field.size());
}

std::string ContextAad(absl::string_view header, const DataKeyContext& c) {
  std::string aad(header);
  aad.append("medvault/data-key/v1");
  aad.push_back('\0');
  AppendField(aad, c.patient_id);
  AppendField(aad, c.record_id);
  AppendField(aad, c.purpose);
  return aad;
}

absl::Status ValidateField(absl::string_view name, absl::string_view value, size_t max) {
  if (value.empty() || value.size() > max) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": must be 1 to ", max, " characters"));
  }
  for (char c : value) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": only letters, digits and . _ : - are allowed"));
    }
  }
  return absl::OkStatus();
}

// AES-256-GCM with the key `key` inside the HSM.
absl::StatusOr<std::string> GcmEncrypt(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session,
                                       CK_OBJECT_HANDLE key, const uint8_t* iv,
                                       absl::string_view aad, const SecretData& plaintext) {
  CK_GCM_PARAMS params{};
  params.pIv = const_cast<CK_BYTE_PTR>(iv);
  params.ulIvLen = kIvSize;
  params.ulIvBits = kIvSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(aad.data()));
  params.ulAADLen = aad.size();
  params.ulTagBits = kTagSize * 8;
  CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof(params)};
  P11_RETURN_IF_ERROR(f, C_EncryptInit, session, &mechanism, key);
  std::string out(plaintext.size() + kTagSize, '\0');
  CK_ULONG out_len = out.size();
  P11_RETURN_IF_ERROR(f, C_Encrypt, session, const_cast<CK_BYTE_PTR>(plaintext.data()),
                      plaintext.size(), reinterpret_cast<CK_BYTE_PTR>(out.data()), &out_len);
  out.resize(out_len);
  return out;
}

absl::StatusOr<SecretData> GcmDecrypt(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session,
                                      CK_OBJECT_HANDLE key, const uint8_t* iv,
                                      absl::string_view aad, absl::string_view ciphertext) {
  CK_GCM_PARAMS params{};
  params.pIv = const_cast<CK_BYTE_PTR>(iv);
  params.ulIvLen = kIvSize;
  params.ulIvBits = kIvSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(aad.data()));
  params.ulAADLen = aad.size();
  params.ulTagBits = kTagSize * 8;
  CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof(params)};
  P11_RETURN_IF_ERROR(f, C_DecryptInit, session, &mechanism, key);
  uint8_t out[kKeySize + kTagSize];
  CK_ULONG out_len = sizeof(out);
  CK_RV rv =
      f->C_Decrypt(session, reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(ciphertext.data())),
                   ciphertext.size(), out, &out_len);
  if (rv != CKR_OK) {
    OPENSSL_cleanse(out, sizeof(out));
    // The GCM tag did not verify (altered blob, wrong context, another
    // patient's key). PKCS#11 says CKR_ENCRYPTED_DATA_INVALID; SoftHSM2
    // answers a failed tag check with CKR_GENERAL_ERROR, which here, right
    // after a successful C_DecryptInit, means the same thing.
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
        rv == CKR_DATA_INVALID || rv == CKR_GENERAL_ERROR) {
      return absl::UnauthenticatedError("ciphertext does not authenticate");
    }
    return CkrStatus("C_Decrypt", rv);
  }
  SecretData key_bytes(absl::string_view(reinterpret_cast<const char*>(out), out_len));
  OPENSSL_cleanse(out, sizeof(out));
  return key_bytes;
}

}  // namespace

absl::Status ValidatePatientId(absl::string_view patient_id) {
  return ValidateField("patient_id", patient_id, 128);
}

absl::Status ValidateContext(const DataKeyContext& c) {
  RETURN_IF_ERROR(ValidateField("context.patient_id", c.patient_id, 128));
  RETURN_IF_ERROR(ValidateField("context.record_id", c.record_id, 128));
  return ValidateField("context.purpose", c.purpose, 64);
}

// A derived patient key: a session object, destroyed with the last user.
struct KeyHierarchy::PatientKey {
  Pkcs11Token* token;
  CK_OBJECT_HANDLE handle;
  int reconnects;  // of the token when derived; after a reconnect the object is gone

  ~PatientKey() {
    if (handle == CK_INVALID_HANDLE) return;
    absl::MutexLock lock(&token->ObjectLock());
    token
        ->Run([&](CK_SESSION_HANDLE session) -> absl::Status {
          // A handle from before a reconnect may name a newer object now.
          if (token->reconnects() != reconnects) return absl::OkStatus();
          P11_RETURN_IF_ERROR(token->functions(), C_DestroyObject, session, handle);
          return absl::OkStatus();
        })
        .IgnoreError();
  }
};

KeyHierarchy::KeyHierarchy(Pkcs11Token& token, const Options& options,
                           std::unique_ptr<PatientStore> store)
    : token_(token), options_(options), store_(std::move(store)) {}

KeyHierarchy::~KeyHierarchy() {
  absl::MutexLock lock(&mu_);
  cache_.clear();
}

absl::StatusOr<std::unique_ptr<KeyHierarchy>> KeyHierarchy::Open(Pkcs11Token& token,
                                                                 const Options& options) {
  ASSIGN_OR_RETURN(auto store, PatientStore::Open(options.state_dir + "/patient-keys.db"));
  std::unique_ptr<KeyHierarchy> keys(new KeyHierarchy(token, options, std::move(store)));
  RETURN_IF_ERROR(keys->LoadMasterKeys());
  return keys;
}

absl::Status KeyHierarchy::LoadMasterKeys() {
  CK_FUNCTION_LIST* f = token_.functions();
  std::map<uint32_t, CK_OBJECT_HANDLE> found;
  RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    found.clear();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_KEY_TYPE, &type, sizeof(type)},
                           {CKA_TOKEN, &on_token, sizeof(on_token)}};
    ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> handles, FindObjects(f, session, tmpl, 3));
    for (CK_OBJECT_HANDLE h : handles) {
      auto label = GetAttribute(f, session, h, CKA_LABEL);
      if (!label.ok()) continue;
      absl::string_view text = *label;
      uint32_t version = 0;
      if (absl::ConsumePrefix(&text, kMasterLabelPrefix) && absl::SimpleAtoi(text, &version) &&
          version > 0) {
        found[version] = h;
      }
    }
    return absl::OkStatus();
  }));
  absl::MutexLock lock(&mu_);
  masters_ = std::move(found);
  masters_reconnects_ = token_.reconnects();
  return absl::OkStatus();
}

uint32_t KeyHierarchy::latest_master_version() const {
  absl::MutexLock lock(&mu_);
  return masters_.empty() ? 0 : masters_.rbegin()->first;
}

absl::StatusOr<CK_OBJECT_HANDLE> KeyHierarchy::MasterKey(uint32_t version) {
  bool stale;
  {
    absl::MutexLock lock(&mu_);
    stale = masters_reconnects_ != token_.reconnects();
  }
  if (stale) RETURN_IF_ERROR(LoadMasterKeys());
  absl::MutexLock lock(&mu_);
  if (masters_.empty()) {
    return absl::FailedPreconditionError(
        "no master key: the deployment's keys are not initialised (medvaultctl hsm init)");
  }
  auto it = masters_.find(version);
  if (it == masters_.end()) {
    return absl::NotFoundError(absl::StrCat("no master key version ", version));
  }
  return it->second;
}

absl::Status KeyHierarchy::CreateMasterKey(uint32_t version) {
  CK_FUNCTION_LIST* f = token_.functions();
  std::string label = absl::StrCat(kMasterLabelPrefix, version);
  std::string id = absl::StrCat("master/", version);
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_ULONG length = kKeySize;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof(cls)},
      {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &length, sizeof(length)},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_DERIVE, &yes, sizeof(yes)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_SIGN, &no, sizeof(no)},
      {CKA_VERIFY, &no, sizeof(no)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id.data(), id.size()},
  };
  CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
  {
    absl::MutexLock lock(&token_.ObjectLock());
    RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
      CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
      P11_RETURN_IF_ERROR(f, C_GenerateKey, session, &mechanism, tmpl,
                          sizeof(tmpl) / sizeof(tmpl[0]), &handle);
      return absl::OkStatus();
    }));
  }
  log::Info("key.created", {{"label", label}});
  return LoadMasterKeys();
}

absl::StatusOr<SecretData> KeyHierarchy::Random(size_t size) {
  std::string bytes(size, '\0');
  RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    P11_RETURN_IF_ERROR(token_.functions(), C_GenerateRandom, session,
                        reinterpret_cast<CK_BYTE_PTR>(bytes.data()), size);
    return absl::OkStatus();
  }));
  SecretData out(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return out;
}

absl::StatusOr<std::vector<std::string>> KeyHierarchy::InitializeMissing(
    const std::vector<std::string>& database_key_names) {
  std::vector<std::string> created;
  if (latest_master_version() == 0) {
    RETURN_IF_ERROR(CreateMasterKey(1));
    created.push_back(absl::StrCat(kMasterLabelPrefix, 1));
  }
  for (const std::string& name : database_key_names) {
    std::string path = absl::StrCat(options_.state_dir, "/database-key-", name, ".blob");
    if (access(path.c_str(), F_OK) == 0) continue;
    uint32_t version = latest_master_version();
    ASSIGN_OR_RETURN(CK_OBJECT_HANDLE master, MasterKey(version));
    ASSIGN_OR_RETURN(SecretData key, Random(kKeySize));
    ASSIGN_OR_RETURN(SecretData iv, Random(kIvSize));
    std::string file(kDbMagic, 4);
    file.push_back(static_cast<char>(kFormatVersion));
    AppendU32(file, version);
    std::string aad =
        absl::StrCat(file, "medvault/database-key/v1", absl::string_view("\0", 1), name);
    std::string sealed;
    RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
      ASSIGN_OR_RETURN(sealed,
                       GcmEncrypt(token_.functions(), session, master, iv.data(), aad, key));
      return absl::OkStatus();
    }));
    file.append(reinterpret_cast<const char*>(iv.data()), iv.size());
    file.append(sealed);
    // Written to a temporary file, synced, then renamed: a crash leaves
    // either no key file or a complete one.
    std::string tmp = path + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", strerror(errno)));
    bool ok =
        write(fd, file.data(), file.size()) == static_cast<ssize_t>(file.size()) && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
      unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
    }
    log::Info("key.created", {{"label", absl::StrCat("database-key-", name)}});
    created.push_back(absl::StrCat("database-key-", name));
  }
  return created;
}

absl::StatusOr<uint32_t> KeyHierarchy::RotateMaster() {
  uint32_t next = latest_master_version() + 1;
  if (next == 1) {
    return absl::FailedPreconditionError("no master key to rotate: initialise the keys first");
  }
  RETURN_IF_ERROR(CreateMasterKey(next));
  return next;
}

absl::StatusOr<SecretData> KeyHierarchy::DatabaseKey(const std::string& name) {
  if (name.empty() || name.size() > 32 ||
      !std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_islower(c); })) {
    return absl::InvalidArgumentError("name: must be 1 to 32 lower-case letters");
  }
  std::string path = absl::StrCat(options_.state_dir, "/database-key-", name, ".blob");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("no database key \"", name, "\": the deployment's keys are not initialised"));
  }
  char buf[kDatabaseKeyFileSize + 1];
  ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  absl::string_view file(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (file.size() != kDatabaseKeyFileSize ||
      !absl::StartsWith(file, absl::string_view(kDbMagic, 4)) ||
      file[4] != static_cast<char>(kFormatVersion)) {
    return absl::DataLossError(absl::StrCat(path, " is not a version 1 database key file"));
  }
  uint32_t version = ReadU32(file.substr(5, 4));
  ASSIGN_OR_RETURN(CK_OBJECT_HANDLE master, MasterKey(version));
  std::string aad = absl::StrCat(file.substr(0, kDbHeaderSize), "medvault/database-key/v1",
                                 absl::string_view("\0", 1), name);
  SecretData key;
  absl::Status s = token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    ASSIGN_OR_RETURN(key, GcmDecrypt(token_.functions(), session, master,
                                     reinterpret_cast<const uint8_t*>(file.data() + kDbHeaderSize),
                                     aad, file.substr(kDbHeaderSize + kIvSize)));
    return absl::OkStatus();
  });
  if (absl::IsUnauthenticated(s)) {
    return absl::DataLossError(
        absl::StrCat(path, " does not open: altered or not this deployment's"));
  }
  RETURN_IF_ERROR(s);
  return key;
}

absl::StatusOr<std::shared_ptr<KeyHierarchy::PatientKey>> KeyHierarchy::PatientKeyFor(
    const std::string& patient_id, const PatientGeneration& generation) {
  std::string cache_key =
      absl::StrCat(patient_id, absl::string_view("\0", 1), generation.generation);
  const int reconnects = token_.reconnects();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end() && it->second.key->reconnects == reconnects) {
      lru_.splice(lru_.end(), lru_, it->second.lru);
      return it->second.key;
    }
  }
  ASSIGN_OR_RETURN(CK_OBJECT_HANDLE master, MasterKey(generation.master_version));

  // data = SHA-256("medvault/patient-key/v1" 0x00 || u16 len || patient_id || seed)
  std::string input("medvault/patient-key/v1", 23);
  input.push_back('\0');
  AppendField(input, patient_id);
  input.append(reinterpret_cast<const char*>(generation.seed.data()), generation.seed.size());
  uint8_t data[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(input.data()), input.size(), data);
  OPENSSL_cleanse(input.data(), input.size());

  CK_AES_CBC_ENCRYPT_DATA_PARAMS params{};
  params.pData = data;
  params.length = sizeof(data);
  CK_MECHANISM mechanism{CKM_AES_CBC_ENCRYPT_DATA, &params, sizeof(params)};
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_ULONG length = kKeySize;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof(cls)},
      {CKA_KEY_TYPE, &type, sizeof(type)},
      {CKA_VALUE_LEN, &length, sizeof(length)},
      {CKA_TOKEN, &no, sizeof(no)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
  };
  auto key = std::make_shared<PatientKey>();
  key->token = &token_;
  key->handle = CK_INVALID_HANDLE;
  absl::Status derived;
  {
    absl::MutexLock lock(&token_.ObjectLock());
    key->reconnects = token_.reconnects();
    derived = token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
      P11_RETURN_IF_ERROR(token_.functions(), C_DeriveKey, session, &mechanism, master, tmpl,
                          sizeof(tmpl) / sizeof(tmpl[0]), &key->handle);
      return absl::OkStatus();
    });
  }
  OPENSSL_cleanse(data, sizeof(data));
  if (!derived.ok()) {
    key->handle = CK_INVALID_HANDLE;  // nothing to destroy
    return derived;
  }

  std::vector<std::shared_ptr<PatientKey>> evicted;  // destroyed after the lock is released
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end()) {
      evicted.push_back(std::move(it->second.key));
      lru_.erase(it->second.lru);
      cache_.erase(it);
    }
    if (cache_.size() >= options_.patient_key_cache && !lru_.empty()) {
      auto oldest = cache_.find(lru_.front());
      evicted.push_back(std::move(oldest->second.key));
      cache_.erase(oldest);
      lru_.pop_front();
    }
    lru_.push_back(cache_key);
    cache_[cache_key] = CacheEntry{key, std::prev(lru_.end())};
  }
  return key;
}

absl::StatusOr<PatientGeneration> KeyHierarchy::GenerationForNewKeys(
    const std::string& patient_id) {
  uint32_t newest_master = latest_master_version();
  if (newest_master == 0) {
    return absl::FailedPreconditionError(
        "no master key: the deployment's keys are not initialised (medvaultctl hsm init)");
  }
  ASSIGN_OR_RETURN(std::optional<PatientGeneration> latest, store_->Latest(patient_id));
  if (latest.has_value() && latest->master_version == newest_master) return *std::move(latest);
  // New patient, or the master key was rotated since: new keys for this
  // patient derive from the newest master key.
  ASSIGN_OR_RETURN(SecretData seed, Random(PatientStore::kSeedSize));
  return store_->Add(patient_id, newest_master, std::move(seed));
}

absl::StatusOr<std::string> KeyHierarchy::Wrap(const SecretData& key, const std::string& patient_id,
                                               const PatientGeneration& generation,
                                               const DataKeyContext& context) {
  ASSIGN_OR_RETURN(std::shared_ptr<PatientKey> patient_key, PatientKeyFor(patient_id, generation));
  ASSIGN_OR_RETURN(SecretData iv, Random(kIvSize));
  std::string blob(kBlobMagic, 4);
  blob.push_back(static_cast<char>(kFormatVersion));
  AppendU32(blob, generation.generation);
  AppendU32(blob, generation.master_version);
  std::string aad = ContextAad(blob, context);
  blob.append(reinterpret_cast<const char*>(iv.data()), iv.size());
  std::string sealed;
  RETURN_IF_ERROR(token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    ASSIGN_OR_RETURN(
        sealed, GcmEncrypt(token_.functions(), session, patient_key->handle, iv.data(), aad, key));
    return absl::OkStatus();
  }));
  blob.append(sealed);
  return blob;
}

absl::StatusOr<DataKey> KeyHierarchy::Generate(const DataKeyContext& context) {
  RETURN_IF_ERROR(ValidateContext(context));
  ASSIGN_OR_RETURN(PatientGeneration generation, GenerationForNewKeys(context.patient_id));
  DataKey out;
  ASSIGN_OR_RETURN(out.plaintext, Random(kKeySize));
  ASSIGN_OR_RETURN(out.blob, Wrap(out.plaintext, context.patient_id, generation, context));
  out.master_version = generation.master_version;
  return out;
}

absl::StatusOr<SecretData> KeyHierarchy::Decrypt(absl::string_view blob,
                                                 const DataKeyContext& context) {
  RETURN_IF_ERROR(ValidateContext(context));
  if (blob.size() != kBlobSize || !absl::StartsWith(blob, absl::string_view(kBlobMagic, 4))) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrapped_key: not a medvault data key blob (expected ", kBlobSize, " bytes)"));
  }
  if (blob[4] != static_cast<char>(kFormatVersion)) {
    return absl::InvalidArgumentError("wrapped_key: unsupported blob format version");
  }
  uint32_t generation_number = ReadU32(blob.substr(5, 4));
  ASSIGN_OR_RETURN(PatientGeneration generation,
                   store_->Get(context.patient_id, generation_number));
  ASSIGN_OR_RETURN(std::shared_ptr<PatientKey> patient_key,
                   PatientKeyFor(context.patient_id, generation));
  std::string aad = ContextAad(blob.substr(0, kHeaderSize), context);
  SecretData key;
  absl::Status s = token_.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    ASSIGN_OR_RETURN(key, GcmDecrypt(token_.functions(), session, patient_key->handle,
                                     reinterpret_cast<const uint8_t*>(blob.data() + kHeaderSize),
                                     aad, blob.substr(kHeaderSize + kIvSize)));
    return absl::OkStatus();
  });
  if (absl::IsUnauthenticated(s)) {
    return absl::InvalidArgumentError(
        "wrapped_key: does not open under this context (altered, or made for another context)");
  }
  RETURN_IF_ERROR(s);
  return key;
}

absl::StatusOr<DataKey> KeyHierarchy::Rewrap(absl::string_view blob,
                                             const DataKeyContext& context) {
  ASSIGN_OR_RETURN(SecretData key, Decrypt(blob, context));
  ASSIGN_OR_RETURN(PatientGeneration generation, GenerationForNewKeys(context.patient_id));
  DataKey out;
  ASSIGN_OR_RETURN(out.blob, Wrap(key, context.patient_id, generation, context));
  out.master_version = generation.master_version;
  return out;
}

void KeyHierarchy::Forget(const std::string& patient_id) {
  std::vector<std::shared_ptr<PatientKey>> evicted;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  const std::string prefix = absl::StrCat(patient_id, absl::string_view("\0", 1));
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (absl::StartsWith(*it, prefix)) {
      auto entry = cache_.find(*it);
      evicted.push_back(std::move(entry->second.key));
      cache_.erase(entry);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<uint32_t> KeyHierarchy::Shred(const std::string& patient_id) {
  RETURN_IF_ERROR(ValidatePatientId(patient_id));
  ASSIGN_OR_RETURN(uint32_t destroyed, store_->Shred(patient_id));
  Forget(patient_id);
  log::Info("patient.shredded", {{"patient", patient_id}, {"generations", destroyed}});
  return destroyed;
}

}  // namespace medvault::keyvault
