/* Replay liveness: init-liveness-parameters (POST/GET), the encrypted capture
 * upload (our addition, see docs/liveness.md), the asynchronous evaluation,
 * getReplayStatus v3 (replay-liveness-metadata) and the TIMEOUT handling.
 *
 * Several instances may share one Redis (docs/distributed.md), so the evaluation
 * and the TIMEOUT go through the store, not through this instance's memory:
 *  - the upload stores the decrypted capture as item kind "capture" and pushes a
 *    small job {tenant, session, nonce} on the store queue LIVENESS_QUEUE; the
 *    dispatcher of whichever instance has an idle worker pops it (liveness_run_job);
 *  - init files the session under its deadline in the store index LIVENESS_DUE;
 *    the dispatcher of whichever instance claims it first applies the TIMEOUT
 *    (liveness_deadline_due).
 * Callbacks are sent only by the caller whose compare-and-set of the session's
 * status won, so each status change is reported once, from one instance.
 *
 * State lives in two places, both expiring with the session:
 *  - the store item kind "liveness", id "current": parameters, status, results;
 *  - the session record's "livenessStatus" and "livenessNonce" (= serverRandom).
 * Every status transition is first a compare-and-set on the session record, so
 * exactly one of {upload, timeout, re-init} wins a race, and DeleteBioSession sees
 * IN_PROGRESS (409) for as long as a worker writes into the session. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "core/log.h"
#include "liveness/envelope.h"
#include "liveness/evaluate.h"
#include "liveness/notifier.h"

#define KIND_LIVENESS "liveness"
#define KIND_CAPTURE "capture" /* the decrypted capture, waiting for a worker */
#define ITEM_CURRENT "current"
#define SERVER_RANDOM_BYTES 32
#define DEFAULT_CHALLENGES 2
#define MAX_FRAME_BYTES ((size_t)4 << 20)
#define MAX_INFO_BYTES 4096   /* deviceInfo / sdkInfo, serialised */
#define CAS_RETRIES 8

/* ---- session record and item helpers --------------------------------------------- */

typedef struct {
    store_value raw; /* exactly as stored: the compare-and-set expectation */
    json_t *json;
} session_snapshot;

static int snapshot_load(store *st, const char *tenant, const char *sid, session_snapshot *s) {
    memset(s, 0, sizeof(*s));
    int rc = st->ops->session_get(st, tenant, sid, &s->raw, NULL);
    if (rc) return rc;
    s->json = json_loadb((const char *)s->raw.data, s->raw.len, 0, NULL);
    if (!s->json) {
        store_value_free(&s->raw);
        return STORE_NOMEM;
    }
    return STORE_OK;
}

static void snapshot_free(session_snapshot *s) {
    store_value_free(&s->raw);
    json_decref(s->json);
    memset(s, 0, sizeof(*s));
}

/* Moves the session record's liveness status from `from` (NULL = anything but
 * IN_PROGRESS) with nonce `nonce` (NULL = any) to `to`, under compare-and-set.
 * Returns STORE_OK, STORE_CONFLICT when the precondition does not hold, or another
 * store error. */
static int session_transition(store *st, const char *tenant, const char *sid, const char *from, const char *nonce,
                              const char *to, const char *new_nonce) {
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        session_snapshot s;
        int rc = snapshot_load(st, tenant, sid, &s);
        if (rc) return rc;
        const char *cur = api_json_string(s.json, "livenessStatus");
        const char *cur_nonce = api_json_string(s.json, "livenessNonce");
        bool ok = from ? cur && !strcmp(cur, from) : !(cur && !strcmp(cur, "IN_PROGRESS"));
        if (ok && nonce) ok = cur_nonce && !strcmp(cur_nonce, nonce);
        if (!ok) {
            snapshot_free(&s);
            return STORE_CONFLICT;
        }
        json_object_set_new(s.json, "livenessStatus", json_string(to));
        if (new_nonce) json_object_set_new(s.json, "livenessNonce", json_string(new_nonce));
        char *text = json_dumps(s.json, JSON_COMPACT);
        store_value v = {(uint8_t *)text, text ? strlen(text) : 0};
        rc = text ? st->ops->session_update(st, tenant, sid, &s.raw, &v) : STORE_NOMEM;
        free(text);
        snapshot_free(&s);
        if (rc != STORE_CONFLICT) return rc; /* a concurrent unrelated edit: read again */
    }
    return STORE_CONFLICT;
}

static json_t *item_load(store *st, const char *tenant, const char *sid, int *rc) {
    store_value v = {0};
    *rc = st->ops->item_get(st, tenant, sid, KIND_LIVENESS, ITEM_CURRENT, &v);
    if (*rc) return NULL;
    json_t *j = json_loadb((const char *)v.data, v.len, 0, NULL);
    store_value_free(&v);
    if (!j) *rc = STORE_NOMEM;
    return j;
}

static int item_save(store *st, const char *tenant, const char *sid, json_t *item) {
    char *text = json_dumps(item, JSON_COMPACT);
    if (!text) return STORE_NOMEM;
    store_value v = {(uint8_t *)text, strlen(text)};
    int rc = st->ops->item_put(st, tenant, sid, KIND_LIVENESS, ITEM_CURRENT, &v);
    free(text);
    return rc;
}

static bool liveness_ready(http_request *req) {
    app *a = req->app;
    if (!a->envelope || !a->notifier) {
        http_reply_error(req, 503, "replay liveness is not available on this server: %s", a->liveness_error);
        return false;
    }
    return true;
}

/* ---- TIMEOUT ---------------------------------------------------------------------- */

/* INITIALIZED past its deadline becomes TIMEOUT. True when this call made it so. */
static bool apply_timeout(app *a, const char *tenant, const char *sid) {
    int rc;
    json_t *item = item_load(a->store, tenant, sid, &rc);
    if (!item) return false;
    const char *status = api_json_string(item, "status");
    json_int_t deadline = json_integer_value(json_object_get(item, "deadlineMs"));
    bool due = status && !strcmp(status, "INITIALIZED") && time_now_ms() >= deadline;
    bool done = due && session_transition(a->store, tenant, sid, "INITIALIZED", api_json_string(item, "serverRandom"),
                                          "TIMEOUT", NULL) == STORE_OK;
    if (done) {
        json_object_set_new(item, "status", json_string("TIMEOUT"));
        json_object_set_new(item, "reason", json_string("no capture was uploaded in time"));
        item_save(a->store, tenant, sid, item);
        log_event("info", "replay liveness of session %s timed out", sid);
    }
    json_decref(item);
    return done;
}

bool liveness_timeout_hook(void *ctx, const char *tenant, const char *sid) { return apply_timeout(ctx, tenant, sid); }

/* The session's callbackURL (malloc'd), or NULL. */
static char *session_callback(store *st, const char *tenant, const char *sid) {
    session_snapshot s;
    if (snapshot_load(st, tenant, sid, &s) != STORE_OK) return NULL;
    const char *cb = api_json_string(s.json, "callbackURL");
    char *copy = cb ? strdup(cb) : NULL;
    snapshot_free(&s);
    return copy;
}

/* Applies a due TIMEOUT and, when this call made it so, sends the callback. */
static void timeout_and_notify(app *a, const char *tenant, const char *sid) {
    if (!apply_timeout(a, tenant, sid)) return;
    char *cb = session_callback(a->store, tenant, sid);
    if (cb) liveness_notifier_callback(a->notifier, cb, sid);
    free(cb);
}

/* Deadline index members are ["tenant","session id"]: JSON, so no separator can be
 * forged by an id. */
static char *deadline_member(const char *tenant, const char *sid) {
    json_t *m = json_pack("[s,s]", tenant, sid);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return text;
}

void liveness_deadline_due(void *ctx, const char *member) {
    app *a = ctx;
    json_t *m = json_loads(member, 0, NULL);
    const char *tenant = json_string_value(json_array_get(m, 0)), *sid = json_string_value(json_array_get(m, 1));
    if (a->notifier && tenant && sid) timeout_and_notify(a, tenant, sid);
    json_decref(m);
}

/* Files the TIMEOUT in the shared deadline index, so that any instance applies it
 * even if this one stops; without the store, this instance's notifier watches. */
static void watch_deadline(app *a, const char *tenant, const char *sid, const char *callback, int64_t deadline) {
    char *member = deadline_member(tenant, sid);
    int rc = member ? a->store->ops->deadline_add(a->store, LIVENESS_DUE, member, deadline) : STORE_NOMEM;
    free(member);
    if (rc) liveness_notifier_watch(a->notifier, tenant, sid, callback, deadline);
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

static bool parse_challenges(http_request *req, json_t *in, liveness_type type, int *out) {
    json_t *v = json_object_get(in, "nbChallenge");
    *out = type == LIVENESS_ACTIVE ? DEFAULT_CHALLENGES : 0;
    if (!v || json_is_null(v)) return true;
    double n = json_number_value(v);
    if (n < 1 || n > CHALLENGE_MAX) {
        http_reply_error(req, 400, "nbChallenge must be between 1 and %d", CHALLENGE_MAX);
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

void handle_init_liveness(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *in = api_parse_json_object(req, true);
    if (!in || !api_check_fields(req, in, params_fields, "the liveness parameters")) {
        json_decref(in);
        return;
    }
    liveness_type type;
    liveness_level level;
    int challenges;
    bool ok = parse_type(req, api_json_string(in, "type"), &type) &&
              parse_level(req, api_json_string(in, "securityLevel"), &level) &&
              parse_challenges(req, in, type, &challenges);
    json_t *rd = json_object_get(in, "imageRetrievalDisabled");
    bool retrieval_disabled = !json_is_false(rd); /* the spec's default: true */
    char id[UUID_STR_LEN + 128];
    const char *given = api_json_string(in, "id");
    if (given) snprintf(id, sizeof id, "%s", given);
    else uuid_generate(id);
    json_decref(in);
    if (!ok) return;
    app *a = req->app;
    const char *tenant = req->key->tenant, *sid = req->params[0];
    session_snapshot s;
    int rc = snapshot_load(a->store, tenant, sid, &s);
    if (rc) return api_reply_store_error(req, rc, "bio-session");
    const char *callback = api_json_string(s.json, "callbackURL");
    char *callback_copy = callback ? strdup(callback) : NULL;
    snapshot_free(&s);
    int64_t deadline = time_now_ms() + (int64_t)a->config.liveness_timeout_seconds * 1000;
    json_t *item = new_params_item(id, type, level, challenges, retrieval_disabled, deadline);
    if (!item) {
        free(callback_copy);
        return http_reply_error(req, 500, "internal error: no randomness for the liveness parameters");
    }
    const char *nonce = api_json_string(item, "serverRandom");
    rc = session_transition(a->store, tenant, sid, NULL, NULL, "INITIALIZED", nonce);
    if (rc == STORE_OK) rc = item_save(a->store, tenant, sid, item);
    if (rc == STORE_CONFLICT) {
        http_reply_error(req, 409, "a replay liveness is in progress for this bio-session; wait for its result");
    } else if (rc) {
        api_reply_store_error(req, rc, "bio-session");
    } else {
        watch_deadline(a, tenant, sid, callback_copy, deadline);
        api_reply_signed(req, 200, params_public(a, item), false, false);
    }
    free(callback_copy);
    json_decref(item);
}

void handle_get_liveness_params(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *session = api_load_session(req, req->params[0], NULL); /* 404 for other tenants */
    if (!session) return;
    json_decref(session);
    int rc;
    json_t *item = item_load(req->app->store, req->key->tenant, req->params[0], &rc);
    if (!item) return api_reply_store_error(req, rc, "liveness parameters for this bio-session");
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

/* A decoded capture: built once at upload to validate it, and again by the
 * evaluating worker (possibly on another instance) from the stored capture. */
typedef struct {
    app *app;
    char tenant[64], sid[129], nonce[64];
    char load_error[160]; /* set when the stored capture cannot be used: ERROR verdict */
    liveness_request request;
    liveness_frame frames[LIVENESS_MAX_FRAMES];
    uint8_t *frame_data[LIVENESS_MAX_FRAMES];
    int frame_count;
} capture_job;

static void capture_job_free(capture_job *job) {
    for (int i = 0; i < job->frame_count; i++) free(job->frame_data[i]);
    free(job);
}

static uint8_t *decode_b64_field(http_request *req, json_t *obj, const char *name, size_t *len) {
    const char *text = api_json_string(obj, name);
    uint8_t *out = text ? base64_decode(text, strlen(text), len) : NULL;
    if (!out) http_reply_error(req, 400, "field '%s' is required and must be standard base64", name);
    return out;
}

static bool info_ok(http_request *req, json_t *capture, const char *name) {
    json_t *v = json_object_get(capture, name);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    bool ok = !text || strlen(text) <= MAX_INFO_BYTES;
    free(text);
    if (!ok) http_reply_error(req, 400, "%s in the capture is larger than %d bytes", name, MAX_INFO_BYTES);
    return ok;
}

/* Frames: [{"timestamp": ms, "image": base64 JPEG/PNG/WebP}], in strictly
 * increasing time; limits on count, size and duration. False with err (the 400
 * message) when they do not hold. */
static bool parse_frames(json_t *capture, capture_job *job, char *err, size_t err_len) {
    json_t *frames = json_object_get(capture, "frames");
    size_t n = json_array_size(frames);
    int need = job->request.type == LIVENESS_PASSIVE ? 1 : 3;
    if (!json_is_array(frames) || n < (size_t)need || n > LIVENESS_MAX_FRAMES) {
        snprintf(err, err_len, "the capture must hold %d to %d frames for %s", need, LIVENESS_MAX_FRAMES,
                 liveness_type_name(job->request.type));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(frames, i), *ts = json_object_get(f, "timestamp");
        const char *img = api_json_string(f, "image");
        if (!json_is_object(f) || json_object_size(f) != 2 || !json_is_number(ts) || !img) {
            snprintf(err, err_len, "frame %zu must be {\"timestamp\": milliseconds, \"image\": base64}", i);
            return false;
        }
        double t = json_number_value(ts);
        if (t < 0 || t > 9e15 || (i > 0 && t <= (double)job->frames[i - 1].timestamp_ms)) {
            snprintf(err, err_len, "frame %zu: timestamps must be non-negative and strictly increasing", i);
            return false;
        }
        size_t len = 0;
        uint8_t *data = strlen(img) <= MAX_FRAME_BYTES / 3 * 4 + 4 ? base64_decode(img, strlen(img), &len) : NULL;
        if (!data || len == 0) {
            free(data);
            snprintf(err, err_len, "frame %zu: the image must be base64 of at most %zu bytes", i, MAX_FRAME_BYTES);
            return false;
        }
        job->frame_data[i] = data;
        job->frames[i] = (liveness_frame){.timestamp_ms = (int64_t)t, .data = data, .len = len};
        job->frame_count = (int)i + 1;
    }
    return true;
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
        apply_timeout(req->app, req->key->tenant, req->params[0]);
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

/* The evaluation request (type, level, seed...) from the liveness item. */
static capture_job *capture_job_new(app *a, const char *tenant, const char *sid, json_t *item) {
    capture_job *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->app = a;
    snprintf(job->tenant, sizeof job->tenant, "%s", tenant);
    snprintf(job->sid, sizeof job->sid, "%s", sid);
    const char *nonce = api_json_string(item, "serverRandom"), *type = api_json_string(item, "type");
    const char *level = api_json_string(item, "securityLevel");
    snprintf(job->nonce, sizeof job->nonce, "%s", nonce ? nonce : "");
    for (int t = LIVENESS_PASSIVE; t <= LIVENESS_ACTIVE; t++)
        if (type && !strcmp(type, liveness_type_name(t))) job->request.type = t;
    for (int l = LEVEL_LOW; l <= LEVEL_HIGH; l++)
        if (level && !strcmp(level, liveness_level_name(l))) job->request.level = l;
    job->request.seed = (uint32_t)json_integer_value(json_object_get(item, "seed"));
    job->request.nb_challenge = (int)json_integer_value(json_object_get(item, "nbChallenge"));
    job->request.max_pixels = a->config.max_image_pixels;
    return job;
}

/* Validates the decrypted capture at upload (400 on the first problem). */
static capture_job *capture_job_create(http_request *req, json_t *item, json_t *capture) {
    capture_job *job = capture_job_new(req->app, req->key->tenant, req->params[0], item);
    if (!job) {
        http_reply_error(req, 500, "internal error: out of memory");
        return NULL;
    }
    char err[160];
    if (!api_check_fields(req, capture, capture_fields, "the decrypted capture") || !info_ok(req, capture, "deviceInfo") ||
        !info_ok(req, capture, "sdkInfo")) {
        capture_job_free(job);
        return NULL;
    }
    if (!parse_frames(capture, job, err, sizeof err)) {
        http_reply_error(req, 400, "%s", err);
        capture_job_free(job);
        return NULL;
    }
    return job;
}

/* Stores the frames as the session item "capture" (it expires and is deleted with
 * the session) and queues only a reference to it: the queue entry stays small, and
 * biometric data never outlives its session in a queue nobody drains. */
static int queue_capture(app *a, const capture_job *job, json_t *capture) {
    json_t *frames = json_pack("{s:O}", "frames", json_object_get(capture, "frames"));
    char *text = frames ? json_dumps(frames, JSON_COMPACT) : NULL;
    json_decref(frames);
    if (!text) return STORE_NOMEM;
    store_value v = {(uint8_t *)text, strlen(text)};
    int rc = a->store->ops->item_put(a->store, job->tenant, job->sid, KIND_CAPTURE, ITEM_CURRENT, &v);
    free(text);
    if (rc) return rc;
    json_t *ref = json_pack("{s:s, s:s, s:s}", "tenant", job->tenant, "session", job->sid, "nonce", job->nonce);
    text = ref ? json_dumps(ref, JSON_COMPACT) : NULL;
    json_decref(ref);
    if (!text) return STORE_NOMEM;
    v = (store_value){(uint8_t *)text, strlen(text)};
    rc = a->store->ops->job_push(a->store, LIVENESS_QUEUE, &v);
    free(text);
    return rc;
}

/* Marks the capture IN_PROGRESS (session first: the compare-and-set makes a
 * concurrent second upload lose) and queues the evaluation for any instance. */
static void start_evaluation(http_request *req, json_t *item, json_t *capture, capture_job *job) {
    app *a = req->app;
    int rc = session_transition(a->store, job->tenant, job->sid, "INITIALIZED", job->nonce, "IN_PROGRESS", NULL);
    if (rc) {
        if (rc == STORE_CONFLICT) http_reply_error(req, 409, "a capture was already uploaded for these liveness parameters (replays are refused)");
        else api_reply_store_error(req, rc, "bio-session");
        return;
    }
    json_object_set_new(item, "status", json_string("IN_PROGRESS"));
    json_t *dev = json_object_get(capture, "deviceInfo"), *sdk = json_object_get(capture, "sdkInfo");
    if (json_is_object(dev)) json_object_set(item, "deviceInfo", dev);
    if (json_is_object(sdk)) json_object_set(item, "sdkInfo", sdk);
    rc = item_save(a->store, job->tenant, job->sid, item);
    if (rc == STORE_OK) rc = queue_capture(a, job, capture);
    if (rc) {
        /* Not queued: give the capture window back so the client may retry. */
        a->store->ops->item_delete(a->store, job->tenant, job->sid, KIND_CAPTURE, ITEM_CURRENT);
        session_transition(a->store, job->tenant, job->sid, "IN_PROGRESS", NULL, "INITIALIZED", NULL);
        json_object_set_new(item, "status", json_string("INITIALIZED"));
        item_save(a->store, job->tenant, job->sid, item);
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
    json_t *item = session ? item_load(req->app->store, req->key->tenant, req->params[0], &rc) : NULL;
    json_decref(session);
    if (session && !item) api_reply_store_error(req, rc, "liveness parameters for this bio-session");
    json_t *capture = item && upload_allowed(req, item) ? open_envelope(req, env, api_json_string(item, "serverRandom")) : NULL;
    capture_job *job = capture ? capture_job_create(req, item, capture) : NULL;
    if (job) start_evaluation(req, item, capture, job);
    if (job) capture_job_free(job);
    json_decref(capture);
    json_decref(item);
    json_decref(env);
}

/* ---- evaluation (worker thread, on whichever instance popped the job) ------------------ */

static json_t *landmarks_json(const liveness_outcome *o) {
    return json_pack("{s:{s:f, s:f, s:f, s:f}, s:{s:i, s:i, s:i, s:i}}", "eyes", "x1", o->eyes[0], "y1", o->eyes[1],
                     "x2", o->eyes[2], "y2", o->eyes[3], "box", "x", (int)o->box[0], "y", (int)o->box[1], "width",
                     (int)o->box[2], "height", (int)o->box[3]);
}

/* Saves the verdict; true when this call's compare-and-set IN_PROGRESS -> verdict
 * won, i.e. when this instance is the one to send the callback. */
static bool store_result(capture_job *job, const liveness_outcome *o) {
    app *a = job->app;
    int rc;
    json_t *item = item_load(a->store, job->tenant, job->sid, &rc);
    if (!item) {
        log_event("error", "replay liveness of session %s: result lost (store error %d)", job->sid, rc);
        return false;
    }
    const char *status = liveness_verdict_name(o->verdict);
    json_object_set_new(item, "status", json_string(status));
    json_object_set_new(item, "reason", json_string(o->reason));
    json_object_set_new(item, "livenessScore", json_real(o->live_score));
    if (o->best_frame >= 0) {
        const liveness_frame *f = &job->frames[o->best_frame];
        char *b64 = base64_encode(f->data, f->len);
        if (b64) json_object_set_new(item, "bestImage", json_string(b64));
        free(b64);
        json_object_set_new(item, "landmarks", landmarks_json(o));
    }
    rc = item_save(a->store, job->tenant, job->sid, item);
    json_decref(item);
    /* Only now may DeleteBioSession go ahead. */
    int rc2 = session_transition(a->store, job->tenant, job->sid, "IN_PROGRESS", NULL, status, NULL);
    if (rc || rc2) log_event("error", "replay liveness of session %s: cannot store the result (%d/%d)", job->sid, rc, rc2);
    return rc2 == STORE_OK;
}

/* Rebuilds the job from the store. NULL when the job is stale (the session is gone,
 * or no longer waits for this capture): nothing to do. A capture that cannot be
 * read still gives a job, with load_error, so the session gets an ERROR verdict
 * instead of staying IN_PROGRESS. */
static capture_job *job_load(app *a, const char *tenant, const char *sid, const char *nonce) {
    int rc;
    json_t *item = item_load(a->store, tenant, sid, &rc);
    const char *status = item ? api_json_string(item, "status") : NULL, *cur = item ? api_json_string(item, "serverRandom") : NULL;
    capture_job *job = status && !strcmp(status, "IN_PROGRESS") && cur && !strcmp(cur, nonce)
                           ? capture_job_new(a, tenant, sid, item) : NULL;
    json_decref(item);
    if (!job) {
        log_event("info", "replay liveness of session %s: queued capture is stale (store %d), skipped", sid, rc);
        return NULL;
    }
    store_value v = {0};
    rc = a->store->ops->item_get(a->store, tenant, sid, KIND_CAPTURE, ITEM_CURRENT, &v);
    json_t *capture = rc ? NULL : json_loadb((const char *)v.data, v.len, 0, NULL);
    store_value_free(&v);
    if (!capture) snprintf(job->load_error, sizeof job->load_error, "the uploaded capture could not be read back (store %d)", rc);
    else parse_frames(capture, job, job->load_error, sizeof job->load_error); /* frees with the job */
    json_decref(capture);
    return job;
}

static void evaluate_job(void *worker_ctx, capture_job *job) {
    app *a = job->app;
    liveness_outcome o = {.verdict = VERDICT_ERROR, .best_frame = -1};
    if (job->load_error[0])
        snprintf(o.reason, sizeof o.reason, "%s", job->load_error);
    else if (!worker_ctx || !a->liveness)
        snprintf(o.reason, sizeof o.reason, "the face or liveness models are not loaded on this server");
    else
        liveness_evaluate(a->liveness, worker_ctx, &job->request, job->frames, job->frame_count, &o);
    log_event("info", "replay liveness of session %s: %s (%s)", job->sid, liveness_verdict_name(o.verdict), o.reason);
    /* The frames are biometric data: gone as soon as they are evaluated. */
    a->store->ops->item_delete(a->store, job->tenant, job->sid, KIND_CAPTURE, ITEM_CURRENT);
    if (!store_result(job, &o) || !a->notifier) return;
    char *cb = session_callback(a->store, job->tenant, job->sid);
    if (cb) liveness_notifier_callback(a->notifier, cb, job->sid);
    free(cb);
}

void liveness_run_job(void *ctx, void *worker_ctx, const store_value *payload) {
    app *a = ctx;
    json_t *ref = json_loadb((const char *)payload->data, payload->len, 0, NULL);
    const char *tenant = api_json_string(ref, "tenant"), *sid = api_json_string(ref, "session");
    const char *nonce = api_json_string(ref, "nonce");
    capture_job *job = tenant && sid && nonce ? job_load(a, tenant, sid, nonce) : NULL;
    if (job) {
        evaluate_job(worker_ctx, job);
        capture_job_free(job);
    }
    json_decref(ref);
}

/* ---- getReplayStatus v3 ------------------------------------------------------------- */

void handle_replay_metadata(http_request *req) {
    if (!liveness_ready(req)) return;
    json_t *session = api_load_session(req, req->params[0], NULL);
    if (!session) return;
    json_decref(session);
    app *a = req->app;
    timeout_and_notify(a, req->key->tenant, req->params[0]); /* lazily, should no dispatcher have yet */
    int rc;
    json_t *item = item_load(a->store, req->key->tenant, req->params[0], &rc);
    if (!item) return api_reply_store_error(req, rc, "liveness parameters for this bio-session");
    json_t *out = json_pack("{s:O, s:O}", "id", json_object_get(item, "id"), "status", json_object_get(item, "status"));
    json_t *image = json_object_get(item, "bestImage");
    bool with_image = image && !json_is_true(json_object_get(item, "imageRetrievalDisabled"));
    if (with_image) json_object_set(out, "image", image);
    static const char *const extra[] = {"landmarks", "deviceInfo", "sdkInfo", "reason", NULL};
    for (int i = 0; extra[i]; i++) {
        json_t *v = json_object_get(item, extra[i]);
        if (v) json_object_set(out, extra[i], v);
    }
    json_decref(item);
    api_reply_signed(req, 200, out, false, with_image); /* detached when the image is present (spec) */
}

/* ---- the web capture page ------------------------------------------------------------ */

#define WEB_MAX_FILE ((long)1 << 20)

static const struct { const char *name, *type; } web_files[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"capture.js", "text/javascript; charset=utf-8"},
    {"style.css", "text/css; charset=utf-8"},
    {NULL, NULL},
};

/* Only the files listed above, from the configured folder: no path ever comes
 * from the request, so there is nothing to traverse. */
void handle_web_capture(http_request *req) {
    const char *name = req->param_count > 0 ? req->params[0] : "index.html";
    int i = 0;
    while (web_files[i].name && strcmp(web_files[i].name, name)) i++;
    if (!web_files[i].name) return http_reply_error(req, 404, "no such file in the capture page");
    char path[1024];
    snprintf(path, sizeof path, "%s/capture/%s", req->app->config.web_dir, web_files[i].name);
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    char *data = n >= 0 && n <= WEB_MAX_FILE ? arena_alloc(req->arena, (size_t)n + 1) : NULL;
    bool ok = data && fseek(f, 0, SEEK_SET) == 0 && fread(data, 1, (size_t)n, f) == (size_t)n;
    if (f) fclose(f);
    if (!ok) return http_reply_error(req, 404, "the capture page is not installed on this server (%s)", web_files[i].name);
    http_add_header(req, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'");
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_add_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, web_files[i].type, data, (size_t)n);
}
