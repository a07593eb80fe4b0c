/* The capture stream; see capture_stream.h and docs/capture-stream.md. The upgrade
 * is decided in the request handler (ticket, liveness state, a free slot, the
 * ticket's compare-and-set), so a refused client holds nothing. An accepted stream
 * runs on its own thread (http/server.c): it reads one message at a time, tracks
 * each frame on the worker pool (face_track: the detector and landmarks only),
 * answers guidance (liveness/guidance.c), keeps the frames the mode needs and,
 * once complete, submits them exactly as an upload would. */
#include "api/capture_stream.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/common.h"
#include "api/handlers.h"
#include "api/liveness_jobs.h"
#include "api/liveness_state.h"
#include "core/log.h"
#include "http/websocket.h"
#include "liveness/envelope.h"
#include "liveness/guidance.h"

/* No API key has an empty tenant (config.c refuses one), so tickets never meet a
 * real tenant's sessions. */
#define TICKET_TENANT ""
#define TICKET_ID_BYTES 16   /* of SHA-256: the store key of a ticket */
#define SID_MAX 128          /* longer ids are no session's (404 at once) */
#define TICKET_GRACE_MS 60000 /* a ticket outlives its window a little: 409 TIMEOUT, not 404 */
#define TEXT_MAX ((size_t)64 << 10)
#define FRAME_HEADER_BYTES (4 + ENVELOPE_IV_BYTES)
#define STREAM_AAD_PREFIX "bioserver-stream-v1\n"
#define PASSIVE_FRAMES 3  /* consecutive well-placed frames: a stable face, the best of them is judged */
#define VIDEO_FRAMES 12   /* about a second of video at the SDK's pace: what PASSIVE_VIDEO's checks need */
#define MIN_FRAMES_MOVING 3
#define SECONDS_PER_CHALLENGE 3
#define TURN_YAW 0.15f    /* guidance yaw counted as a turn towards the target (the evaluation measures its own) */
#define DROP_STRIKES 3    /* seconds in a row with more drops than max_fps: abuse */
#define RESULT_WAIT_MS 20000
#define FRAME_WIDTH_HINT 640

enum { CLOSE_BAD = 4400, CLOSE_TIMEOUT = 4408, CLOSE_CONFLICT = 4409, CLOSE_TOO_FAST = 4429, CLOSE_UNAVAILABLE = 4503 };

typedef struct {
    app *app;
    char tenant[64], sid[SID_MAX + 1], nonce[64];
    json_t *item; /* the liveness item as the stream opened it */
    liveness_type type;
    int nb_challenge;
    challenge_direction challenges[CHALLENGE_MAX];
    int64_t window_end; /* monotonic ms */
    ws_conn *ws;
    const atomic_bool *stopping;
    uint8_t key[ENVELOPE_KEY_BYTES];
    bool started, pending;
    json_t *device_info, *sdk_info;
    int64_t started_at; /* monotonic ms */
    double last_frame_at; /* monotonic s */
    uint32_t next_seq;
    int64_t rate_window_at;
    int rate_drops, rate_strikes;
    double rate_tokens;
    guidance_state guide;
    uint8_t *frames[LIVENESS_MAX_FRAMES];
    size_t frame_len[LIVENESS_MAX_FRAMES];
    int64_t frame_time[LIVENESS_MAX_FRAMES]; /* epoch ms at receipt */
    int kept;
    size_t kept_bytes;
    int challenge_index;      /* ACTIVE: -1 until the frontal frame */
    int64_t challenge_since;
} capture_stream;

/* ---- the ticket ---------------------------------------------------------------------- */

/* Where the ticket of session sid is kept: a digest of the id, so the store holds no
 * second copy of the capability and nothing under the session's own name. */
static void ticket_id(const char *sid, char out[2 * TICKET_ID_BYTES + 1]) {
    char text[sizeof "bioserver-stream-ticket\n" + SID_MAX];
    int n = snprintf(text, sizeof text, "bioserver-stream-ticket\n%s", sid); /* sid: at most SID_MAX bytes */
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)text, (size_t)n, digest);
    for (int i = 0; i < TICKET_ID_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

int capture_stream_ticket_issue(app *a, const char *tenant, const char *sid, const char *server_random,
                                int64_t deadline_ms) {
    json_t *t = json_pack("{s:s, s:s, s:b}", "tenant", tenant, "nonce", server_random, "taken", 0);
    char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
    json_decref(t);
    if (!text) return STORE_NOMEM;
    store_value v = {(uint8_t *)text, strlen(text)};
    store *st = a->store;
    char id[2 * TICKET_ID_BYTES + 1];
    ticket_id(sid, id);
    st->ops->session_delete(st, TICKET_TENANT, id); /* a re-init replaces the ticket and its expiry */
    int rc = st->ops->session_create(st, TICKET_TENANT, id, &v, deadline_ms + TICKET_GRACE_MS);
    free(text);
    return rc;
}

/* The ticket of sid, parsed (*raw keeps the stored bytes for a compare-and-set). */
static json_t *ticket_load(store *st, const char *sid, store_value *raw, int *rc) {
    *raw = (store_value){0};
    char id[2 * TICKET_ID_BYTES + 1];
    ticket_id(sid, id);
    *rc = st->ops->session_get(st, TICKET_TENANT, id, raw, NULL);
    if (*rc) return NULL;
    json_t *t = json_loadb((const char *)raw->data, raw->len, 0, NULL);
    if (!api_json_string(t, "tenant") || !api_json_string(t, "nonce")) {
        json_decref(t);
        store_value_free(raw);
        *rc = STORE_CORRUPT;
        return NULL;
    }
    return t;
}

/* Takes the ticket of sid (compare-and-set taken false -> true), or only looks at
 * it (take false). Fills tenant and nonce; STORE_CONFLICT when it was taken already. */
static int ticket_use(store *st, const char *sid, bool take, char *tenant, size_t tenant_len, char *nonce,
                      size_t nonce_len) {
    store_value raw;
    int rc;
    json_t *t = ticket_load(st, sid, &raw, &rc);
    if (!t) return rc;
    rc = json_is_true(json_object_get(t, "taken")) ? STORE_CONFLICT : STORE_OK;
    snprintf(tenant, tenant_len, "%s", api_json_string(t, "tenant"));
    snprintf(nonce, nonce_len, "%s", api_json_string(t, "nonce"));
    if (rc == STORE_OK && take) {
        json_object_set_new(t, "taken", json_true());
        char *text = json_dumps(t, JSON_COMPACT);
        store_value v = {(uint8_t *)text, text ? strlen(text) : 0};
        char id[2 * TICKET_ID_BYTES + 1];
        ticket_id(sid, id);
        rc = text ? st->ops->session_update(st, TICKET_TENANT, id, &raw, &v) : STORE_NOMEM;
        free(text);
    }
    json_decref(t);
    store_value_free(&raw);
    return rc;
}

/* ---- opening (request handler) ----------------------------------------------------------- */

static void stream_free(capture_stream *cs) {
    if (!cs) return;
    for (int i = 0; i < cs->kept; i++) free(cs->frames[i]);
    json_decref(cs->item);
    json_decref(cs->device_info);
    json_decref(cs->sdk_info);
    atomic_fetch_sub(&cs->app->capture_streams, 1);
    OPENSSL_cleanse(cs->key, sizeof cs->key);
    free(cs);
}

static void stream_drop(void *cls) { stream_free(cls); }

/* The liveness item must wait for a capture with the ticket's serverRandom. */
static bool waiting_for_capture(http_request *req, capture_stream *cs) {
    const char *status = api_json_string(cs->item, "status"), *nonce = api_json_string(cs->item, "serverRandom");
    if (status && !strcmp(status, "INITIALIZED") &&
        time_now_ms() >= json_integer_value(json_object_get(cs->item, "deadlineMs"))) {
        liveness_timeout_and_notify(req->app, cs->tenant, cs->sid);
        status = "TIMEOUT";
    }
    if (!nonce || strcmp(nonce, cs->nonce) || !status || strcmp(status, "INITIALIZED")) {
        http_reply_error(req, 409, status && !strcmp(status, "TIMEOUT")
                                       ? "the capture window of these liveness parameters closed (TIMEOUT)"
                                       : "these liveness parameters are not waiting for a capture anymore");
        return false;
    }
    return true;
}

static bool parse_mode(capture_stream *cs) {
    capture_job *probe = liveness_job_new(cs->app, cs->tenant, cs->sid, cs->item);
    if (!probe) return false;
    cs->type = probe->request.type;
    cs->nb_challenge = probe->request.nb_challenge;
    liveness_job_free(probe);
    if (cs->type == LIVENESS_ACTIVE && challenge_derive((uint32_t)json_integer_value(json_object_get(cs->item, "seed")),
                                                       cs->nb_challenge, cs->challenges))
        cs->nb_challenge = 0;
    int64_t left = json_integer_value(json_object_get(cs->item, "deadlineMs")) - time_now_ms();
    cs->window_end = time_monotonic_ms() + left;
    cs->challenge_index = -1;
    guidance_init(&cs->guide, cs->type == LIVENESS_PASSIVE ? PASSIVE_FRAMES : 1);
    return true;
}

/* Reserves a stream slot; 503 when capture_stream_max are open. */
static bool reserve_slot(http_request *req) {
    app *a = req->app;
    int open = atomic_fetch_add(&a->capture_streams, 1);
    if (open < a->config.capture_stream_max) return true;
    atomic_fetch_sub(&a->capture_streams, 1);
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%d", a->config.retry_after_seconds);
    http_add_header(req, "Retry-After", seconds);
    http_reply_error(req, 503, "%d capture streams are open on this server, its limit; try again shortly", open);
    return false;
}

/* The stream for the request's session, after the checks an upgrade must pass
 * (take: the ticket is taken; else only looked at). NULL after replying. */
static capture_stream *stream_open(http_request *req, bool take) {
    app *a = req->app;
    const char *sid = req->params[0];
    capture_stream *cs = calloc(1, sizeof(*cs));
    if (!cs) {
        atomic_fetch_sub(&a->capture_streams, 1);
        http_reply_error(req, 500, "internal error: out of memory");
        return NULL;
    }
    cs->app = a; /* the slot reserve_slot took is now the stream's: stream_free gives it back */
    snprintf(cs->sid, sizeof cs->sid, "%s", sid);
    int rc = strlen(sid) > SID_MAX ? STORE_NOT_FOUND
                                   : ticket_use(a->store, sid, take, cs->tenant, sizeof cs->tenant, cs->nonce,
                                                sizeof cs->nonce);
    if (rc == STORE_CONFLICT) {
        http_reply_error(req, 409, "a capture stream was already opened for these liveness parameters");
    } else if (rc == STORE_NOT_FOUND) {
        http_reply_error(req, 404, "no bio-session with id %.128s waits for a capture (unknown, expired, or no liveness "
                         "parameters)", sid);
    } else if (rc) {
        api_reply_store_error(req, rc, "bio-session");
    } else {
        cs->item = liveness_item_load(a->store, cs->tenant, sid, &rc);
        if (!cs->item) api_reply_store_error(req, rc, "liveness parameters for this bio-session");
        else if (waiting_for_capture(req, cs) && parse_mode(cs)) return cs;
        else if (!req->status) http_reply_error(req, 500, "internal error: out of memory");
    }
    stream_free(cs);
    return NULL;
}


/* ---- messages ------------------------------------------------------------------------------ */

/* Sends msg (taken) as a text message; false when the peer is gone. */
static bool send_json(capture_stream *cs, json_t *msg) {
    char *text = msg ? json_dumps(msg, HTTP_JSON_FLAGS) : NULL;
    json_decref(msg);
    bool ok = text && ws_send_text(cs->ws, text, strlen(text)) == WS_OK;
    free(text);
    return ok;
}

static bool send_instruction(capture_stream *cs, const char *instruction) {
    return send_json(cs, json_pack("{s:s, s:s}", "type", "instruction", "instruction", instruction));
}

/* The error message, then the close frame: the stream ends. */
static void fail(capture_stream *cs, uint16_t close_code, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(capture_stream *cs, uint16_t close_code, int status, const char *fmt, ...) {
    char message[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *err = json_pack("{s:s, s:i, s:i, s:s}", "type", "error", "code", close_code, "status", status, "message", message);
    if (err && (status == 429 || status == 503)) {
        char when[ISO_TIME_LEN];
        time_format_iso(time_now_ms() + (int64_t)cs->app->config.retry_after_seconds * 1000, when);
        json_object_set_new(err, "unlockDateTime", json_string(when));
    }
    send_json(cs, err);
    ws_send_close(cs->ws, close_code, message);
    log_event("info", "capture stream %s closed (%u): %s", cs->sid, close_code, message);
}

static bool send_hello(capture_stream *cs) {
    app *a = cs->app;
    json_t *h = json_pack("{s:s, s:i, s:s, s:s, s:s, s:O, s:O, s:i, s:I, s:i, s:i, s:i, s:O}", "type", "hello", "version", 1,
                          "sessionId", cs->sid, "serverRandom", cs->nonce, "certificate",
                          envelope_certificate_b64(a->envelope), "livenessMode", json_object_get(cs->item, "type"),
                          "securityLevel", json_object_get(cs->item, "securityLevel"), "maxFps",
                          a->config.capture_stream_max_fps, "maxFrameBytes",
                          (json_int_t)a->config.capture_stream_max_frame_bytes, "maxFrames", LIVENESS_MAX_FRAMES,
                          "maxSeconds", a->config.capture_stream_max_seconds, "frameWidth", FRAME_WIDTH_HINT,
                          "deadlineMs", json_object_get(cs->item, "deadlineMs"));
    if (h && cs->type == LIVENESS_ACTIVE) {
        json_t *list = json_array();
        for (int i = 0; i < cs->nb_challenge; i++) json_array_append_new(list, json_string(challenge_name(cs->challenges[i])));
        json_object_set_new(h, "numberOfChallenge", json_integer(cs->nb_challenge));
        json_object_set_new(h, "challenges", list);
    }
    return send_json(cs, h);
}

/* {"type": "start", "encryptedKey": b64, "deviceInfo": {}, "sdkInfo": {}}. */
static bool handle_start(capture_stream *cs, json_t *msg) {
    if (cs->started) {
        fail(cs, CLOSE_BAD, 400, "start was already received");
        return false;
    }
    const char *wrapped = api_json_string(msg, "encryptedKey");
    size_t n = 0;
    uint8_t *raw = wrapped ? base64_decode(wrapped, strlen(wrapped), &n) : NULL;
    int rc = raw ? envelope_unwrap(cs->app->envelope, raw, n, cs->key) : ENVELOPE_ERR_FORMAT;
    free(raw);
    if (rc) {
        fail(cs, CLOSE_BAD, 400, "start: %s", raw || !wrapped ? envelope_strerror(ENVELOPE_ERR_KEY)
                                                                : "encryptedKey must be standard base64");
        return false;
    }
    json_t *dev = json_object_get(msg, "deviceInfo"), *sdk = json_object_get(msg, "sdkInfo");
    if (!liveness_info_fits(msg, "deviceInfo") || !liveness_info_fits(msg, "sdkInfo")) {
        fail(cs, CLOSE_BAD, 400, "start: deviceInfo and sdkInfo must be at most %d bytes each", LIVENESS_MAX_INFO_BYTES);
        return false;
    }
    if (json_is_object(dev)) cs->device_info = json_incref(dev);
    if (json_is_object(sdk)) cs->sdk_info = json_incref(sdk);
    cs->started = true;
    cs->started_at = cs->rate_window_at = time_monotonic_ms();
    cs->last_frame_at = time_monotonic_s();
    cs->rate_tokens = cs->app->config.capture_stream_max_fps / 2.0 + 1; /* a full bucket: see admit_rate */
    return send_json(cs, json_pack("{s:s}", "type", "started")) &&
           send_instruction(cs, cs->type == LIVENESS_ACTIVE ? "TRACKER_CHALLENGE_2D" : "TRACKER_CHALLENGE_DONT_MOVE");
}

/* ---- frames ---------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
    long max_pixels;
    face_result result;
    int rc;
    char err[160];
} track_job;

/* On a worker: the light tracker (face_track: detector and landmarks on a
 * downscaled decode; `make bench-capture` measures it against face_analyze). */
static void track_on_worker(void *worker_ctx, void *arg) {
    track_job *j = arg;
    j->rc = face_track(worker_ctx, j->data, j->len, j->max_pixels, &j->result, j->err, sizeof j->err);
}

/* Decrypts frame message m in place of plain (m_len - header - tag bytes). */
static bool open_frame(capture_stream *cs, const uint8_t *m, size_t len, uint8_t **plain, size_t *plain_len) {
    if (!cs->started) {
        fail(cs, CLOSE_BAD, 400, "a frame arrived before start");
        return false;
    }
    if (len < FRAME_HEADER_BYTES + ENVELOPE_TAG_BYTES + 1) {
        fail(cs, CLOSE_BAD, 400, "a frame is seq(4) || iv(12) || ciphertext with its 16-byte tag; got %zu bytes", len);
        return false;
    }
    uint32_t seq = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
    if (seq != cs->next_seq) {
        fail(cs, CLOSE_BAD, 400, seq < cs->next_seq ? "frame seq %u was already received (replay); expected %u"
                                                   : "frame seq %u skips frames (gap); expected %u", seq, cs->next_seq);
        return false;
    }
    char aad[sizeof STREAM_AAD_PREFIX + 129 + 64 + 16];
    int aad_len = snprintf(aad, sizeof aad, "%s%s\n%s\n%u", STREAM_AAD_PREFIX, cs->sid, cs->nonce, seq);
    size_t ct_len = len - FRAME_HEADER_BYTES;
    *plain = malloc(ct_len);
    int rc = *plain ? envelope_decrypt(cs->key, m + 4, m + FRAME_HEADER_BYTES, ct_len, (const uint8_t *)aad,
                                       (size_t)aad_len, *plain)
                    : ENVELOPE_ERR_NOMEM;
    if (rc) {
        free(*plain);
        *plain = NULL;
        fail(cs, CLOSE_BAD, 400, "frame %u: %s", seq, envelope_strerror(rc));
        return false;
    }
    *plain_len = ct_len - ENVELOPE_TAG_BYTES;
    cs->next_seq++;
    return true;
}

/* A token bucket of capture_stream_max_fps frames per second holding half a
 * second of them. Frames are timed when read, and a client paced at max_fps whose
 * frames queued behind a slow one reads as a burst: the half second absorbs that,
 * while a client that is really faster is dropped within a second. A dropped frame
 * is answered with a notice; more drops than max_fps in one second, DROP_STRIKES
 * seconds in a row, is abuse. Returns 1 to process, 0 to drop, -1 when the stream
 * was closed. */
static int admit_rate(capture_stream *cs, uint32_t seq) {
    int64_t now = time_monotonic_ms();
    int fps = cs->app->config.capture_stream_max_fps;
    if (now - cs->rate_window_at >= 1000) {
        cs->rate_strikes = cs->rate_drops > fps ? cs->rate_strikes + 1 : 0;
        cs->rate_drops = 0;
        cs->rate_window_at = now;
    }
    if (cs->rate_strikes >= DROP_STRIKES) {
        fail(cs, CLOSE_TOO_FAST, 429, "frames keep arriving faster than %d per second", fps);
        return -1;
    }
    double t = time_monotonic_s(), burst = fps / 2.0 + 1;
    cs->rate_tokens += (t - cs->last_frame_at) * fps;
    if (cs->rate_tokens > burst) cs->rate_tokens = burst;
    cs->last_frame_at = t;
    if (cs->rate_tokens >= 1) {
        cs->rate_tokens -= 1;
        return 1;
    }
    cs->rate_drops++;
    bool ok = send_json(cs, json_pack("{s:s, s:s, s:i, s:s}", "type", "notice", "code", "FRAME_DROPPED", "seq", (int)seq,
                                      "message", "frame dropped: the stream is over its frame rate"));
    return ok ? 0 : -1;
}

/* Keeps a frame (taking data); false when the capture is full: LIVENESS_MAX_FRAMES,
 * or as many bytes as an upload may carry (liveness_max_upload_bytes, base64 in JSON). */
static bool keep_frame(capture_stream *cs, uint8_t *data, size_t len) {
    size_t budget = cs->app->config.liveness_max_upload_bytes / 4 * 3;
    if (cs->kept >= LIVENESS_MAX_FRAMES || cs->kept_bytes + len > budget) return false;
    cs->kept_bytes += len;
    int64_t t = time_now_ms();
    if (cs->kept && t <= cs->frame_time[cs->kept - 1]) t = cs->frame_time[cs->kept - 1] + 1; /* strictly increasing */
    cs->frames[cs->kept] = data;
    cs->frame_len[cs->kept] = len;
    cs->frame_time[cs->kept] = t;
    cs->kept++;
    return true;
}

static void forget_frames(capture_stream *cs) {
    for (int i = 0; i < cs->kept; i++) free(cs->frames[i]);
    cs->kept = 0;
    cs->kept_bytes = 0;
}

/* ACTIVE: which challenge the user is on, advanced when the guidance yaw reaches its
 * side or its time is up. Returns the target reached on this frame. */
static bool advance_challenge(capture_stream *cs, const guidance_result *g) {
    if (cs->challenge_index < 0 || cs->challenge_index >= cs->nb_challenge) return false;
    float want = cs->challenges[cs->challenge_index] == CHALLENGE_LEFT ? 1.0f : -1.0f;
    bool on_target = g->yaw * want > TURN_YAW;
    int64_t now = time_monotonic_ms();
    if (on_target || now - cs->challenge_since >= SECONDS_PER_CHALLENGE * 1000) {
        cs->challenge_index++;
        cs->challenge_since = now;
    }
    return on_target;
}

/* Keeps the frame (taking data) when the mode wants it; true when the capture is
 * complete (or full: it is then submitted with what it holds). */
static bool collect(capture_stream *cs, uint8_t **data, size_t len, const guidance_result *g) {
    switch (cs->type) {
    case LIVENESS_PASSIVE:
        if (!g->placed) {
            forget_frames(cs); /* the frames kept must be one stable run */
            return false;
        }
        break;
    case LIVENESS_PASSIVE_VIDEO:
        if (!cs->kept && !g->placed) return false; /* the video starts on a placed face */
        break;
    default:
        if (cs->challenge_index < 0 && !g->placed) return false;
        if (cs->challenge_index < 0) {
            cs->challenge_index = 0;
            cs->challenge_since = time_monotonic_ms();
        }
    }
    if (!keep_frame(cs, *data, len)) return true;
    *data = NULL;
    if (cs->type == LIVENESS_PASSIVE) return cs->kept >= PASSIVE_FRAMES;
    if (cs->type == LIVENESS_PASSIVE_VIDEO) return cs->kept >= VIDEO_FRAMES;
    return cs->challenge_index >= cs->nb_challenge;
}

static json_t *tracking_message(capture_stream *cs, uint32_t seq, const face_result *r, const guidance_result *g,
                                bool on_target) {
    bool face = r->faces_found > 0;
    int needed = cs->type == LIVENESS_PASSIVE ? PASSIVE_FRAMES : cs->type == LIVENESS_PASSIVE_VIDEO ? VIDEO_FRAMES : 0;
    double progress = cs->type == LIVENESS_ACTIVE ? (cs->nb_challenge ? (double)(cs->challenge_index < 0 ? 0 : cs->challenge_index) / cs->nb_challenge : 0)
                                                  : (double)cs->kept / needed;
    json_t *m = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:s, s:{s:f, s:f}, s:f}", "type", "tracking", "seq", (int)seq,
                          "facex", face ? (int)r->box[0] : 0, "facey", face ? (int)r->box[1] : 0, "facew",
                          face ? (int)r->box[2] : 0, "faceh", face ? (int)r->box[3] : 0, "tooFar", g->too_far,
                          "tooClose", g->too_close, "positionInfo", guidance_position_name(g->position), "targetInfo",
                          "stability", (double)g->stability, "targetR", (double)g->target_r, "progress",
                          progress > 1 ? 1.0 : progress);
    if (m && cs->type == LIVENESS_ACTIVE) {
        json_t *circles = json_array();
        for (int i = 0; i < cs->nb_challenge; i++)
            json_array_append_new(circles, json_pack("{s:s}", "pos", cs->challenges[i] == CHALLENGE_LEFT ? "left" : "right"));
        int index = cs->challenge_index < 0 ? 0 : cs->challenge_index;
        json_object_set_new(m, "livenessActive",
                            json_pack("{s:o, s:i, s:b, s:b, s:b, s:f}", "challengeCircles", circles, "targetChallengeIndex",
                                      index, "targetOnHover", on_target, "stillFace", false, "movingPhone", false, "yaw",
                                      (double)g->yaw));
    }
    return m;
}

/* One frame message. Returns 1 when the capture is complete, 0 to go on, -1 when
 * the stream was closed. */
static int on_frame(capture_stream *cs, const uint8_t *m, size_t len) {
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    uint32_t seq = cs->next_seq;
    if (!open_frame(cs, m, len, &plain, &plain_len)) return -1;
    int admit = admit_rate(cs, seq);
    if (admit <= 0) {
        free(plain);
        return admit;
    }
    track_job j = {.data = plain, .len = plain_len, .max_pixels = cs->app->config.max_image_pixels};
    int rc = worker_pool_run(cs->app->workers, track_on_worker, &j);
    if (rc != WORKER_POOL_OK || j.rc == FACE_ERR_MODEL || j.rc == FACE_ERR_NOMEM) {
        free(plain);
        bool ok = send_json(cs, json_pack("{s:s, s:s, s:i, s:s}", "type", "notice", "code", "SERVER_BUSY", "seq", (int)seq,
                                          "message", "frame dropped: the server is busy"));
        return ok ? 0 : -1;
    }
    if (j.rc) {
        free(plain);
        fail(cs, CLOSE_BAD, 400, "frame %u: %s", seq, j.err);
        return -1;
    }
    guidance_frame gf = {.width = j.result.image_width, .height = j.result.image_height, .face = j.result.faces_found > 0};
    memcpy(gf.box, j.result.box, sizeof gf.box);
    memcpy(gf.eyes, j.result.eyes, sizeof gf.eyes);
    guidance_result g;
    guidance_step(&cs->guide, &gf, &g);
    bool on_target = cs->type == LIVENESS_ACTIVE && advance_challenge(cs, &g);
    bool complete = collect(cs, &plain, plain_len, &g);
    free(plain);
    if (!send_json(cs, tracking_message(cs, seq, &j.result, &g, on_target))) return -1;
    return complete ? 1 : 0;
}

/* ---- the end of a capture ---------------------------------------------------------------- */

static json_t *capture_json(capture_stream *cs) {
    json_t *frames = json_array(), *capture = json_pack("{s:o}", "frames", frames);
    for (int i = 0; capture && i < cs->kept; i++) {
        char *b64 = base64_encode(cs->frames[i], cs->frame_len[i]);
        if (!b64) {
            json_decref(capture);
            return NULL;
        }
        json_array_append_new(frames, json_pack("{s:I, s:s}", "timestamp", (json_int_t)cs->frame_time[i], "image", b64));
        free(b64);
    }
    if (capture && cs->device_info) json_object_set(capture, "deviceInfo", cs->device_info);
    if (capture && cs->sdk_info) json_object_set(capture, "sdkInfo", cs->sdk_info);
    return capture;
}

/* Waits for the verdict of the queued capture; the status, or IN_PROGRESS. */
static json_t *wait_verdict(capture_stream *cs) {
    int64_t until = time_monotonic_ms() + RESULT_WAIT_MS;
    for (;;) {
        int rc;
        json_t *item = liveness_item_load(cs->app->store, cs->tenant, cs->sid, &rc);
        const char *status = api_json_string(item, "status");
        if ((status && strcmp(status, "IN_PROGRESS")) || time_monotonic_ms() >= until || atomic_load(cs->stopping))
            return item;
        json_decref(item);
        usleep(50 * 1000);
    }
}

static void send_result(capture_stream *cs) {
    json_t *item = wait_verdict(cs);
    const char *status = api_json_string(item, "status");
    json_t *box = json_object_get(json_object_get(item, "landmarks"), "box");
    json_t *msg = json_pack("{s:s, s:s}", "type", "result", "livenessStatus", status ? status : "IN_PROGRESS");
    if (msg && json_is_object(box))
        json_object_set_new(msg, "bestImageInfo", json_pack("{s:O, s:O, s:O, s:O}", "x", json_object_get(box, "x"), "y",
                                                            json_object_get(box, "y"), "width", json_object_get(box, "width"),
                                                            "height", json_object_get(box, "height")));
    json_decref(item);
    send_json(cs, msg);
    ws_send_close(cs->ws, WS_CLOSE_NORMAL, "capture complete");
}

/* Submits the kept frames through the upload's path, then reports the verdict. */
static void finish(capture_stream *cs) {
    cs->pending = true;
    if (!send_instruction(cs, "TRACKER_CHALLENGE_PENDING")) return;
    json_t *capture = capture_json(cs);
    capture_job *job = capture ? liveness_job_new(cs->app, cs->tenant, cs->sid, cs->item) : NULL;
    char err[160];
    int rc = STORE_NOMEM;
    if (job && liveness_parse_frames(capture, job, err, sizeof err)) rc = liveness_submit_capture(cs->app, cs->item, capture, job);
    else if (job) rc = STORE_CORRUPT;
    if (job) liveness_job_free(job);
    json_decref(capture);
    if (rc == STORE_CONFLICT) fail(cs, CLOSE_CONFLICT, 409, "a capture was already submitted for these liveness parameters");
    else if (rc == STORE_CORRUPT) fail(cs, CLOSE_BAD, 400, "the capture is not usable: %s", err);
    else if (rc) fail(cs, CLOSE_UNAVAILABLE, 503, "the capture could not be queued (state store error %d)", rc);
    else if (send_json(cs, json_pack("{s:s, s:i}", "type", "tracking", "uploadProgress", 1))) send_result(cs);
}

/* The capture ran out of time (window, capture length): submit what it holds when
 * that is enough for the mode, else say why it ends. */
static void out_of_time(capture_stream *cs, const char *what) {
    int need = cs->type == LIVENESS_PASSIVE ? 1 : MIN_FRAMES_MOVING;
    if (cs->started && cs->kept >= need) finish(cs);
    else fail(cs, CLOSE_TIMEOUT, 408, "%s before a usable capture (%d well-placed frames kept)", what, cs->kept);
}

static int64_t next_deadline(const capture_stream *cs, const char **what) {
    const app *a = cs->app;
    int64_t idle = time_monotonic_ms() + (int64_t)a->config.capture_stream_idle_timeout * 1000, at = idle;
    *what = "the stream was idle";
    if (cs->window_end < at) {
        at = cs->window_end;
        *what = "the capture window closed";
    }
    int64_t length_end = cs->started_at + (int64_t)a->config.capture_stream_max_seconds * 1000;
    if (cs->started && length_end < at) {
        at = length_end;
        *what = "the capture reached capture_stream_max_seconds";
    }
    return at;
}

/* One message; false when the stream has ended. */
static bool on_message(capture_stream *cs, const ws_message *m) {
    if (m->opcode == WS_OPCODE_BINARY) {
        int rc = on_frame(cs, m->data, m->len);
        if (rc == 1) finish(cs);
        return rc == 0;
    }
    json_t *msg = json_loadb((const char *)m->data, m->len, 0, NULL);
    const char *type = api_json_string(msg, "type");
    bool go_on = true;
    if (!json_is_object(msg) || !type) {
        fail(cs, CLOSE_BAD, 400, "text messages are JSON objects with a \"type\"");
        go_on = false;
    } else if (!strcmp(type, "start")) {
        go_on = handle_start(cs, msg);
    } /* other types are ignored: later clients may say more */
    json_decref(msg);
    return go_on;
}

static void stream_loop(capture_stream *cs) {
    if (!send_hello(cs)) return;
    for (;;) {
        if (atomic_load(cs->stopping)) {
            fail(cs, WS_CLOSE_GOING_AWAY, 503, "the server is shutting down");
            return;
        }
        const char *what;
        int64_t deadline = next_deadline(cs, &what);
        ws_message m;
        int rc = ws_read_message(cs->ws, deadline, &m);
        if (rc == WS_ERR_TIMEOUT) {
            if (!strcmp(what, "the stream was idle")) fail(cs, CLOSE_TIMEOUT, 408, "no message for %d seconds", cs->app->config.capture_stream_idle_timeout);
            else out_of_time(cs, what);
            return;
        }
        if ((rc == WS_ERR_CLOSED || rc == WS_ERR_IO) && atomic_load(cs->stopping)) {
            fail(cs, WS_CLOSE_GOING_AWAY, 503, "the server is shutting down");
            return;
        }
        if (rc == WS_ERR_CLOSED || rc == WS_ERR_IO) return;
        if (rc) {
            fail(cs, ws_close_code_for(rc), rc == WS_ERR_TOO_BIG ? 413 : 400, "%s",
                 rc == WS_ERR_TOO_BIG ? "message over the size limit" : "WebSocket protocol error");
            return;
        }
        if (!on_message(cs, &m)) return;
    }
}

static void stream_run(void *cls, int fd, const char *extra, size_t extra_len, const atomic_bool *stopping) {
    capture_stream *cs = cls;
    cs->stopping = stopping;
    cs->ws = ws_conn_create(fd, extra, extra_len, TEXT_MAX, cs->app->config.capture_stream_max_frame_bytes);
    if (cs->ws) {
        stream_loop(cs);
        ws_linger(cs->ws, 1000, (size_t)8 << 20);
    }
    ws_conn_free(cs->ws);
    stream_free(cs);
}

/* A request that is no upgrade gets the refusal an upgrade would get now, taking
 * nothing, else 426: a browser cannot read why a WebSocket was refused, so the SDK
 * asks again this way (docs/capture-stream.md). */
static void refuse_like_an_upgrade(http_request *req, const char *why) {
    if (!reserve_slot(req)) return;
    capture_stream *cs = stream_open(req, false);
    stream_free(cs);
    if (req->status) return;
    http_add_header(req, "Upgrade", "websocket");
    http_add_header(req, "Sec-WebSocket-Version", "13");
    http_reply_error(req, 426, "%s", why);
}

void handle_capture_stream(http_request *req) {
    if (!liveness_ready(req)) return;
    char accept[WS_ACCEPT_LEN + 1];
    const char *bad = ws_handshake_check(req, accept);
    if (bad) {
        refuse_like_an_upgrade(req, bad);
        return;
    }
    if (!reserve_slot(req)) return;
    capture_stream *cs = stream_open(req, true);
    if (!cs) return;
    http_add_header(req, "Upgrade", "websocket");
    http_add_header(req, "Sec-WebSocket-Accept", accept);
    http_accept_upgrade(req, stream_run, stream_drop, cs);
}
