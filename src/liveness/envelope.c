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

#define ENVELOPE_RSA_BITS 2048
#define ENVELOPE_MAX_PLAIN ((size_t)256 << 20) /* far above any upload limit */

struct envelope_key {
    EVP_PKEY *key;
    uint8_t *cert_der;
    size_t cert_der_len;
    char *cert_b64;
};

static X509 *self_signed(EVP_PKEY *key) {
    X509 *x = X509_new();
    uint8_t serial[16];
    if (!x || RAND_bytes(serial, sizeof serial) != 1) {
        X509_free(x);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_clear_bit(bn, 127); /* a positive serial of at most 16 bytes */
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bioserver liveness capture encryption", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"bioserver", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* O_EXCL-style create for the key, so two processes starting together never
 * overwrite each other's key: the loser reloads the winner's pair. */
static int create_pair(const char *key_path, const char *cert_path) {
    EVP_PKEY *key = EVP_RSA_gen(ENVELOPE_RSA_BITS);
    X509 *cert = key ? self_signed(key) : NULL;
    int rc = -1;
    FILE *f = cert ? fopen(key_path, "wx") : NULL;
    if (f) {
        chmod(key_path, 0600);
        int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        FILE *c = ok ? fopen(cert_path, "w") : NULL;
        if (c) {
            rc = PEM_write_X509(c, cert) ? 0 : -1;
            fclose(c);
        }
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

static int load_pair(envelope_key *k, const char *key_path, const char *cert_path) {
    FILE *f = fopen(key_path, "r");
    if (!f) return -1;
    k->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(cert_path, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!k->key || !cert || EVP_PKEY_get_base_id(k->key) != EVP_PKEY_RSA || X509_check_private_key(cert, k->key) != 1) {
        X509_free(cert);
        return -2;
    }
    int n = i2d_X509(cert, NULL);
    k->cert_der = n > 0 ? malloc((size_t)n) : NULL;
    uint8_t *p = k->cert_der;
    if (k->cert_der) i2d_X509(cert, &p);
    X509_free(cert);
    if (!k->cert_der) return -2;
    k->cert_der_len = (size_t)n;
    k->cert_b64 = base64_encode(k->cert_der, k->cert_der_len);
    return k->cert_b64 ? 0 : -2;
}

envelope_key *envelope_key_load_or_create(const char *data_dir, char *err, size_t err_len) {
    char key_path[1024], cert_path[1024];
    snprintf(key_path, sizeof key_path, "%s/liveness-enc-key.pem", data_dir);
    snprintf(cert_path, sizeof cert_path, "%s/liveness-enc-cert.pem", data_dir);
    if (mkdir(data_dir, 0700) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data folder %s: %s", data_dir, strerror(errno));
        return NULL;
    }
    envelope_key *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    int rc = load_pair(k, key_path, cert_path);
    if (rc == -1) {
        create_pair(key_path, cert_path); /* may lose a race: then load the winner's */
        rc = load_pair(k, key_path, cert_path);
    }
    if (rc) {
        snprintf(err, err_len, "cannot load or create the liveness encryption key %s / %s", key_path, cert_path);
        envelope_key_free(k);
        return NULL;
    }
    return k;
}

void envelope_key_free(envelope_key *k) {
    if (!k) return;
    EVP_PKEY_free(k->key);
    free(k->cert_der);
    free(k->cert_b64);
    free(k);
}

const uint8_t *envelope_certificate_der(const envelope_key *k, size_t *len) {
    *len = k->cert_der_len;
    return k->cert_der;
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
    uint8_t buf[ENVELOPE_RSA_BITS / 8 * 2];
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

int envelope_open(const envelope_key *k, const uint8_t *wrapped, size_t wrapped_len, const uint8_t *iv,
                  size_t iv_len, const uint8_t *ct, size_t ct_len, const uint8_t *aad, size_t aad_len,
                  uint8_t **plain, size_t *plain_len) {
    *plain = NULL;
    *plain_len = 0;
    if (iv_len != ENVELOPE_IV_BYTES || ct_len < ENVELOPE_TAG_BYTES || ct_len > ENVELOPE_MAX_PLAIN ||
        aad_len > INT32_MAX)
        return ENVELOPE_ERR_FORMAT;
    uint8_t key[ENVELOPE_KEY_BYTES];
    if (unwrap_key(k->key, wrapped, wrapped_len, key)) return ENVELOPE_ERR_KEY;
    size_t n = ct_len - ENVELOPE_TAG_BYTES;
    uint8_t *out = malloc(n + 1);
    if (!out) {
        OPENSSL_cleanse(key, sizeof key);
        return ENVELOPE_ERR_NOMEM;
    }
    uint8_t tag[ENVELOPE_TAG_BYTES];
    memcpy(tag, ct + n, sizeof tag);
    int rc = gcm(0, key, iv, aad, aad_len, ct, n, out, tag);
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
