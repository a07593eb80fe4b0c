/* createDirectAgeFromImage: estimated age and whether it reaches a threshold. */
#include <math.h>
#include <string.h>

#include "api/analyze.h"
#include "api/common.h"
#include "api/face_input.h"
#include "api/handlers.h"

#define NO_PERSON_QUALITY (-10000)

static const field_spec age_fields[] = {
    {"threshold", FIELD_NUMBER, 0}, {"imageType", FIELD_STRING, 32}, {"signatureDisabled", FIELD_BOOL, 0},
    {"imageRotationEnabled", FIELD_BOOL, 0}, {"correlationId", FIELD_STRING, 256},
    {"evidenceId", FIELD_STRING, 256}, {"safetyMarginYears", FIELD_NUMBER, 0}, {NULL, 0, 0},
};

typedef struct {
    double threshold;
    double margin; /* years added to the threshold (our extension; docs/age.md) */
    const char *image_type;
    bool signature_disabled, rotation;
} age_options;

static bool parse_age_part(http_request *req, const multipart_body *body, age_options *o) {
    o->image_type = "SELFIE";
    o->margin = req->app->config.age_margin_years;
    const multipart_part *part = multipart_find(body, "age");
    if (!part) {
        http_reply_error(req, 400, "the 'age' part (JSON with the required 'threshold') is missing");
        return false;
    }
    json_t *age = api_parse_json_text(req, (const char *)part->data, part->len, "the 'age' part");
    if (!age) return false;
    bool ok = false;
    if (!json_is_object(age)) http_reply_error(req, 400, "the 'age' part must be a JSON object");
    else if (api_check_fields(req, age, age_fields, "the 'age' part")) {
        json_t *t = json_object_get(age, "threshold"), *m = json_object_get(age, "safetyMarginYears");
        const char *type = api_json_string(age, "imageType");
        if (json_is_number(t)) o->threshold = json_number_value(t);
        if (json_is_number(m)) o->margin = json_number_value(m);
        o->rotation = json_is_true(json_object_get(age, "imageRotationEnabled"));
        o->signature_disabled = json_is_true(json_object_get(age, "signatureDisabled"));
        if (!json_is_number(t))
            http_reply_error(req, 400, "field 'threshold' is required in the 'age' part");
        else if (o->threshold < 0 || o->threshold > 150)
            http_reply_error(req, 400, "threshold must be between 0 and 150");
        else if (o->margin < 0 || o->margin > 30)
            http_reply_error(req, 400, "safetyMarginYears must be between 0 and 30");
        else if (type && strcmp(type, "SELFIE") && strcmp(type, "VIDEO_FRAME"))
            http_reply_error(req, 400, "imageType '%s' is not one of SELFIE, VIDEO_FRAME", type);
        else {
            if (type) o->image_type = arena_strdup(req->arena, type);
            ok = true;
        }
    }
    json_decref(age);
    return ok;
}

void handle_create_age(http_request *req) {
    multipart_body body;
    if (!api_parse_multipart(req, &body)) return;
    const multipart_part *image = multipart_find(&body, "image");
    if (!image || image->len == 0) {
        http_reply_error(req, 400, "the 'image' part is missing or empty");
        return;
    }
    for (int i = 0; i < body.count; i++) {
        const char *n = body.parts[i].name;
        if (!n || (strcmp(n, "image") && strcmp(n, "age") && strcmp(n, "correlationId") && strcmp(n, "evidenceId"))) {
            http_reply_error(req, 400, "unexpected part '%s' (expected 'image' and 'age')", n ? n : "(unnamed)");
            return;
        }
    }
    age_options o = {0};
    if (!parse_age_part(req, &body, &o)) return;
    req->correlation_id = api_part_text(req, &body, "correlationId");
    face_result *r = api_analyze_image(req, image->data, image->len, o.rotation, true, NULL);
    if (!r) return;
    char id[UUID_STR_LEN], digest[65];
    uuid_generate(id);
    api_digest(image->data, image->len, digest);
    json_t *out = json_pack("{s:s}", "id", id);
    bool usable = r->faces_found > 0 && r->has_age && r->quality >= 0;
    if (usable) {
        double age = round(r->age * 10) / 10;
        /* The reference's rule, plus an optional safety margin (docs/age.md). */
        json_object_set_new(out, "aboveThreshold", json_boolean(age >= o.threshold + o.margin));
        json_object_set_new(out, "ageEstimated", json_real(age));
    }
    json_object_set_new(out, "threshold", json_real(o.threshold));
    if (o.threshold == floor(o.threshold)) json_object_set_new(out, "threshold", json_integer((json_int_t)o.threshold));
    json_object_set_new(out, "digest", json_string(digest));
    json_object_set_new(out, "imageType", json_string(o.image_type));
    json_object_set_new(out, "quality", json_integer(usable ? (json_int_t)lroundf(r->quality) : NO_PERSON_QUALITY));
    const char *corr = req->correlation_id, *evid = api_part_text(req, &body, "evidenceId");
    if (corr) json_object_set_new(out, "correlationId", json_string(corr));
    if (evid) json_object_set_new(out, "evidenceId", json_string(evid));
    api_set_times(out, time_now_ms(), 0);
    api_reply_signed(req, 200, out, o.signature_disabled, false);
}
