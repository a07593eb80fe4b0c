/* Builds and tears down the server context; see app.h. */
#include "api/app.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/dispatcher.h"
#include "api/face_store.h"
#include "api/handlers.h"
#include "api/liveness_evidence.h"
#include "api/liveness_jobs.h"
#include "api/liveness_state.h"
#include "api/modes.h"
#include "core/keyring.h"
#include "core/log.h"
#include "core/util.h"
#include "gallery/gallery.h"
#include "liveness/envelope.h"
#include "liveness/evaluate.h"
#include "liveness/evidence.h"
#include "liveness/callback_policy.h"
#include "liveness/notifier.h"
#include "sign/secret.h"
#include "store/sealed_store.h"

/* The mode table's dimensions (api/modes.h) must be what the loaded models make:
 * otherwise a template of a retired algorithm could pass for a current one. */
static bool modes_match_models(const face_engine *e, char *err, size_t err_len) {
    for (int i = 0; biometric_modes[i].name; i++) {
        const biometric_mode *m = &biometric_modes[i];
        int made = m->accurate ? face_accurate_dim(e) : face_engine_embedding_dim(e);
        if (made != m->dim) {
            snprintf(err, err_len, "mode %s runs %s (%d values) but the models make %d values", m->name, m->algorithm,
                     m->dim, made);
            return false;
        }
    }
    return true;
}

/* Each worker thread owns its inference sessions. */
static void *worker_init(void *shared, int index) {
    (void)index;
    if (!shared) return NULL;
    char err[256];
    face_worker *w = face_worker_create(shared, err, sizeof err);
    if (!w) log_event("error", "worker %d has no face sessions: %s", index, err);
    return w;
}

static void worker_destroy(void *ctx) { face_worker_free(ctx); }

/* The sealed store opens a listing's items on the idle workers too. */
static void open_on_workers(void *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg) {
    worker_pool_parallel_for(pool, n, fn, arg);
}

/* The dispatcher: evaluates captures uploaded to any instance sharing the store
 * (unless liveness_dispatch is off) and applies their TIMEOUTs. */
static void dispatcher_init(app *a) {
    dispatcher_config dc = {
        .store = a->store,
        .pool = a->workers,
        .workers = a->config.workers,
        .queue = a->config.liveness_dispatch ? LIVENESS_QUEUE : NULL,
        .lease_ms = (int64_t)a->config.liveness_job_lease_seconds * 1000,
        .deadlines = LIVENESS_DUE,
        .run = liveness_run_job,
        .due = liveness_deadline_due,
        .ctx = a,
    };
    a->dispatcher = dispatcher_start(&dc);
    if (!a->dispatcher) log_event("error", "replay liveness: cannot start the dispatcher thread");
}

/* Replay liveness: its own encryption key (never the signing key), the PAD model
 * (each worker runs it in its own face_worker), the callback thread and the dispatcher. A
 * failure here degrades only the liveness routes (503). */
static void liveness_init(app *a) {
    a->envelope = envelope_key_load_or_create(a->config.data_dir, a->liveness_error, sizeof a->liveness_error);
    if (a->envelope) a->notifier = liveness_notifier_create(a->callbacks, liveness_timeout_hook, a);
    if (a->faces) a->liveness = liveness_engine_load(a->config.models_dir, a->liveness_error,
                                                     sizeof a->liveness_error);
    else snprintf(a->liveness_error, sizeof a->liveness_error, "it needs the face models");
    if (a->notifier) dispatcher_init(a);
    if (!a->liveness || !a->notifier) log_event("error", "replay liveness degraded: %s", a->liveness_error);
}

/* Galleries live beside the state store: in the data directory for the embedded
 * store, in the same Redis otherwise. A failure degrades only their routes (503). */
static void galleries_init(app *a) {
    gallery_store *gs = NULL;
    if (!strcmp(a->config.store_url, "memory")) {
        char path[600];
        snprintf(path, sizeof path, "%s/galleries.sqlite3", a->config.data_dir);
        gs = gallery_store_sqlite_open(path, a->config.gallery_full_sync, a->galleries_error, sizeof a->galleries_error);
    } else {
        gs = gallery_store_redis_open(a->config.store_url, a->config.redis_password, a->galleries_error,
                                      sizeof a->galleries_error);
    }
    gallery_service_config gc = {.store = gs, .search_threads = a->config.gallery_search_threads};
    if (gs) a->galleries = gallery_service_open(&gc, a->galleries_error, sizeof a->galleries_error);
    if (!a->galleries) log_event("error", "galleries unavailable: %s", a->galleries_error);
}

/* The at-rest key ring, and the version 1 template key only when old templates
 * are still to be accepted (docs/security.md). */
static int keys_init(app *a, char *err, size_t err_len) {
    a->data_keys = data_keyring_load_or_create(a->config.data_dir, err, err_len);
    if (!a->data_keys) return -1;
    a->templates.ring = a->data_keys;
    if (!a->config.legacy_templates) return 0;
    if (secret_load_or_create(a->config.data_dir, "template-key.bin", a->template_v1_key, sizeof a->template_v1_key,
                              err, err_len))
        return -1;
    a->templates.v1_mac_key = a->template_v1_key;
    return 0;
}

/* Acknowledged writes must survive a store restart (docs/distributed.md): a store
 * that cannot promise it is a warning, or a start-up error with
 * redis_require_durable. */
static int store_durability_check(app *a, char *err, size_t err_len) {
    const char *note = a->store->ops->durability(a->store);
    if (!note) return 0;
    if (a->config.redis_require_durable) {
        snprintf(err, err_len, "redis_require_durable: the store's durability is %s", note);
        return -1;
    }
    log_event("warn", "store durability %s", note);
    return 0;
}

int app_init(app *a, const server_config *cfg, char *err, size_t err_len) {
    memset(a, 0, sizeof(*a));
    a->config = *cfg;
    a->started_ms = time_now_ms();
    a->keys = keyring_create(&a->config, err, err_len);
    if (!a->keys) goto fail;
    /* Every row's operation (rows repeat operations; metrics keeps each name once). */
    size_t rows = 0;
    while (api_routes[rows].pattern) rows++;
    const char **ops = calloc(rows + 1, sizeof(*ops));
    for (size_t i = 0; ops && i < rows; i++) ops[i] = api_routes[i].operation;
    _Static_assert(METRICS_MAX_KEYS >= KEYRING_MAX, "every keyring entry needs its metrics row");
    a->metrics = ops ? metrics_create(ops, KEYRING_MAX) : NULL;
    free(ops);
    a->signer = signer_load_or_create(a->config.data_dir, err, err_len);
    if (!a->metrics || !a->signer) goto fail;
    if (signer_presign_start(a->signer, APP_PRESIGNED_NONCES))
        log_event("warn", "no precomputed signing nonces: every signature computes its own");
    a->callbacks = callback_policy_create(a->config.callback_allow_private, a->config.callback_allow, err, err_len);
    if (!a->callbacks) goto fail;
    if (keys_init(a, err, err_len)) goto fail;
    a->store = store_open_auth(a->config.store_url, a->config.redis_password, APP_MAX_ITEMS_PER_SESSION, err, err_len);
    /* Items that hold biometric data are encrypted before they reach the backend. */
    static const char *const sealed_kinds[] = {KIND_FACE, KIND_IMAGE, LIVENESS_KIND, LIVENESS_CAPTURE_KIND, NULL};
    if (a->store) a->store = store_sealed_create(a->store, a->data_keys, sealed_kinds);
    if (!a->store || store_durability_check(a, err, err_len)) goto fail;
    /* Without a calibration, scores would be guesses: match routes answer 503. */
    a->far_loaded = far_table_load(&a->far, a->config.calibration_file, a->far_error, sizeof a->far_error) == 0 &&
                    far_table_load(&a->far_accurate, a->config.calibration_accurate_file, a->far_error,
                                   sizeof a->far_error) == 0;
    if (!a->far_loaded) log_event("error", "%s", a->far_error);
    /* Missing models degrade the service (503 on face routes, /monitor says why)
     * instead of refusing to start: sessions and certificates still work. */
    a->faces = face_engine_load(a->config.models_dir, a->faces_error, sizeof a->faces_error);
    if (a->faces && !modes_match_models(a->faces, a->faces_error, sizeof a->faces_error)) {
        face_engine_free(a->faces);
        a->faces = NULL;
    }
    if (!a->faces) log_event("error", "face models not loaded: %s", a->faces_error);
    else log_event("info", "face models loaded: %s", face_engine_describe(a->faces));
    worker_hooks hooks = {.init = worker_init, .destroy = worker_destroy, .shared = a->faces};
    a->workers = worker_pool_create(a->config.workers, a->config.queue_depth, &hooks);
    if (!a->workers) {
        snprintf(err, err_len, "cannot start %d worker threads", a->config.workers);
        goto fail;
    }
    store_sealed_set_parallel(a->store, open_on_workers, a->workers);
    if (liveness_evidence_init(a, err, err_len)) goto fail;
    liveness_init(a);
    galleries_init(a);
    return 0;
fail:
    app_cleanup(a);
    return -1;
}

const far_table *app_far(const app *a, const char *mode) {
    return biometric_mode_accurate(mode) ? &a->far_accurate : &a->far;
}

const char *app_unavailable_reason(app *a) {
    if (strcmp(a->store->ops->status(a->store), "UP")) return "the state store is unavailable";
    if (!a->faces) return "the face models are not loaded (see the server log)";
    if (!a->far_loaded) return "no FAR calibration is loaded (see the server log)";
    return NULL;
}

void app_cleanup(app *a) {
    dispatcher_stop(a->dispatcher); /* first: no new jobs; its popped ones are in the pool */
    if (a->store) store_sealed_set_parallel(a->store, NULL, NULL); /* the pool goes next */
    worker_pool_free(a->workers);   /* then: finishing jobs still queue callbacks and evidence */
    evidence_store_free(a->evidence); /* records what it could not upload: the store is still open */
    liveness_notifier_free(a->notifier);
    callback_policy_free(a->callbacks);
    liveness_engine_free(a->liveness);
    envelope_key_free(a->envelope);
    face_engine_free(a->faces);
    gallery_service_close(a->galleries);
    store_close(a->store);
    data_keyring_free(a->data_keys);
    signer_free(a->signer);
    metrics_free(a->metrics);
    keyring_free(a->keys);
    memset(a, 0, sizeof(*a));
}

/* Formats one problem and hands it to report. */
static void report_problem(app_problem_fn *report, void *ctx, int *count, const char *fmt, ...) {
    char msg[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(msg, ctx);
    (*count)++;
}

int app_report_problems(app *a, app_problem_fn *report, void *ctx) {
    int n = 0;
    if (!a->faces) report_problem(report, ctx, &n, "face models not loaded: %s", a->faces_error);
    if (!a->liveness || !a->notifier)
        report_problem(report, ctx, &n, "replay liveness unavailable: %s", a->liveness_error);
    if (!a->far_loaded) report_problem(report, ctx, &n, "matching calibration not loaded: %s", a->far_error);
    char page[600];
    snprintf(page, sizeof page, "%s/capture/index.html", a->config.web_dir);
    if (access(page, R_OK) != 0)
        report_problem(report, ctx, &n, "web files missing: cannot read %s (setting `web`)", page);
    return n;
}
