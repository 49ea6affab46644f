// The PKCS#11 v2.40 interface, from p11-kit's public-domain header (Debian
// package libp11-kit-dev). Only the interface is used: the module itself is
// whatever the configuration names.
#ifndef MEDVAULT_KEYVAULT_PKCS11_H_
#define MEDVAULT_KEYVAULT_PKCS11_H_

#include <p11-kit/pkcs11.h>

#endif  // MEDVAULT_KEYVAULT_PKCS11_H_
