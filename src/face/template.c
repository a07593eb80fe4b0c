/* Template encoding and authenticated decoding; see template.h. */
#include "face/template.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MAGIC "BTPL"
#define HEADER_LEN (4 + 2 + 2 + 16)
#define V1_MAC_LEN 32
#define TENANT_MAX 256

static void put_u16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static unsigned get_u16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

/* Associated data: the header, then the tenant the template is issued to. */
static size_t make_aad(const uint8_t *header, const char *tenant, uint8_t *aad) {
    size_t tl = strnlen(tenant, TENANT_MAX);
    memcpy(aad, header, HEADER_LEN);
    memcpy(aad + HEADER_LEN, tenant, tl);
    return HEADER_LEN + tl;
}

char *template_encode(const template_keys *keys, const char *tenant, const char *mode, const float *embedding,
                      int dim) {
    size_t plain = (size_t)dim * 4, total = HEADER_LEN + plain + DATA_KEYRING_OVERHEAD;
    uint8_t *buf = calloc(1, total), aad[HEADER_LEN + TENANT_MAX];
    if (!buf || dim <= 0 || dim > FACE_EMBEDDING_MAX) {
        free(buf);
        return NULL;
    }
    memcpy(buf, MAGIC, 4);
    put_u16(buf + 4, TEMPLATE_VERSION);
    put_u16(buf + 6, (unsigned)dim);
    snprintf((char *)buf + 8, 16, "%s", mode);
    size_t aad_len = make_aad(buf, tenant, aad);
    /* x86/ARM: little-endian floats */
    int rc = data_keyring_seal(keys->ring, KEY_PURPOSE_TEMPLATE, aad, aad_len, (const uint8_t *)embedding, plain, true,
                          buf + HEADER_LEN);
    char *text = rc == DATA_KEYRING_OK ? base64_encode(buf, total) : NULL;
    free(buf);
    return text;
}

static int fail(char *err, size_t len, int code, const char *msg) {
    snprintf(err, len, "%s", msg);
    return code;
}

static void fill(face_template *out, int version, const uint8_t *header) {
    out->version = version;
    memcpy(out->mode, header + 8, 15);
    out->mode[15] = '\0';
    out->dim = (int)get_u16(header + 6);
}

static int decode_v2(const template_keys *keys, const char *tenant, const uint8_t *buf, size_t len,
                     face_template *out, char *err, size_t err_len) {
    unsigned dim = get_u16(buf + 6);
    if (dim == 0 || dim > FACE_EMBEDDING_MAX || len != HEADER_LEN + (size_t)dim * 4 + DATA_KEYRING_OVERHEAD)
        return fail(err, err_len, TEMPLATE_ERR_FORMAT, "template has an invalid size");
    uint8_t aad[HEADER_LEN + TENANT_MAX];
    size_t aad_len = make_aad(buf, tenant, aad);
    int rc = data_keyring_open(keys->ring, KEY_PURPOSE_TEMPLATE, aad, aad_len, buf + HEADER_LEN, len - HEADER_LEN,
                          (uint8_t *)out->embedding, NULL);
    if (rc == DATA_KEYRING_ERR_UNKNOWN_KEY)
        return fail(err, err_len, TEMPLATE_ERR_KEY,
                    "template was sealed with a key this server no longer holds: create the face again from its image");
    if (rc)
        return fail(err, err_len, TEMPLATE_ERR_MAC,
                    "template integrity check failed: it was modified, made by another server, or issued to another tenant");
    fill(out, 2, buf);
    return TEMPLATE_OK;
}

static int decode_v1(const template_keys *keys, const uint8_t *buf, size_t len, face_template *out, char *err,
                     size_t err_len) {
    if (!keys->v1_mac_key)
        return fail(err, err_len, TEMPLATE_ERR_VERSION,
                    "template version 1 is no longer accepted (it is not encrypted): create the face again from its image");
    unsigned dim = get_u16(buf + 6);
    size_t body = HEADER_LEN + (size_t)dim * 4;
    if (dim == 0 || dim > FACE_EMBEDDING_MAX || len != body + V1_MAC_LEN)
        return fail(err, err_len, TEMPLATE_ERR_FORMAT, "template has an invalid size");
    uint8_t expect[V1_MAC_LEN];
    unsigned int n = V1_MAC_LEN;
    HMAC(EVP_sha256(), keys->v1_mac_key, TEMPLATE_V1_KEY_LEN, buf, body, expect, &n);
    if (CRYPTO_memcmp(expect, buf + body, V1_MAC_LEN))
        return fail(err, err_len, TEMPLATE_ERR_MAC, "template integrity check failed: it was modified or made by another server");
    fill(out, 1, buf);
    memcpy(out->embedding, buf + HEADER_LEN, (size_t)dim * 4);
    return TEMPLATE_OK;
}

int template_decode(const template_keys *keys, const char *tenant, const char *base64, face_template *out,
                    char *err, size_t err_len) {
    size_t text_len = strnlen(base64, TEMPLATE_MAX_TEXT + 1), len = 0;
    if (text_len > TEMPLATE_MAX_TEXT) return fail(err, err_len, TEMPLATE_ERR_FORMAT, "template is too long");
    /* Only the one spelling template_encode makes: other spellings of the same bytes
     * (missing padding, stray bits in the last character) would let one template
     * pass as many different strings. */
    uint8_t *buf = base64_decode_canonical(base64, text_len, &len);
    if (!buf)
        return fail(err, err_len, TEMPLATE_ERR_ENCODING,
                    "template is not valid base64 (standard alphabet, '=' padding, exactly as the server returned it)");
    int rc;
    unsigned version = len >= HEADER_LEN ? get_u16(buf + 4) : 0;
    if (len < HEADER_LEN || memcmp(buf, MAGIC, 4)) {
        rc = fail(err, err_len, TEMPLATE_ERR_FORMAT, "template is not a biometric template of this server");
    } else if (version == TEMPLATE_VERSION) {
        rc = decode_v2(keys, tenant, buf, len, out, err, err_len);
    } else if (version == 1) {
        rc = decode_v1(keys, buf, len, out, err, err_len);
    } else {
        snprintf(err, err_len, "template version %u is not supported (this server makes version %d); create the face again from its image",
                 version, TEMPLATE_VERSION);
        rc = TEMPLATE_ERR_VERSION;
    }
    free(buf);
    return rc;
}
