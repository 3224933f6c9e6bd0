#ifndef CCRYPTO_SHIM_H
#define CCRYPTO_SHIM_H
/* OpenSSL 3's libcrypto: digests, signatures, X.509, AES-GCM, randomness. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <openssl/param_build.h>
#include <openssl/core_names.h>

/* Macros Swift cannot call. */
static inline long roster_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline void roster_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline int roster_EVP_PKEY_PUBLIC_KEY(void) { return EVP_PKEY_PUBLIC_KEY; }
static inline unsigned long roster_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
#endif
