/* Input validation and response helpers; see common.h. */
#include "api/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

static bool type_ok(json_t *v, field_type t) {
    switch (t) {
    case FIELD_STRING: return json_is_string(v);
    case FIELD_BOOL: return json_is_boolean(v);
    case FIELD_INT: return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    case FIELD_NUMBER: return json_is_number(v);
    case FIELD_OBJECT: return json_is_object(v);
    default: return true;
    }
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
    json_object_foreach(obj, key, value) {
        const field_spec *f = fields;
        while (f->name && strcmp(f->name, key)) f++;
        if (!f->name) {
            http_reply_error(req, 400, "unknown field '%s' in %s", key, what);
            return false;
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

char *api_signed_text(const app *a, const char *compact) {
    size_t pl = strlen(compact);
    if (pl < 2 || compact[pl - 1] != '}') return NULL;
    char *jws = signer_sign(a->signer, (const uint8_t *)compact, pl, false);
    if (!jws) return NULL;
    char *text = NULL; /* the object minus its '}', then the signature as the last member */
    if (asprintf(&text, "%.*s%s\"signature\":\"%s\"}", (int)(pl - 1), compact, pl > 2 ? "," : "", jws) < 0)
        text = NULL;
    free(jws);
    return text;
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
