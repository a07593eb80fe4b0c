/* API keys with a reloadable keys file; see keyring.h for the concurrency rules. */
#include "core/keyring.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct keyring {
    pthread_mutex_t reload_lock; /* one reload at a time; readers never take it */
    char keys_file[512];
    atomic_int count;
    api_key_config entries[KEYRING_MAX];
    atomic_bool revoked[KEYRING_MAX];
    bool from_file[KEYRING_MAX]; /* only file entries are ever revoked */
    const char *names[KEYRING_MAX];
};

typedef struct {
    api_key_config *out;
    int cap, n;
} key_list;

static int add_key_line(void *ctx, char *line, char *msg, size_t msg_len) {
    key_list *list = ctx;
    if (list->n >= list->cap) {
        snprintf(msg, msg_len, "too many keys");
        return -1;
    }
    api_key_config *k = &list->out[list->n];
    if (config_parse_key(line, k, msg, msg_len)) return -1;
    for (int i = 0; i < list->n; i++)
        if (!strcmp(list->out[i].key, k->key)) {
            snprintf(msg, msg_len, "API key listed twice");
            return -1;
        }
    list->n++;
    return 0;
}

int keyring_read_file(const char *path, api_key_config *out, int cap, int *n, char *err, size_t err_len) {
    key_list list = {.out = out, .cap = cap};
    int rc = config_read_lines(path, "keys file", add_key_line, &list, err, err_len);
    *n = list.n;
    return rc;
}

/* Appends an entry; the caller holds reload_lock and checked the capacity. */
static void append(keyring *kr, const api_key_config *k, bool from_file) {
    int i = atomic_load_explicit(&kr->count, memory_order_relaxed);
    kr->entries[i] = *k;
    kr->names[i] = kr->entries[i].name;
    kr->from_file[i] = from_file;
    atomic_store(&kr->revoked[i], false);
    atomic_store_explicit(&kr->count, i + 1, memory_order_release); /* publish */
}

static bool same_key(const api_key_config *a, const api_key_config *b) {
    return !strcmp(a->key, b->key) && !strcmp(a->tenant, b->tenant) && a->permissions == b->permissions;
}

/* Applies a freshly read file: keeps unchanged entries, appends new ones, then
 * revokes the rest (adding first, so a key being re-permissioned is never absent). */
static int apply_file(keyring *kr, const api_key_config *file_keys, int n, int *added, int *revoked, char *err,
                      size_t err_len) {
    int count = atomic_load_explicit(&kr->count, memory_order_relaxed);
    bool *keep = calloc((size_t)count + 1, sizeof *keep), *fresh = calloc((size_t)n + 1, sizeof *fresh);
    int rc = -1, needed = 0;
    if (!keep || !fresh) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    for (int j = 0; j < n; j++) {
        fresh[j] = true;
        for (int i = 0; i < count; i++) {
            bool active = !atomic_load(&kr->revoked[i]);
            if (active && !kr->from_file[i] && !strcmp(kr->entries[i].key, file_keys[j].key)) {
                snprintf(err, err_len, "%s: a key of the keys file is also in the configuration", kr->keys_file);
                goto out;
            }
            if (active && kr->from_file[i] && same_key(&kr->entries[i], &file_keys[j])) {
                keep[i] = true;
                fresh[j] = false;
            }
        }
        needed += fresh[j];
    }
    if (count + needed > KEYRING_MAX) {
        snprintf(err, err_len, "more than %d API keys since start-up: restart the server to compact them",
                 KEYRING_MAX);
        goto out;
    }
    *added = *revoked = 0;
    for (int j = 0; j < n; j++)
        if (fresh[j]) append(kr, &file_keys[j], true), (*added)++;
    for (int i = 0; i < count; i++)
        if (kr->from_file[i] && !keep[i] && !atomic_exchange(&kr->revoked[i], true)) (*revoked)++;
    rc = 0;
out:
    free(keep);
    free(fresh);
    return rc;
}

static int load_file(keyring *kr, int *added, int *revoked, char *err, size_t err_len) {
    api_key_config *file_keys = malloc(sizeof(api_key_config) * KEYRING_MAX);
    int n = 0, rc = -1;
    if (!file_keys) snprintf(err, err_len, "out of memory");
    else if (keyring_read_file(kr->keys_file, file_keys, KEYRING_MAX, &n, err, err_len) == 0)
        rc = apply_file(kr, file_keys, n, added, revoked, err, err_len);
    free(file_keys);
    return rc;
}

keyring *keyring_create(const server_config *cfg, char *err, size_t err_len) {
    keyring *kr = calloc(1, sizeof(*kr));
    if (!kr) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&kr->reload_lock, NULL);
    snprintf(kr->keys_file, sizeof kr->keys_file, "%s", cfg->keys_file);
    for (int i = 0; i < cfg->key_count; i++) append(kr, &cfg->keys[i], false);
    int added, revoked;
    if (kr->keys_file[0] && load_file(kr, &added, &revoked, err, err_len)) {
        keyring_free(kr);
        return NULL;
    }
    return kr;
}

void keyring_free(keyring *kr) {
    if (!kr) return;
    pthread_mutex_destroy(&kr->reload_lock);
    free(kr);
}

int keyring_reload(keyring *kr, int *added, int *revoked, char *err, size_t err_len) {
    *added = *revoked = 0;
    if (!kr->keys_file[0]) {
        snprintf(err, err_len, "no keys_file is configured");
        return -1;
    }
    pthread_mutex_lock(&kr->reload_lock);
    int rc = load_file(kr, added, revoked, err, err_len);
    pthread_mutex_unlock(&kr->reload_lock);
    return rc;
}

const api_key_config *keyring_find(keyring *kr, const char *secret, int *index) {
    size_t n = strlen(secret);
    int count = atomic_load_explicit(&kr->count, memory_order_acquire), found = -1;
    for (int i = 0; i < count; i++) {
        const char *cand = kr->entries[i].key;
        /* Constant-time on equal lengths so timing does not reveal a key's prefix. */
        if (strlen(cand) == n && CRYPTO_memcmp(cand, secret, n) == 0 && !atomic_load(&kr->revoked[i])) found = i;
    }
    if (found < 0) return NULL;
    *index = found;
    return &kr->entries[found];
}

int keyring_count(keyring *kr) { return atomic_load_explicit(&kr->count, memory_order_acquire); }

const api_key_config *keyring_entry(keyring *kr, int i, bool *active) {
    *active = !atomic_load(&kr->revoked[i]);
    return &kr->entries[i];
}

int keyring_active_count(keyring *kr) {
    int count = keyring_count(kr), active = 0;
    for (int i = 0; i < count; i++) active += !atomic_load(&kr->revoked[i]);
    return active;
}

const char *const *keyring_names(keyring *kr) { return kr->names; }
