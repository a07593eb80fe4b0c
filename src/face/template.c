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
#define MAC_LEN 32

static void put_u16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static unsigned get_u16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

static void mac(const uint8_t key[TEMPLATE_KEY_LEN], const uint8_t *data, size_t len, uint8_t out[MAC_LEN]) {
    unsigned int n = MAC_LEN;
    HMAC(EVP_sha256(), key, TEMPLATE_KEY_LEN, data, len, out, &n);
}

char *template_encode(const uint8_t key[TEMPLATE_KEY_LEN], const char *mode, const float *embedding, int dim) {
    size_t body = HEADER_LEN + (size_t)dim * 4, total = body + MAC_LEN;
    uint8_t *buf = calloc(1, total);
    if (!buf) return NULL;
    memcpy(buf, MAGIC, 4);
    put_u16(buf + 4, TEMPLATE_VERSION);
    put_u16(buf + 6, (unsigned)dim);
    snprintf((char *)buf + 8, 16, "%s", mode);
    memcpy(buf + HEADER_LEN, embedding, (size_t)dim * 4); /* x86/ARM: little-endian floats */
    mac(key, buf, body, buf + body);
    char *text = base64_encode(buf, total);
    free(buf);
    return text;
}

static int fail(char *err, size_t len, int code, const char *msg) {
    snprintf(err, len, "%s", msg);
    return code;
}

int template_decode(const uint8_t key[TEMPLATE_KEY_LEN], const char *base64, face_template *out,
                    char *err, size_t err_len) {
    size_t len = 0;
    uint8_t *buf = base64_decode_canonical(base64, strlen(base64), &len);
    if (!buf)
        return fail(err, err_len, TEMPLATE_ERR_ENCODING,
                    "template is not valid base64 (standard alphabet, '=' padding, exactly as the server returned it)");
    int rc = TEMPLATE_OK;
    if (len < HEADER_LEN + MAC_LEN || memcmp(buf, MAGIC, 4)) {
        rc = fail(err, err_len, TEMPLATE_ERR_FORMAT, "template is not a biometric template of this server");
    } else if (get_u16(buf + 4) != TEMPLATE_VERSION) {
        snprintf(err, err_len, "template version %u is not supported (this server makes version %d); create the face again from its image",
                 get_u16(buf + 4), TEMPLATE_VERSION);
        rc = TEMPLATE_ERR_VERSION;
    } else {
        unsigned dim = get_u16(buf + 6);
        size_t body = HEADER_LEN + (size_t)dim * 4;
        uint8_t expect[MAC_LEN];
        if (dim == 0 || dim > FACE_EMBEDDING_MAX || len != body + MAC_LEN) {
            rc = fail(err, err_len, TEMPLATE_ERR_FORMAT, "template has an invalid size");
        } else {
            mac(key, buf, body, expect);
            if (CRYPTO_memcmp(expect, buf + body, MAC_LEN)) {
                rc = fail(err, err_len, TEMPLATE_ERR_MAC, "template integrity check failed: it was modified or made by another server");
            } else {
                out->version = TEMPLATE_VERSION;
                memcpy(out->mode, buf + 8, 15);
                out->mode[15] = '\0';
                out->dim = (int)dim;
                memcpy(out->embedding, buf + HEADER_LEN, (size_t)dim * 4);
            }
        }
    }
    free(buf);
    return rc;
}
