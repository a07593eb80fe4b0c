/* The server context: everything a handler may use, created once at start-up and
 * passed down explicitly (no global mutable state). */
#ifndef API_APP_H
#define API_APP_H
#include <stdbool.h>

#include "core/config.h"
#include "core/worker_pool.h"
#include "http/metrics.h"
#include "sign/signer.h"
#include "store/store.h"

#define APP_MAX_ITEMS_PER_SESSION 1000

typedef struct app {
    server_config config;
    store *store;
    signer *signer;
    worker_pool *workers;
    metrics *metrics;
    const char *key_names[CONFIG_MAX_KEYS];
    int64_t started_ms;
} app;

int app_init(app *a, const server_config *cfg, char *err, size_t err_len);
void app_cleanup(app *a);

#endif
