#include "keyvault/key_listing.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "daemon/common/status_macros.h"

namespace medvault::keyvault {
namespace {

// DER OIDs of the curves medvault uses, as CKA_EC_PARAMS holds them.
constexpr unsigned char kSecp256k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};
constexpr unsigned char kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

std::string CurveName(const std::string& params) {
  auto is = [&](const unsigned char* oid, size_t size) {
    return params.size() == size &&
           std::equal(oid, oid + size, params.begin(),
                      [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); });
  };
  if (is(kSecp256k1, sizeof(kSecp256k1))) return "EC secp256k1";
  if (is(kP256, sizeof(kP256))) return "EC P-256";
  return "EC";
}

absl::StatusOr<internal::v1::KeyInfo> Describe(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session,
                                               CK_OBJECT_HANDLE object, const std::string& label) {
  internal::v1::KeyInfo info;
  info.set_label(label);
  ASSIGN_OR_RETURN(std::string id, GetAttribute(f, session, object, CKA_ID));
  info.set_id(id);
  CK_KEY_TYPE type = 0;
  CK_BBOOL flags[11] = {0};
  const CK_ATTRIBUTE_TYPE kFlagTypes[11] = {CKA_SENSITIVE,
                                            CKA_EXTRACTABLE,
                                            CKA_ALWAYS_SENSITIVE,
                                            CKA_NEVER_EXTRACTABLE,
                                            CKA_ENCRYPT,
                                            CKA_DECRYPT,
                                            CKA_DERIVE,
                                            CKA_SIGN,
                                            CKA_VERIFY,
                                            CKA_WRAP,
                                            CKA_UNWRAP};
  const char* kUsages[11] = {nullptr,  nullptr, nullptr,  nullptr, "encrypt", "decrypt",
                             "derive", "sign",  "verify", "wrap",  "unwrap"};
  std::vector<CK_ATTRIBUTE> attrs = {{CKA_KEY_TYPE, &type, sizeof(type)}};
  for (int i = 0; i < 11; ++i) attrs.push_back({kFlagTypes[i], &flags[i], sizeof(CK_BBOOL)});
  // A module may not know an attribute for some key type (CKA_WRAP on an
  // EC private key): it still fills in the others.
  CK_RV rv = f->C_GetAttributeValue(session, object, attrs.data(), attrs.size());
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) return CkrStatus("C_GetAttributeValue", rv);
  info.set_sensitive(flags[0]);
  info.set_extractable(flags[1]);
  info.set_always_sensitive(flags[2]);
  info.set_never_extractable(flags[3]);
  for (int i = 4; i < 11; ++i) {
    if (attrs[i + 1].ulValueLen != CK_UNAVAILABLE_INFORMATION && flags[i]) {
      info.add_usages(kUsages[i]);
    }
  }
  if (type == CKK_AES) {
    info.set_type("AES-256");
  } else if (type == CKK_EC) {
    auto params = GetAttribute(f, session, object, CKA_EC_PARAMS);
    info.set_type(params.ok() ? CurveName(*params) : "EC");
  } else {
    info.set_type("other");
  }
  absl::string_view rest = label;
  uint32_t version = 0;
  if (absl::ConsumePrefix(&rest, "medvault-master-v") && absl::SimpleAtoi(rest, &version)) {
    info.set_version(version);
  }
  return info;
}

}  // namespace

absl::StatusOr<std::vector<internal::v1::KeyInfo>> ListTokenKeys(Pkcs11Token& token) {
  std::vector<internal::v1::KeyInfo> keys;
  CK_FUNCTION_LIST* f = token.functions();
  RETURN_IF_ERROR(token.Run([&](CK_SESSION_HANDLE session) -> absl::Status {
    keys.clear();
    for (CK_OBJECT_CLASS cls : {CKO_SECRET_KEY, CKO_PRIVATE_KEY}) {
      CK_BBOOL on_token = CK_TRUE;
      CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                             {CKA_TOKEN, &on_token, sizeof(on_token)}};
      ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> handles, FindObjects(f, session, tmpl, 2));
      for (CK_OBJECT_HANDLE object : handles) {
        ASSIGN_OR_RETURN(std::string label, GetAttribute(f, session, object, CKA_LABEL));
        if (!absl::StartsWith(label, "medvault-")) continue;
        ASSIGN_OR_RETURN(internal::v1::KeyInfo info, Describe(f, session, object, label));
        keys.push_back(std::move(info));
      }
    }
    return absl::OkStatus();
  }));
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.label() < b.label(); });
  return keys;
}

}  // namespace medvault::keyvault
