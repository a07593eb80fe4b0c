/* Biometric template: the versioned binary form of an embedding that clients hold
 * and send back (CreateFaceFromJson, Match). Version 2 encrypts the embedding
 * (an embedding in the clear can be inverted into a likeness of the face) and
 * authenticates it together with the header and the tenant it was issued to, so a
 * forged, corrupted, foreign or other tenant's template is refused before it is
 * ever compared.
 *
 * Version 2 (little-endian): "BTPL" | u16 version | u16 dim | char mode[16] |
 * sealed f32 embedding[dim] (sign/data_keyring.h: u32 key id | nonce | ciphertext |
 * tag), AES-256-GCM with the ring's template key; associated data = the 24 header
 * bytes | tenant. The nonce is synthetic (a MAC of header, tenant and embedding), so
 * one embedding gives the same template bytes every time it is rendered.
 *
 * Version 1: "BTPL" | u16 1 | u16 dim | mode[16] | f32 embedding[dim] in the clear |
 * HMAC-SHA256(template-key.bin, all before). Decoded only when the server is set
 * to accept it (legacy_templates); never made any more. */
#ifndef FACE_TEMPLATE_H
#define FACE_TEMPLATE_H
#include <stddef.h>
#include <stdint.h>

#include "face/pipeline.h"
#include "sign/data_keyring.h"

#define TEMPLATE_VERSION 2
#define TEMPLATE_V1_KEY_LEN 32
/* Upper bound of a template's base64 text (a 1024-d v2 template is ~5.5 kB). */
#define TEMPLATE_MAX_TEXT 16384

typedef struct {
    data_keyring *ring;                 /* seals and opens version 2 */
    const uint8_t *v1_mac_key;     /* TEMPLATE_V1_KEY_LEN bytes; NULL: version 1 is refused */
} template_keys;

typedef struct {
    int version;
    char mode[16];
    int dim;
    float embedding[FACE_EMBEDDING_MAX];
} face_template;

enum {
    TEMPLATE_OK = 0,
    TEMPLATE_ERR_ENCODING = -1, /* not canonical base64 */
    TEMPLATE_ERR_FORMAT = -2,   /* wrong magic or sizes */
    TEMPLATE_ERR_VERSION = -3,  /* made by another algorithm version, or a refused old one */
    TEMPLATE_ERR_MAC = -4,      /* forged, corrupted, or issued to another tenant */
    TEMPLATE_ERR_KEY = -5,      /* sealed with a key no longer in the ring */
};

/* A version 2 template for tenant: malloc'd base64 text, NULL on failure. */
char *template_encode(const template_keys *keys, const char *tenant, const char *mode, const float *embedding,
                      int dim);
/* Fills out from a template issued to tenant; on failure returns a TEMPLATE_ERR_*
 * and writes a client-facing message into err. */
int template_decode(const template_keys *keys, const char *tenant, const char *base64, face_template *out,
                    char *err, size_t err_len);

#endif
