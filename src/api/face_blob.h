/* The bytes of a stored session face (the store's value for KIND_FACE):
 *   "FRC2" | u32 json_len | json | u16 dim | mode[16] | f32 embedding[dim] |
 *   u8 id_len | id | u32 summary_len | summary
 * json is the face JSON without template and signature; summary is its match summary
 * (api_face_summary) as compact JSON text, made once when the face is stored, so that
 * GetMatches splices it into every match without parsing a record. Integers are in
 * host order (the store is read by servers of one architecture). "FRC1" records,
 * written before the id and summary were kept (a shared Redis store outlives a
 * server upgrade), are the same without the last four fields and are still read. */
#ifndef API_FACE_BLOB_H
#define API_FACE_BLOB_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "face/template.h"

#define FACE_ID_MAX 64 /* longest face id + NUL (ours are UUIDs) */
#define FACE_BLOB_MODE_LEN 16

/* A record's fields, pointing into its bytes (not NUL-terminated); id and summary
 * are NULL in an FRC1 record. */
typedef struct {
    const char *json, *mode, *id, *summary;
    size_t json_len, id_len, summary_len;
    const uint8_t *embedding; /* dim floats, unaligned */
    int dim;
} face_blob;

/* A malloc'd FRC2 record of *len bytes; NULL when out of memory or id is
 * FACE_ID_MAX bytes or longer. */
uint8_t *face_blob_pack(const char *json, const char *mode, const float *emb, int dim, const char *id,
                        const char *summary, size_t *len);
/* 0 and the fields of data, or -1 when data is not a well-formed FRC1/FRC2 record. */
int face_blob_view(const uint8_t *data, size_t len, face_blob *r);
/* Copies mode and embedding into tpl. */
void face_blob_template(const face_blob *r, face_template *tpl);
/* The mode (NUL-terminated) into mode and the embedding as malloc'd floats (NULL when
 * out of memory): a template's worth of bytes for only what the record holds. */
float *face_blob_embedding(const face_blob *r, char mode[FACE_BLOB_MODE_LEN]);
/* The summary text (malloc'd) and the id into id: kept in FRC2, made from the JSON
 * in FRC1. NULL when the record holds no usable id or is out of memory. */
char *face_blob_summary(const face_blob *r, char id[FACE_ID_MAX]);
/* api_face_summary(face) as compact JSON text (malloc'd), as records keep it. */
char *face_blob_summary_of(json_t *face);

#endif
