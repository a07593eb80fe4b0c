/* Biometric template: the versioned binary form of an embedding that clients hold
 * and send back (CreateFaceFromJson, Match). A server-side HMAC makes a forged,
 * corrupted or foreign template detectable before it is ever compared.
 *
 * Layout (little-endian): "BTPL" | u16 version | u16 dim | char mode[16] |
 * f32 embedding[dim] | HMAC-SHA256(key, everything before) */
#ifndef FACE_TEMPLATE_H
#define FACE_TEMPLATE_H
#include <stddef.h>
#include <stdint.h>

#include "face/pipeline.h"

#define TEMPLATE_VERSION 1
#define TEMPLATE_KEY_LEN 32

typedef struct {
    int version;
    char mode[16];
    int dim;
    float embedding[FACE_EMBEDDING_MAX];
} face_template;

enum {
    TEMPLATE_OK = 0,
    TEMPLATE_ERR_ENCODING = -1, /* not base64 / too short */
    TEMPLATE_ERR_FORMAT = -2,   /* wrong magic or sizes */
    TEMPLATE_ERR_VERSION = -3,  /* made by another algorithm version */
    TEMPLATE_ERR_MAC = -4,      /* forged or corrupted */
};

/* Returns malloc'd base64 text, NULL on allocation failure. */
char *template_encode(const uint8_t key[TEMPLATE_KEY_LEN], const char *mode, const float *embedding, int dim);
/* Fills out; on failure writes a client-facing message into err. */
int template_decode(const uint8_t key[TEMPLATE_KEY_LEN], const char *base64, face_template *out,
                    char *err, size_t err_len);

#endif
