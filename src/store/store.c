/* Chooses a store implementation from its URL; see store.h. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_value_free(store_value *v) {
    if (!v) return;
    free(v->data);
    v->data = NULL;
    v->len = 0;
}

void store_job_free(store_job *j) {
    if (j) store_value_free(&j->payload);
}

void store_values_free(store_value *values, size_t count) {
    for (size_t i = 0; i < count; i++) store_value_free(&values[i]);
    free(values);
}

store *store_open(const char *url, size_t max_items, char *err, size_t err_len) {
    return store_open_auth(url, NULL, max_items, err, err_len);
}

store *store_open_auth(const char *url, const char *redis_password, size_t max_items, char *err, size_t err_len) {
    if (!strncmp(url, "redis://", 8)) return store_redis_create(url, redis_password, max_items, err, err_len);
    if (!strcmp(url, "memory")) {
        store *s = store_memory_create(max_items);
        if (!s) snprintf(err, err_len, "cannot create the in-memory store");
        return s;
    }
    snprintf(err, err_len, "store '%s' is not supported (use 'memory' or redis://HOST:PORT[/DB])", url);
    return NULL;
}

void store_close(store *s) {
    if (s) s->ops->destroy(s);
}
