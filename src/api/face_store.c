/* Session faces in the store; see face_store.h (the record bytes: face_blob.h). */
#include "api/face_store.h"

#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "api/app.h"
#include "api/common.h"
#include "api/face_blob.h"
#include "api/face_input.h"

/* tpl may be NULL when only the JSON is wanted. */
static int unpack(const store_value *v, json_t **meta, face_template *tpl) {
    face_blob r;
    if (face_blob_view(v->data, v->len, &r)) return -1;
    *meta = json_loadb(r.json, r.json_len, 0, NULL);
    if (!*meta) return -1;
    if (tpl) face_blob_template(&r, tpl);
    return 0;
}

int face_record_put(app *a, const char *tenant, const char *sid, const char *fid, json_t *face, const char *mode,
                    const float *embedding, int dim) {
    json_t *meta = json_copy(face);
    json_object_del(meta, "template");
    json_object_del(meta, "signature");
    char *text = json_dumps(meta, HTTP_JSON_FLAGS), *summary = face_blob_summary_of(meta);
    json_decref(meta);
    size_t len = 0;
    uint8_t *rec = text && summary ? face_blob_pack(text, mode, embedding, dim, fid, summary, &len) : NULL;
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

/* Every face record of a session, each decoded into one element of a calloc'd array
 * on idle workers (worker_pool_parallel_for): a 1,000-face session has 1,000 records
 * to decode. decode(batch, i) sets batch->failed when record i does not decode. */
typedef struct {
    const store_value *values;
    void *items;
    atomic_bool failed;
} record_batch;

static bool decode_records(http_request *req, const char *sid, size_t item_size, void (*decode)(void *, size_t),
                           void **out, size_t *count) {
    store_value *values = NULL;
    size_t n = 0;
    *out = NULL;
    *count = 0;
    int rc = req->app->store->ops->item_list(req->app->store, req->key->tenant, sid, KIND_FACE, &values, &n);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return false;
    }
    record_batch batch = {values, calloc(n ? n : 1, item_size), false};
    if (batch.items) worker_pool_parallel_for(req->app->workers, n, decode, &batch);
    store_values_free(values, n);
    *out = batch.items;
    *count = n;
    if (batch.items && !atomic_load(&batch.failed)) return true;
    http_reply_error(req, 500, "internal error: unreadable face record");
    return false; /* the caller frees *out: a record that failed is left zeroed or partial */
}

/* A record as clients see it: a JSON parse (~10 us). */
static void unpack_one(void *arg, size_t i) {
    record_batch *b = arg;
    face_record *r = (face_record *)b->items + i;
    if (unpack(&b->values[i], &r->meta, &r->tpl) != 0) atomic_store(&b->failed, true);
}

bool face_store_records(http_request *req, const char *sid, face_record **out, size_t *count) {
    void *items;
    bool ok = decode_records(req, sid, sizeof(face_record), unpack_one, &items, count);
    if (!ok) face_records_free(items, *count);
    *out = ok ? items : NULL;
    return ok;
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

/* A record for matching: no JSON parse. */
static void match_one(void *arg, size_t i) {
    record_batch *b = arg;
    face_match *m = (face_match *)b->items + i;
    face_blob r;
    if (face_blob_view(b->values[i].data, b->values[i].len, &r) || !(m->summary = face_blob_summary(&r, m->id)) ||
        !(m->embedding = face_blob_embedding(&r, m->mode))) {
        atomic_store(&b->failed, true);
        return;
    }
    m->dim = r.dim;
}

bool face_store_matches(http_request *req, const char *sid, face_match **out, size_t *count) {
    void *items;
    bool ok = decode_records(req, sid, sizeof(face_match), match_one, &items, count);
    if (!ok) face_matches_free(items, *count);
    *out = ok ? items : NULL;
    return ok;
}

void face_matches_free(face_match *matches, size_t count) {
    for (size_t i = 0; matches && i < count; i++) {
        free(matches[i].summary);
        free(matches[i].embedding);
    }
    free(matches);
}
