/* Multipart face/age input parsing and face JSON rendering; see face_input.h. */
#include "api/face_input.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/analyze.h"
#include "api/common.h"
#include "api/modes.h"

bool api_parse_multipart(http_request *req, multipart_body *body) {
    const char *type = http_media_type(req);
    if (!type || (strcmp(type, "multipart/form-data") && strcmp(type, "multipart/mixed"))) {
        http_reply_error(req, 415, "Content-Type must be multipart/form-data or multipart/mixed (got %s)",
                         type ? type : "none");
        return false;
    }
    char err[160];
    if (multipart_parse(req->arena, req->content_type, req->body, req->body_len, body, err, sizeof err)) {
        http_reply_error(req, 400, "%s", err);
        return false;
    }
    return true;
}

const char *api_part_text(http_request *req, const multipart_body *body, const char *name) {
    const multipart_part *p = multipart_find(body, name);
    if (!p) return NULL;
    const char *s = (const char *)p->data;
    size_t n = p->len;
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n > 256 || memchr(s, '\0', n)) return NULL;
    return arena_strndup(req->arena, s, n);
}

bool api_part_bool(http_request *req, const multipart_body *body, const char *name, bool *value) {
    if (!multipart_find(body, name)) return true;
    const char *v = api_part_text(req, body, name);
    if (v && !strcasecmp(v, "true")) *value = true;
    else if (v && !strcasecmp(v, "false")) *value = false;
    else {
        http_reply_error(req, 400, "part '%s' must be true or false", name);
        return false;
    }
    return true;
}

static const field_spec face_fields[] = {
    {"imageType", FIELD_STRING, 32},      {"friendlyName", FIELD_STRING, 256},
    {"imageRotationEnabled", FIELD_BOOL, 0}, {"mode", FIELD_STRING, 32},
    {"signatureDisabled", FIELD_BOOL, 0},  {"correlationId", FIELD_STRING, 256},
    {"evidenceId", FIELD_STRING, 256},    {NULL, 0, 0},
};

static bool parse_face_json(http_request *req, const multipart_part *part, face_input *in) {
    json_t *face = api_parse_json_text(req, (const char *)part->data, part->len, "the 'face' part");
    if (!face) return false;
    bool ok = false;
    if (!json_is_object(face)) {
        http_reply_error(req, 400, "the 'face' part must be a JSON object");
    } else if (api_check_fields(req, face, face_fields, "the 'face' part")) {
        in->signature_disabled = json_is_true(json_object_get(face, "signatureDisabled"));
        const char *type = api_json_string(face, "imageType");
        const char *mode = api_json_string(face, "mode");
        const biometric_mode *m = mode ? biometric_mode_find(mode) : NULL;
        if (!type) http_reply_error(req, 400, "field 'imageType' is required in the 'face' part (SELFIE, ID_DOCUMENT or VIDEO_FRAME)");
        else if (!api_image_type_valid(type)) http_reply_error(req, 400, "imageType '%s' is not one of SELFIE, ID_DOCUMENT, VIDEO_FRAME", type);
        else if (mode && !m) http_reply_error(req, 400, "unknown mode '%s': use F5_1_VID60, F5_3_VID60, F5_2_VID75 or F5_1_VID0", mode);
        else {
            in->image_type = arena_strdup(req->arena, type);
            in->mode = mode ? arena_strdup(req->arena, mode) : req->app->config.default_mode;
            const char *fn = api_json_string(face, "friendlyName");
            in->friendly_name = fn ? arena_strdup(req->arena, fn) : NULL;
            in->rotation = json_is_true(json_object_get(face, "imageRotationEnabled"));
            const char *c = api_json_string(face, "correlationId"), *e = api_json_string(face, "evidenceId");
            if (c) in->correlation_id = arena_strdup(req->arena, c);
            if (e) in->evidence_id = arena_strdup(req->arena, e);
            ok = true;
        }
    }
    json_decref(face);
    return ok;
}

bool api_parse_face_input(http_request *req, face_input *in) {
    memset(in, 0, sizeof(*in));
    multipart_body body;
    if (!api_parse_multipart(req, &body)) return false;
    for (int i = 0; i < body.count; i++) {
        const char *n = body.parts[i].name;
        static const char *const known[] = {"face", "image", "correlationId", "evidenceId", "signatureDisabled", "imageRotationEnabled", NULL};
        bool ok = false;
        for (int k = 0; n && known[k]; k++) ok |= !strcmp(n, known[k]);
        if (!ok) {
            http_reply_error(req, 400, "unexpected part '%s' (expected 'face' and 'image')", n ? n : "(unnamed)");
            return false;
        }
    }
    const multipart_part *face = multipart_find(&body, "face");
    const multipart_part *image = multipart_find(&body, "image");
    if (!face) {
        http_reply_error(req, 400, "the 'face' part (JSON with imageType) is missing");
        return false;
    }
    if (!image || image->len == 0) {
        http_reply_error(req, 400, "the 'image' part is missing or empty");
        return false;
    }
    if (!parse_face_json(req, face, in)) return false;
    const char *c = api_part_text(req, &body, "correlationId"), *e = api_part_text(req, &body, "evidenceId");
    if (c) in->correlation_id = c;
    if (e) in->evidence_id = e;
    if (!api_part_bool(req, &body, "signatureDisabled", &in->signature_disabled) ||
        !api_part_bool(req, &body, "imageRotationEnabled", &in->rotation))
        return false;
    in->image = image->data;
    in->image_len = image->len;
    req->correlation_id = in->correlation_id;
    return true;
}

static double round_to(double v, double step) { return round(v / step) * step; }

json_t *api_face_json(const face_input *in, const face_result *r, const char *id, const char *mode,
                      const char *template_b64, int64_t created_ms, int64_t expires_ms) {
    char digest[65];
    api_digest(in->image, in->image_len, digest);
    json_t *f = json_pack("{s:s}", "id", id);
    if (in->friendly_name) json_object_set_new(f, "friendlyName", json_string(in->friendly_name));
    json_object_set_new(f, "digest", json_string(digest));
    json_object_set_new(f, "mode", json_string(mode));
    json_object_set_new(f, "imageType", json_string(in->image_type));
    json_object_set_new(f, "quality", json_integer((json_int_t)lroundf(r->quality)));
    if (r->faces_found > 0) {
        json_t *eyes = json_pack("{s:f,s:f,s:f,s:f}", "x1", round_to(r->eyes[0], 1e-3), "y1", round_to(r->eyes[1], 1e-3),
                                 "x2", round_to(r->eyes[2], 1e-3), "y2", round_to(r->eyes[3], 1e-3));
        json_t *box = json_pack("{s:i,s:i,s:i,s:i}", "x", (int)lroundf(r->box[0]), "y", (int)lroundf(r->box[1]),
                                "width", (int)lroundf(r->box[2]), "height", (int)lroundf(r->box[3]));
        json_object_set_new(f, "landmarks", json_pack("{s:o,s:o}", "eyes", eyes, "box", box));
    }
    json_object_set_new(f, "imageRotationEnabled", json_boolean(in->rotation));
    if (template_b64) {
        json_object_set_new(f, "template", json_string(template_b64));
        json_object_set_new(f, "templateVersion", json_integer(TEMPLATE_VERSION));
    }
    api_set_times(f, created_ms, expires_ms);
    return f;
}

json_t *api_face_summary(json_t *face) {
    static const char *const keep[] = {"id", "friendlyName", "digest", "mode", "imageType", "quality",
                                       "landmarks", "imageRotationEnabled", NULL};
    json_t *s = json_object();
    for (int i = 0; keep[i]; i++) {
        json_t *v = json_object_get(face, keep[i]);
        if (v) json_object_set(s, keep[i], v);
    }
    return s;
}
