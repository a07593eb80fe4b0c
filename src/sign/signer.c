/* ES256 signing key, certificate and JWS; see signer.h. */
#include "sign/signer.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "sign/keypair.h"
#include "sign/presign.h"

struct signer {
    keypair pair;
    char *cert_pem;
    char *kid;
    char *header_b64; /* base64url of the fixed protected header */
    presign *presigned; /* NULL until signer_presign_start */
    EVP_MD *sha256;      /* fetched once: SHA256() fetches it again on every call */
};

static int derive_published_forms(signer *s) {
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem || !PEM_write_bio_X509(mem, s->pair.cert)) {
        BIO_free(mem);
        return -1;
    }
    char *p;
    long n = BIO_get_mem_data(mem, &p);
    s->cert_pem = strndup(p, (size_t)n);
    BIO_free(mem);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(s->pair.cert_der, s->pair.cert_der_len, digest);
    s->kid = base64url_encode(digest, sizeof digest);
    char header[256];
    snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"x5t#S256\":\"%s\"}", s->kid, s->kid);
    s->header_b64 = base64url_encode((const uint8_t *)header, strlen(header));
    return s->cert_pem && s->kid && s->header_b64 ? 0 : -1;
}

signer *signer_load_or_create(const char *dir, char *err, size_t err_len) {
    signer *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    if (keypair_load_or_create(&s->pair, dir, "signing", KEYPAIR_EC_P256, "bioserver response signing", err, err_len)) {
        free(s);
        return NULL;
    }
    if (derive_published_forms(s)) {
        snprintf(err, err_len, "cannot encode the signing certificate");
        signer_free(s);
        return NULL;
    }
    return s;
}

void signer_free(signer *s) {
    if (!s) return;
    presign_free(s->presigned); /* before the key it borrows */
    EVP_MD_free(s->sha256);
    keypair_free(&s->pair);
    free(s->cert_pem);
    free(s->kid);
    free(s->header_b64);
    free(s);
}

/* JWS wants the raw 64-byte r||s form, OpenSSL produces DER. */
static int der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64]) {
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)len);
    if (!sig) return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

static uint8_t *raw_to_der(const uint8_t raw[64], size_t *len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return NULL;
    }
    uint8_t *der = NULL;
    int n = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (n <= 0) return NULL;
    *len = (size_t)n;
    return der;
}

static char *signing_input(const char *header_b64, const char *payload_b64) {
    size_t n = strlen(header_b64) + strlen(payload_b64) + 2;
    char *in = malloc(n);
    if (in) snprintf(in, n, "%s.%s", header_b64, payload_b64);
    return in;
}

int signer_presign_start(signer *s, int capacity) {
    if (!s->sha256) s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (s->sha256 && !s->presigned) s->presigned = presign_create(s->pair.key, capacity);
    return s->presigned ? 0 : -1;
}

int signer_presigned_ready(const signer *s) { return s->presigned ? presign_ready(s->presigned) : 0; }

/* Raw r||s over input: with a precomputed nonce when one is ready, else the usual way. */
static int sign_raw(const signer *s, const char *input, size_t len, uint8_t raw[64]) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    if (s->presigned && EVP_Digest(input, len, digest, NULL, s->sha256, NULL) == 1 &&
        presign_sign(s->presigned, digest, raw) == 1)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t der_len = sizeof der;
    int rc = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pair.key) == 1 &&
                     EVP_DigestSign(ctx, der, &der_len, (const uint8_t *)input, len) == 1
                 ? der_to_raw(der, der_len, raw)
                 : -1;
    EVP_MD_CTX_free(ctx);
    return rc;
}

size_t signer_jws_size(const signer *s, size_t len) {
    return strlen(s->header_b64) + 1 + BASE64_ENCODED_SIZE(len) + 1 + BASE64_ENCODED_SIZE(64);
}

/* "header.payload" is written, signed in place as the signing input, then
 * ".signature" is appended (and the payload cut out when detached). */
size_t signer_sign_to(const signer *s, const uint8_t *payload, size_t len, bool detached, char *jws) {
    size_t hl = strlen(s->header_b64);
    memcpy(jws, s->header_b64, hl);
    jws[hl] = '.';
    size_t end = hl + 1 + base64url_encode_to(jws + hl + 1, payload, len);
    uint8_t raw[64];
    if (sign_raw(s, jws, end, raw)) return 0;
    if (detached) end = hl + 1;
    jws[end] = '.';
    return end + 1 + base64url_encode_to(jws + end + 1, raw, sizeof raw);
}

char *signer_sign(const signer *s, const uint8_t *payload, size_t len, bool detached) {
    char *jws = malloc(signer_jws_size(s, len));
    if (jws && !signer_sign_to(s, payload, len, detached, jws)) {
        free(jws);
        jws = NULL;
    }
    return jws;
}

int signer_verify(const signer *s, const char *jws, const uint8_t *payload, size_t len) {
    const char *d1 = strchr(jws, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2) return -1;
    char *header = strndup(jws, (size_t)(d1 - jws));
    char *embedded = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    char *payload_b64 = payload ? base64url_encode(payload, len) : NULL;
    int rc = -1;
    size_t raw_len = 0, der_len = 0;
    uint8_t *raw = base64url_decode(d2 + 1, strlen(d2 + 1), &raw_len);
    uint8_t *der = raw && raw_len == 64 ? raw_to_der(raw, &der_len) : NULL;
    const char *used = *embedded ? embedded : payload_b64;
    if (*embedded && payload_b64 && strcmp(embedded, payload_b64)) used = NULL;
    char *input = used ? signing_input(header, used) : NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (input && der && ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, s->pair.key) == 1 &&
        EVP_DigestVerify(ctx, der, der_len, (const uint8_t *)input, strlen(input)) == 1)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    free(input);
    OPENSSL_free(der);
    free(raw);
    free(payload_b64);
    free(embedded);
    free(header);
    return rc;
}

const char *signer_certificate_pem(const signer *s) { return s->cert_pem; }

const uint8_t *signer_certificate_der(const signer *s, size_t *len) {
    *len = s->pair.cert_der_len;
    return s->pair.cert_der;
}

const char *signer_key_id(const signer *s) { return s->kid; }

char *signer_jwks(const signer *s) {
    BIGNUM *x = NULL, *y = NULL;
    uint8_t xb[32], yb[32];
    char *result = NULL;
    if (EVP_PKEY_get_bn_param(s->pair.key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
        EVP_PKEY_get_bn_param(s->pair.key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
        BN_bn2binpad(x, xb, 32) == 32 && BN_bn2binpad(y, yb, 32) == 32) {
        char *xs = base64url_encode(xb, 32), *ys = base64url_encode(yb, 32);
        char *x5c = base64_encode(s->pair.cert_der, s->pair.cert_der_len);
        size_t n = strlen(x5c) + 512;
        result = malloc(n);
        if (result && xs && ys)
            snprintf(result, n,
                     "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                     "\"use\":\"sig\",\"alg\":\"ES256\",\"kid\":\"%s\",\"x5c\":[\"%s\"]}]}",
                     xs, ys, s->kid, x5c);
        free(xs);
        free(ys);
        free(x5c);
    }
    BN_free(x);
    BN_free(y);
    return result;
}
