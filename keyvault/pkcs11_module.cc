#include "keyvault/pkcs11_module.h"

#include <dlfcn.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/common/status_macros.h"
#include "keyvault/pkcs11.h"

namespace medvault::keyvault {
namespace {

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

absl::Status Ckr(const char* function, CK_RV rv) {
  std::string message = absl::StrCat(function, ": ", CkrName(rv));
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
      return absl::PermissionDeniedError(message);
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

#define CK_CALL(fn, ...)                          \
  do {                                            \
    CK_RV _rv = impl->functions->fn(__VA_ARGS__); \
    if (_rv != CKR_OK) return Ckr(#fn, _rv);      \
  } while (0)

// PKCS#11 pads its fixed-width text fields with blanks.
std::string Text(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  return std::string(absl::StripTrailingAsciiWhitespace(s));
}

std::string Version(const CK_VERSION& v) { return absl::StrCat(v.major, ".", v.minor); }

}  // namespace

std::string CkrName(unsigned long rv) {
  for (const CkrEntry& e : kCkrNames) {
    if (e.rv == rv) return absl::StrFormat("%s (0x%lx)", e.name, rv);
  }
  if (rv >= CKR_VENDOR_DEFINED)
    return absl::StrFormat("CKR_VENDOR_DEFINED+0x%lx", rv - CKR_VENDOR_DEFINED);
  return absl::StrFormat("CKR_0x%lx", rv);
}

struct Pkcs11Module::Impl {
  void* library = nullptr;
  CK_FUNCTION_LIST_PTR functions = nullptr;
  bool initialized = false;
  CK_SLOT_ID slot = 0;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;

  ~Impl() {
    if (functions != nullptr) {
      if (session != CK_INVALID_HANDLE) {
        functions->C_Logout(session);
        functions->C_CloseSession(session);
      }
      if (initialized) functions->C_Finalize(nullptr);
    }
    if (library != nullptr) dlclose(library);
  }
};

namespace {

absl::StatusOr<CK_SLOT_ID> FindSlot(Pkcs11Module::TokenSelector token, CK_FUNCTION_LIST_PTR f) {
  if (const uint64_t* slot = std::get_if<uint64_t>(&token)) return static_cast<CK_SLOT_ID>(*slot);
  const std::string& label = std::get<std::string>(token);
  CK_ULONG count = 0;
  if (CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK)
    return Ckr("C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(count);
  if (CK_RV rv = f->C_GetSlotList(CK_TRUE, slots.data(), &count); rv != CKR_OK)
    return Ckr("C_GetSlotList", rv);
  slots.resize(count);
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if (Text(info.label, sizeof(info.label)) == label) return slot;
  }
  return absl::NotFoundError(absl::StrCat("no PKCS#11 token labelled \"", label, "\" among ",
                                          slots.size(), " slot(s) with a token"));
}

}  // namespace

Pkcs11Module::Pkcs11Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pkcs11Module::~Pkcs11Module() = default;

absl::StatusOr<std::unique_ptr<Pkcs11Module>> Pkcs11Module::Open(const std::string& module_path,
                                                                 const TokenSelector& token,
                                                                 const SecretData& pin) {
  auto impl = std::make_unique<Impl>();
  impl->library = dlopen(module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (impl->library == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load PKCS#11 module ", module_path, ": ", dlerror()));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(impl->library, "C_GetFunctionList"));
  if (get_list == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(module_path, " has no C_GetFunctionList"));
  }
  if (CK_RV rv = get_list(&impl->functions); rv != CKR_OK) return Ckr("C_GetFunctionList", rv);

  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_CALL(C_Initialize, &args);
  impl->initialized = true;

  ASSIGN_OR_RETURN(impl->slot, FindSlot(token, impl->functions));
  CK_CALL(C_OpenSession, impl->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
          &impl->session);
  CK_CALL(C_Login, impl->session, CKU_USER,
          const_cast<CK_UTF8CHAR_PTR>(reinterpret_cast<const CK_UTF8CHAR*>(pin.data())),
          static_cast<CK_ULONG>(pin.size()));
  return std::unique_ptr<Pkcs11Module>(new Pkcs11Module(std::move(impl)));
}

absl::StatusOr<TokenDescription> Pkcs11Module::Describe() const {
  absl::MutexLock lock(&mu_);
  const Impl* impl = impl_.get();
  CK_INFO info{};
  CK_CALL(C_GetInfo, &info);
  CK_TOKEN_INFO token{};
  CK_CALL(C_GetTokenInfo, impl->slot, &token);
  CK_SESSION_INFO session{};
  CK_CALL(C_GetSessionInfo, impl->session, &session);
  TokenDescription d;
  d.library_description = Text(info.libraryDescription, sizeof(info.libraryDescription));
  d.library_version = Version(info.libraryVersion);
  d.label = Text(token.label, sizeof(token.label));
  d.manufacturer = Text(token.manufacturerID, sizeof(token.manufacturerID));
  d.model = Text(token.model, sizeof(token.model));
  d.serial_number = Text(token.serialNumber, sizeof(token.serialNumber));
  d.slot_id = impl->slot;
  d.logged_in = session.state == CKS_RW_USER_FUNCTIONS || session.state == CKS_RO_USER_FUNCTIONS;
  return d;
}

}  // namespace medvault::keyvault
