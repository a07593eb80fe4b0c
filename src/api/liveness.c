/* Replay liveness handlers: init-liveness-parameters (POST/GET), the encrypted
 * capture upload (our addition, see docs/liveness.md) and getReplayStatus v3
 * (replay-liveness-metadata). The shared state and its compare-and-set rules are
 * in liveness_state.h; the queued evaluation is in liveness_jobs.h. Callbacks are
 * sent only by the caller whose compare-and-set of the session's status won, so
 * each status change is reported once, from one instance. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/capture_stream.h"
#include "api/common.h"
#include "api/handlers.h"
#include "api/liveness_evidence.h"
#include "api/liveness_jobs.h"
#include "api/liveness_state.h"
#include "core/log.h"
#include "liveness/envelope.h"
#include "liveness/evaluate.h"
#include "liveness/notifier.h"

#define SERVER_RANDOM_BYTES 32
#define DEFAULT_CHALLENGES 2
#define SECONDS_PER_CHALLENGE 3 /* one head turn, announced and performed */

bool liveness_ready(http_request *req) {
    app *a = req->app;
    if (!a->envelope || !a->notifier) {
        http_reply_error(req, 503, "replay liveness is not available on this server (see the server log)");
        return false;
    }
    return true;
}

/* ---- init-liveness-parameters ------------------------------------------------------ */

static const field_spec params_fields[] = {
    {"type", FIELD_STRING, 64},       {"securityLevel", FIELD_STRING, 16}, {"nbChallenge", FIELD_INT, 0},
    {"imageRetrievalDisabled", FIELD_BOOL, 0}, {"id", FIELD_STRING, 128},
    /* deprecated by the spec: accepted and ignored */
    {"useAccurateMatch", FIELD_BOOL, 0}, {"matchThreshold", FIELD_NUMBER, 0}, {"logLevel", FIELD_STRING, 16},
    {NULL, 0, 0},
};

static bool parse_type(http_request *req, const char *t, liveness_type *out) {
    if (!t) {
        http_reply_error(req, 400, "field 'type' is required: LIVENESS_ACTIVE, LIVENESS_PASSIVE or LIVENESS_PASSIVE_VIDEO");
        return false;
    }
    for (int i = LIVENESS_PASSIVE; i <= LIVENESS_ACTIVE; i++)
        if (!strcmp(t, liveness_type_name(i))) {
            *out = i;
            return true;
        }
    if (!strcmp(t, "NO_LIVENESS") || !strcmp(t, "LIVENESS_MEDIUM"))
        http_reply_error(req, 400, "liveness type %s is not supported anymore; use LIVENESS_PASSIVE_VIDEO, LIVENESS_PASSIVE or LIVENESS_ACTIVE", t);
    else if (!strcmp(t, "LIVENESS_HIGH"))
        http_reply_error(req, 400, "liveness type LIVENESS_HIGH is deprecated, use LIVENESS_ACTIVE instead");
    else
        http_reply_error(req, 400, "unknown liveness type '%s': use LIVENESS_ACTIVE, LIVENESS_PASSIVE or LIVENESS_PASSIVE_VIDEO", t);
    return false;
}

static bool parse_level(http_request *req, const char *l, liveness_level *out) {
    *out = LEVEL_HIGH; /* the spec's default */
    if (!l) return true;
    for (int i = LEVEL_LOW; i <= LEVEL_HIGH; i++)
        if (!strcmp(l, liveness_level_name(i))) {
            *out = i;
            return true;
        }
    http_reply_error(req, 400, "securityLevel must be LOW, MEDIUM or HIGH (got '%s')", l);
    return false;
}

/* The reference only asks for one or more; the bound is what a user can perform
 * in the capture window (and the derivation's table size). */
static bool parse_challenges(http_request *req, json_t *in, liveness_type type, int *out) {
    json_t *v = json_object_get(in, "nbChallenge");
    *out = type == LIVENESS_ACTIVE ? DEFAULT_CHALLENGES : 0;
    if (!v || json_is_null(v)) return true;
    double n = json_number_value(v);
    int window = req->app->config.liveness_timeout_seconds, fits = window / SECONDS_PER_CHALLENGE;
    int max = fits < CHALLENGE_MAX ? fits : CHALLENGE_MAX;
    if (n < 1 || n > max) {
        if (n > fits)
            http_reply_error(req, 400, "nbChallenge must be between 1 and %d: %g challenges do not fit in the %d-second "
                             "capture window (liveness_timeout; about %d seconds each)", max, n, window, SECONDS_PER_CHALLENGE);
        else
            http_reply_error(req, 400, "nbChallenge must be between 1 and %d", max);
        return false;
    }
    if (type == LIVENESS_ACTIVE) *out = (int)n; /* "only used with LIVENESS_ACTIVE" */
    return true;
}

/* The public parameters (what POST answers and GET returns). */
static json_t *params_public(app *a, json_t *item) {
    static const char *const visible[] = {"id", "type", "securityLevel", "nbChallenge", "imageRetrievalDisabled",
                                          "seed", "serverRandom", NULL};
    json_t *out = json_object();
    for (int i = 0; visible[i]; i++) {
        json_t *v = json_object_get(item, visible[i]);
        if (v) json_object_set(out, visible[i], v);
    }
    json_object_set_new(out, "certificates", json_pack("[s]", envelope_certificate_b64(a->envelope)));
    return out;
}

static json_t *new_params_item(const char *id, liveness_type type, liveness_level level, int challenges,
                               bool retrieval_disabled, int64_t deadline_ms) {
    uint32_t seed;
    uint8_t rnd[SERVER_RANDOM_BYTES];
    if (RAND_bytes((unsigned char *)&seed, sizeof seed) != 1 || RAND_bytes(rnd, sizeof rnd) != 1) return NULL;
    char *server_random = base64_encode(rnd, sizeof rnd);
    if (!server_random) return NULL;
    json_t *item = json_pack("{s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:I}", "id", id, "type", liveness_type_name(type),
                             "securityLevel", liveness_level_name(level), "imageRetrievalDisabled", retrieval_disabled,
                             "seed", (json_int_t)(seed & 0x7fffffff), "serverRandom", server_random, "status",
                             "INITIALIZED", "deadlineMs", (json_int_t)deadline_ms);
    if (item && challenges) json_object_set_new(item, "nbChallenge", json_integer(challenges));
    free(server_random);
    return item;
}

json_t *liveness_start(http_request *req, const char *sid, json_t *in) {
    if (!api_check_fields(req, in, params_fields, "the liveness parameters")) return NULL;
    liveness_type type;
    liveness_level level;
    int challenges;
    if (!parse_type(req, api_json_string(in, "type"), &type) || !parse_level(req, api_json_string(in, "securityLevel"), &level) ||
        !parse_challenges(req, in, type, &challenges))
        return NULL;
    bool retrieval_disabled = !json_is_false(json_object_get(in, "imageRetrievalDisabled")); /* the spec's default: true */
    char id[UUID_STR_LEN + 128];
    const char *given = api_json_string(in, "id");
    if (given) snprintf(id, sizeof id, "%s", given);
    else uuid_generate(id);
    app *a = req->app;
    const char *tenant = req->key->tenant;
    liveness_snapshot s;
    int rc = liveness_snapshot_load(a->store, tenant, sid, &s);
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return NULL;
    }
    const char *callback = api_json_string(s.json, "callbackURL");
    char *callback_copy = callback ? strdup(callback) : NULL;
    liveness_snapshot_free(&s);
    int64_t deadline = time_now_ms() + (int64_t)a->config.liveness_timeout_seconds * 1000;
    json_t *item = new_params_item(id, type, level, challenges, retrieval_disabled, deadline), *out = NULL;
    rc = item ? liveness_session_transition(a->store, tenant, sid, NULL, NULL, "INITIALIZED", api_json_string(item, "serverRandom"))
              : STORE_NOMEM;
    if (rc == STORE_OK) rc = liveness_item_save(a->store, tenant, sid, item);
    if (!item) {
        http_reply_error(req, 500, "internal error: no randomness for the liveness parameters");
    } else if (rc == STORE_CONFLICT) {
        http_reply_error(req, 409, "a replay liveness is in progress for this bio-session; wait for its result");
    } else if (rc) {
        api_reply_store_error(req, rc, "bio-session");
    } else {
        liveness_watch_deadline(a, tenant, sid, callback_copy, deadline);
        rc = capture_stream_ticket_issue(a, tenant, sid, api_json_string(item, "serverRandom"), deadline);
        if (rc) log_event("warn", "session %s: no capture stream can open (state store error %d)", sid, rc);
        out = params_public(a, item);
    }
    free(callback_copy);
    json_decref(item);
    return out;
}

void handle_init_liveness(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *in = api_parse_json_object(req, true);
    json_t *out = in ? liveness_start(req, req->params[0], in) : NULL;
    json_decref(in);
    if (out) api_reply_signed(req, 200, out, false, false);
}

void handle_get_liveness_params(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *session = api_load_session(req, req->params[0], NULL); /* 404 for other tenants */
    if (!session) return;
    json_decref(session);
    int rc;
    json_t *item = liveness_item_load(req->app->store, req->key->tenant, req->params[0], &rc);
    if (!item) { api_reply_store_error(req, rc, "liveness parameters for this bio-session"); return; }
    json_t *out = params_public(req->app, item);
    json_decref(item);
    api_reply_signed(req, 200, out, false, false);
}

/* ---- the capture upload ------------------------------------------------------------ */

static const field_spec envelope_fields[] = {
    {"version", FIELD_INT, 0},          {"serverRandom", FIELD_STRING, 64}, {"encryptedKey", FIELD_STRING, 2048},
    {"iv", FIELD_STRING, 64},           {"ciphertext", FIELD_STRING, (size_t)1 << 31}, {NULL, 0, 0},
};

static const field_spec capture_fields[] = {
    {"frames", FIELD_ANY, 0}, {"deviceInfo", FIELD_OBJECT, 0}, {"sdkInfo", FIELD_OBJECT, 0}, {NULL, 0, 0},
};

static uint8_t *decode_b64_field(http_request *req, json_t *obj, const char *name, size_t *len) {
    const char *text = api_json_string(obj, name);
    uint8_t *out = text ? base64_decode(text, strlen(text), len) : NULL;
    if (!out) http_reply_error(req, 400, "field '%s' is required and must be standard base64", name);
    return out;
}

static bool info_ok(http_request *req, json_t *capture, const char *name) {
    bool ok = liveness_info_fits(capture, name);
    if (!ok) http_reply_error(req, 400, "%s in the capture is larger than %d bytes", name, LIVENESS_MAX_INFO_BYTES);
    return ok;
}

/* Unwraps and decrypts the upload; returns the parsed capture or NULL after replying. */
static json_t *open_envelope(http_request *req, json_t *env, const char *expected_random) {
    const char *random = api_json_string(env, "serverRandom");
    json_t *version = json_object_get(env, "version");
    if (version && json_integer_value(version) != 1) {
        http_reply_error(req, 400, "unsupported envelope version (only 1)");
        return NULL;
    }
    if (!random || strcmp(random, expected_random)) {
        http_reply_error(req, 400, "serverRandom does not match the current liveness parameters of this bio-session");
        return NULL;
    }
    size_t klen = 0, ivlen = 0, ctlen = 0, aadlen = 0, plen = 0;
    uint8_t *key = decode_b64_field(req, env, "encryptedKey", &klen);
    uint8_t *iv = key ? decode_b64_field(req, env, "iv", &ivlen) : NULL;
    uint8_t *ct = iv ? decode_b64_field(req, env, "ciphertext", &ctlen) : NULL;
    uint8_t *aad = ct ? envelope_aad(req->params[0], expected_random, &aadlen) : NULL;
    uint8_t *plain = NULL;
    json_t *capture = NULL;
    if (aad) {
        int rc = envelope_open(req->app->envelope, key, klen, iv, ivlen, ct, ctlen, aad, aadlen, &plain, &plen);
        if (rc) http_reply_error(req, 400, "cannot decrypt the capture: %s", envelope_strerror(rc));
        else capture = api_parse_json_text(req, (const char *)plain, plen, "the decrypted capture");
        if (capture && !json_is_object(capture)) {
            http_reply_error(req, 400, "the decrypted capture must be a JSON object");
            json_decref(capture);
            capture = NULL;
        }
    }
    free(key);
    free(iv);
    free(ct);
    free(aad);
    free(plain);
    return capture;
}

/* Checks the liveness state allows an upload now; replies otherwise. */
static bool upload_allowed(http_request *req, json_t *item) {
    const char *status = api_json_string(item, "status");
    if (status && !strcmp(status, "INITIALIZED") &&
        time_now_ms() >= json_integer_value(json_object_get(item, "deadlineMs"))) {
        liveness_apply_timeout(req->app, req->key->tenant, req->params[0]);
        status = "TIMEOUT";
    }
    if (status && !strcmp(status, "TIMEOUT")) {
        http_reply_error(req, 409, "the capture window of these liveness parameters closed (TIMEOUT); call init-liveness-parameters again");
        return false;
    }
    if (!status || strcmp(status, "INITIALIZED")) {
        http_reply_error(req, 409, "a capture was already uploaded for these liveness parameters (replays are refused); call init-liveness-parameters again");
        return false;
    }
    return true;
}

/* Validates the decrypted capture at upload (400 on the first problem). */
static capture_job *capture_job_create(http_request *req, json_t *item, json_t *capture) {
    capture_job *job = liveness_job_new(req->app, req->key->tenant, req->params[0], item);
    if (!job) {
        http_reply_error(req, 500, "internal error: out of memory");
        return NULL;
    }
    char err[160];
    if (!api_check_fields(req, capture, capture_fields, "the decrypted capture") || !info_ok(req, capture, "deviceInfo") ||
        !info_ok(req, capture, "sdkInfo")) {
        liveness_job_free(job);
        return NULL;
    }
    if (!liveness_parse_frames(capture, job, err, sizeof err)) {
        http_reply_error(req, 400, "%s", err);
        liveness_job_free(job);
        return NULL;
    }
    return job;
}

/* Queues the evaluation (liveness_submit_capture) and answers 202. */
static void start_evaluation(http_request *req, json_t *item, json_t *capture, capture_job *job) {
    int rc = liveness_submit_capture(req->app, item, capture, job);
    if (rc == STORE_CONFLICT) {
        http_reply_error(req, 409, "a capture was already uploaded for these liveness parameters (replays are refused)");
        return;
    }
    if (rc) {
        api_reply_store_error(req, rc, "bio-session");
        return;
    }
    json_t *out = json_pack("{s:O, s:s}", "id", json_object_get(item, "id"), "status", "IN_PROGRESS");
    api_reply_signed(req, 202, out, false, false);
}

void handle_liveness_capture(http_request *req) {
    if (!liveness_ready(req)) return;
    if (req->body_len > req->app->config.liveness_max_upload_bytes) {
        http_reply_error(req, 413, "the capture upload is %zu bytes; the limit is %zu bytes", req->body_len,
                         req->app->config.liveness_max_upload_bytes);
        return;
    }
    json_t *env = api_parse_json_object(req, false);
    if (!env || !api_check_fields(req, env, envelope_fields, "the capture envelope")) {
        json_decref(env);
        return;
    }
    json_t *session = api_load_session(req, req->params[0], NULL);
    int rc = STORE_OK;
    json_t *item = session ? liveness_item_load(req->app->store, req->key->tenant, req->params[0], &rc) : NULL;
    json_decref(session);
    if (session && !item) api_reply_store_error(req, rc, "liveness parameters for this bio-session");
    json_t *capture = item && upload_allowed(req, item) ? open_envelope(req, env, api_json_string(item, "serverRandom")) : NULL;
    capture_job *job = capture ? capture_job_create(req, item, capture) : NULL;
    if (job) start_evaluation(req, item, capture, job);
    if (job) liveness_job_free(job);
    json_decref(capture);
    json_decref(item);
    json_decref(env);
}

/* ---- getReplayStatus v3 ------------------------------------------------------------- */

void handle_replay_metadata(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *session = api_load_session(req, req->params[0], NULL);
    if (!session) return;
    json_decref(session);
    app *a = req->app;
    liveness_timeout_and_notify(a, req->key->tenant, req->params[0]); /* lazily, should no dispatcher have yet */
    int rc;
    json_t *item = liveness_item_load(a->store, req->key->tenant, req->params[0], &rc);
    if (!item) { api_reply_store_error(req, rc, "liveness parameters for this bio-session"); return; }
    json_t *out = json_pack("{s:O, s:O}", "id", json_object_get(item, "id"), "status", json_object_get(item, "status"));
    json_t *image = json_object_get(item, "bestImage");
    bool with_image = image && !json_is_true(json_object_get(item, "imageRetrievalDisabled"));
    if (with_image) json_object_set(out, "image", image);
    static const char *const extra[] = {"landmarks", "deviceInfo", "sdkInfo", "reason", NULL};
    for (int i = 0; extra[i]; i++) {
        json_t *v = json_object_get(item, extra[i]);
        if (v) json_object_set(out, extra[i], v);
    }
    liveness_evidence_attach(a, req->key->tenant, req->params[0], item, out);
    json_decref(item);
    api_reply_signed(req, 200, out, false, with_image); /* detached when the image is present (spec) */
}
