/* Builds and tears down the server context; see app.h. */
#include "api/app.h"

#include <stdio.h>
#include <string.h>

#include "api/handlers.h"
#include "core/util.h"

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
    a->store = store_open(a->config.store_url, APP_MAX_ITEMS_PER_SESSION, err, err_len);
    if (!a->store) goto fail;
    worker_hooks hooks = {0};
    a->workers = worker_pool_create(a->config.workers, a->config.queue_depth, &hooks);
    if (!a->workers) {
        snprintf(err, err_len, "cannot start %d worker threads", a->config.workers);
        goto fail;
    }
    return 0;
fail:
    app_cleanup(a);
    return -1;
}

void app_cleanup(app *a) {
    worker_pool_free(a->workers);
    store_close(a->store);
    signer_free(a->signer);
    metrics_free(a->metrics);
    memset(a, 0, sizeof(*a));
}
