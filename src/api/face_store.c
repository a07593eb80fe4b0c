/* Binary face records, see face_store.h:
 *   "FRC2" | u32 json_len | json | u16 dim | mode[16] | f32 embedding[dim] |
 *   u8 id_len | id | u32 summary_len | summary
 * where summary is the face's match summary (api_face_summary) as JSON text, made
 * once when the face is stored so GetMatches splices it without parsing the record.
 * "FRC1" records (the same without the last four fields) are still read. */
#include "api/face_store.h"

#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "api/app.h"
#include "api/common.h"
#include "api/face_input.h"

#define MAGIC_V1 "FRC1"
#define MAGIC "FRC2"
#define MODE_LEN 16

/* Appends n bytes at *at. */
static void put(uint8_t **at, const void *p, size_t n) {
    memcpy(*at, p, n);
    *at += n;
}

static uint8_t *pack(const char *json, const char *mode, const float *emb, int dim, const char *id,
                     const char *summary, size_t *len) {
    size_t jl = strlen(json), il = strlen(id), sl = strlen(summary);
    if (il > UINT8_MAX) return NULL;
    *len = 4 + 4 + jl + 2 + MODE_LEN + (size_t)dim * 4 + 1 + il + 4 + sl;
    uint8_t *b = calloc(1, *len), *at = b;
    if (!b) return NULL;
    uint32_t j32 = (uint32_t)jl, s32 = (uint32_t)sl;
    uint16_t d16 = (uint16_t)dim;
    uint8_t i8 = (uint8_t)il;
    put(&at, MAGIC, 4);
    put(&at, &j32, 4);
    put(&at, json, jl);
    put(&at, &d16, 2);
    strncpy((char *)at, mode, MODE_LEN - 1);
    at += MODE_LEN;
    put(&at, emb, (size_t)dim * 4);
    put(&at, &i8, 1);
    put(&at, id, il);
    put(&at, &s32, 4);
    put(&at, summary, sl);
    return b;
}

/* A record's fields, pointing into its bytes; id and summary are NULL in FRC1. */
typedef struct {
    const char *json, *mode, *id, *summary;
    size_t json_len, id_len, summary_len;
    const uint8_t *embedding;
    int dim;
} record_view;

static int view(const store_value *v, record_view *r) {
    uint32_t jl, sl;
    uint16_t dim;
    if (v->len < 10 + MODE_LEN) return -1;
    bool v1 = !memcmp(v->data, MAGIC_V1, 4);
    if (!v1 && memcmp(v->data, MAGIC, 4)) return -1;
    memcpy(&jl, v->data + 4, 4);
    if (jl > v->len - 10 - MODE_LEN) return -1;
    memcpy(&dim, v->data + 8 + jl, 2);
    size_t base = 10 + jl + MODE_LEN + (size_t)dim * 4;
    if (dim == 0 || dim > FACE_EMBEDDING_MAX || v->len < base || (v1 && v->len != base)) return -1;
    *r = (record_view){.json = (const char *)v->data + 8, .json_len = jl, .mode = (const char *)v->data + 10 + jl,
                       .embedding = v->data + 10 + jl + MODE_LEN, .dim = dim};
    if (v1) return 0;
    if (v->len < base + 1 || v->len - base - 1 < (size_t)v->data[base] + 4) return -1;
    r->id_len = v->data[base];
    r->id = (const char *)v->data + base + 1;
    memcpy(&sl, v->data + base + 1 + r->id_len, 4);
    r->summary = r->id + r->id_len + 4;
    r->summary_len = sl;
    return v->len == base + 1 + r->id_len + 4 + sl ? 0 : -1;
}

static void view_template(const record_view *r, face_template *tpl) {
    tpl->version = TEMPLATE_VERSION;
    memcpy(tpl->mode, r->mode, MODE_LEN);
    tpl->mode[MODE_LEN - 1] = '\0';
    tpl->dim = r->dim;
    memcpy(tpl->embedding, r->embedding, (size_t)r->dim * 4);
}

/* tpl may be NULL when only the JSON is wanted. */
static int unpack(const store_value *v, json_t **meta, face_template *tpl) {
    record_view r;
    if (view(v, &r)) return -1;
    *meta = json_loadb(r.json, r.json_len, 0, NULL);
    if (!*meta) return -1;
    if (tpl) view_template(&r, tpl);
    return 0;
}

/* api_face_summary as compact JSON text. */
static char *summary_of(json_t *face) {
    json_t *summary = api_face_summary(face);
    char *text = json_dumps(summary, HTTP_JSON_FLAGS);
    json_decref(summary);
    return text;
}

/* The summary as JSON text: from the record, or made from its JSON (FRC1). */
static char *summary_text(const record_view *r, char id[FACE_ID_MAX]) {
    if (r->summary) {
        if (r->id_len >= FACE_ID_MAX) return NULL;
        memcpy(id, r->id, r->id_len);
        id[r->id_len] = '\0';
        return strndup(r->summary, r->summary_len);
    }
    json_t *meta = json_loadb(r->json, r->json_len, 0, NULL);
    const char *fid = api_json_string(meta, "id");
    char *text = fid && strlen(fid) < FACE_ID_MAX ? summary_of(meta) : NULL;
    if (text) strcpy(id, fid);
    json_decref(meta);
    return text;
}

int face_record_put(app *a, const char *tenant, const char *sid, const char *fid, json_t *face, const char *mode,
                    const float *embedding, int dim) {
    json_t *meta = json_copy(face);
    json_object_del(meta, "template");
    json_object_del(meta, "signature");
    char *text = json_dumps(meta, HTTP_JSON_FLAGS), *summary = summary_of(meta);
    json_decref(meta);
    size_t len = 0;
    uint8_t *rec = text && summary ? pack(text, mode, embedding, dim, fid, summary, &len) : NULL;
    free(text);
    free(summary);
    store_value v = {rec, len};
    int rc = rec ? a->store->ops->item_put(a->store, tenant, sid, KIND_FACE, fid, &v) : STORE_NOMEM;
    free(rec);
    return rc;
}

bool face_store_put(http_request *req, const char *sid, const char *fid, json_t *face, const char *mode,
                    const float *embedding, int dim) {
    int rc = face_record_put(req->app, req->key->tenant, sid, fid, face, mode, embedding, dim);
    if (rc) api_reply_store_error(req, rc, "bio-session");
    return rc == 0;
}

/* Re-inserts the template just before templateVersion, where the spec shows it. */
json_t *face_with_template(http_request *req, json_t *meta, const face_template *tpl) {
    char *b64 = template_encode(&req->app->templates, req->key->tenant, tpl->mode, tpl->embedding, tpl->dim);
    json_t *face = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!strcmp(key, "templateVersion") && b64) json_object_set_new(face, "template", json_string(b64));
        json_object_set(face, key, value);
    }
    free(b64);
    json_decref(meta);
    return face;
}

json_t *face_store_get(http_request *req, const char *sid, const char *fid) {
    store_value v = {0};
    int rc = req->app->store->ops->item_get(req->app->store, req->key->tenant, sid, KIND_FACE, fid, &v);
    if (rc) {
        api_reply_store_error(req, rc, rc == STORE_NOT_FOUND ? "bio-session or face" : "face");
        return NULL;
    }
    json_t *meta = NULL;
    face_template *tpl = arena_alloc(req->arena, sizeof(*tpl));
    int bad = !tpl || unpack(&v, &meta, tpl);
    store_value_free(&v);
    if (bad) {
        http_reply_error(req, 500, "internal error: unreadable face record");
        return NULL;
    }
    return face_with_template(req, meta, tpl);
}

/* Decoding a record is a JSON parse (~10 us): a 1,000-face session spreads it over
 * idle workers (worker_pool_parallel_for). */
typedef struct {
    const store_value *values;
    face_record *recs;
    atomic_bool failed;
} unpack_batch;

static void unpack_one(void *arg, size_t i) {
    unpack_batch *b = arg;
    if (unpack(&b->values[i], &b->recs[i].meta, &b->recs[i].tpl) != 0) atomic_store(&b->failed, true);
}

bool face_store_records(http_request *req, const char *sid, face_record **out, size_t *count) {
    store_value *values = NULL;
    size_t n = 0;
    int rc = req->app->store->ops->item_list(req->app->store, req->key->tenant, sid, KIND_FACE, &values, &n);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return false;
    }
    face_record *recs = calloc(n ? n : 1, sizeof(*recs));
    unpack_batch batch = {values, recs, false};
    if (recs) worker_pool_parallel_for(req->app->workers, n, unpack_one, &batch);
    store_values_free(values, n);
    if (!recs || atomic_load(&batch.failed)) {
        face_records_free(recs, n); /* a record that failed has no meta */
        http_reply_error(req, 500, "internal error: unreadable face record");
        return false;
    }
    *out = recs;
    *count = n;
    return true;
}

void face_records_free(face_record *records, size_t count) {
    for (size_t i = 0; records && i < count; i++) json_decref(records[i].meta);
    free(records);
}

json_t *face_store_list(http_request *req, const char *sid) {
    face_record *recs;
    size_t n;
    if (!face_store_records(req, sid, &recs, &n)) return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, face_with_template(req, recs[i].meta, &recs[i].tpl));
        recs[i].meta = NULL; /* ownership moved into the list */
    }
    face_records_free(recs, n);
    return list;
}

/* Match records: the same fan-out as face_store_records, without parsing JSON. */
typedef struct {
    const store_value *values;
    face_match *matches;
    atomic_bool failed;
} match_batch;

static void match_one(void *arg, size_t i) {
    match_batch *b = arg;
    face_match *m = &b->matches[i];
    record_view r;
    if (view(&b->values[i], &r) || !(m->summary = summary_text(&r, m->id))) {
        atomic_store(&b->failed, true);
        return;
    }
    view_template(&r, &m->tpl);
}

bool face_store_matches(http_request *req, const char *sid, face_match **out, size_t *count) {
    store_value *values = NULL;
    size_t n = 0;
    int rc = req->app->store->ops->item_list(req->app->store, req->key->tenant, sid, KIND_FACE, &values, &n);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return false;
    }
    face_match *matches = calloc(n ? n : 1, sizeof(*matches));
    match_batch batch = {values, matches, false};
    if (matches) worker_pool_parallel_for(req->app->workers, n, match_one, &batch);
    store_values_free(values, n);
    if (!matches || atomic_load(&batch.failed)) {
        face_matches_free(matches, n);
        http_reply_error(req, 500, "internal error: unreadable face record");
        return false;
    }
    *out = matches;
    *count = n;
    return true;
}

void face_matches_free(face_match *matches, size_t count) {
    for (size_t i = 0; matches && i < count; i++) free(matches[i].summary);
    free(matches);
}
