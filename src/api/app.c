/* Builds and tears down the server context; see app.h. */
#include "api/app.h"

#include <stdio.h>
#include <string.h>

#include "api/dispatcher.h"
#include "api/handlers.h"
#include "api/liveness_evidence.h"
#include "api/liveness_jobs.h"
#include "api/liveness_state.h"
#include "core/log.h"
#include "core/util.h"
#include "liveness/envelope.h"
#include "liveness/evaluate.h"
#include "liveness/evidence.h"
#include "liveness/callback_policy.h"
#include "liveness/notifier.h"
#include "sign/secret.h"

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

/* The dispatcher: evaluates captures uploaded to any instance sharing the store
 * (unless liveness_dispatch is off) and applies their TIMEOUTs. */
static void dispatcher_init(app *a) {
    dispatcher_config dc = {
        .store = a->store,
        .pool = a->workers,
        .workers = a->config.workers,
        .queue = a->config.liveness_dispatch ? LIVENESS_QUEUE : NULL,
        .deadlines = LIVENESS_DUE,
        .run = liveness_run_job,
        .due = liveness_deadline_due,
        .ctx = a,
    };
    a->dispatcher = dispatcher_start(&dc);
    if (!a->dispatcher) log_event("error", "replay liveness: cannot start the dispatcher thread");
}

/* Replay liveness: its own encryption key (never the signing key), the PAD model
 * with one session set per worker, the callback thread and the dispatcher. A
 * failure here degrades only the liveness routes (503). */
static void liveness_init(app *a) {
    a->envelope = envelope_key_load_or_create(a->config.data_dir, a->liveness_error, sizeof a->liveness_error);
    if (a->envelope) a->notifier = liveness_notifier_create(a->callbacks, liveness_timeout_hook, a);
    if (a->faces) a->liveness = liveness_engine_load(a->config.models_dir, a->config.workers, a->liveness_error,
                                                     sizeof a->liveness_error);
    if (a->notifier) dispatcher_init(a);
    if (!a->liveness || !a->notifier) log_event("error", "replay liveness degraded: %s", a->liveness_error);
}

int app_init(app *a, const server_config *cfg, char *err, size_t err_len) {
    memset(a, 0, sizeof(*a));
    a->config = *cfg;
    a->started_ms = time_now_ms();
    for (int i = 0; i < a->config.key_count; i++) a->key_names[i] = a->config.keys[i].name;
    const char *ops[METRICS_MAX_OPERATIONS + 1] = {0};
    for (size_t i = 0; api_routes[i].pattern && i < METRICS_MAX_OPERATIONS; i++) ops[i] = api_routes[i].operation;
    a->metrics = metrics_create(ops, a->config.key_count);
    a->signer = signer_load_or_create(a->config.data_dir, err, err_len);
    if (!a->metrics || !a->signer) goto fail;
    a->callbacks = callback_policy_create(a->config.callback_allow_private, a->config.callback_allow, err, err_len);
    if (!a->callbacks) goto fail;
    a->store = store_open_auth(a->config.store_url, a->config.redis_password, APP_MAX_ITEMS_PER_SESSION, err, err_len);
    if (!a->store) goto fail;
    if (secret_load_or_create(a->config.data_dir, "template-key.bin", a->template_key,
                              sizeof a->template_key, err, err_len))
        goto fail;
    /* Without a calibration, scores would be guesses: match routes answer 503. */
    a->far_loaded = far_table_load(&a->far, a->config.calibration_file, a->far_error, sizeof a->far_error) == 0;
    if (!a->far_loaded) log_event("error", "%s", a->far_error);
    /* Missing models degrade the service (503 on face routes, /monitor says why)
     * instead of refusing to start: sessions and certificates still work. */
    a->faces = face_engine_load(a->config.models_dir, a->faces_error, sizeof a->faces_error);
    if (!a->faces) log_event("error", "face models not loaded: %s", a->faces_error);
    else log_event("info", "face models loaded: %s", face_engine_describe(a->faces));
    worker_hooks hooks = {.init = worker_init, .destroy = worker_destroy, .shared = a->faces};
    a->workers = worker_pool_create(a->config.workers, a->config.queue_depth, &hooks);
    if (!a->workers) {
        snprintf(err, err_len, "cannot start %d worker threads", a->config.workers);
        goto fail;
    }
    if (liveness_evidence_init(a, err, err_len)) goto fail;
    liveness_init(a);
    return 0;
fail:
    app_cleanup(a);
    return -1;
}

const char *app_unavailable_reason(app *a) {
    if (strcmp(a->store->ops->status(a->store), "UP")) return "the state store is unavailable";
    if (!a->faces) return "the face models are not loaded (see the server log)";
    if (!a->far_loaded) return "no FAR calibration is loaded (see the server log)";
    return NULL;
}

void app_cleanup(app *a) {
    dispatcher_stop(a->dispatcher); /* first: no new jobs; its popped ones are in the pool */
    worker_pool_free(a->workers);   /* then: finishing jobs still queue callbacks and evidence */
    evidence_store_free(a->evidence); /* records what it could not upload: the store is still open */
    liveness_notifier_free(a->notifier);
    callback_policy_free(a->callbacks);
    liveness_engine_free(a->liveness);
    envelope_key_free(a->envelope);
    face_engine_free(a->faces);
    store_close(a->store);
    signer_free(a->signer);
    metrics_free(a->metrics);
    memset(a, 0, sizeof(*a));
}
