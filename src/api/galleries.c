/* Galleries (our extension; docs/openapi.yaml, README "Galleries"): lasting,
 * per-tenant sets of enrolled faces searched 1:N. A face is enrolled from an
 * image, from a face JSON with its template, or from a bio-session's face, under
 * the caller's externalId; a search probe comes the same three ways. Storage and
 * the search index are src/gallery/; this file validates, renders and signs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/analyze.h"
#include "api/common.h"
#include "api/face_input.h"
#include "api/face_store.h"
#include "api/handlers.h"
#include "gallery/gallery.h"
#include "match/far.h"

#define MAX_RESULTS_LIMIT 100
#define MAX_RESULTS_DEFAULT 10
#define LIST_LIMIT_MAX 1000
#define LIST_LIMIT_DEFAULT 100
#define METADATA_MAX_BYTES 4096

static gallery_service *service(http_request *req) {
    gallery_service *svc = req->app->galleries;
    if (!svc) http_reply_error(req, 503, "galleries are unavailable: %s", req->app->galleries_error);
    else if (!gallery_service_ready(svc))
        http_reply_error(req, 503, "galleries are unavailable: the gallery store cannot be read yet; try again shortly");
    return svc && gallery_service_ready(svc) ? svc : NULL;
}

static gallery_store *store_of(http_request *req) { return gallery_service_store(req->app->galleries); }

/* Maps a gallery error to its answer; what names the missing thing. */
static void reply_error(http_request *req, int rc, const char *what) {
    const server_config *c = &req->app->config;
    switch (rc) {
    case STORE_NOT_FOUND: http_reply_error(req, 404, "%s not found", what); break;
    case STORE_UNAVAILABLE: http_reply_error(req, 503, "the gallery store is unavailable; try again shortly"); break;
    case STORE_EXISTS: http_reply_error(req, 409, "%s already exists", what); break;
    case GALLERY_DIM_MISMATCH: http_reply_error(req, 400, "the template's size differs from this gallery's faces"); break;
    case STORE_FULL:
        if (!strcmp(what, "gallery")) http_reply_error(req, 409, "the gallery holds the maximum of %ld faces (gallery_max_faces)", c->gallery_max_faces);
        else http_reply_error(req, 409, "the tenant has the maximum of %ld galleries (gallery_max_per_tenant)", c->gallery_max_per_tenant);
        break;
    default: http_reply_error(req, 500, "internal error in the gallery store");
    }
}

/* Ids are our UUIDs: anything else cannot exist (and never reaches a store key). */
static bool ids_valid(http_request *req) {
    for (int i = 0; i < req->param_count; i++) {
        if (!uuid_is_valid(req->params[i])) {
            http_reply_error(req, 404, i ? "gallery face not found" : "gallery not found");
            return false;
        }
    }
    return true;
}

static void reply_created(http_request *req, const char *location, json_t *body) {
    http_add_header(req, "Location", location);
    api_reply_signed(req, 201, body, false, false);
}

/* ---- galleries ------------------------------------------------------------------ */

static json_t *gallery_json(const char *text, long faces) {
    json_t *g = json_loads(text, 0, NULL);
    if (g) json_object_set_new(g, "faceCount", json_integer(faces));
    return g;
}

static const field_spec gallery_fields[] = {
    {"name", FIELD_STRING, 256}, {"description", FIELD_STRING, 1024}, {NULL, 0, 0},
};

void handle_create_gallery(http_request *req) {
    if (!service(req)) return;
    json_t *in = api_parse_json_object(req, true);
    if (!in || !api_check_fields(req, in, gallery_fields, "the gallery")) {
        json_decref(in);
        return;
    }
    const char *name = api_json_string(in, "name"), *desc = api_json_string(in, "description");
    if (!name || !*name) {
        http_reply_error(req, 400, "field 'name' is required in the gallery (1 to 256 characters)");
        json_decref(in);
        return;
    }
    char id[UUID_STR_LEN];
    uuid_generate(id);
    json_t *g = json_pack("{s:s,s:s}", "id", id, "name", name);
    if (desc) json_object_set_new(g, "description", json_string(desc));
    api_set_times(g, time_now_ms(), 0);
    json_decref(in);
    char *text = json_dumps(g, HTTP_JSON_FLAGS);
    int rc = text ? store_of(req)->ops->gallery_create(store_of(req), req->key->tenant, id, text,
                                                       req->app->config.gallery_max_per_tenant)
                  : STORE_NOMEM;
    free(text);
    if (rc) {
        json_decref(g);
        reply_error(req, rc, "tenant");
        return;
    }
    json_object_set_new(g, "faceCount", json_integer(0));
    char location[64];
    snprintf(location, sizeof location, "/v2/galleries/%s", id);
    reply_created(req, location, g);
}

void handle_get_gallery(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    char *text = NULL;
    long faces = 0;
    int rc = store_of(req)->ops->gallery_get(store_of(req), req->key->tenant, req->params[0], &text, &faces);
    json_t *g = rc ? NULL : gallery_json(text, faces);
    free(text);
    if (rc) reply_error(req, rc, "gallery");
    else if (!g) http_reply_error(req, 500, "internal error: unreadable gallery record");
    else api_reply_signed(req, 200, g, false, false);
}

typedef struct {
    http_request *req;
    json_t *list;
    bool failed;
} listing;

/* Appends the record, signed; stops the iteration on failure. */
static bool append_signed(listing *l, json_t *item) {
    if (!item || !api_sign_object(l->req, item, false)) {
        json_decref(item);
        l->failed = true;
        return false;
    }
    json_array_append_new(l->list, item);
    return true;
}

/* Replies with the listing (or the error that ended it). */
static void reply_listing(http_request *req, listing *l, int rc, const char *what) {
    if (rc || l->failed) {
        json_decref(l->list);
        if (rc) reply_error(req, rc, what);
        else http_reply_error(req, 500, "internal error while listing");
        return;
    }
    http_reply_json(req, 200, l->list);
}

static bool append_gallery(void *ctx, const char *id, const char *json, long faces) {
    (void)id;
    return append_signed(ctx, gallery_json(json, faces));
}

void handle_get_galleries(http_request *req) {
    if (!service(req)) return;
    listing l = {req, json_array(), false};
    int rc = store_of(req)->ops->gallery_list(store_of(req), req->key->tenant, append_gallery, &l);
    reply_listing(req, &l, rc, "tenant");
}

void handle_delete_gallery(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    int rc = gallery_drop(req->app->galleries, req->key->tenant, req->params[0]);
    if (rc) reply_error(req, rc, "gallery");
    else http_reply_empty(req, 204);
}

/* ---- probes: the face of an enrolment or a search -------------------------------- */

/* A face to enrol or search with: what we keep of its description, and its embedding. */
typedef struct {
    json_t *meta; /* owned */
    face_template *tpl; /* in the request arena */
} probe;

/* The face fields a gallery face keeps from its source (image analysis, client
 * face JSON or session face). */
static json_t *face_meta(json_t *src) {
    static const char *const kept[] = {"friendlyName", "digest", "mode", "imageType", "quality", "landmarks",
                                       "imageRotationEnabled", NULL};
    json_t *m = json_object();
    for (int i = 0; kept[i]; i++) {
        json_t *v = json_object_get(src, kept[i]);
        if (v && !json_is_null(v)) json_object_set(m, kept[i], v);
    }
    return m;
}

static bool probe_from_image(http_request *req, const uint8_t *img, size_t len, const char *type, const char *friendly,
                             bool rotation, probe *p) {
    face_result *r = api_analyze_image(req, img, len, rotation, false, NULL);
    if (!r) return false;
    if (r->faces_found == 0) {
        http_reply_error(req, 400, "no face detected in the image (quality %d): send another image", (int)r->quality);
        return false;
    }
    p->tpl = arena_alloc(req->arena, sizeof(*p->tpl));
    if (!p->tpl) {
        http_reply_error(req, 500, "internal error: out of memory");
        return false;
    }
    const char *mode = req->app->config.default_mode;
    *p->tpl = (face_template){.version = TEMPLATE_VERSION, .dim = r->embedding_dim};
    snprintf(p->tpl->mode, sizeof p->tpl->mode, "%.15s", mode);
    memcpy(p->tpl->embedding, r->embedding, (size_t)r->embedding_dim * sizeof(float));
    face_input in = {.image_type = type, .friendly_name = friendly, .rotation = rotation, .image = img, .image_len = len};
    json_t *face = api_face_json(&in, r, "-", mode, NULL, 0, 0);
    p->meta = face_meta(face);
    json_decref(face);
    return true;
}

static bool probe_from_face_json(http_request *req, json_t *face, probe *p) {
    p->tpl = arena_alloc(req->arena, sizeof(*p->tpl));
    if (!p->tpl) http_reply_error(req, 500, "internal error: out of memory");
    else if (!json_is_object(face)) http_reply_error(req, 400, "'face' must be a JSON object (a face with its template)");
    else if (api_check_face_json(req, face, p->tpl)) {
        p->meta = face_meta(face);
        if (!json_object_get(p->meta, "mode")) json_object_set_new(p->meta, "mode", json_string(p->tpl->mode));
        return true;
    }
    return false;
}

static bool probe_from_session(http_request *req, const char *sid, const char *fid, probe *p) {
    if (!fid) {
        http_reply_error(req, 400, "field 'faceId' is required with 'bioSessionId'");
        return false;
    }
    face_record *recs = NULL;
    size_t n = 0;
    if (!face_store_records(req, sid, &recs, &n)) return false;
    for (size_t i = 0; i < n && !p->meta; i++) {
        if (strcmp(api_json_string(recs[i].meta, "id"), fid)) continue;
        p->tpl = arena_alloc(req->arena, sizeof(*p->tpl));
        if (p->tpl) *p->tpl = recs[i].tpl, p->meta = face_meta(recs[i].meta);
    }
    face_records_free(recs, n);
    if (!p->meta) http_reply_error(req, 404, "bio-session or face not found");
    return p->meta != NULL;
}

/* A JSON body names its face one of three ways: {"face": {...template...}},
 * {"bioSessionId", "faceId"}, or the face JSON itself at the top level. `extra`
 * lists the fields of the operation itself (externalId, maxResults...). */
static bool probe_from_json(http_request *req, json_t *body, const field_spec *extra, probe *p) {
    json_t *face = json_object_get(body, "face");
    const char *sid = api_json_string(body, "bioSessionId");
    if (face || sid) {
        field_spec fields[16];
        int n = 0;
        for (; extra[n].name && n < 12; n++) fields[n] = extra[n];
        fields[n++] = (field_spec){"face", FIELD_OBJECT, 0};
        fields[n++] = (field_spec){"bioSessionId", FIELD_STRING, 64};
        fields[n++] = (field_spec){"faceId", FIELD_STRING, 64};
        fields[n] = (field_spec){NULL, 0, 0};
        if (!api_check_fields(req, body, fields, "the request body")) return false;
        return face ? probe_from_face_json(req, face, p) : probe_from_session(req, sid, api_json_string(body, "faceId"), p);
    }
    json_t *copy = json_deep_copy(body);
    for (int i = 0; extra[i].name; i++) json_object_del(copy, extra[i].name);
    bool ok = probe_from_face_json(req, copy, p);
    json_decref(copy);
    return ok;
}

/* ---- enrolment ------------------------------------------------------------------ */

static const field_spec enrol_fields[] = {
    {"externalId", FIELD_STRING, 256}, {"metadata", FIELD_OBJECT, 0}, {NULL, 0, 0},
};

/* externalId (required) and metadata (optional, bounded) of an enrolment. */
static bool enrolment_fields_ok(http_request *req, json_t *obj) {
    const char *ext = api_json_string(obj, "externalId");
    json_t *md = json_object_get(obj, "metadata");
    if (!ext || !*ext) {
        http_reply_error(req, 400, "field 'externalId' is required (1 to 256 characters)");
        return false;
    }
    if (md && !json_is_null(md) && !json_is_object(md)) {
        http_reply_error(req, 400, "field 'metadata' must be an object");
        return false;
    }
    char *text = md ? json_dumps(md, JSON_COMPACT) : NULL;
    size_t len = text ? strlen(text) : 0;
    free(text);
    if (len > METADATA_MAX_BYTES) {
        http_reply_error(req, 400, "field 'metadata' is larger than %d bytes as JSON", METADATA_MAX_BYTES);
        return false;
    }
    return true;
}

/* Stores the probe as a face of the gallery and answers 201 with it. */
static void enrol(http_request *req, json_t *fields, probe *p) {
    char fid[UUID_STR_LEN];
    uuid_generate(fid);
    json_t *face = json_pack("{s:s,s:s}", "id", fid, "externalId", api_json_string(fields, "externalId"));
    json_t *md = json_object_get(fields, "metadata");
    if (json_is_object(md)) json_object_set(face, "metadata", md);
    json_object_update(face, p->meta);
    json_object_set_new(face, "templateVersion", json_integer(p->tpl->version));
    api_set_times(face, time_now_ms(), 0);
    char *text = json_dumps(face, HTTP_JSON_FLAGS);
    gallery_face f = {req->key->tenant, req->params[0], fid, api_json_string(face, "externalId"), text,
                      p->tpl->embedding, p->tpl->dim};
    int rc = text ? gallery_enrol(req->app->galleries, &f, req->app->config.gallery_max_faces) : STORE_NOMEM;
    free(text);
    if (rc) {
        json_decref(face);
        reply_error(req, rc, "gallery");
        return;
    }
    char location[128];
    snprintf(location, sizeof location, "/v2/galleries/%s/faces/%s", req->params[0], fid);
    reply_created(req, location, face_with_template(req, face, p->tpl));
}

static const field_spec enrol_face_part_fields[] = {
    {"externalId", FIELD_STRING, 256}, {"metadata", FIELD_OBJECT, 0},   {"imageType", FIELD_STRING, 32},
    {"friendlyName", FIELD_STRING, 256}, {"imageRotationEnabled", FIELD_BOOL, 0}, {NULL, 0, 0},
};

/* The multipart `face` part: an object of known fields with a valid imageType. */
static bool enrol_part_ok(http_request *req, json_t *fields) {
    if (!json_is_object(fields)) {
        http_reply_error(req, 400, "the 'face' part must be a JSON object");
        return false;
    }
    if (!api_check_fields(req, fields, enrol_face_part_fields, "the 'face' part") || !enrolment_fields_ok(req, fields))
        return false;
    const char *type = api_json_string(fields, "imageType");
    if (type && !api_image_type_valid(type)) {
        http_reply_error(req, 400, "imageType '%s' is not one of SELFIE, ID_DOCUMENT, VIDEO_FRAME", type);
        return false;
    }
    return true;
}

/* Multipart: `face` JSON (externalId, metadata, imageType...) and `image`. */
static void enrol_from_image(http_request *req) {
    multipart_body body;
    if (!api_parse_multipart(req, &body)) return;
    const multipart_part *fp = multipart_find(&body, "face"), *img = multipart_find(&body, "image");
    if (!fp || !img || !img->len) {
        http_reply_error(req, 400, "parts 'face' (JSON with externalId) and 'image' are required");
        return;
    }
    json_t *fields = api_parse_json_text(req, (const char *)fp->data, fp->len, "the 'face' part");
    if (!fields) return;
    probe p = {0};
    if (enrol_part_ok(req, fields)) {
        const char *type = api_json_string(fields, "imageType");
        if (probe_from_image(req, img->data, img->len, type ? type : "SELFIE", api_json_string(fields, "friendlyName"),
                             json_is_true(json_object_get(fields, "imageRotationEnabled")), &p))
            enrol(req, fields, &p);
    }
    json_decref(p.meta);
    json_decref(fields);
}

static void enrol_from_json(http_request *req) {
    json_t *body = api_parse_json_object(req, true);
    if (!body) return;
    probe p = {0};
    if (enrolment_fields_ok(req, body) && probe_from_json(req, body, enrol_fields, &p)) enrol(req, body, &p);
    json_decref(p.meta);
    json_decref(body);
}

/* Before the expensive part (image analysis): the gallery must exist. Then the
 * body is JSON (template or session face) or multipart (image). */
static void dispatch_on_body(http_request *req, void (*from_json)(http_request *), void (*from_image)(http_request *)) {
    int rc = store_of(req)->ops->gallery_get(store_of(req), req->key->tenant, req->params[0], NULL, NULL);
    if (rc) {
        reply_error(req, rc, "gallery");
        return;
    }
    const char *type = http_media_type(req);
    if (type && !strcmp(type, "application/json")) from_json(req);
    else from_image(req);
}

void handle_enrol_gallery_face(http_request *req) {
    if (service(req) && ids_valid(req)) dispatch_on_body(req, enrol_from_json, enrol_from_image);
}

/* ---- reading and deleting faces --------------------------------------------------- */

void handle_get_gallery_face(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    char *text = NULL;
    face_template *tpl = arena_alloc(req->arena, sizeof(*tpl));
    if (!tpl) {
        http_reply_error(req, 500, "internal error: out of memory");
        return;
    }
    int rc = store_of(req)->ops->face_get(store_of(req), req->key->tenant, req->params[0], req->params[1], &text,
                                          tpl->embedding, &tpl->dim);
    json_t *face = rc ? NULL : json_loads(text, 0, NULL);
    free(text);
    if (rc) {
        reply_error(req, rc, "gallery or face");
        return;
    }
    if (!face) {
        http_reply_error(req, 500, "internal error: unreadable gallery face record");
        return;
    }
    tpl->version = TEMPLATE_VERSION;
    const char *mode = api_json_string(face, "mode");
    snprintf(tpl->mode, sizeof tpl->mode, "%.15s", mode ? mode : "");
    api_reply_signed(req, 200, face_with_template(req, face, tpl), false, false);
}

/* A query parameter that must be an integer in [min, max]; def when absent. */
static bool query_long(http_request *req, const char *name, long min, long max, long def, long *out) {
    const char *v = http_query(req, name);
    *out = def;
    if (!v) return true;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < min || x > max) {
        http_reply_error(req, 400, "query parameter '%s' must be an integer from %ld to %ld", name, min, max);
        return false;
    }
    *out = x;
    return true;
}

static bool append_face(void *ctx, const gallery_face *f) {
    return append_signed(ctx, json_loads(f->json, 0, NULL));
}

void handle_get_gallery_faces(http_request *req) {
    long offset, limit, total = 0;
    if (!service(req) || !ids_valid(req) || !query_long(req, "offset", 0, 1L << 40, 0, &offset) ||
        !query_long(req, "limit", 1, LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT, &limit))
        return;
    listing l = {req, json_array(), false};
    int rc = store_of(req)->ops->face_list(store_of(req), req->key->tenant, req->params[0], offset, limit,
                                           append_face, &l, &total);
    char text[32];
    snprintf(text, sizeof text, "%ld", total);
    if (!rc && !l.failed) http_add_header(req, "X-Total-Count", text);
    reply_listing(req, &l, rc, "gallery");
}

void handle_delete_gallery_face(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    int rc = gallery_remove_face(req->app->galleries, req->key->tenant, req->params[0], req->params[1]);
    if (rc) reply_error(req, rc, "gallery or face");
    else http_reply_empty(req, 204);
}

/* DELETE .../faces?externalId=X: every face enrolled under that externalId. */
void handle_delete_gallery_faces(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    const char *ext = http_query(req, "externalId");
    if (!ext || !*ext || strlen(ext) > 1024) {
        http_reply_error(req, 400, "query parameter 'externalId' is required: the faces of which person to delete");
        return;
    }
    long removed = 0;
    int rc = gallery_remove_external(req->app->galleries, req->key->tenant, req->params[0], ext, &removed);
    if (rc) reply_error(req, rc, "gallery");
    else http_reply_json(req, 200, json_pack("{s:s,s:I}", "externalId", ext, "deleted", (json_int_t)removed));
}

/* ---- search ------------------------------------------------------------------------ */

static const field_spec search_fields[] = {{"maxResults", FIELD_INT, 0}, {"minScore", FIELD_NUMBER, 0}, {NULL, 0, 0}};

typedef struct {
    long max_results;
    double min_score;
} search_options;

static bool search_options_ok(http_request *req, json_t *obj, search_options *o) {
    *o = (search_options){MAX_RESULTS_DEFAULT, 0};
    json_t *m = json_object_get(obj, "maxResults"), *s = json_object_get(obj, "minScore");
    if (json_is_number(m)) {
        double v = json_number_value(m);
        if (v < 1 || v > MAX_RESULTS_LIMIT) {
            http_reply_error(req, 400, "maxResults must be between 1 and %d", MAX_RESULTS_LIMIT);
            return false;
        }
        o->max_results = (long)v;
    }
    if (json_is_number(s)) {
        o->min_score = json_number_value(s);
        if (o->min_score < 0 || o->min_score > 100000) {
            http_reply_error(req, 400, "minScore must be between 0 and 100000");
            return false;
        }
    }
    return true;
}

typedef struct {
    gallery_service *svc;
    const char *tenant, *gallery;
    const face_template *tpl;
    size_t max;
    gallery_hit *hits;
    size_t count;
    long size;
    int rc;
} search_job;

static void search_run(void *worker_ctx, void *arg) {
    (void)worker_ctx;
    search_job *j = arg;
    j->rc = gallery_search(j->svc, j->tenant, j->gallery, j->tpl->embedding, j->tpl->dim, j->max, -2.0f, j->hits,
                           &j->count, &j->size);
}

/* One result: the face's summary, the 1:1 score and FAR, and the chance that a
 * gallery of this size holds at least one impostor this good: 1-(1-FAR)^size. */
static json_t *result_json(app *a, const gallery_hit *h, long size) {
    json_t *rec = json_loads(h->json, 0, NULL), *face = json_object();
    static const char *const shown[] = {"id", "externalId", "metadata", "friendlyName", "imageType", "mode", "created", NULL};
    for (int i = 0; rec && shown[i]; i++) {
        json_t *v = json_object_get(rec, shown[i]);
        if (v) json_object_set(face, shown[i], v);
    }
    double far = far_from_similarity(app_far(a, json_string_value(json_object_get(rec, "mode"))), h->similarity);
    json_decref(rec);
    double in_gallery = -expm1((double)size * log1p(-fmin(far, 1.0 - 1e-16)));
    return json_pack("{s:o,s:f,s:f,s:f,s:I}", "face", face, "score", far_to_score(far), "falseAcceptanceRate",
                     100.0 * far, "galleryFalseAcceptanceRate", 100.0 * in_gallery, "gallerySize", (json_int_t)size);
}

static void search(http_request *req, const probe *p, const search_options *o) {
    search_job j = {req->app->galleries, req->key->tenant, req->params[0], p->tpl, (size_t)o->max_results,
                    arena_alloc(req->arena, (size_t)o->max_results * sizeof(gallery_hit)), 0, 0, 0};
    if (!j.hits) {
        http_reply_error(req, 500, "internal error: out of memory");
        return;
    }
    /* A big gallery is heavy work: it takes a worker and obeys back-pressure. */
    if (!api_run_on_worker(req, search_run, &j)) return;
    if (j.rc) {
        reply_error(req, j.rc, "gallery");
        return;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < j.count; i++) {
        json_t *r = result_json(req->app, &j.hits[i], j.size);
        if (json_real_value(json_object_get(r, "score")) < o->min_score || !api_sign_object(req, r, false)) json_decref(r);
        else json_array_append_new(out, r);
    }
    gallery_hits_free(j.hits, j.count);
    http_reply_json(req, 200, out);
}

/* Multipart: `image` and an optional `search` JSON part (maxResults, minScore). */
static void search_by_image(http_request *req) {
    multipart_body body;
    if (!api_parse_multipart(req, &body)) return;
    const multipart_part *img = multipart_find(&body, "image"), *sp = multipart_find(&body, "search");
    if (!img || !img->len) {
        http_reply_error(req, 400, "the 'image' part is missing or empty");
        return;
    }
    json_t *opts = sp ? api_parse_json_text(req, (const char *)sp->data, sp->len, "the 'search' part") : json_object();
    if (!opts) return;
    search_options o;
    bool rotation = false;
    probe p = {0};
    if (!json_is_object(opts)) http_reply_error(req, 400, "the 'search' part must be a JSON object");
    else if (api_check_fields(req, opts, search_fields, "the 'search' part") && search_options_ok(req, opts, &o) &&
             api_part_bool(req, &body, "imageRotationEnabled", &rotation) &&
             probe_from_image(req, img->data, img->len, "SELFIE", NULL, rotation, &p))
        search(req, &p, &o);
    json_decref(p.meta);
    json_decref(opts);
}

static void search_by_json(http_request *req) {
    json_t *body = api_parse_json_object(req, true);
    if (!body) return;
    search_options o;
    probe p = {0};
    if (search_options_ok(req, body, &o) && probe_from_json(req, body, search_fields, &p)) search(req, &p, &o);
    json_decref(p.meta);
    json_decref(body);
}

void handle_search_gallery(http_request *req) {
    if (!service(req) || !ids_valid(req)) return;
    /* Scores need the measured calibration; without it answer 503, never a guess. */
    if (!req->app->far_loaded) {
        http_reply_error(req, 503, "matching is unavailable: no FAR calibration loaded (%s)", req->app->far_error);
        return;
    }
    dispatch_on_body(req, search_by_json, search_by_image);
}
