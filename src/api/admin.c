/* Operational endpoints: health, the signing certificate (PEM and JWKS),
 * Prometheus metrics (this instance) and per-key usage counts (billing, read from
 * the state store so that every instance reports the same totals). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "core/keyring.h"
#include "api/liveness_evidence.h"
#include "liveness/notifier.h"

/* {"status": "UP"} or {"status": "DOWN", "reason": ...}; reasons never name files. */
static json_t *component(bool up, const char *reason) {
    return up ? json_pack("{s:s}", "status", "UP") : json_pack("{s:s,s:s}", "status", "DOWN", "reason", reason);
}

/* UP when everything works (200); DOWN when nothing can be stored; DEGRADED when
 * some routes answer 503 (models, calibration or liveness missing). Not UP: 503. */
void handle_monitor(http_request *req) {
    app *a = req->app;
    const char *store_status = a->store->ops->status(a->store);
    bool store_up = !strcmp(store_status, "UP"), liveness_up = a->envelope && a->notifier && a->liveness;
    json_t *models = component(a->faces, "the face models are not loaded (see the server log)");
    if (a->faces) json_object_set_new(models, "pipeline", json_string(face_engine_describe(a->faces)));
    json_t *reasons = json_array();
    const char *why = app_unavailable_reason(a);
    if (why) json_array_append_new(reasons, json_string(why));
    if (!liveness_up) json_array_append_new(reasons, json_string("replay liveness is unavailable (see the server log)"));
    if (liveness_evidence_failing(a))
        json_array_append_new(reasons, json_string("liveness evidence cannot be stored in the object store (see evidence.lastError)"));
    const char *status = !store_up ? "DOWN" : json_array_size(reasons) ? "DEGRADED" : "UP";
    json_t *out = json_pack("{s:s,s:o,s:s,s:{s:s,s:s},s:o,s:o,s:o,s:{s:i,s:i,s:i},s:I}", "status", status, "reasons", reasons,
                            "version", a->config.version, "store", "type", a->store->ops->name, "status", store_status,
                            "models", models, "calibration", component(a->far_loaded, "no FAR calibration is loaded (see the server log)"),
                            "liveness", component(liveness_up, "replay liveness is unavailable (see the server log)"),
                            "workers", "count", a->config.workers, "busy", worker_pool_busy(a->workers), "queued",
                            worker_pool_queued(a->workers), "uptimeSeconds", (json_int_t)((time_now_ms() - a->started_ms) / 1000));
    /* The store's persistence is part of its health: a note when it may lose acknowledged writes. */
    const char *durability = a->store->ops->durability(a->store);
    if (durability) json_object_set_new(json_object_get(out, "store"), "durability", json_string(durability));
    json_object_set_new(out, "evidence", liveness_evidence_component(a));
    http_reply_json(req, strcmp(status, "UP") ? 503 : 200, out);
}

void handle_certificate(http_request *req) {
    const char *pem = signer_certificate_pem(req->app->signer);
    http_reply_bytes(req, 200, "application/x-pem-file", pem, strlen(pem));
}

void handle_jwks(http_request *req) {
    char *jwks = signer_jwks(req->app->signer);
    if (!jwks) {
        http_reply_error(req, 500, "internal error while encoding the key set");
        return;
    }
    http_reply_bytes(req, 200, "application/jwk-set+json", jwks, strlen(jwks));
    free(jwks);
}

/* Callback delivery, so that lost callbacks are visible (the log names each
 * session). Appended to the request-level metrics; NULL on allocation failure. */
static char *with_callback_metrics(app *a, char *text) {
    notifier_stats st = {0};
    if (a->notifier) liveness_notifier_stats(a->notifier, &st);
    char *out = NULL;
    int n = asprintf(&out,
                     "%s# HELP bioserver_callbacks_delivered_total Liveness callbacks answered with 2xx.\n"
                     "# TYPE bioserver_callbacks_delivered_total counter\nbioserver_callbacks_delivered_total %lld\n"
                     "# HELP bioserver_callback_failures_total Failed liveness callback attempts.\n"
                     "# TYPE bioserver_callback_failures_total counter\nbioserver_callback_failures_total %lld\n"
                     "# HELP bioserver_callbacks_abandoned_total Liveness callbacks given up (refused or out of attempts).\n"
                     "# TYPE bioserver_callbacks_abandoned_total counter\nbioserver_callbacks_abandoned_total %lld\n",
                     text, st.delivered, st.failed_attempts, st.abandoned);
    free(text);
    return n < 0 ? NULL : out;
}

void handle_metrics(http_request *req) {
    app *a = req->app;
    char *text = metrics_render(a->metrics, keyring_names(a->keys), worker_pool_queued(a->workers),
                                worker_pool_busy(a->workers));
    if (text) text = with_callback_metrics(a, text);
    if (text) text = liveness_evidence_metrics(a, text);
    if (!text) {
        http_reply_error(req, 500, "internal error while rendering metrics");
        return;
    }
    http_reply_bytes(req, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
}

/* One key's entry, from the store's counts (every instance's calls); NULL with
 * *rc set when the store cannot answer. */
static json_t *usage_of_key(app *a, const api_key_config *key, int *rc) {
    store_usage counts[STORE_USAGE_MAX_OPS];
    size_t n = 0;
    *rc = a->store->ops->usage_get(a->store, key->name, counts, STORE_USAGE_MAX_OPS, &n);
    if (*rc) return NULL;
    json_t *ops = json_object();
    for (size_t i = 0; i < n; i++)
        if (counts[i].calls) json_object_set_new(ops, counts[i].operation, json_integer(counts[i].calls));
    return json_pack("{s:s,s:s,s:o}", "key", key->name, "tenant", key->tenant, "calls", ops);
}

/* A key sees its own counts; an admin key sees every active key's. */
void handle_usage(http_request *req) {
    app *a = req->app;
    json_t *keys = json_array();
    for (int k = 0; k < keyring_count(a->keys); k++) {
        bool active;
        const api_key_config *key = keyring_entry(a->keys, k, &active);
        if (!active || (key != req->key && !(req->key->permissions & PERM_ADMIN))) continue;
        int rc = STORE_OK;
        json_t *entry = usage_of_key(a, key, &rc);
        if (!entry) {
            json_decref(keys);
            api_reply_store_error(req, rc, "usage of this key");
            return;
        }
        json_array_append_new(keys, entry);
    }
    http_reply_json(req, 200, json_pack("{s:o}", "keys", keys));
}
