/* Binary face records: "FRC1" | u32 json_len | json | u16 dim | mode[16] |
 * f32 embedding[dim]; see face_store.h. */
#include "api/face_store.h"

#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "api/app.h"
#include "api/common.h"

#define MAGIC "FRC1"
#define MODE_LEN 16

static uint8_t *pack(const char *json, const char *mode, const float *emb, int dim, size_t *len) {
    size_t jl = strlen(json);
    *len = 4 + 4 + jl + 2 + MODE_LEN + (size_t)dim * 4;
    uint8_t *b = calloc(1, *len);
    if (!b) return NULL;
    memcpy(b, MAGIC, 4);
    uint32_t j32 = (uint32_t)jl;
    memcpy(b + 4, &j32, 4);
    memcpy(b + 8, json, jl);
    uint16_t d16 = (uint16_t)dim;
    memcpy(b + 8 + jl, &d16, 2);
    strncpy((char *)b + 10 + jl, mode, MODE_LEN - 1);
    memcpy(b + 10 + jl + MODE_LEN, emb, (size_t)dim * 4);
    return b;
}

/* tpl may be NULL when only the JSON is wanted. */
static int unpack(const store_value *v, json_t **meta, face_template *tpl) {
    uint32_t jl;
    uint16_t dim;
    if (v->len < 10 + MODE_LEN || memcmp(v->data, MAGIC, 4)) return -1;
    memcpy(&jl, v->data + 4, 4);
    if (jl > v->len - 10 - MODE_LEN) return -1;
    memcpy(&dim, v->data + 8 + jl, 2);
    if (dim == 0 || dim > FACE_EMBEDDING_MAX || v->len != 10 + jl + MODE_LEN + (size_t)dim * 4) return -1;
    *meta = json_loadb((const char *)v->data + 8, jl, 0, NULL);
    if (!*meta) return -1;
    if (tpl) {
        tpl->version = TEMPLATE_VERSION;
        memcpy(tpl->mode, v->data + 10 + jl, MODE_LEN);
        tpl->mode[MODE_LEN - 1] = '\0';
        tpl->dim = dim;
        memcpy(tpl->embedding, v->data + 10 + jl + MODE_LEN, (size_t)dim * 4);
    }
    return 0;
}

int face_record_put(app *a, const char *tenant, const char *sid, const char *fid, json_t *face, const char *mode,
                    const float *embedding, int dim) {
    json_t *meta = json_copy(face);
    json_object_del(meta, "template");
    json_object_del(meta, "signature");
    char *text = json_dumps(meta, HTTP_JSON_FLAGS);
    json_decref(meta);
    size_t len = 0;
    uint8_t *rec = text ? pack(text, mode, embedding, dim, &len) : NULL;
    free(text);
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
