/* Unit tests for client-held templates (src/face/template.c): version 2 round
 * trip, the embedding not in the clear, binding to the tenant, tampering, the
 * canonical base64 rule, version 1 accepted only when configured, and templates
 * issued before a key rotation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "face/template.h"

#define DIM 512

static char dir[64];
static data_keyring *ring;
static float emb[DIM];
static face_template out;
static char err[256];

static void remove_dir(const char *d) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", d, DATA_KEYRING_FILE);
    unlink(path);
    rmdir(d);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test-template-XXXXXX");
    ring = mkdtemp(dir) ? data_keyring_load_or_create(dir, err, sizeof err) : NULL;
    double norm = 0;
    for (int i = 0; i < DIM; i++) norm += pow(emb[i] = sinf((float)i * 0.37f), 2);
    for (int i = 0; i < DIM; i++) emb[i] /= (float)sqrt(norm);
    return ring ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    data_keyring_free(ring);
    remove_dir(dir);
    return 0;
}

static uint8_t *raw_of(const char *b64, size_t *len) { return base64_decode(b64, strlen(b64), len); }

static char *b64_of(const uint8_t *raw, size_t len) { return base64_encode(raw, len); }

static void test_roundtrip_and_confidential(void **state) {
    (void)state;
    template_keys keys = {.ring = ring};
    char *t = template_encode(&keys, "tenant-a", "F5_1_VID60", emb, DIM);
    assert_non_null(t);
    assert_int_equal(template_decode(&keys, "tenant-a", t, &out, err, sizeof err), TEMPLATE_OK);
    assert_int_equal(out.version, 2);
    assert_int_equal(out.dim, DIM);
    assert_string_equal(out.mode, "F5_1_VID60");
    assert_memory_equal(out.embedding, emb, sizeof emb);
    size_t len;
    uint8_t *raw = raw_of(t, &len);
    assert_int_equal(len, 24 + DIM * 4 + DATA_KEYRING_OVERHEAD);
    assert_memory_equal(raw, "BTPL\x02\x00", 6);
    /* No float of the embedding appears in the bytes. */
    for (int i = 1; i < DIM; i += 7) assert_null(memmem(raw, len, &emb[i], 4)); /* emb[0] is 0.0 */
    free(raw);
    /* Deterministic: the face reads back with the same template text. */
    char *again = template_encode(&keys, "tenant-a", "F5_1_VID60", emb, DIM);
    assert_string_equal(again, t);
    /* ...but another tenant's template of the same embedding differs. */
    char *other = template_encode(&keys, "tenant-b", "F5_1_VID60", emb, DIM);
    assert_string_not_equal(other, t);
    free(again);
    free(other);
    free(t);
}

static void test_bound_to_tenant_and_untampered(void **state) {
    (void)state;
    template_keys keys = {.ring = ring};
    char *t = template_encode(&keys, "tenant-a", "F5_1_VID60", emb, DIM);
    assert_int_equal(template_decode(&keys, "tenant-b", t, &out, err, sizeof err), TEMPLATE_ERR_MAC);
    assert_non_null(strstr(err, "another tenant"));
    assert_int_equal(template_decode(&keys, "tenant-a2", t, &out, err, sizeof err), TEMPLATE_ERR_MAC);
    assert_int_equal(template_decode(&keys, "", t, &out, err, sizeof err), TEMPLATE_ERR_MAC);
    size_t len;
    uint8_t *raw = raw_of(t, &len);
    /* Every byte after the magic and version: mode, dim, key id, nonce, ciphertext, tag. */
    for (size_t i = 6; i < len; i += (i < 48 ? 1 : 97)) {
        raw[i] ^= 0x01;
        char *bad = b64_of(raw, len);
        int rc = template_decode(&keys, "tenant-a", bad, &out, err, sizeof err);
        assert_true(rc == TEMPLATE_ERR_MAC || rc == TEMPLATE_ERR_FORMAT || rc == TEMPLATE_ERR_KEY);
        assert_true((i >= 6 && i < 8) == (rc == TEMPLATE_ERR_FORMAT)); /* the dim changes the size */
        assert_true((i >= 24 && i < 28) == (rc == TEMPLATE_ERR_KEY));  /* the key id */
        free(bad);
        raw[i] ^= 0x01;
    }
    /* Truncated, extended, other versions, other magic. */
    char *bad = b64_of(raw, len - 1);
    assert_int_equal(template_decode(&keys, "tenant-a", bad, &out, err, sizeof err), TEMPLATE_ERR_FORMAT);
    free(bad);
    raw[4] = 3;
    bad = b64_of(raw, len);
    assert_int_equal(template_decode(&keys, "tenant-a", bad, &out, err, sizeof err), TEMPLATE_ERR_VERSION);
    assert_non_null(strstr(err, "version 3"));
    free(bad);
    raw[4] = 2;
    raw[0] = 'X';
    bad = b64_of(raw, len);
    assert_int_equal(template_decode(&keys, "tenant-a", bad, &out, err, sizeof err), TEMPLATE_ERR_FORMAT);
    free(bad);
    free(raw);
    free(t);
}

/* One spelling only (issue 11: non-canonical base64 was accepted). */
static void test_canonical_base64(void **state) {
    (void)state;
    template_keys keys = {.ring = ring};
    char *t = template_encode(&keys, "T", "F5_1_VID60", emb, DIM);
    size_t n = strlen(t);
    char *v = malloc(n + 8);
    const char *variants[] = {"unpadded", "newline", "urlsafe", "bits", NULL};
    for (int k = 0; variants[k]; k++) {
        strcpy(v, t);
        if (k == 0) { while (n && v[strlen(v) - 1] == '=') v[strlen(v) - 1] = '\0'; }
        if (k == 1) { memmove(v + 11, v + 10, n - 9); v[10] = '\n'; }
        if (k == 2) { for (char *p = v; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p; }
        if (k == 3) { char *eq = strchr(v, '='); if (eq) eq[-1] ^= 1; }
        if (!strcmp(v, t)) continue; /* this text has no such variant */
        int rc = template_decode(&keys, "T", v, &out, err, sizeof err);
        assert_true(rc != TEMPLATE_OK);
        if (k != 3) assert_int_equal(rc, TEMPLATE_ERR_ENCODING);
    }
    assert_int_equal(template_decode(&keys, "T", "", &out, err, sizeof err), TEMPLATE_ERR_FORMAT);
    assert_int_equal(template_decode(&keys, "T", "!!", &out, err, sizeof err), TEMPLATE_ERR_ENCODING);
    free(v);
    free(t);
}

/* A version 1 template as the previous server made it. */
static char *v1_template(const uint8_t key[TEMPLATE_V1_KEY_LEN]) {
    size_t body = 24 + DIM * 4;
    uint8_t *buf = calloc(1, body + 32);
    memcpy(buf, "BTPL\x01\x00", 6);
    buf[6] = DIM & 0xff, buf[7] = DIM >> 8;
    strcpy((char *)buf + 8, "F5_1_VID60");
    memcpy(buf + 24, emb, DIM * 4);
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, TEMPLATE_V1_KEY_LEN, buf, body, buf + body, &n);
    char *t = b64_of(buf, body + 32);
    free(buf);
    return t;
}

static void test_version_1(void **state) {
    (void)state;
    uint8_t v1key[TEMPLATE_V1_KEY_LEN] = {7, 7, 7};
    char *t = v1_template(v1key);
    template_keys refuse = {.ring = ring}, accept = {.ring = ring, .v1_mac_key = v1key};
    assert_int_equal(template_decode(&refuse, "any", t, &out, err, sizeof err), TEMPLATE_ERR_VERSION);
    assert_non_null(strstr(err, "version 1 is no longer accepted"));
    assert_int_equal(template_decode(&accept, "any", t, &out, err, sizeof err), TEMPLATE_OK);
    assert_int_equal(out.version, 1);
    assert_memory_equal(out.embedding, emb, sizeof emb);
    size_t len;
    uint8_t *raw = raw_of(t, &len);
    raw[100] ^= 1;
    char *bad = b64_of(raw, len);
    assert_int_equal(template_decode(&accept, "any", bad, &out, err, sizeof err), TEMPLATE_ERR_MAC);
    free(bad);
    free(raw);
    free(t);
}

/* Issued before a rotation: still opens; issued after: under the new key. */
static void test_across_rotation(void **state) {
    (void)state;
    char d[] = "/tmp/test-tplrot-XXXXXX";
    assert_non_null(mkdtemp(d));
    data_keyring *r1 = data_keyring_load_or_create(d, err, sizeof err);
    template_keys k1 = {.ring = r1};
    char *before = template_encode(&k1, "T", "F5_1_VID60", emb, DIM);
    assert_int_equal(data_keyring_rotate(d, err, sizeof err), 2);
    data_keyring *r2 = data_keyring_load_or_create(d, err, sizeof err);
    template_keys k2 = {.ring = r2};
    assert_int_equal(template_decode(&k2, "T", before, &out, err, sizeof err), TEMPLATE_OK);
    assert_memory_equal(out.embedding, emb, sizeof emb);
    char *after = template_encode(&k2, "T", "F5_1_VID60", emb, DIM);
    size_t len;
    uint8_t *raw = raw_of(after, &len);
    assert_int_equal(raw[24], 2); /* the key id, little-endian */
    free(raw);
    /* A key removed from the ring: its templates are refused with the reason. */
    data_keyring_free(r1);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", d, DATA_KEYRING_FILE);
    FILE *f = fopen(path, "w");
    fputs("5 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
    fclose(f);
    data_keyring *r3 = data_keyring_load_or_create(d, err, sizeof err);
    template_keys k3 = {.ring = r3};
    assert_int_equal(template_decode(&k3, "T", after, &out, err, sizeof err), TEMPLATE_ERR_KEY);
    assert_non_null(strstr(err, "no longer holds"));
    free(before);
    free(after);
    data_keyring_free(r2);
    data_keyring_free(r3);
    remove_dir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_confidential),
        cmocka_unit_test(test_bound_to_tenant_and_untampered),
        cmocka_unit_test(test_canonical_base64),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_across_rotation),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
