/* Binary face records; see face_blob.h. */
#include "api/face_blob.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/face_input.h"

#define MAGIC_V1 "FRC1"
#define MAGIC "FRC2"

/* Appends n bytes at *at. */
static void put(uint8_t **at, const void *p, size_t n) {
    memcpy(*at, p, n);
    *at += n;
}

uint8_t *face_blob_pack(const char *json, const char *mode, const float *emb, int dim, const char *id,
                        const char *summary, size_t *len) {
    size_t jl = strlen(json), il = strlen(id), sl = strlen(summary);
    if (il >= FACE_ID_MAX) return NULL;
    *len = 4 + 4 + jl + 2 + FACE_BLOB_MODE_LEN + (size_t)dim * 4 + 1 + il + 4 + sl;
    uint8_t *b = calloc(1, *len), *at = b;
    if (!b) return NULL;
    uint32_t j32 = (uint32_t)jl, s32 = (uint32_t)sl;
    uint16_t d16 = (uint16_t)dim;
    uint8_t i8 = (uint8_t)il;
    put(&at, MAGIC, 4);
    put(&at, &j32, 4);
    put(&at, json, jl);
    put(&at, &d16, 2);
    strncpy((char *)at, mode, FACE_BLOB_MODE_LEN - 1);
    at += FACE_BLOB_MODE_LEN;
    put(&at, emb, (size_t)dim * 4);
    put(&at, &i8, 1);
    put(&at, id, il);
    put(&at, &s32, 4);
    put(&at, summary, sl);
    return b;
}

int face_blob_view(const uint8_t *data, size_t len, face_blob *r) {
    uint32_t jl, sl;
    uint16_t dim;
    if (len < 10 + FACE_BLOB_MODE_LEN) return -1;
    bool v1 = !memcmp(data, MAGIC_V1, 4);
    if (!v1 && memcmp(data, MAGIC, 4)) return -1;
    memcpy(&jl, data + 4, 4);
    if (jl > len - 10 - FACE_BLOB_MODE_LEN) return -1;
    memcpy(&dim, data + 8 + jl, 2);
    size_t base = 10 + jl + FACE_BLOB_MODE_LEN + (size_t)dim * 4;
    if (dim == 0 || dim > FACE_EMBEDDING_MAX || len < base || (v1 && len != base)) return -1;
    *r = (face_blob){.json = (const char *)data + 8, .json_len = jl, .mode = (const char *)data + 10 + jl,
                     .embedding = data + 10 + jl + FACE_BLOB_MODE_LEN, .dim = dim};
    if (v1) return 0;
    if (len < base + 1 || len - base - 1 < (size_t)data[base] + 4) return -1;
    r->id_len = data[base];
    r->id = (const char *)data + base + 1;
    memcpy(&sl, data + base + 1 + r->id_len, 4);
    r->summary = r->id + r->id_len + 4;
    r->summary_len = sl;
    return len == base + 1 + r->id_len + 4 + sl ? 0 : -1;
}

float *face_blob_embedding(const face_blob *r, char mode[FACE_BLOB_MODE_LEN]) {
    memcpy(mode, r->mode, FACE_BLOB_MODE_LEN);
    mode[FACE_BLOB_MODE_LEN - 1] = '\0';
    float *e = malloc((size_t)r->dim * sizeof(float));
    if (e) memcpy(e, r->embedding, (size_t)r->dim * sizeof(float));
    return e;
}

void face_blob_template(const face_blob *r, face_template *tpl) {
    tpl->version = TEMPLATE_VERSION;
    memcpy(tpl->mode, r->mode, FACE_BLOB_MODE_LEN);
    tpl->mode[FACE_BLOB_MODE_LEN - 1] = '\0';
    tpl->dim = r->dim;
    memcpy(tpl->embedding, r->embedding, (size_t)r->dim * 4);
}

char *face_blob_summary_of(json_t *face) {
    json_t *summary = api_face_summary(face);
    char *text = json_dumps(summary, HTTP_JSON_FLAGS);
    json_decref(summary);
    return text;
}

char *face_blob_summary(const face_blob *r, char id[FACE_ID_MAX]) {
    if (r->summary) {
        if (r->id_len >= FACE_ID_MAX) return NULL;
        memcpy(id, r->id, r->id_len);
        id[r->id_len] = '\0';
        return strndup(r->summary, r->summary_len);
    }
    json_t *meta = json_loadb(r->json, r->json_len, 0, NULL);
    const char *fid = api_json_string(meta, "id");
    char *text = fid && strlen(fid) < FACE_ID_MAX ? face_blob_summary_of(meta) : NULL;
    if (text) strcpy(id, fid);
    json_decref(meta);
    return text;
}

