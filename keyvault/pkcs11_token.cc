#include "keyvault/pkcs11_token.h"

#include <dlfcn.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/common/logging.h"
#include "daemon/common/status_macros.h"

namespace medvault::keyvault {
namespace {

constexpr char kCkrPayload[] = "type.medvault/pkcs11.ckr";

struct CkrEntry {
  CK_RV rv;
  const char* name;
};

// Every return value PKCS#11 v2.40 defines.
constexpr CkrEntry kCkrNames[] = {
    {CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CANCEL, "CKR_CANCEL"},
    {CKR_CANT_LOCK, "CKR_CANT_LOCK"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_EXCEEDED_MAX_ITERATIONS, "CKR_EXCEEDED_MAX_ITERATIONS"},
    {CKR_FIPS_SELF_TEST_FAILED, "CKR_FIPS_SELF_TEST_FAILED"},
    {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL"},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    {CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE"},
    {CKR_KEY_CHANGED, "CKR_KEY_CHANGED"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE"},
    {CKR_KEY_NEEDED, "CKR_KEY_NEEDED"},
    {CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED"},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"},
    {CKR_LIBRARY_LOAD_FAILED, "CKR_LIBRARY_LOAD_FAILED"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_MUTEX_BAD, "CKR_MUTEX_BAD"},
    {CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED"},
    {CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS"},
    {CKR_NEW_PIN_MODE, "CKR_NEW_PIN_MODE"},
    {CKR_NEXT_OTP, "CKR_NEXT_OTP"},
    {CKR_NO_EVENT, "CKR_NO_EVENT"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OK, "CKR_OK"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_PIN_TOO_WEAK, "CKR_PIN_TOO_WEAK"},
    {CKR_PUBLIC_KEY_INVALID, "CKR_PUBLIC_KEY_INVALID"},
    {CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG"},
    {CKR_RANDOM_SEED_NOT_SUPPORTED, "CKR_RANDOM_SEED_NOT_SUPPORTED"},
    {CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS"},
    {CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS"},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"},
    {CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
    {CKR_UNWRAPPING_KEY_SIZE_RANGE, "CKR_UNWRAPPING_KEY_SIZE_RANGE"},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES"},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
    {CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE"},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT"},
};

// PKCS#11 pads its fixed-width text fields with blanks.
std::string Text(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  return std::string(absl::StripTrailingAsciiWhitespace(s));
}

// The failures after which reopening the sessions may help.
bool SessionLost(CK_RV rv) {
  switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_SLOT_ID_INVALID:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<CK_SLOT_ID> FindSlot(const Pkcs11Token::TokenSelector& token, CK_FUNCTION_LIST* f) {
  if (const uint64_t* slot = std::get_if<uint64_t>(&token)) return static_cast<CK_SLOT_ID>(*slot);
  const std::string& label = std::get<std::string>(token);
  CK_ULONG count = 0;
  P11_RETURN_IF_ERROR(f, C_GetSlotList, CK_TRUE, nullptr, &count);
  std::vector<CK_SLOT_ID> slots(count);
  P11_RETURN_IF_ERROR(f, C_GetSlotList, CK_TRUE, slots.data(), &count);
  slots.resize(count);
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if (Text(info.label, sizeof(info.label)) == label) return slot;
  }
  return absl::NotFoundError(absl::StrCat("no PKCS#11 token labelled \"", label, "\" among ",
                                          slots.size(), " slot(s) with a token"));
}

// A module is initialised once per process, however many Pkcs11Token
// objects use it (a restarted test token, for instance): C_Initialize on the
// first, C_Finalize after the last.
absl::Mutex g_modules_mu;
absl::flat_hash_map<void*, int>& ModuleUsers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_modules_mu) {
  static auto* users = new absl::flat_hash_map<void*, int>();
  return *users;
}

absl::Status InitializeModule(void* library, CK_FUNCTION_LIST* functions) {
  absl::MutexLock lock(&g_modules_mu);
  int& users = ModuleUsers()[library];
  if (users == 0) {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = functions->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ModuleUsers().erase(library);
      return CkrStatus("C_Initialize", rv);
    }
  }
  ++users;
  return absl::OkStatus();
}

void FinalizeModule(void* library, CK_FUNCTION_LIST* functions) {
  absl::MutexLock lock(&g_modules_mu);
  if (--ModuleUsers()[library] == 0) {
    ModuleUsers().erase(library);
    functions->C_Finalize(nullptr);
  }
}

}  // namespace

std::string CkrName(CK_RV rv) {
  for (const CkrEntry& e : kCkrNames) {
    if (e.rv == rv) return absl::StrFormat("%s (0x%lx)", e.name, rv);
  }
  if (rv >= CKR_VENDOR_DEFINED) {
    return absl::StrFormat("CKR_VENDOR_DEFINED+0x%lx", rv - CKR_VENDOR_DEFINED);
  }
  return absl::StrFormat("CKR_0x%lx", rv);
}

absl::Status CkrStatus(const char* function, CK_RV rv) {
  std::string message = absl::StrCat(function, ": ", CkrName(rv));
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_SIGNATURE_INVALID:
    case CKR_WRAPPED_KEY_INVALID:
      code = absl::StatusCode::kInvalidArgument;
      break;
    default:
      if (SessionLost(rv)) code = absl::StatusCode::kUnavailable;
  }
  absl::Status status(code, message);
  status.SetPayload(kCkrPayload, absl::Cord(absl::StrCat(rv)));
  return status;
}

CK_RV CkrOf(const absl::Status& status) {
  auto payload = status.GetPayload(kCkrPayload);
  unsigned long rv = CKR_OK;
  if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &rv)) return rv;
  return CKR_OK;
}

absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindObjects(CK_FUNCTION_LIST* f,
                                                          CK_SESSION_HANDLE session,
                                                          CK_ATTRIBUTE* tmpl, CK_ULONG count,
                                                          size_t max) {
  P11_RETURN_IF_ERROR(f, C_FindObjectsInit, session, tmpl, count);
  std::vector<CK_OBJECT_HANDLE> handles;
  CK_RV rv = CKR_OK;
  while (handles.size() < max) {
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG n = 0;
    rv = f->C_FindObjects(session, batch, std::min<size_t>(64, max - handles.size()), &n);
    if (rv != CKR_OK || n == 0) break;
    handles.insert(handles.end(), batch, batch + n);
  }
  CK_RV final_rv = f->C_FindObjectsFinal(session);
  if (rv != CKR_OK) return CkrStatus("C_FindObjects", rv);
  if (final_rv != CKR_OK) return CkrStatus("C_FindObjectsFinal", final_rv);
  return handles;
}

absl::StatusOr<std::string> GetAttribute(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session,
                                         CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  constexpr CK_ULONG kMaxAttributeSize = 4096;
  CK_ATTRIBUTE attribute{type, nullptr, 0};
  P11_RETURN_IF_ERROR(f, C_GetAttributeValue, session, object, &attribute, 1);
  if (attribute.ulValueLen > kMaxAttributeSize) {  // includes CK_UNAVAILABLE_INFORMATION
    return absl::InternalError(
        absl::StrCat("C_GetAttributeValue: implausible length for attribute 0x", absl::Hex(type)));
  }
  std::string value(attribute.ulValueLen, '\0');
  attribute.pValue = value.data();
  P11_RETURN_IF_ERROR(f, C_GetAttributeValue, session, object, &attribute, 1);
  value.resize(std::min<CK_ULONG>(attribute.ulValueLen, value.size()));
  return value;
}

Pkcs11Token::Pkcs11Token(const Options& options, SecretData pin, void* library,
                         CK_FUNCTION_LIST* functions)
    : options_(options), pin_(std::move(pin)), library_(library), functions_(functions) {}

Pkcs11Token::~Pkcs11Token() {
  {
    absl::MutexLock lock(&mu_);
    functions_->C_CloseAllSessions(slot_);
  }
  FinalizeModule(library_, functions_);
  dlclose(library_);
}

absl::StatusOr<std::unique_ptr<Pkcs11Token>> Pkcs11Token::Open(const Options& options,
                                                               SecretData pin) {
  if (options.sessions < 1 || options.sessions > 256) {
    return absl::InvalidArgumentError("PKCS#11 session pool must hold 1 to 256 sessions");
  }
  void* library = dlopen(options.module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load PKCS#11 module ", options.module_path, ": ", dlerror()));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(library, "C_GetFunctionList"));
  CK_FUNCTION_LIST* functions = nullptr;
  if (get_list == nullptr) {
    dlclose(library);
    return absl::FailedPreconditionError(
        absl::StrCat(options.module_path, " has no C_GetFunctionList"));
  }
  if (CK_RV rv = get_list(&functions); rv != CKR_OK) {
    dlclose(library);
    return CkrStatus("C_GetFunctionList", rv);
  }
  if (absl::Status s = InitializeModule(library, functions); !s.ok()) {
    dlclose(library);
    return s;
  }
  std::unique_ptr<Pkcs11Token> token(new Pkcs11Token(options, std::move(pin), library, functions));
  absl::MutexLock lock(&token->mu_);
  RETURN_IF_ERROR(token->Reconnect());
  token->reconnects_ = 0;
  return token;
}

absl::Status Pkcs11Token::Reconnect() {
  if (generation_ > 0) functions_->C_CloseAllSessions(slot_);
  idle_.clear();
  ++generation_;
  ++reconnects_;
  ASSIGN_OR_RETURN(slot_, FindSlot(options_.token, functions_));
  for (int i = 0; i < options_.sessions; ++i) {
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    P11_RETURN_IF_ERROR(functions_, C_OpenSession, slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                        nullptr, nullptr, &session);
    idle_.push_back(session);
  }
  // Logging in one session logs in every session of this application.
  CK_RV rv = functions_->C_Login(
      idle_.front(), CKU_USER,
      const_cast<CK_UTF8CHAR_PTR>(reinterpret_cast<const CK_UTF8CHAR*>(pin_.data())),
      static_cast<CK_ULONG>(pin_.size()));
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return CkrStatus("C_Login", rv);
  return absl::OkStatus();
}

absl::StatusOr<CK_SESSION_HANDLE> Pkcs11Token::Borrow(uint64_t* generation) {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::vector<CK_SESSION_HANDLE>* idle) { return !idle->empty(); }, &idle_));
  CK_SESSION_HANDLE session = idle_.back();
  idle_.pop_back();
  ++lent_;
  *generation = generation_;
  return session;
}

void Pkcs11Token::Return(CK_SESSION_HANDLE session, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  --lent_;
  if (generation == generation_) idle_.push_back(session);
}

absl::Status Pkcs11Token::Run(absl::FunctionRef<absl::Status(CK_SESSION_HANDLE)> operation) {
  for (int attempt = 0;; ++attempt) {
    uint64_t generation = 0;
    ASSIGN_OR_RETURN(CK_SESSION_HANDLE session, Borrow(&generation));
    absl::Status status = operation(session);
    Return(session, generation);
    if (status.ok() || attempt > 0 || !SessionLost(CkrOf(status))) return status;
    absl::MutexLock lock(&mu_);
    if (generation == generation_) {
      log::Warn("hsm.reconnect", {{"reason", status.message()}});
      if (absl::Status s = Reconnect(); !s.ok()) {
        log::Error("hsm.reconnect_failed", {{"error", s}});
        return s;
      }
    }
  }
}

absl::StatusOr<TokenDescription> Pkcs11Token::Describe() {
  TokenDescription d;
  RETURN_IF_ERROR(Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    CK_INFO info{};
    P11_RETURN_IF_ERROR(functions_, C_GetInfo, &info);
    CK_SESSION_INFO session_info{};
    P11_RETURN_IF_ERROR(functions_, C_GetSessionInfo, session, &session_info);
    CK_TOKEN_INFO token{};
    P11_RETURN_IF_ERROR(functions_, C_GetTokenInfo, session_info.slotID, &token);
    d.library_description = Text(info.libraryDescription, sizeof(info.libraryDescription));
    d.library_version = absl::StrCat(info.libraryVersion.major, ".", info.libraryVersion.minor);
    d.label = Text(token.label, sizeof(token.label));
    d.manufacturer = Text(token.manufacturerID, sizeof(token.manufacturerID));
    d.model = Text(token.model, sizeof(token.model));
    d.serial_number = Text(token.serialNumber, sizeof(token.serialNumber));
    d.slot_id = session_info.slotID;
    d.logged_in =
        session_info.state == CKS_RW_USER_FUNCTIONS || session_info.state == CKS_RO_USER_FUNCTIONS;
    return absl::OkStatus();
  }));
  return d;
}

int Pkcs11Token::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

}  // namespace medvault::keyvault
