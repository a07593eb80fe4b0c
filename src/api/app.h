/* The server context: everything a handler may use, created once at start-up and
 * passed down explicitly (no global mutable state). */
#ifndef API_APP_H
#define API_APP_H
#include <stdatomic.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/worker_pool.h"
#include "face/pipeline.h"
#include "face/template.h"
#include "http/metrics.h"
#include "match/far.h"
#include "sign/signer.h"
#include "store/store.h"

#define APP_MAX_ITEMS_PER_SESSION 1000

typedef struct app {
    server_config config;
    store *store;
    signer *signer;
    worker_pool *workers;
    metrics *metrics;
    face_engine *faces; /* NULL when the models could not be loaded: face routes answer 503 */
    char faces_error[256];
    data_keyring *data_keys;           /* at-rest keys (DATA/data-keys): templates and the sealed store items */
    template_keys templates; /* what template_encode/template_decode use */
    uint8_t template_v1_key[TEMPLATE_V1_KEY_LEN]; /* legacy_templates: the version 1 MAC key */
    far_table far; /* similarity -> false acceptance rate, measured by `make calibrate` */
    bool far_loaded;
    char far_error[256];
    struct keyring *keys; /* config keys + keys file (SIGHUP reloads it) */
    int64_t started_ms;
    /* Replay liveness (src/liveness): NULL members answer 503, liveness_error says why. */
    struct liveness_engine *liveness;
    struct envelope_key *envelope;
    struct liveness_notifier *notifier;
    struct callback_policy *callbacks; /* where callbackURLs may point (checked at creation and delivery) */
    struct dispatcher *dispatcher; /* evaluations and TIMEOUTs shared through the store */
    atomic_int capture_streams; /* open capture streams (api/capture_stream.c), at most capture_stream_max */
    struct evidence_store *evidence; /* liveness evidence uploader; NULL when evidence_s3_url is empty */
    char liveness_error[256];
    /* Galleries (src/gallery): NULL answers 503, galleries_error says why. */
    struct gallery_service *galleries;
    char galleries_error[256];
} app;

int app_init(app *a, const server_config *cfg, char *err, size_t err_len);

/* Why this instance cannot do its core work (store, face models, calibration), in
 * words fit for clients (no file paths: the log has those); NULL when it can. */
const char *app_unavailable_reason(app *a);
void app_cleanup(app *a);
/* Calls report once for each reason this server would serve only part of the API
 * (models, liveness, calibration, web files; not the store, which may come up
 * later: /v2/monitor reports it); returns how many. At start-up
 * any of them stops the server unless degraded_start is set. */
typedef void app_problem_fn(const char *problem, void *ctx);
int app_report_problems(app *a, app_problem_fn *report, void *ctx);

#endif
