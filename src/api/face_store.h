/* Session faces in the store. A record is the face's JSON without its template
 * plus the raw embedding, so matching reads floats instead of parsing and
 * authenticating kilobytes of base64 per face; the template text is rebuilt
 * (deterministically, same bytes) only when a client reads the face. The record also
 * keeps the face's id and match summary as text, so GetMatches parses no JSON. */
#ifndef API_FACE_STORE_H
#define API_FACE_STORE_H
#include <jansson.h>
#include <stdbool.h>

#include "api/face_blob.h"
#include "face/template.h"
#include "http/request.h"

#define KIND_FACE "face"
#define KIND_IMAGE "image"

typedef struct {
    json_t *meta; /* the face JSON without "template" */
    face_template tpl;
} face_record;

/* Stores face (borrowed; its "template" member is dropped) with the embedding.
 * face_record_put returns STORE_OK or a store error and replies nothing (for
 * workers without a request); face_store_put replies on failure. */
int face_record_put(struct app *a, const char *tenant, const char *sid, const char *fid, json_t *face,
                    const char *mode, const float *embedding, int dim);
bool face_store_put(http_request *req, const char *sid, const char *fid, json_t *face, const char *mode,
                    const float *embedding, int dim);
/* The face JSON as clients see it, template included; NULL after replying. */
json_t *face_store_get(http_request *req, const char *sid, const char *fid);
/* Every face, oldest first, as clients see them; NULL after replying. */
json_t *face_store_list(http_request *req, const char *sid);
/* Records for matching (malloc'd array, release with face_records_free); false after replying. */
bool face_store_records(http_request *req, const char *sid, face_record **out, size_t *count);
void face_records_free(face_record *records, size_t count);

/* What GetMatches needs of a face, read without parsing its JSON: the id, the
 * summary a match shows (api_face_summary as compact JSON text, stored with the face
 * when it was created), the mode and the embedding. */
typedef struct {
    char id[FACE_ID_MAX];
    char mode[FACE_BLOB_MODE_LEN];
    char *summary;    /* malloc'd */
    float *embedding; /* malloc'd, dim floats */
    int dim;
} face_match;

/* Every face of the session, oldest first (malloc'd array, release with
 * face_matches_free); false after replying. */
bool face_store_matches(http_request *req, const char *sid, face_match **out, size_t *count);
void face_matches_free(face_match *matches, size_t count);
/* meta (taken) with the template rebuilt from tpl, placed before templateVersion
 * as in the spec; also used for gallery faces (galleries.c). */
json_t *face_with_template(http_request *req, json_t *meta, const face_template *tpl);

#endif
