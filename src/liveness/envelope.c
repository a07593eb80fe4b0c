/* Encryption key, certificate and hybrid decryption of capture uploads; see
 * envelope.h for the protocol. */
#include "liveness/envelope.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "sign/keypair.h"

#define ENVELOPE_MAX_PLAIN ((size_t)256 << 20) /* far above any upload limit */

struct envelope_key {
    keypair pair; /* RSA-2048, separate from the signing key */
    char *cert_b64;
};

envelope_key *envelope_key_load_or_create(const char *data_dir, char *err, size_t err_len) {
    envelope_key *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    if (keypair_load_or_create(&k->pair, data_dir, "liveness-enc", KEYPAIR_RSA_2048,
                               "bioserver liveness capture encryption", err, err_len)) {
        free(k);
        return NULL;
    }
    k->cert_b64 = base64_encode(k->pair.cert_der, k->pair.cert_der_len);
    if (!k->cert_b64) {
        snprintf(err, err_len, "out of memory");
        envelope_key_free(k);
        return NULL;
    }
    return k;
}

void envelope_key_free(envelope_key *k) {
    if (!k) return;
    keypair_free(&k->pair);
    free(k->cert_b64);
    free(k);
}

const uint8_t *envelope_certificate_der(const envelope_key *k, size_t *len) {
    *len = k->pair.cert_der_len;
    return k->pair.cert_der;
}

const char *envelope_certificate_b64(const envelope_key *k) { return k->cert_b64; }

uint8_t *envelope_aad(const char *session_id, const char *server_random, size_t *len) {
    size_t n = strlen(ENVELOPE_AAD_PREFIX) + strlen(session_id) + 1 + strlen(server_random);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    snprintf(out, n + 1, "%s%s\n%s", ENVELOPE_AAD_PREFIX, session_id, server_random);
    *len = n;
    return (uint8_t *)out;
}

static int oaep_params(EVP_PKEY_CTX *c) {
    return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) > 0;
}

static int unwrap_key(EVP_PKEY *key, const uint8_t *wrapped, size_t len, uint8_t out[ENVELOPE_KEY_BYTES]) {
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
    uint8_t buf[512]; /* a 2048-bit RSA block (256 bytes) with room to spare */
    size_t n = sizeof buf;
    int ok = c && EVP_PKEY_decrypt_init(c) > 0 && oaep_params(c) &&
             EVP_PKEY_decrypt(c, buf, &n, wrapped, len) > 0 && n == ENVELOPE_KEY_BYTES;
    if (ok) memcpy(out, buf, ENVELOPE_KEY_BYTES);
    OPENSSL_cleanse(buf, sizeof buf);
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : ENVELOPE_ERR_KEY;
}

/* AES-256-GCM in one direction; the tag travels after the ciphertext. */
static int gcm(int encrypt, const uint8_t *key, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
               const uint8_t *in, size_t in_len, uint8_t *out, uint8_t tag[ENVELOPE_TAG_BYTES]) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, encrypt) == 1 &&
                    (aad_len == 0 || EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
                    (in_len == 0 || EVP_CipherUpdate(c, out, &n, in, (int)in_len) == 1);
    if (ok && !encrypt) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG_BYTES, tag) == 1;
    uint8_t last[32];
    if (ok) ok = EVP_CipherFinal_ex(c, last, &n) == 1; /* fails on a tag mismatch */
    if (ok && encrypt) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG_BYTES, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : ENVELOPE_ERR_AUTH;
}

int envelope_unwrap(const envelope_key *k, const uint8_t *wrapped, size_t wrapped_len,
                    uint8_t key[ENVELOPE_KEY_BYTES]) {
    return unwrap_key(k->pair.key, wrapped, wrapped_len, key);
}

int envelope_decrypt(const uint8_t key[ENVELOPE_KEY_BYTES], const uint8_t iv[ENVELOPE_IV_BYTES], const uint8_t *ct,
                     size_t ct_len, const uint8_t *aad, size_t aad_len, uint8_t *out) {
    if (ct_len < ENVELOPE_TAG_BYTES || ct_len > ENVELOPE_MAX_PLAIN || aad_len > INT32_MAX) return ENVELOPE_ERR_FORMAT;
    size_t n = ct_len - ENVELOPE_TAG_BYTES;
    uint8_t tag[ENVELOPE_TAG_BYTES];
    memcpy(tag, ct + n, sizeof tag);
    return gcm(0, key, iv, aad, aad_len, ct, n, out, tag);
}

int envelope_open(const envelope_key *k, const uint8_t *wrapped, size_t wrapped_len, const uint8_t *iv,
                  size_t iv_len, const uint8_t *ct, size_t ct_len, const uint8_t *aad, size_t aad_len,
                  uint8_t **plain, size_t *plain_len) {
    *plain = NULL;
    *plain_len = 0;
    if (iv_len != ENVELOPE_IV_BYTES || ct_len < ENVELOPE_TAG_BYTES || ct_len > ENVELOPE_MAX_PLAIN ||
        aad_len > INT32_MAX)
        return ENVELOPE_ERR_FORMAT;
    uint8_t key[ENVELOPE_KEY_BYTES];
    if (envelope_unwrap(k, wrapped, wrapped_len, key)) return ENVELOPE_ERR_KEY;
    size_t n = ct_len - ENVELOPE_TAG_BYTES;
    uint8_t *out = malloc(n + 1);
    if (!out) {
        OPENSSL_cleanse(key, sizeof key);
        return ENVELOPE_ERR_NOMEM;
    }
    int rc = envelope_decrypt(key, iv, ct, ct_len, aad, aad_len, out);
    OPENSSL_cleanse(key, sizeof key);
    if (rc) {
        free(out);
        return rc;
    }
    out[n] = 0; /* callers parse it as text */
    *plain = out;
    *plain_len = n;
    return ENVELOPE_OK;
}

static int wrap_key(const uint8_t *cert_der, size_t cert_len, const uint8_t *key, uint8_t **out, size_t *out_len) {
    const uint8_t *p = cert_der;
    X509 *cert = d2i_X509(NULL, &p, (long)cert_len);
    EVP_PKEY *pub = cert ? X509_get_pubkey(cert) : NULL;
    EVP_PKEY_CTX *c = pub ? EVP_PKEY_CTX_new(pub, NULL) : NULL;
    size_t n = 0;
    int ok = c && EVP_PKEY_encrypt_init(c) > 0 && oaep_params(c) &&
             EVP_PKEY_encrypt(c, NULL, &n, key, ENVELOPE_KEY_BYTES) > 0;
    *out = ok ? malloc(n) : NULL;
    ok = *out && EVP_PKEY_encrypt(c, *out, &n, key, ENVELOPE_KEY_BYTES) > 0;
    *out_len = n;
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pub);
    X509_free(cert);
    if (!ok) {
        free(*out);
        *out = NULL;
    }
    return ok ? 0 : ENVELOPE_ERR_KEY;
}

int envelope_seal(const uint8_t *cert_der, size_t cert_len, const uint8_t key[ENVELOPE_KEY_BYTES],
                  const uint8_t iv[ENVELOPE_IV_BYTES], const uint8_t *plain, size_t plain_len,
                  const uint8_t *aad, size_t aad_len, uint8_t **wrapped, size_t *wrapped_len,
                  uint8_t **ct, size_t *ct_len) {
    *ct = NULL;
    if (plain_len > ENVELOPE_MAX_PLAIN) return ENVELOPE_ERR_FORMAT;
    if (wrap_key(cert_der, cert_len, key, wrapped, wrapped_len)) return ENVELOPE_ERR_KEY;
    *ct = malloc(plain_len + ENVELOPE_TAG_BYTES);
    if (!*ct || gcm(1, key, iv, aad, aad_len, plain, plain_len, *ct, *ct + plain_len)) {
        free(*ct);
        free(*wrapped);
        *ct = *wrapped = NULL;
        return ENVELOPE_ERR_NOMEM;
    }
    *ct_len = plain_len + ENVELOPE_TAG_BYTES;
    return ENVELOPE_OK;
}

const char *envelope_strerror(int code) {
    switch (code) {
    case ENVELOPE_OK: return "ok";
    case ENVELOPE_ERR_KEY: return "the encrypted key does not decrypt with the server's encryption key";
    case ENVELOPE_ERR_AUTH: return "the ciphertext failed authentication (tampered, or encrypted for another session or serverRandom)";
    case ENVELOPE_ERR_FORMAT: return "malformed envelope (iv must be 12 bytes, ciphertext must hold the 16-byte tag)";
    default: return "out of memory";
    }
}
