/* Bio-sessions: create, read, delete. A session is a tenant-scoped record with a
 * time to live; the store drops it and everything in it when the time is up. */
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "core/util.h"
#include "liveness/callback_policy.h"

static const field_spec session_fields[] = {
    {"correlationId", FIELD_STRING, 256}, {"evidenceId", FIELD_STRING, 256},
    {"imageStorageEnabled", FIELD_BOOL, 0}, {"ttlSeconds", FIELD_INT, 0},
    {"callbackURL", FIELD_STRING, 2048},    {NULL, 0, 0},
};

/* A callbackURL that delivery would refuse is refused now, with the reason, rather
 * than lost silently when the result is ready. */
bool api_check_callback_url(http_request *req, const char *url) {
    char pin[600], why[256];
    if (callback_policy_check_url(req->app->callbacks, url, pin, sizeof pin, why, sizeof why) == 0) return true;
    http_reply_error(req, 400, "callbackURL cannot be used: %s", why);
    return false;
}

/* Public form of a stored session; internal bookkeeping fields stay inside. */
json_t *api_session_public(json_t *record) {
    static const char *const visible[] = {"id", "correlationId", "evidenceId", "imageStorageEnabled",
                                          "ttlSeconds", "callbackURL", "created", "expires", NULL};
    json_t *out = json_object();
    for (int i = 0; visible[i]; i++) {
        json_t *v = json_object_get(record, visible[i]);
        if (v) json_object_set(out, visible[i], v);
    }
    return out;
}

/* ttlSeconds: absent = the configured default; else 1 .. session_ttl_max. */
static bool parse_ttl(http_request *req, json_t *in, json_int_t *ttl) {
    const server_config *cfg = &req->app->config;
    *ttl = cfg->session_ttl_default;
    json_t *v = json_object_get(in, "ttlSeconds");
    if (!v || json_is_null(v)) return true;
    double requested = json_number_value(v); /* compare before converting: 1e30 fits no integer */
    if (requested < 1 || requested > cfg->session_ttl_max) {
        http_reply_error(req, 400, "ttlSeconds must be between 1 and %d (the configured maximum)", cfg->session_ttl_max);
        return false;
    }
    *ttl = (json_int_t)requested;
    return true;
}

json_t *api_session_create(http_request *req, json_t *in, json_t *extra) {
    json_int_t ttl;
    if (!api_check_fields(req, in, session_fields, "the bio-session") || !parse_ttl(req, in, &ttl)) return NULL;
    const char *callback = api_json_string(in, "callbackURL");
    if (callback && !api_check_callback_url(req, callback)) return NULL;
    char id[UUID_STR_LEN];
    uuid_generate(id);
    int64_t now = time_now_ms(), expires_ms = now + ttl * 1000;
    json_t *rec = json_pack("{s:s}", "id", id);
    const char *corr = api_json_string(in, "correlationId");
    const char *evid = api_json_string(in, "evidenceId");
    req->correlation_id = corr ? arena_strdup(req->arena, corr) : NULL;
    if (corr) json_object_set_new(rec, "correlationId", json_string(corr));
    if (evid) json_object_set_new(rec, "evidenceId", json_string(evid));
    json_object_set_new(rec, "imageStorageEnabled", json_boolean(json_is_true(json_object_get(in, "imageStorageEnabled"))));
    json_object_set_new(rec, "ttlSeconds", json_integer(ttl));
    if (callback) json_object_set_new(rec, "callbackURL", json_string(callback));
    api_set_times(rec, now, expires_ms);
    if (extra) json_object_update(rec, extra);

    char *text = json_dumps(rec, JSON_COMPACT);
    store_value v = {(uint8_t *)text, text ? strlen(text) : 0};
    int rc = text ? req->app->store->ops->session_create(req->app->store, req->key->tenant, id, &v, expires_ms)
                  : STORE_NOMEM;
    free(text);
    if (rc) {
        json_decref(rec);
        api_reply_store_error(req, rc, "bio-session");
        return NULL;
    }
    return rec;
}

void handle_create_session(http_request *req) {
    json_t *in = api_parse_json_object(req, true);
    json_t *rec = in ? api_session_create(req, in, NULL) : NULL;
    json_decref(in);
    if (!rec) return;
    char location[64];
    snprintf(location, sizeof location, "/v2/bio-sessions/%s", api_json_string(rec, "id"));
    http_add_header(req, "Location", location);
    json_t *out = api_session_public(rec);
    json_decref(rec);
    api_reply_signed(req, 201, out, false, false);
}

void handle_get_session(http_request *req) {
    json_t *rec = api_load_session(req, req->params[0], NULL);
    if (!rec) return;
    const char *corr = api_json_string(rec, "correlationId");
    if (corr) req->correlation_id = arena_strdup(req->arena, corr);
    json_t *out = api_session_public(rec);
    json_decref(rec);
    api_reply_signed(req, 200, out, false, false);
}

void handle_delete_session(http_request *req) {
    json_t *rec = api_load_session(req, req->params[0], NULL);
    if (!rec) return;
    /* A replay running on a worker still writes into this session. */
    const char *live = api_json_string(rec, "livenessStatus");
    bool busy = live && !strcmp(live, "IN_PROGRESS");
    json_decref(rec);
    if (busy) {
        http_reply_error(req, 409, "a replay liveness is in progress for this bio-session");
        return;
    }
    int rc = req->app->store->ops->session_delete(req->app->store, req->key->tenant, req->params[0]);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return;
    }
    http_reply_empty(req, 204);
}
