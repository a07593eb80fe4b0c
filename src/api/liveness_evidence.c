/* Liveness evidence: what is kept, its shared record, and where it shows; see
 * liveness_evidence.h. */
#include "api/liveness_evidence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/liveness_state.h"
#include "core/log.h"
#include "liveness/evidence.h"

/* ---- the record (store item) ------------------------------------------------------------ */

static json_t *record_load(store *st, const char *tenant, const char *sid) {
    store_value v = {0};
    if (st->ops->item_get(st, tenant, sid, EVIDENCE_KIND, LIVENESS_ITEM, &v)) return NULL;
    json_t *j = json_loadb((const char *)v.data, v.len, 0, NULL);
    store_value_free(&v);
    return j;
}

static int record_save(store *st, const char *tenant, const char *sid, json_t *record) {
    char *text = json_dumps(record, JSON_COMPACT);
    store_value v = {(uint8_t *)text, text ? strlen(text) : 0};
    int rc = text ? st->ops->item_put(st, tenant, sid, EVIDENCE_KIND, LIVENESS_ITEM, &v) : STORE_NOMEM;
    free(text);
    return rc;
}

/* The reference's ImageStorage / VideoStorage object. */
static json_t *storage_object(app *a, const evidence_object *obj) {
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "region", a->config.evidence_s3_region, "bucketName",
                     a->config.evidence_s3_bucket, "key", obj->key, "hash", obj->sha256, "hashAlgorithm", "SHA_256",
                     "contentType", obj->content_type);
}

/* Removes slot from the record's pending list; true when none is left. */
static bool settle(json_t *record, const char *slot) {
    json_t *pending = json_object_get(record, "pending");
    for (size_t i = json_array_size(pending); i-- > 0;) {
        const char *name = json_string_value(json_array_get(pending, i));
        if (name && !strcmp(name, slot)) json_array_remove(pending, i);
    }
    return json_array_size(pending) == 0;
}

/* ---- hooks of the uploader (its thread; serialised by it) ------------------------------------- */

static bool session_alive(void *ctx, const char *tenant, const char *sid) {
    app *a = ctx;
    store_value v = {0};
    /* Only a session known to exist gets its evidence: when the store cannot say
     * (down), nothing is uploaded that might belong to an expired session. */
    int rc = a->store->ops->session_get(a->store, tenant, sid, &v, NULL);
    store_value_free(&v);
    return rc == STORE_OK;
}

static void evidence_done(void *ctx, const evidence_object *obj, evidence_outcome outcome, const char *reason) {
    app *a = ctx;
    if (outcome == EVIDENCE_SKIPPED) return; /* the session and its record are gone */
    json_t *record = record_load(a->store, obj->tenant, obj->session_id);
    const char *capture = record ? api_json_string(record, "captureId") : NULL;
    if (!capture || strcmp(capture, obj->tag)) { /* a later capture's record, or none */
        json_decref(record);
        return;
    }
    bool last = settle(record, obj->slot);
    const char *status = api_json_string(record, "status");
    if (outcome == EVIDENCE_STORED) {
        json_object_set_new(record, obj->slot, storage_object(a, obj));
    } else if (status && strcmp(status, "FAILED")) { /* the first failure explains */
        char why[EVIDENCE_REASON_MAX + 40];
        snprintf(why, sizeof why, "%s: %s", obj->slot, reason);
        json_object_set_new(record, "status", json_string("FAILED"));
        json_object_set_new(record, "reason", json_string(why));
    }
    status = api_json_string(record, "status");
    if (last && status && !strcmp(status, "PENDING")) json_object_set_new(record, "status", json_string("STORED"));
    int rc = record_save(a->store, obj->tenant, obj->session_id, record);
    if (rc) log_event("error", "liveness evidence of session %s: cannot record its state (store %d)", obj->session_id, rc);
    json_decref(record);
}

int liveness_evidence_init(app *a, char *err, size_t err_len) {
    const server_config *c = &a->config;
    if (!c->evidence_s3_url[0]) return 0;
    const char *access = c->evidence_s3_access_key[0] ? c->evidence_s3_access_key : getenv("BIOSERVER_S3_ACCESS_KEY");
    const char *secret = c->evidence_s3_secret_key[0] ? c->evidence_s3_secret_key : getenv("BIOSERVER_S3_SECRET_KEY");
    if (!access || !*access) access = getenv("AWS_ACCESS_KEY_ID");
    if (!secret || !*secret) secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!access || !*access || !secret || !*secret) {
        snprintf(err, err_len, "evidence_s3_url is set but no credentials are: set evidence_s3_access_key and "
                               "evidence_s3_secret_key, or BIOSERVER_S3_ACCESS_KEY and BIOSERVER_S3_SECRET_KEY");
        return -1;
    }
    evidence_target t = {c->evidence_s3_url, c->evidence_s3_region, c->evidence_s3_bucket, access, secret};
    evidence_hooks hooks = {.alive = session_alive, .done = evidence_done, .ctx = a};
    a->evidence = evidence_store_create(&t, &hooks, err, err_len);
    if (!a->evidence) return -1;
    log_event("info", "liveness evidence goes to %s, bucket %s (region %s)", c->evidence_s3_url, c->evidence_s3_bucket,
              c->evidence_s3_region);
    return 0;
}

/* ---- what is kept (worker thread) ------------------------------------------------------------- */

static bool wanted(int on, liveness_verdict v) {
    return on == EVIDENCE_ON_ALL || (on == EVIDENCE_ON_SUCCESS) == (v == VERDICT_SUCCESS);
}

/* The frame's type from its first bytes (decoding accepted only these three). */
static void image_type(const uint8_t *d, size_t n, const char **content_type, const char **name) {
    *content_type = "application/octet-stream", *name = "best-image.bin";
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) *content_type = "image/jpeg", *name = "best-image.jpg";
    else if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8)) *content_type = "image/png", *name = "best-image.png";
    else if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) *content_type = "image/webp", *name = "best-image.webp";
}

typedef struct {
    evidence_object obj;
    uint8_t *data;
    size_t len;
} planned;

static bool plan_object(capture_job *job, const char *capture_id, const char *slot, const char *name, const char *type,
                        planned *p) {
    evidence_object *o = &p->obj;
    memset(o, 0, sizeof(*o));
    snprintf(o->tenant, sizeof o->tenant, "%s", job->tenant);
    snprintf(o->session_id, sizeof o->session_id, "%s", job->sid);
    snprintf(o->tag, sizeof o->tag, "%s", capture_id);
    snprintf(o->slot, sizeof o->slot, "%s", slot);
    snprintf(o->content_type, sizeof o->content_type, "%s", type);
    return evidence_key(job->app->config.evidence_prefix, job->tenant, job->sid, capture_id, name, o->key, sizeof o->key) == 0;
}

/* The objects to keep for this outcome; returns how many (their data malloc'd). */
static int plan(capture_job *job, const liveness_outcome *o, const char *capture_id, planned out[2]) {
    unsigned keep = job->app->config.evidence_keep;
    int n = 0;
    if ((keep & EVIDENCE_KEEP_BEST_IMAGE) && o->best_frame >= 0) {
        const liveness_frame *f = &job->frames[o->best_frame];
        const char *type, *name;
        image_type(f->data, f->len, &type, &name);
        out[n].data = malloc(f->len);
        if (out[n].data && plan_object(job, capture_id, "imageStorage", name, type, &out[n])) {
            memcpy(out[n].data, f->data, f->len);
            out[n++].len = f->len;
        } else {
            free(out[n].data);
        }
    }
    /* There is no video: the capture is its timestamped frames, kept as uploaded. */
    if ((keep & EVIDENCE_KEEP_CAPTURE) && job->capture_raw &&
        plan_object(job, capture_id, "videoStorage", "capture.json", "application/json", &out[n])) {
        out[n].data = job->capture_raw;
        out[n++].len = job->capture_len;
        job->capture_raw = NULL;
    }
    return n;
}

void liveness_evidence_keep(capture_job *job, const liveness_outcome *o) {
    app *a = job->app;
    if (!a->evidence || !wanted(a->config.evidence_on, o->verdict)) return;
    char capture_id[UUID_STR_LEN];
    uuid_generate(capture_id);
    planned objs[2];
    int n = plan(job, o, capture_id, objs);
    if (n == 0) return;
    json_t *pending = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(pending, json_string(objs[i].obj.slot));
    json_t *record = json_pack("{s:s,s:s,s:s,s:o}", "captureId", capture_id, "nonce", job->nonce, "status", "PENDING",
                               "pending", pending);
    int rc = record ? record_save(a->store, job->tenant, job->sid, record) : STORE_NOMEM;
    json_decref(record);
    /* Without its record the metadata cannot say where the evidence went; it is
     * still uploaded (audits need it more than the metadata does). */
    if (rc) log_event("error", "liveness evidence of session %s: cannot record it as pending (store %d)", job->sid, rc);
    for (int i = 0; i < n; i++) evidence_store_put(a->evidence, &objs[i].obj, objs[i].data, objs[i].len);
}

/* ---- where it shows ----------------------------------------------------------------------------- */

void liveness_evidence_attach(app *a, const char *tenant, const char *sid, json_t *item, json_t *out) {
    if (!a->evidence) return;
    json_t *record = record_load(a->store, tenant, sid);
    const char *nonce = api_json_string(record, "nonce"), *current = api_json_string(item, "serverRandom");
    if (nonce && current && !strcmp(nonce, current)) {
        static const char *const slots[] = {"imageStorage", "videoStorage", NULL};
        for (int i = 0; slots[i]; i++) {
            json_t *v = json_object_get(record, slots[i]);
            if (v) json_object_set(out, slots[i], v);
        }
        json_t *state = json_pack("{s:O}", "status", json_object_get(record, "status"));
        json_t *reason = json_object_get(record, "reason");
        if (reason) json_object_set(state, "reason", reason);
        json_object_set_new(out, "evidenceStorage", state);
    }
    json_decref(record);
}

bool liveness_evidence_failing(app *a) {
    if (!a->evidence) return false;
    evidence_stats st;
    evidence_store_stats(a->evidence, &st);
    return st.last_error_ms > st.last_success_ms;
}

json_t *liveness_evidence_component(app *a) {
    if (!a->evidence) return json_pack("{s:s}", "status", "DISABLED");
    evidence_stats st;
    evidence_store_stats(a->evidence, &st);
    json_t *c = json_pack("{s:s,s:s,s:s,s:i,s:I,s:I}", "status", st.last_error_ms > st.last_success_ms ? "DOWN" : "UP",
                          "bucketName", a->config.evidence_s3_bucket, "region", a->config.evidence_s3_region, "pending",
                          st.pending, "stored", (json_int_t)st.stored, "failed", (json_int_t)st.failed);
    if (st.last_error_ms) {
        char when[ISO_TIME_LEN];
        time_format_iso(st.last_error_ms, when);
        json_object_set_new(c, "lastError", json_pack("{s:s,s:s}", "message", st.last_error, "time", when));
    }
    return c;
}

char *liveness_evidence_metrics(app *a, char *text) {
    if (!a->evidence) return text;
    evidence_stats st;
    evidence_store_stats(a->evidence, &st);
    char *out = NULL;
    int n = asprintf(&out,
                     "%s# HELP bioserver_evidence_stored_total Liveness evidence objects stored in the object store.\n"
                     "# TYPE bioserver_evidence_stored_total counter\nbioserver_evidence_stored_total %lld\n"
                     "# HELP bioserver_evidence_upload_failures_total Failed evidence upload attempts.\n"
                     "# TYPE bioserver_evidence_upload_failures_total counter\nbioserver_evidence_upload_failures_total %lld\n"
                     "# HELP bioserver_evidence_failed_total Evidence objects given up (refused, out of attempts, queue full).\n"
                     "# TYPE bioserver_evidence_failed_total counter\nbioserver_evidence_failed_total %lld\n"
                     "# HELP bioserver_evidence_skipped_total Evidence objects not uploaded: their bio-session ended first.\n"
                     "# TYPE bioserver_evidence_skipped_total counter\nbioserver_evidence_skipped_total %lld\n"
                     "# HELP bioserver_evidence_pending Evidence objects waiting for the object store.\n"
                     "# TYPE bioserver_evidence_pending gauge\nbioserver_evidence_pending %d\n",
                     text, st.stored, st.failed_attempts, st.failed, st.skipped, st.pending);
    free(text);
    return n < 0 ? NULL : out;
}
