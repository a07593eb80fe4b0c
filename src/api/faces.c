/* Faces: created from an image (in a session or direct) or from a template JSON,
 * read, listed, deleted, and their stored image (records: see face_store.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/analyze.h"
#include "api/common.h"
#include "api/face_input.h"
#include "api/face_store.h"
#include "api/handlers.h"
#include "api/modes.h"
#include "face/image.h"


/* Analyses the image and renders the face JSON with a fresh template. */
static json_t *face_from_image(http_request *req, const face_input *in, const char *id, int64_t expires_ms,
                               face_result **result) {
    face_result *r = api_analyze_image(req, in->image, in->image_len, in->rotation, false, in->mode);
    if (!r) return NULL;
    if (r->faces_found == 0) {
        http_reply_error(req, 400, "no face detected in the image (quality %d): send another image", (int)r->quality);
        return NULL;
    }
    char *tpl = template_encode(&req->app->templates, req->key->tenant, in->mode, r->embedding, r->embedding_dim);
    if (!tpl) {
        http_reply_error(req, 500, "internal error: out of memory");
        return NULL;
    }
    json_t *face = api_face_json(in, r, id, in->mode, tpl, time_now_ms(), expires_ms);
    free(tpl);
    if (result) *result = r;
    return face;
}

static void reply_created(http_request *req, const char *sid, const char *fid, json_t *face) {
    char location[128];
    snprintf(location, sizeof location, "/v2/bio-sessions/%s/faces/%s", sid, fid);
    http_add_header(req, "Location", location);
    api_reply_signed(req, 201, face, false, false);
}

static void create_face_from_image(http_request *req, json_t *session, int64_t expires_ms) {
    face_input in;
    if (!api_parse_face_input(req, &in)) return;
    char fid[UUID_STR_LEN];
    uuid_generate(fid);
    face_result *r = NULL;
    json_t *face = face_from_image(req, &in, fid, expires_ms, &r);
    if (!face) return;
    const char *sid = req->params[0];
    store *st = req->app->store;
    bool keep_image = json_is_true(json_object_get(session, "imageStorageEnabled"));
    if (keep_image) {
        store_value img = {(uint8_t *)in.image, in.image_len};
        int rc = st->ops->item_put(st, req->key->tenant, sid, KIND_IMAGE, fid, &img);
        if (rc) {
            json_decref(face);
            api_reply_store_error(req, rc, "bio-session");
            return;
        }
    }
    if (!face_store_put(req, sid, fid, face, in.mode, r->embedding, r->embedding_dim)) {
        /* The face was refused (full session, store down): so is its image, which
         * would otherwise hold a slot, unreachable, until the session ends. */
        if (keep_image) st->ops->item_delete(st, req->key->tenant, sid, KIND_IMAGE, fid);
        json_decref(face);
        return;
    }
    reply_created(req, sid, fid, face);
}

static const field_spec face_json_fields[] = {
    {"id", FIELD_STRING, 64},          {"friendlyName", FIELD_STRING, 256}, {"digest", FIELD_STRING, 64},
    {"mode", FIELD_STRING, 32},        {"imageType", FIELD_STRING, 32},     {"quality", FIELD_NUMBER, 0},
    {"landmarks", FIELD_OBJECT, 0},    {"template", FIELD_STRING, TEMPLATE_MAX_TEXT},   {"templateVersion", FIELD_INT, 0},
    {"imageRotationEnabled", FIELD_BOOL, 0}, {"created", FIELD_STRING, 64}, {"expires", FIELD_STRING, 64},
    {"signature", FIELD_STRING, 8192}, {NULL, 0, 0},
};

static const field_spec eyes_fields[] = {
    {"x1", FIELD_NUMBER, 0}, {"y1", FIELD_NUMBER, 0}, {"x2", FIELD_NUMBER, 0}, {"y2", FIELD_NUMBER, 0}, {NULL, 0, 0},
};
static const field_spec box_fields[] = {
    {"x", FIELD_NUMBER, 0}, {"y", FIELD_NUMBER, 0}, {"width", FIELD_NUMBER, 0}, {"height", FIELD_NUMBER, 0}, {NULL, 0, 0},
};
static const field_spec landmark_fields[] = {{"eyes", FIELD_OBJECT, 0}, {"box", FIELD_OBJECT, 0}, {NULL, 0, 0}};

/* Every member of obj present and a number within +-limit. */
static bool all_numbers(http_request *req, json_t *obj, const field_spec *fields, const char *what) {
    if (!obj) return true;
    if (!api_check_fields(req, obj, fields, what)) return false;
    for (const field_spec *f = fields; f->name; f++) {
        json_t *v = json_object_get(obj, f->name);
        if (!json_is_number(v) || fabs(json_number_value(v)) > 1e6) {
            http_reply_error(req, 400, "'%s' in %s must be a number between -1e6 and 1e6", f->name, what);
            return false;
        }
    }
    return true;
}

/* The server signs what it stores, so client-sent metadata must be well formed. */
static bool check_face_metadata(http_request *req, json_t *face) {
    json_t *lm = json_object_get(face, "landmarks");
    if (lm && !json_is_null(lm) &&
        (!api_check_fields(req, lm, landmark_fields, "landmarks") ||
         !all_numbers(req, json_object_get(lm, "eyes"), eyes_fields, "landmarks.eyes") ||
         !all_numbers(req, json_object_get(lm, "box"), box_fields, "landmarks.box")))
        return false;
    const char *digest = api_json_string(face, "digest");
    if (digest && (strlen(digest) != 64 || strspn(digest, "0123456789abcdef") != 64)) {
        http_reply_error(req, 400, "digest must be 64 lower-case hex characters (SHA-256)");
        return false;
    }
    json_t *q = json_object_get(face, "quality");
    if (json_is_number(q) && fabs(json_number_value(q)) > 10000) {
        http_reply_error(req, 400, "quality must be between -10000 and 10000");
        return false;
    }
    return true;
}

/* Validates a client-held face JSON (template MAC, version, mode); fills tpl. */
bool api_check_face_json(http_request *req, json_t *face, face_template *tpl) {
    if (!api_check_fields(req, face, face_json_fields, "the face") || !check_face_metadata(req, face)) return false;
    const char *b64 = api_json_string(face, "template");
    if (!b64) {
        http_reply_error(req, 400, "the face has no 'template'");
        return false;
    }
    char err[200];
    if (template_decode(&req->app->templates, req->key->tenant, b64, tpl, err, sizeof err)) {
        http_reply_error(req, 400, "%s", err);
        return false;
    }
    json_t *ver = json_object_get(face, "templateVersion");
    if (json_is_number(ver) && (int)json_number_value(ver) != tpl->version) {
        http_reply_error(req, 400, "templateVersion %d does not match the template (version %d)",
                         (int)json_number_value(ver), tpl->version);
        return false;
    }
    const char *type = api_json_string(face, "imageType");
    if (type && !api_image_type_valid(type)) {
        http_reply_error(req, 400, "imageType '%s' is not one of SELFIE, ID_DOCUMENT, VIDEO_FRAME", type);
        return false;
    }
    const char *mode = api_json_string(face, "mode");
    if (mode && strcmp(mode, tpl->mode)) {
        http_reply_error(req, 400, "mode '%s' does not match the template's mode '%s'", mode, tpl->mode);
        return false;
    }
    const biometric_mode *m = biometric_mode_find(tpl->mode);
    if (m && tpl->dim != m->dim) {
        const char *made = biometric_algorithm_of(tpl->mode, tpl->dim);
        http_reply_error(req, 400, "the template (mode %s) was made by another algorithm (%s, %d values) than the one "
                         "this server runs for that mode (%s, %d values): faces compare only within one algorithm; "
                         "create the face again from its image", tpl->mode, made ? made : "unknown", tpl->dim,
                         m->algorithm, m->dim);
        return false;
    }
    return true;
}

static void create_face_from_json(http_request *req, int64_t expires_ms) {
    json_t *in = api_parse_json_object(req, true);
    if (!in) return;
    face_template *tpl = arena_alloc(req->arena, sizeof(*tpl));
    if (!tpl || !api_check_face_json(req, in, tpl)) {
        if (!tpl) http_reply_error(req, 500, "internal error: out of memory");
        json_decref(in);
        return;
    }
    char fid[UUID_STR_LEN];
    uuid_generate(fid);
    /* The server signs this face, so it carries only what the server computed or
     * verified: the template (re-issued under the current key, version 2 even for
     * an accepted version 1) and its mode, plus the client's own labels. digest,
     * quality and landmarks describe an image the server never saw: dropped. */
    char *b64 = template_encode(&req->app->templates, req->key->tenant, tpl->mode, tpl->embedding, tpl->dim);
    if (!b64) {
        json_decref(in);
        http_reply_error(req, 500, "internal error: out of memory");
        return;
    }
    const char *type = api_json_string(in, "imageType");
    json_t *face = json_pack("{s:s}", "id", fid), *name = json_object_get(in, "friendlyName");
    json_t *rotation = json_object_get(in, "imageRotationEnabled");
    if (json_is_string(name)) json_object_set(face, "friendlyName", name);
    json_object_set_new(face, "mode", json_string(tpl->mode));
    json_object_set_new(face, "imageType", json_string(type ? type : "SELFIE"));
    json_object_set_new(face, "template", json_string(b64));
    json_object_set_new(face, "templateVersion", json_integer(TEMPLATE_VERSION));
    if (json_is_boolean(rotation)) json_object_set(face, "imageRotationEnabled", rotation);
    free(b64);
    api_set_times(face, time_now_ms(), expires_ms);
    json_decref(in);
    if (!face_store_put(req, req->params[0], fid, face, tpl->mode, tpl->embedding, tpl->dim)) {
        json_decref(face);
        return;
    }
    reply_created(req, req->params[0], fid, face);
}

void handle_create_face(http_request *req) {
    int64_t expires_ms = 0;
    json_t *session = api_load_session(req, req->params[0], &expires_ms);
    if (!session) return;
    const char *type = http_media_type(req);
    if (type && !strcmp(type, "application/json")) create_face_from_json(req, expires_ms);
    else create_face_from_image(req, session, expires_ms);
    json_decref(session);
}

void handle_get_face(http_request *req) {
    json_t *face = face_store_get(req, req->params[0], req->params[1]);
    if (face) api_reply_signed(req, 200, face, false, false);
}

void handle_get_faces(http_request *req) {
    json_t *list = face_store_list(req, req->params[0]);
    if (!list) return;
    size_t i;
    json_t *face;
    json_array_foreach(list, i, face) {
        if (!api_sign_object(req, face, false)) {
            json_decref(list);
            http_reply_error(req, 500, "internal error while signing the response");
            return;
        }
    }
    http_reply_json(req, 200, list);
}

void handle_delete_face(http_request *req) {
    store *s = req->app->store;
    int rc = s->ops->item_delete(s, req->key->tenant, req->params[0], KIND_FACE, req->params[1]);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session or face");
        return;
    }
    s->ops->item_delete(s, req->key->tenant, req->params[0], KIND_IMAGE, req->params[1]);
    http_reply_empty(req, 204);
}

void handle_delete_faces(http_request *req) {
    store *s = req->app->store;
    int rc = s->ops->item_delete_all(s, req->key->tenant, req->params[0], KIND_FACE);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return;
    }
    s->ops->item_delete_all(s, req->key->tenant, req->params[0], KIND_IMAGE);
    http_reply_empty(req, 204);
}

static const char *image_mime(const store_value *img) {
    switch (image_sniff(img->data, img->len)) {
    case IMAGE_FORMAT_JPEG: return "image/jpeg";
    case IMAGE_FORMAT_PNG: return "image/png";
    case IMAGE_FORMAT_WEBP: return "image/webp";
    default: return "application/octet-stream";
    }
}

/* ?compression=true: a JPEG of at most COMPRESS_MAX_SIDE pixels a side (halved by
 * DCT scaling until it fits) at COMPRESS_QUALITY, or the stored bytes when those
 * are smaller: compression never returns more than the original. The values are
 * measured in docs/compression.md (size and match score against the original). */
#define COMPRESS_MAX_SIDE 1280
#define COMPRESS_QUALITY 80

static void reply_compressed(http_request *req, const store_value *img) {
    image_limits lim = {.max_bytes = req->app->config.max_body_bytes, .max_pixels = req->app->config.max_image_pixels};
    image_rgb rgb = {0};
    char err[160];
    uint8_t *jpeg = NULL;
    size_t jpeg_len = 0;
    int w = 0, h = 0, scale = 1;
    if (image_probe(img->data, img->len, &w, &h, NULL) == 0)
        while (scale < 8 && (w > h ? w : h) > COMPRESS_MAX_SIDE * scale) scale *= 2;
    if (image_decode(img->data, img->len, &lim, scale, &rgb, err, sizeof err) ||
        image_encode_jpeg(&rgb, COMPRESS_QUALITY, &jpeg, &jpeg_len)) {
        http_reply_error(req, 500, "internal error while compressing the stored image");
    } else if (jpeg_len < img->len) {
        http_reply_bytes(req, 200, "image/jpeg", jpeg, jpeg_len);
    } else {
        http_reply_bytes(req, 200, image_mime(img), img->data, img->len);
    }
    free(jpeg);
    image_rgb_free(&rgb);
}

void handle_get_face_image(http_request *req) {
    const char *compression = http_query(req, "compression");
    if (compression && strcasecmp(compression, "true") && strcasecmp(compression, "false")) {
        http_reply_error(req, 400, "query parameter 'compression' must be true or false");
        return;
    }
    json_t *session = api_load_session(req, req->params[0], NULL);
    if (!session) return;
    bool stored = json_is_true(json_object_get(session, "imageStorageEnabled"));
    json_decref(session);
    json_t *face = face_store_get(req, req->params[0], req->params[1]);
    if (!face) return;
    json_decref(face);
    if (!stored) {
        http_reply_empty(req, 204);
        return;
    }
    store_value img = {0};
    int rc = req->app->store->ops->item_get(req->app->store, req->key->tenant, req->params[0], KIND_IMAGE, req->params[1], &img);
    if (rc) {
        api_reply_store_error(req, rc, "face image");
        return;
    }
    if (compression && !strcasecmp(compression, "true")) reply_compressed(req, &img);
    else http_reply_bytes(req, 200, image_mime(&img), img.data, img.len);
    store_value_free(&img);
}

void handle_create_direct_face(http_request *req) {
    face_input in;
    if (!api_parse_face_input(req, &in)) return;
    char fid[UUID_STR_LEN];
    uuid_generate(fid);
    json_t *face = face_from_image(req, &in, fid, 0, NULL);
    if (!face) return;
    api_reply_signed(req, 200, face, in.signature_disabled, false);
}
