/* Input validation and response helpers; see common.h. */
#include "api/common.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"

static const char *type_name(field_type t) {
    switch (t) {
    case FIELD_STRING: return "a string";
    case FIELD_BOOL: return "a boolean";
    case FIELD_INT: return "an integer";
    case FIELD_NUMBER: return "a number";
    case FIELD_OBJECT: return "an object";
    default: return "a value";
    }
}

/* A boolean as the reference's clients send it: true/false, or the strings
 * "true"/"false" in any case. -1 when v is neither. */
int api_bool_value(json_t *v) {
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_string(v) && !strcasecmp(json_string_value(v), "true")) return 1;
    if (json_is_string(v) && !strcasecmp(json_string_value(v), "false")) return 0;
    return -1;
}

/* Integers are exact up to 2^53 in a double; beyond, the value stays a real and
 * the caller's range check refuses it. */
#define INT_EXACT_LIMIT 9007199254740992.0

/* A number written as a string, as clients that copy a query parameter send it
 * ("ageThreshold": "18"): the whole string, finite, decimal. False otherwise. */
static bool numeric_string(json_t *v, double *out) {
    if (!json_is_string(v)) return false;
    const char *s = json_string_value(v);
    if (!*s || strlen(s) > 32 || strspn(s, "+-.0123456789eE") != strlen(s)) return false;
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d)) return false;
    *out = d;
    return true;
}

static bool type_ok(json_t *v, field_type t) {
    switch (t) {
    case FIELD_STRING: return json_is_string(v);
    case FIELD_BOOL: return api_bool_value(v) >= 0;
    case FIELD_INT: case FIELD_NUMBER: {
        double d;
        return json_is_number(v) || numeric_string(v, &d);
    }
    case FIELD_OBJECT: return json_is_object(v);
    default: return true;
    }
}

/* Rewrites an accepted value into its canonical JSON type, so that handlers read
 * json_is_true / json_integer_value: "TRUE" becomes true, and a number where an
 * integer is needed is rounded to the nearest one, halves away from zero
 * (ttlSeconds 30.5 -> 31). */
static void normalise(json_t *obj, const char *key, json_t *value, field_type t) {
    double d;
    if (t == FIELD_BOOL && json_is_string(value)) {
        json_object_set_new(obj, key, json_boolean(api_bool_value(value)));
        return;
    }
    if ((t == FIELD_INT || t == FIELD_NUMBER) && numeric_string(value, &d)) {
        value = json_real(d);
        json_object_set_new(obj, key, value);
    }
    if (t == FIELD_INT && json_is_real(value) && fabs(json_real_value(value)) < INT_EXACT_LIMIT)
        json_object_set_new(obj, key, json_integer((json_int_t)llround(json_real_value(value))));
}

/* Characters (code points), not bytes: jansson guarantees valid UTF-8. */
static size_t utf8_length(const char *s, size_t bytes) {
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

bool api_check_fields(http_request *req, json_t *obj, const field_spec *fields, const char *what) {
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, value) {
        const field_spec *f = fields;
        while (f->name && strcmp(f->name, key)) f++;
        if (!f->name) {
            /* Real clients send fields of other versions or products: ignored. */
            log_event("debug", "%s %s: ignored unknown field '%s' in %s", req->method, req->path, key, what);
            continue;
        }
        if (json_is_null(value)) continue;
        if (!type_ok(value, f->type)) {
            http_reply_error(req, 400, "field '%s' in %s must be %s", key, what, type_name(f->type));
            return false;
        }
        size_t max = f->max_len ? f->max_len : 256;
        if (f->type == FIELD_STRING && utf8_length(json_string_value(value), json_string_length(value)) > max) {
            http_reply_error(req, 400, "field '%s' in %s is longer than %zu characters", key, what, max);
            return false;
        }
        normalise(obj, key, value, f->type);
    }
    return true;
}

json_t *api_parse_json_text(http_request *req, const char *text, size_t len, const char *what) {
    json_error_t e;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        http_reply_error(req, 400, "malformed JSON in %s at line %d, column %d: %s", what, e.line,
                         e.column, e.text);
        return NULL;
    }
    return root;
}

json_t *api_parse_json_object(http_request *req, bool allow_array) {
    const char *type = http_media_type(req);
    if (!type || strcmp(type, "application/json")) {
        http_reply_error(req, 415, "Content-Type must be application/json (got %s)", type ? type : "none");
        return NULL;
    }
    json_t *root = api_parse_json_text(req, (const char *)req->body, req->body_len, "the request body");
    if (!root) return NULL;
    if (allow_array && json_is_array(root)) {
        if (json_array_size(root) != 1) {
            http_reply_error(req, 400, "the request body array must hold exactly one object");
            json_decref(root);
            return NULL;
        }
        json_t *inner = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = inner;
    }
    if (!json_is_object(root)) {
        http_reply_error(req, 400, "the request body must be a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

static const char SIGNATURE_MEMBER[] = ",\"signature\":\"";

size_t api_signed_text_size(const app *a, size_t len) {
    return len + sizeof SIGNATURE_MEMBER + signer_jws_size(a->signer, len) + 2;
}

size_t api_sign_text(const app *a, char *text, size_t len) {
    if (len < 2 || text[len - 1] != '}') return 0;
    /* The object minus its '}', the member (without its comma in an empty object),
     * the JWS, '"}'. The JWS goes in first, past the payload it signs. */
    const char *member = len > 2 ? SIGNATURE_MEMBER : SIGNATURE_MEMBER + 1;
    size_t member_len = strlen(member), at = len - 1 + member_len;
    size_t jws_len = signer_sign_to(a->signer, (const uint8_t *)text, len, false, text + at);
    if (!jws_len) return 0;
    memcpy(text + len - 1, member, member_len);
    memcpy(text + at + jws_len, "\"}", 3);
    return at + jws_len + 2;
}

bool api_sign_object(http_request *req, json_t *obj, bool detached) {
    json_object_del(obj, "signature");
    char *payload = json_dumps(obj, HTTP_JSON_FLAGS);
    char *jws = payload ? signer_sign(req->app->signer, (const uint8_t *)payload, strlen(payload), detached) : NULL;
    free(payload);
    if (!jws) return false;
    /* Last member, so the payload is the body with this member cut out. */
    json_object_set_new(obj, "signature", json_string(jws));
    free(jws);
    return true;
}

void api_reply_signed(http_request *req, int status, json_t *body, bool signature_disabled, bool detached) {
    if (!signature_disabled && !api_sign_object(req, body, detached)) {
        json_decref(body);
        http_reply_error(req, 500, "internal error while signing the response");
        return;
    }
    http_reply_json(req, status, body);
}

void api_reply_store_error(http_request *req, int rc, const char *not_found_what) {
    switch (rc) {
    case STORE_NOT_FOUND: http_reply_error(req, 404, "%s not found", not_found_what); break;
    case STORE_UNAVAILABLE: http_reply_error(req, 503, "the state store is unavailable; try again shortly"); break;
    case STORE_FULL: http_reply_error(req, 409, "the bio-session holds the maximum of %d items", APP_MAX_ITEMS_PER_SESSION); break;
    case STORE_CONFLICT: http_reply_error(req, 409, "the resource was changed concurrently; try again"); break;
    case STORE_CORRUPT: http_reply_error(req, 500, "internal error: stored data failed its integrity check"); break;
    default: http_reply_error(req, 500, "internal error in the state store");
    }
}

json_t *api_load_session(http_request *req, const char *session_id, int64_t *expires_ms) {
    store_value v = {0};
    int rc = req->app->store->ops->session_get(req->app->store, req->key->tenant, session_id, &v, expires_ms);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return NULL;
    }
    json_t *session = json_loadb((const char *)v.data, v.len, 0, NULL);
    store_value_free(&v);
    if (!session) http_reply_error(req, 500, "internal error: unreadable bio-session record");
    return session;
}

void api_set_times(json_t *obj, int64_t created_ms, int64_t expires_ms) {
    char text[ISO_TIME_LEN];
    time_format_iso(created_ms, text);
    json_object_set_new(obj, "created", json_string(text));
    if (expires_ms) {
        time_format_iso(expires_ms, text);
        json_object_set_new(obj, "expires", json_string(text));
    }
}

const char *api_json_string(json_t *obj, const char *name) {
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}
