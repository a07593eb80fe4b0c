/* Unit tests for the signing identity (src/sign/signer.c): key and certificate
 * created in a fresh folder and reloaded, compact JWS (attached and detached)
 * signed and verified, tampering rejected, the published JWKS, and signatures made
 * with precomputed nonces (src/sign/presign.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "sign/presign.h"
#include "sign/signer.h"

typedef struct {
    char dir[64];
    char sub[128]; /* a data folder that does not exist yet */
} fixture;

static int rm_rf(const char *path) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_signer_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->sub, sizeof f->sub, "%s/data", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static signer *open_signer(const char *dir) {
    char err[256] = "";
    signer *s = signer_load_or_create(dir, err, sizeof err);
    if (!s) print_error("signer_load_or_create(%s): %s\n", dir, err);
    assert_non_null(s);
    return s;
}

static void test_create_then_reload(void **state) {
    fixture *f = *state;
    signer *a = open_signer(f->sub); /* creates the folder */
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/signing-key.pem", f->sub);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* private key readable by the owner only */
    snprintf(path, sizeof path, "%s/signing-cert.pem", f->sub);
    assert_int_equal(stat(path, &st), 0);

    signer *b = open_signer(f->sub); /* loads the same pair */
    assert_string_equal(signer_key_id(a), signer_key_id(b));
    assert_string_equal(signer_certificate_pem(a), signer_certificate_pem(b));
    size_t la, lb;
    const uint8_t *da = signer_certificate_der(a, &la), *db = signer_certificate_der(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_non_null(strstr(signer_certificate_pem(a), "-----BEGIN CERTIFICATE-----"));

    /* kid = base64url(SHA-256(DER certificate)). */
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(da, la, digest);
    char *kid = base64url_encode(digest, sizeof digest);
    assert_string_equal(signer_key_id(a), kid);
    free(kid);

    /* The certificate holds a P-256 key. */
    const uint8_t *p = da;
    X509 *x = d2i_X509(NULL, &p, (long)la);
    assert_non_null(x);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    assert_non_null(pk);
    assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(pk), 256);
    X509_free(x);

    /* One signs, the other verifies. */
    const char *msg = "{\"id\":\"x\"}";
    char *jws = signer_sign(a, (const uint8_t *)msg, strlen(msg), false);
    assert_non_null(jws);
    assert_int_equal(signer_verify(b, jws, (const uint8_t *)msg, strlen(msg)), 0);
    free(jws);
    signer_free(a);
    signer_free(b);
}

/* Splits "h.p.s" into malloc'd decoded parts. */
static void split(const char *jws, char **header, uint8_t **payload, size_t *payload_len, uint8_t **sig,
                  size_t *sig_len) {
    const char *d1 = strchr(jws, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    size_t hl;
    *header = (char *)base64url_decode(jws, (size_t)(d1 - jws), &hl);
    assert_non_null(*header);
    *header = realloc(*header, hl + 1);
    (*header)[hl] = '\0';
    *payload = base64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload_len);
    assert_non_null(*payload);
    *sig = base64url_decode(d2 + 1, strlen(d2 + 1), sig_len);
    assert_non_null(*sig);
}

static void test_sign_attached(void **state) {
    fixture *f = *state;
    signer *s = open_signer(f->dir);
    const char *msg = "{\"id\":\"0991cedc-9111-4b9d-9e4e-8d6eb4db488f\",\"imageStorageEnabled\":false}";
    char *jws = signer_sign(s, (const uint8_t *)msg, strlen(msg), false);
    assert_non_null(jws);
    assert_null(strpbrk(jws, "+/= ")); /* base64url, no padding */
    char *header;
    uint8_t *payload, *sig;
    size_t plen, slen;
    split(jws, &header, &payload, &plen, &sig, &slen);
    json_error_t e;
    json_t *h = json_loads(header, 0, &e);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), signer_key_id(s));
    assert_string_equal(json_string_value(json_object_get(h, "x5t#S256")), signer_key_id(s));
    json_decref(h);
    assert_int_equal(plen, strlen(msg));
    assert_memory_equal(payload, msg, plen);
    assert_int_equal(slen, 64); /* raw r||s */

    assert_int_equal(signer_verify(s, jws, (const uint8_t *)msg, strlen(msg)), 0);
    assert_int_equal(signer_verify(s, jws, NULL, 0), 0); /* embedded payload alone */
    /* A different payload than the embedded one is refused. */
    assert_int_equal(signer_verify(s, jws, (const uint8_t *)"{}", 2), -1);
    /* Two signatures of the same payload differ (ECDSA is randomised) and both verify. */
    char *jws2 = signer_sign(s, (const uint8_t *)msg, strlen(msg), false);
    assert_string_not_equal(jws, jws2);
    assert_int_equal(signer_verify(s, jws2, NULL, 0), 0);
    free(jws2);
    free(header);
    free(payload);
    free(sig);
    free(jws);

    /* Empty and binary payloads. */
    char *empty = signer_sign(s, (const uint8_t *)"", 0, false);
    assert_non_null(empty);
    assert_int_equal(signer_verify(s, empty, (const uint8_t *)"", 0), 0);
    free(empty);
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (uint8_t)(i * 7);
    char *b = signer_sign(s, bin, sizeof bin, false);
    assert_int_equal(signer_verify(s, b, bin, sizeof bin), 0);
    bin[150] ^= 1;
    assert_int_equal(signer_verify(s, b, bin, sizeof bin), -1);
    free(b);
    signer_free(s);
}

static void test_sign_detached(void **state) {
    fixture *f = *state;
    signer *s = open_signer(f->dir);
    const char *msg = "detached payload";
    char *jws = signer_sign(s, (const uint8_t *)msg, strlen(msg), true);
    assert_non_null(jws);
    const char *d1 = strchr(jws, '.');
    assert_non_null(d1);
    assert_int_equal(d1[1], '.'); /* "header..signature" */
    assert_int_equal(signer_verify(s, jws, (const uint8_t *)msg, strlen(msg)), 0);
    assert_int_equal(signer_verify(s, jws, NULL, 0), -1);                        /* no payload at all */
    assert_int_equal(signer_verify(s, jws, (const uint8_t *)"detached payloaD", 16), -1);
    assert_int_equal(signer_verify(s, jws, (const uint8_t *)msg, strlen(msg) - 1), -1);
    /* The attached form of the same payload carries the same header. */
    char *att = signer_sign(s, (const uint8_t *)msg, strlen(msg), false);
    assert_memory_equal(att, jws, (size_t)(d1 - jws));
    free(att);
    free(jws);
    signer_free(s);
}

static void test_tampering_rejected(void **state) {
    fixture *f = *state;
    signer *s = open_signer(f->dir);
    const char *msg = "{\"score\":3000}";
    char *jws = signer_sign(s, (const uint8_t *)msg, strlen(msg), false);
    size_t n = strlen(jws);
    const char *d1 = strchr(jws, '.'), *d2 = strchr(d1 + 1, '.');
    size_t payload_at = (size_t)(d1 - jws) + 1, sig_at = (size_t)(d2 - jws) + 1;

    /* Tampered embedded payload: {"score":4000} re-encoded in place. */
    const char *forged = "{\"score\":4000}";
    char *forged_b64 = base64url_encode((const uint8_t *)forged, strlen(forged));
    assert_int_equal(strlen(forged_b64), sig_at - 1 - payload_at);
    char *t = strdup(jws);
    memcpy(t + payload_at, forged_b64, strlen(forged_b64));
    assert_int_equal(signer_verify(s, t, NULL, 0), -1);
    assert_int_equal(signer_verify(s, t, (const uint8_t *)forged, strlen(forged)), -1);
    free(t);
    free(forged_b64);

    /* Every single-character change in the signature part is refused. (The last
     * character is skipped: 64 bytes leave 2 unused bits in it, so A<->B may not
     * change the decoded signature.) */
    for (size_t i = sig_at; i < n - 1; i++) {
        t = strdup(jws);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_equal(signer_verify(s, t, (const uint8_t *)msg, strlen(msg)), -1);
        free(t);
    }
    /* Header changed. */
    t = strdup(jws);
    t[2] = t[2] == 'a' ? 'b' : 'a';
    assert_int_equal(signer_verify(s, t, NULL, 0), -1);
    free(t);
    /* Truncated or extended signature, malformed structure. */
    t = strdup(jws);
    t[n - 4] = '\0';
    assert_int_equal(signer_verify(s, t, NULL, 0), -1);
    free(t);
    size_t cap = n + 8;
    t = malloc(cap);
    snprintf(t, cap, "%sAAAA", jws);
    assert_int_equal(signer_verify(s, t, NULL, 0), -1);
    free(t);
    assert_int_equal(signer_verify(s, "", NULL, 0), -1);
    assert_int_equal(signer_verify(s, "abc", NULL, 0), -1);
    assert_int_equal(signer_verify(s, "a.b", NULL, 0), -1);
    assert_int_equal(signer_verify(s, "..", NULL, 0), -1);
    assert_int_equal(signer_verify(s, "a.b.c", (const uint8_t *)"x", 1), -1);
    assert_int_equal(signer_verify(s, "!!.??.**", NULL, 0), -1);
    t = strdup(jws);
    t[sig_at] = '*'; /* not base64url */
    assert_int_equal(signer_verify(s, t, NULL, 0), -1);
    free(t);

    /* Another key's valid signature is refused. */
    char other_dir[128];
    snprintf(other_dir, sizeof other_dir, "%s/other", f->dir);
    signer *o = open_signer(other_dir);
    assert_string_not_equal(signer_key_id(o), signer_key_id(s));
    char *foreign = signer_sign(o, (const uint8_t *)msg, strlen(msg), false);
    assert_int_equal(signer_verify(o, foreign, NULL, 0), 0);
    assert_int_equal(signer_verify(s, foreign, NULL, 0), -1);
    free(foreign);
    signer_free(o);
    free(jws);
    signer_free(s);
}

static void test_jwks(void **state) {
    fixture *f = *state;
    signer *s = open_signer(f->dir);
    char *text = signer_jwks(s);
    assert_non_null(text);
    json_error_t e;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!root) print_error("JWKS does not parse: %s\n", e.text);
    assert_non_null(root);
    json_t *keys = json_object_get(root, "keys");
    assert_true(json_is_array(keys));
    assert_int_equal(json_array_size(keys), 1);
    json_t *k = json_array_get(keys, 0);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(k, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(k, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(k, "kid")), signer_key_id(s));

    /* x and y are the certificate's public point. */
    size_t der_len, xl, yl;
    const uint8_t *der = signer_certificate_der(s, &der_len);
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    uint8_t point[65];
    size_t point_len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(X509_get0_pubkey(x), "encoded-pub-key", point,
                                                     sizeof point, &point_len), 1);
    assert_int_equal(point_len, 65);
    assert_int_equal(point[0], 4); /* uncompressed */
    const char *xs = json_string_value(json_object_get(k, "x"));
    const char *ys = json_string_value(json_object_get(k, "y"));
    assert_non_null(xs);
    assert_non_null(ys);
    assert_int_equal(strlen(xs), 43);
    assert_int_equal(strlen(ys), 43);
    uint8_t *xb = base64url_decode(xs, strlen(xs), &xl), *yb = base64url_decode(ys, strlen(ys), &yl);
    assert_int_equal(xl, 32);
    assert_int_equal(yl, 32);
    assert_memory_equal(xb, point + 1, 32);
    assert_memory_equal(yb, point + 33, 32);
    free(xb);
    free(yb);
    X509_free(x);

    /* x5c[0] is the standard-base64 DER certificate. */
    json_t *x5c = json_object_get(k, "x5c");
    assert_true(json_is_array(x5c));
    assert_int_equal(json_array_size(x5c), 1);
    const char *c0 = json_string_value(json_array_get(x5c, 0));
    assert_non_null(c0);
    size_t cl;
    uint8_t *cert = base64_decode(c0, strlen(c0), &cl);
    assert_non_null(cert);
    assert_int_equal(cl, der_len);
    assert_memory_equal(cert, der, cl);
    free(cert);
    json_decref(root);
    free(text);
    signer_free(s);
}

static void test_bad_key_material(void **state) {
    fixture *f = *state;
    char err[256] = "", path[256];
    /* Garbage in the key file. */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/garbage", f->dir);
    mkdir(bad, 0700);
    snprintf(path, sizeof path, "%s/signing-key.pem", bad);
    FILE *fp = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", fp);
    fclose(fp);
    assert_null(signer_load_or_create(bad, err, sizeof err));
    assert_non_null(strstr(err, "cannot load or create the key pair"));

    /* A key from one folder with the certificate of another. */
    char d1[128], d2[128], cmd[512];
    snprintf(d1, sizeof d1, "%s/one", f->dir);
    snprintf(d2, sizeof d2, "%s/two", f->dir);
    signer *a = open_signer(d1), *b = open_signer(d2);
    signer_free(a);
    signer_free(b);
    snprintf(cmd, sizeof cmd, "cp '%s/signing-cert.pem' '%s/signing-cert.pem'", d2, d1);
    assert_int_equal(system(cmd), 0);
    err[0] = '\0';
    assert_null(signer_load_or_create(d1, err, sizeof err));
    assert_non_null(strstr(err, "not a matching EC pair"));

    /* Key present, certificate missing. */
    snprintf(path, sizeof path, "%s/signing-cert.pem", d2);
    unlink(path);
    assert_null(signer_load_or_create(d2, err, sizeof err));

    /* A folder that cannot be created. */
    assert_null(signer_load_or_create("/proc/nonexistent/bioserver", err, sizeof err));
}

/* Waits (no time limit but cmocka's own) until the filler has made `want` pairs:
 * it runs at idle priority, so on a busy machine this can take a moment. */
static void wait_ready(int (*ready)(void *), void *p, int want) {
    for (int i = 0; ready(p) < want; i++) {
        usleep(1000);
        if (i == 120000) fail_msg("the idle-priority filler made no nonces in 120 s");
    }
}

static int presign_ready_of(void *p) { return presign_ready(p); }
static int signer_ready_of(void *s) { return signer_presigned_ready(s); }

/* Verifies raw r||s over digest with key, the plain OpenSSL way. */
static int verify_raw(EVP_PKEY *key, const uint8_t digest[32], const uint8_t raw[64]) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    uint8_t *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* Every pair the pool had signs once, each signature verifies with the public key,
 * and no r repeats (a repeated nonce would give the key away). */
static void test_presigned_nonces(void **state) {
    (void)state;
    enum { N = 16 };
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    presign *p = presign_create(key, N);
    assert_non_null(p);
    wait_ready(presign_ready_of, p, N);
    uint8_t raw[N][64], digest[32];
    for (int i = 0; i < N; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "match %d", i);
        SHA256((const uint8_t *)msg, strlen(msg), digest);
        assert_int_equal(presign_sign(p, digest, raw[i]), 1);
        assert_true(verify_raw(key, digest, raw[i]));
        digest[0] ^= 1; /* another message does not verify */
        assert_false(verify_raw(key, digest, raw[i]));
        for (int j = 0; j < i; j++) assert_memory_not_equal(raw[i], raw[j], 32);
    }
    presign_free(p);

    /* A pool of one, freed while its filler makes the next pair (ASan: no leak). */
    p = presign_create(key, 1);
    wait_ready(presign_ready_of, p, 1);
    assert_int_equal(presign_sign(p, digest, raw[0]), 1);
    presign_free(p); /* also frees what the filler made meanwhile */
    presign_free(NULL);

    /* Only P-256 keys. */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_null(presign_create(rsa, 4));
    assert_null(presign_create(key, 0));
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
}

/* Through the signer: more signatures than precomputed nonces, so both ways are
 * used; every JWS verifies on its own and the two ways give the same form. */
static void test_signer_with_presigned_nonces(void **state) {
    fixture *f = *state;
    signer *s = open_signer(f->dir);
    assert_int_equal(signer_presigned_ready(s), 0);
    assert_int_equal(signer_presign_start(s, 8), 0);
    assert_int_equal(signer_presign_start(s, 8), 0); /* once is enough; again is harmless */
    wait_ready(signer_ready_of, s, 8);
    for (int i = 0; i < 40; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "{\"n\":%d}", i);
        char *jws = signer_sign(s, (const uint8_t *)msg, strlen(msg), i % 2);
        assert_non_null(jws);
        assert_int_equal(signer_verify(s, jws, (const uint8_t *)msg, strlen(msg)), 0);
        assert_int_equal(signer_verify(s, jws, (const uint8_t *)"{}", 2), -1);
        free(jws);
    }
    signer_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_attached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_detached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_material, setup, teardown),
        cmocka_unit_test(test_presigned_nonces),
        cmocka_unit_test_setup_teardown(test_signer_with_presigned_nonces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
