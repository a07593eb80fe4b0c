/* Capture jobs: the queued reference to an uploaded capture, its frames, and the
 * evaluation on whichever instance's worker pops it; see liveness_jobs.h. */
#include "api/liveness_jobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/face_input.h"
#include "api/face_store.h"
#include "api/liveness_evidence.h"
#include "api/liveness_state.h"
#include "core/log.h"
#include "liveness/notifier.h"

#define MAX_FRAME_BYTES ((size_t)4 << 20)
/* A capture handed out this many times without a verdict (its instances died, or
 * the store kept failing): it may be what kills them, so the next delivery gives
 * an ERROR verdict instead of taking down one more instance. */
#define MAX_DELIVERIES 3

void liveness_job_free(capture_job *job) {
    for (int i = 0; i < job->frame_count; i++) free(job->frame_data[i]);
    free(job->capture_raw);
    free(job);
}

/* Frames: [{"timestamp": ms, "image": base64 JPEG/PNG/WebP}], in strictly
 * increasing time; limits on count, size and duration. False with err (the 400
 * message) when they do not hold. */
bool liveness_parse_frames(json_t *capture, capture_job *job, char *err, size_t err_len) {
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
        /* The text-length bound only saves decoding a huge string; the limit is on the bytes. */
        uint8_t *data = strlen(img) <= MAX_FRAME_BYTES / 3 * 4 + 4 ? base64_decode(img, strlen(img), &len) : NULL;
        if (!data || len == 0 || len > MAX_FRAME_BYTES) {
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

/* The evaluation request (type, level, seed...) from the liveness item. */
capture_job *liveness_job_new(app *a, const char *tenant, const char *sid, json_t *item) {
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

/* Stores the frames as the session item "capture" (it expires and is deleted with
 * the session) and queues only a reference to it: the queue entry stays small, and
 * biometric data never outlives its session in a queue nobody drains. */
int liveness_queue_capture(app *a, const capture_job *job, json_t *capture) {
    json_t *frames = json_pack("{s:O}", "frames", json_object_get(capture, "frames"));
    char *text = frames ? json_dumps(frames, JSON_COMPACT) : NULL;
    json_decref(frames);
    if (!text) return STORE_NOMEM;
    store_value v = {(uint8_t *)text, strlen(text)};
    int rc = a->store->ops->item_put(a->store, job->tenant, job->sid, LIVENESS_CAPTURE_KIND, LIVENESS_ITEM, &v);
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

bool liveness_info_fits(json_t *capture, const char *name) {
    json_t *v = json_object_get(capture, name);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    bool ok = !text || strlen(text) <= LIVENESS_MAX_INFO_BYTES;
    free(text);
    return ok;
}

/* Session first: the compare-and-set makes a concurrent second submission lose. */
int liveness_submit_capture(app *a, json_t *item, json_t *capture, capture_job *job) {
    int rc = liveness_session_transition(a->store, job->tenant, job->sid, "INITIALIZED", job->nonce, "IN_PROGRESS", NULL);
    if (rc) return rc;
    json_object_set_new(item, "status", json_string("IN_PROGRESS"));
    json_t *dev = json_object_get(capture, "deviceInfo"), *sdk = json_object_get(capture, "sdkInfo");
    if (json_is_object(dev)) json_object_set(item, "deviceInfo", dev);
    if (json_is_object(sdk)) json_object_set(item, "sdkInfo", sdk);
    rc = liveness_item_save(a->store, job->tenant, job->sid, item);
    if (rc == STORE_OK) rc = liveness_queue_capture(a, job, capture);
    if (rc) {
        /* Not queued: give the capture window back so the client may retry. */
        a->store->ops->item_delete(a->store, job->tenant, job->sid, LIVENESS_CAPTURE_KIND, LIVENESS_ITEM);
        liveness_session_transition(a->store, job->tenant, job->sid, "IN_PROGRESS", NULL, "INITIALIZED", NULL);
        json_object_set_new(item, "status", json_string("INITIALIZED"));
        liveness_item_save(a->store, job->tenant, job->sid, item);
        if (rc == STORE_CONFLICT) rc = STORE_UNAVAILABLE; /* only the first transition's conflict means a replay */
    }
    return rc;
}

/* ---- evaluation (worker thread, on whichever instance popped the job) ------------------ */

static json_t *landmarks_json(const liveness_outcome *o) {
    return json_pack("{s:{s:f, s:f, s:f, s:f}, s:{s:i, s:i, s:i, s:i}}", "eyes", "x1", o->eyes[0], "y1", o->eyes[1],
                     "x2", o->eyes[2], "y2", o->eyes[3], "box", "x", (int)o->box[0], "y", (int)o->box[1], "width",
                     (int)o->box[2], "height", (int)o->box[3]);
}

/* The best frame as a face of the session (WebCapture's bestImageId): its face,
 * image and matches are then readable like any other face. */
typedef struct {
    char face_id[UUID_STR_LEN]; /* empty when no face was stored */
    bool has_age;
    double age;
} best_face;

static void store_best_face(capture_job *job, void *worker_ctx, const liveness_outcome *o, best_face *best) {
    app *a = job->app;
    const liveness_frame *f = &job->frames[o->best_frame];
    face_result *r = calloc(1, sizeof(*r));
    face_options opt = {.want_embedding = true, .want_age = true, .max_pixels = a->config.max_image_pixels};
    char err[160];
    store_value session = {0};
    int64_t expires_ms = 0;
    bool ok = r && face_analyze(worker_ctx, f->data, f->len, &opt, r, err, sizeof err) == FACE_OK && r->faces_found > 0 &&
              a->store->ops->session_get(a->store, job->tenant, job->sid, &session, &expires_ms) == STORE_OK;
    json_t *record = ok ? json_loadb((const char *)session.data, session.len, 0, NULL) : NULL;
    bool keep_image = json_is_true(json_object_get(record, "imageStorageEnabled"));
    json_decref(record);
    store_value_free(&session);
    char *tpl = ok ? template_encode(&a->templates, job->tenant, a->config.default_mode, r->embedding, r->embedding_dim) : NULL;
    if (tpl) {
        char fid[UUID_STR_LEN];
        uuid_generate(fid);
        face_input in = {.image = f->data, .image_len = f->len, .image_type = "SELFIE", .friendly_name = "bestImage",
                         .mode = a->config.default_mode};
        json_t *face = api_face_json(&in, r, fid, in.mode, tpl, time_now_ms(), expires_ms);
        store_value img = {(uint8_t *)f->data, f->len};
        int rc = keep_image ? a->store->ops->item_put(a->store, job->tenant, job->sid, KIND_IMAGE, fid, &img) : STORE_OK;
        if (rc == STORE_OK) rc = face_record_put(a, job->tenant, job->sid, fid, face, in.mode, r->embedding, r->embedding_dim);
        if (rc == STORE_OK) memcpy(best->face_id, fid, sizeof fid);
        else if (keep_image) a->store->ops->item_delete(a->store, job->tenant, job->sid, KIND_IMAGE, fid); /* no orphan */
        if (rc != STORE_OK) log_event("error", "replay liveness of session %s: best image not stored as a face (store %d)", job->sid, rc);
        json_decref(face);
        best->has_age = r->has_age;
        best->age = round(r->age * 10) / 10;
    }
    free(tpl);
    free(r);
}

/* Saves the verdict: STORE_OK when this call's compare-and-set IN_PROGRESS ->
 * verdict won, i.e. when this instance is the one to send the callback;
 * STORE_CONFLICT or STORE_NOT_FOUND when another run decided or the session is
 * gone; another store error when the job should run again. */
static int store_result(capture_job *job, const liveness_outcome *o, const best_face *best) {
    app *a = job->app;
    int rc;
    json_t *item = liveness_item_load(a->store, job->tenant, job->sid, &rc);
    if (!item) {
        log_event("error", "replay liveness of session %s: result not stored (store error %d)", job->sid, rc);
        return rc;
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
    if (best->face_id[0]) json_object_set_new(item, "bestImageId", json_string(best->face_id));
    if (best->has_age) json_object_set_new(item, "ageEstimated", json_real(best->age));
    rc = liveness_item_save(a->store, job->tenant, job->sid, item);
    json_decref(item);
    /* Only now may DeleteBioSession go ahead; the nonce makes sure it is still this capture's session state. */
    if (rc == STORE_OK)
        rc = liveness_session_transition(a->store, job->tenant, job->sid, "IN_PROGRESS", job->nonce, status, NULL);
    if (rc && rc != STORE_CONFLICT)
        log_event("error", "replay liveness of session %s: cannot store the result (store %d)", job->sid, rc);
    return rc;
}

/* True when the session still waits for the capture of this nonce: its record,
 * which every status change compare-and-sets, is IN_PROGRESS for that nonce. *rc
 * is the store's answer (STORE_NOT_FOUND: the session is gone). */
static bool session_awaits(app *a, const char *tenant, const char *sid, const char *nonce, int *rc) {
    liveness_snapshot s;
    *rc = liveness_snapshot_load(a->store, tenant, sid, &s);
    if (*rc) return false;
    const char *status = api_json_string(s.json, "livenessStatus"), *cur = api_json_string(s.json, "livenessNonce");
    bool awaits = status && !strcmp(status, "IN_PROGRESS") && cur && !strcmp(cur, nonce);
    liveness_snapshot_free(&s);
    return awaits;
}

/* A store answer that means "try again later" rather than "nothing to do". */
static bool transient(int rc) { return rc != STORE_OK && rc != STORE_NOT_FOUND && rc != STORE_CONFLICT; }

/* Rebuilds the job from the store. NULL when the job is stale (the session is gone,
 * or no longer waits for this capture: nothing to do) or, with *retry, when the
 * store failed. A capture that cannot be parsed still gives a job, with
 * load_error, so the session gets an ERROR verdict instead of staying IN_PROGRESS. */
static capture_job *job_load(app *a, const char *tenant, const char *sid, const char *nonce, bool *retry) {
    int rc;
    json_t *item = session_awaits(a, tenant, sid, nonce, &rc) ? liveness_item_load(a->store, tenant, sid, &rc) : NULL;
    capture_job *job = item ? liveness_job_new(a, tenant, sid, item) : NULL;
    json_decref(item);
    store_value v = {0};
    if (job) rc = a->store->ops->item_get(a->store, tenant, sid, LIVENESS_CAPTURE_KIND, LIVENESS_ITEM, &v);
    *retry = transient(rc);
    if (!job || *retry) {
        log_event(*retry ? "warn" : "info", "replay liveness of session %s: %s (store %d)", sid,
                  *retry ? "the store failed, the capture is evaluated again later" : "queued capture is stale, skipped", rc);
        if (job) liveness_job_free(job);
        return NULL;
    }
    json_t *capture = rc ? NULL : json_loadb((const char *)v.data, v.len, 0, NULL);
    if (!capture) snprintf(job->load_error, sizeof job->load_error, "the uploaded capture could not be read back (store %d)", rc);
    else liveness_parse_frames(capture, job, job->load_error, sizeof job->load_error); /* frees with the job */
    if (capture && a->evidence && (a->config.evidence_keep & EVIDENCE_KEEP_CAPTURE)) {
        job->capture_raw = v.data; /* the evidence of the capture, exactly as stored */
        job->capture_len = v.len;
        v = (store_value){0};
    }
    store_value_free(&v);
    json_decref(capture);
    return job;
}

/* Evaluates, stores the verdict and calls back when this run won. False when the
 * store failed before the verdict was in: the job must run again. */
static bool evaluate_job(void *worker_ctx, capture_job *job) {
    app *a = job->app;
    liveness_outcome o = {.verdict = VERDICT_ERROR, .best_frame = -1};
    if (job->load_error[0])
        snprintf(o.reason, sizeof o.reason, "%s", job->load_error);
    else if (!worker_ctx || !a->liveness)
        snprintf(o.reason, sizeof o.reason, "the face or liveness models are not loaded on this server");
    else
        liveness_evaluate(a->liveness, worker_ctx, &job->request, job->frames, job->frame_count, &o);
    log_event("info", "replay liveness of session %s: %s (%s)", job->sid, liveness_verdict_name(o.verdict), o.reason);
    /* Re-read before writing anything: a job whose lease ran out while it was still
     * evaluated here may have been finished by another instance meanwhile. */
    int rc;
    if (!session_awaits(a, job->tenant, job->sid, job->nonce, &rc)) {
        log_event("info", "replay liveness of session %s: no longer waits for this capture (store %d), result dropped", job->sid, rc);
        return !transient(rc);
    }
    best_face best = {0};
    if (o.verdict == VERDICT_SUCCESS && o.best_frame >= 0) store_best_face(job, worker_ctx, &o, &best);
    rc = store_result(job, &o, &best);
    if (transient(rc)) return false; /* the frames stay for the next run */
    /* The frames are biometric data: gone as soon as the verdict is in. */
    a->store->ops->item_delete(a->store, job->tenant, job->sid, LIVENESS_CAPTURE_KIND, LIVENESS_ITEM);
    if (rc != STORE_OK) return true; /* another run's verdict stands, with its evidence and callback */
    liveness_evidence_keep(job, &o); /* queued: the verdict and the callback never wait for it */
    if (!a->notifier) return true;
    char *cb = liveness_session_callback(a->store, job->tenant, job->sid);
    if (cb) liveness_notifier_callback(a->notifier, cb, job->sid);
    free(cb);
    return true;
}

bool liveness_run_job(void *ctx, void *worker_ctx, const store_value *payload, int delivery) {
    app *a = ctx;
    json_t *ref = json_loadb((const char *)payload->data, payload->len, 0, NULL);
    const char *tenant = api_json_string(ref, "tenant"), *sid = api_json_string(ref, "session");
    const char *nonce = api_json_string(ref, "nonce");
    bool retry = false;
    capture_job *job = tenant && sid && nonce ? job_load(a, tenant, sid, nonce, &retry) : NULL;
    if (job)
        log_event(delivery > 1 ? "warn" : "info", "replay liveness of session %s: evaluating (delivery %d)%s", sid, delivery,
                  delivery > 1 ? ", an earlier run stopped before the verdict" : "");
    if (job && delivery > MAX_DELIVERIES && !job->load_error[0])
        snprintf(job->load_error, sizeof job->load_error,
                 "the capture was handed out %d times without a verdict (instances stopped or the store failed)", delivery - 1);
    bool done = !retry;
    if (job) {
        done = evaluate_job(worker_ctx, job);
        liveness_job_free(job);
    }
    json_decref(ref);
    return done;
}
