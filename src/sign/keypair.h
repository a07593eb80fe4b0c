/* A private key and its self-signed X.509 certificate, kept as PEM files in the
 * data folder (`STEM-key.pem`, `STEM-cert.pem`) and created on first start. Shared
 * by the response-signing key and the liveness encryption key. */
#ifndef SIGN_KEYPAIR_H
#define SIGN_KEYPAIR_H
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { KEYPAIR_EC_P256, KEYPAIR_RSA_2048 } keypair_kind;

typedef struct {
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *cert_der;
    size_t cert_der_len;
} keypair;

/* Loads the pair, or creates it when the key file does not exist. Creation uses an
 * exclusive open, so two processes starting together never overwrite each other's
 * key: the loser loads the winner's pair. */
int keypair_load_or_create(keypair *kp, const char *data_dir, const char *stem, keypair_kind kind,
                           const char *common_name, char *err, size_t err_len);
void keypair_free(keypair *kp);

#endif
