/* Operational endpoints: health, the signing certificate (PEM and JWKS),
 * Prometheus metrics (this instance) and per-key usage counts (billing, read from
 * the state store so that every instance reports the same totals). */
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "core/keyring.h"

void handle_monitor(http_request *req) {
    app *a = req->app;
    const char *store_status = a->store->ops->status(a->store);
    bool up = !strcmp(store_status, "UP");
    json_t *models = a->faces ? json_pack("{s:s,s:s}", "status", "UP", "pipeline", face_engine_describe(a->faces))
                              : json_pack("{s:s,s:s}", "status", "DOWN", "error", a->faces_error);
    json_t *calibration = a->far_loaded ? json_pack("{s:s,s:s}", "status", "UP", "file", a->config.calibration_file)
                                        : json_pack("{s:s,s:s}", "status", "DOWN", "error", a->far_error);
    json_t *out = json_pack("{s:s,s:s,s:{s:s,s:s},s:o,s:o,s:{s:i,s:i,s:i},s:I}", "status", up ? "UP" : "DEGRADED",
                            "version", a->config.version, "store", "type", a->store->ops->name,
                            "status", store_status, "models", models, "calibration", calibration, "workers", "count", a->config.workers, "busy",
                            worker_pool_busy(a->workers), "queued", worker_pool_queued(a->workers),
                            "uptimeSeconds", (json_int_t)((time_now_ms() - a->started_ms) / 1000));
    http_reply_json(req, up ? 200 : 503, out);
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

void handle_metrics(http_request *req) {
    app *a = req->app;
    char *text = metrics_render(a->metrics, keyring_names(a->keys), worker_pool_queued(a->workers),
                                worker_pool_busy(a->workers));
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
