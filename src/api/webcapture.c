/* The WebCapture server flow: what a service provider's backend calls when its
 * pages use IDEMIA's WebCapture SDK (see ../shared/clients/webcapture-demo,
 * server/wbs-api.js). One call creates a bio-session with its liveness parameters
 * (init-liveness-session); the result is read with liveness-challenge-result, whose
 * bestImageId is a face of the session (liveness_jobs.c stores the best frame as
 * one), so its image and matches are read like any other face. The capture itself
 * arrives through the replay-liveness upload (liveness.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "api/liveness_evidence.h"
#include "api/liveness_state.h"
#include "api/modes.h"
#include "liveness/evaluate.h"

static const field_spec session_flow_fields[] = {
    {"livenessMode", FIELD_STRING, 64}, {"numberOfChallenge", FIELD_INT, 0}, {"securityLevel", FIELD_STRING, 16},
    {"ageThreshold", FIELD_NUMBER, 0},  {"imageRetrievalDisabled", FIELD_BOOL, 0}, {NULL, 0, 0},
};

/* The liveness parameters of an init-liveness-session body, in init-liveness-parameters' names. */
static json_t *liveness_params_of(json_t *in) {
    json_t *p = json_object();
    json_t *mode = json_object_get(in, "livenessMode"), *level = json_object_get(in, "securityLevel");
    json_t *n = json_object_get(in, "numberOfChallenge"), *rd = json_object_get(in, "imageRetrievalDisabled");
    if (mode) json_object_set(p, "type", mode);
    if (level) json_object_set(p, "securityLevel", level);
    if (n) json_object_set(p, "nbChallenge", n);
    if (rd) json_object_set(p, "imageRetrievalDisabled", rd);
    return p;
}

void handle_init_liveness_session(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *in = api_parse_json_object(req, true);
    if (!in || !api_check_fields(req, in, session_flow_fields, "the liveness session")) {
        json_decref(in);
        return;
    }
    json_t *age = json_object_get(in, "ageThreshold");
    if (!api_json_string(in, "livenessMode")) {
        http_reply_error(req, 400, "field 'livenessMode' is required: LIVENESS_PASSIVE, LIVENESS_PASSIVE_VIDEO or LIVENESS_ACTIVE");
        json_decref(in);
        return;
    }
    if (json_is_number(age) && (json_number_value(age) < 0 || json_number_value(age) > 150)) {
        http_reply_error(req, 400, "ageThreshold must be between 0 and 150");
        json_decref(in);
        return;
    }
    /* The best image is the capture's evidence: the flow keeps it with its face. */
    json_t *extra = json_pack("{s:b,s:b}", "webCapture", 1, "imageStorageEnabled", 1);
    if (json_is_number(age)) json_object_set(extra, "ageThreshold", age);
    json_t *params = liveness_params_of(in);
    json_t *rec = api_session_create(req, in, extra), *out = NULL;
    const char *sid = rec ? api_json_string(rec, "id") : NULL;
    if (sid) out = liveness_start(req, sid, params);
    if (sid && !out) req->app->store->ops->session_delete(req->app->store, req->key->tenant, sid); /* all or nothing */
    if (out) {
        char location[64];
        snprintf(location, sizeof location, "/v2/bio-sessions/%s", sid);
        http_add_header(req, "Location", location);
        json_object_set_new(out, "sessionId", json_string(sid));
        api_reply_signed(req, 201, out, false, false);
    }
    json_decref(rec);
    json_decref(params);
    json_decref(extra);
    json_decref(in);
}

/* The capture side's health, as the WebCapture SDK's server reads it. */
void handle_video_capabilities(http_request *req) {
    app *a = req->app;
    bool up = a->envelope && a->notifier && a->liveness;
    json_t *modes = json_array(), *levels = json_array();
    for (int t = LIVENESS_PASSIVE; t <= LIVENESS_ACTIVE; t++) json_array_append_new(modes, json_string(liveness_type_name(t)));
    for (int l = LEVEL_LOW; l <= LEVEL_HIGH; l++) json_array_append_new(levels, json_string(liveness_level_name(l)));
    if (!up) {
        json_decref(modes);
        json_decref(levels);
        http_reply_error(req, 503, "replay liveness is not available on this server (see the server log)");
        return;
    }
    http_reply_json(req, 200, json_pack("{s:s,s:s,s:o,s:o}", "status", "UP", "version", a->config.version,
                                        "livenessModes", modes, "securityLevels", levels));
}

/* {"ageEstimated", "threshold", "aboveThreshold"} as POST /v2/ages answers them. */
static json_t *age_result(app *a, json_t *session, json_t *item) {
    json_t *threshold = json_object_get(session, "ageThreshold"), *est = json_object_get(item, "ageEstimated");
    if (!json_is_number(threshold)) return NULL;
    json_t *age = json_pack("{s:O}", "threshold", threshold);
    if (json_is_number(est)) {
        double t = json_number_value(threshold) + a->config.age_margin_years;
        json_object_set(age, "ageEstimated", est);
        json_object_set_new(age, "aboveThreshold", json_boolean(json_number_value(est) >= t));
    }
    return age;
}

void handle_liveness_challenge_result(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *session = api_load_session(req, req->params[0], NULL);
    if (!session) return;
    app *a = req->app;
    liveness_timeout_and_notify(a, req->key->tenant, req->params[0]); /* lazily, should no dispatcher have yet */
    int rc;
    json_t *item = liveness_item_load(a->store, req->key->tenant, req->params[0], &rc);
    if (!item) {
        json_decref(session);
        api_reply_store_error(req, rc, "liveness parameters for this bio-session");
        return;
    }
    const char *status = api_json_string(item, "status");
    json_t *out = json_pack("{s:s,s:O,s:O}", "livenessStatus", status ? status : "ERROR", "livenessMode",
                            json_object_get(item, "type"), "securityLevel", json_object_get(item, "securityLevel"));
    json_t *n = json_object_get(item, "nbChallenge"), *best = json_object_get(item, "bestImageId");
    if (n) json_object_set(out, "numberOfChallenge", n);
    if (best) json_object_set(out, "bestImageId", best);
    json_t *age = age_result(a, session, item);
    if (age) json_object_set_new(out, "age", age);
    const char *reason = api_json_string(item, "reason");
    if (reason && status && strcmp(status, "SUCCESS")) json_object_set_new(out, "diagnostic", json_string(reason));
    liveness_evidence_attach(a, req->key->tenant, req->params[0], item, out);
    json_decref(item);
    json_decref(session);
    api_reply_signed(req, 200, out, false, false);
}
