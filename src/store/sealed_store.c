/* Encryption of biometric items at the store interface; see sealed_store.h. */
#include "store/sealed_store.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define TAG "BSV1"
#define KIND_MAX 16
#define ID_MAX 255
#define AAD_MAX (4 + 4 * 256 + ID_MAX)

/* Every op is forwarded by hand below: an op added to store_ops must be added
 * here too, or the sealed store would leave it NULL. */
_Static_assert(sizeof(store_ops) == sizeof(const char *) + 20 * sizeof(void (*)(void)),
               "store_ops changed: forward the new operation in store/sealed_store.c");

typedef struct {
    store base;
    store_ops ops; /* sealed_ops under the backend's name (reports show "memory" or "redis") */
    store *inner;
    data_keyring *ring;
    sealed_parallel_for *parallel; /* NULL: open listed items one by one */
    void *parallel_ctx;
    int kind_count;
    char kinds[SEALED_STORE_MAX_KINDS][KIND_MAX];
} sealed_store;

static sealed_store *S(store *s) { return (sealed_store *)s; }

static bool sealed_kind(const sealed_store *s, const char *kind) {
    for (int i = 0; i < s->kind_count; i++)
        if (!strcmp(s->kinds[i], kind)) return true;
    return false;
}

/* "BSV1" NUL tenant NUL session NUL kind NUL id: NULs keep the fields apart. */
static size_t make_aad(const char *tenant, const char *sid, const char *kind, const char *id, size_t id_len,
                       uint8_t *aad) {
    const char *parts[] = {TAG, tenant, sid, kind};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = strnlen(parts[i], 255);
        memcpy(aad + n, parts[i], l);
        n += l;
        aad[n++] = 0;
    }
    memcpy(aad + n, id, id_len);
    return n + id_len;
}

static int seal(sealed_store *s, const char *tenant, const char *sid, const char *kind, const char *id,
                const store_value *v, store_value *out) {
    size_t id_len = strlen(id);
    if (id_len > ID_MAX) return STORE_NOT_FOUND; /* as the backends answer an over-long id */
    size_t head = 4 + 1 + id_len;
    out->len = head + v->len + DATA_KEYRING_OVERHEAD;
    out->data = malloc(out->len);
    if (!out->data) return STORE_NOMEM;
    memcpy(out->data, TAG, 4);
    out->data[4] = (uint8_t)id_len;
    memcpy(out->data + 5, id, id_len);
    uint8_t aad[AAD_MAX];
    size_t aad_len = make_aad(tenant, sid, kind, id, id_len, aad);
    if (data_keyring_seal(s->ring, KEY_PURPOSE_STORE, aad, aad_len, v->data, v->len, false, out->data + head)) {
        store_value_free(out);
        return STORE_NOMEM;
    }
    return STORE_OK;
}

/* Replaces *v by its plain form. want_id: the item id it must have been sealed
 * for (NULL when listing: the id inside is authenticated either way). */
static int open_value(sealed_store *s, const char *tenant, const char *sid, const char *kind, const char *want_id,
                      store_value *v) {
    size_t id_len = v->len >= 5 ? v->data[4] : 0, head = 5 + id_len;
    bool framed = v->len >= head + DATA_KEYRING_OVERHEAD && !memcmp(v->data, TAG, 4);
    if (!framed || (want_id && (strlen(want_id) != id_len || memcmp(v->data + 5, want_id, id_len)))) {
        log_event("error", "store: a %s item of session %s is not sealed for it (refused)", kind, sid);
        return STORE_CORRUPT;
    }
    uint8_t aad[AAD_MAX];
    size_t aad_len = make_aad(tenant, sid, kind, (const char *)v->data + 5, id_len, aad);
    size_t plain_len = v->len - head - DATA_KEYRING_OVERHEAD;
    uint8_t *plain = malloc(plain_len ? plain_len : 1);
    if (!plain) return STORE_NOMEM;
    int rc = data_keyring_open(s->ring, KEY_PURPOSE_STORE, aad, aad_len, v->data + head, v->len - head, plain, NULL);
    if (rc) {
        free(plain);
        log_event("error", "store: a %s item of session %s failed to open (%s)", kind, sid,
                  rc == DATA_KEYRING_ERR_UNKNOWN_KEY ? "its key is not in the key ring" : "integrity check failed");
        return STORE_CORRUPT;
    }
    free(v->data);
    v->data = plain;
    v->len = plain_len;
    return STORE_OK;
}

static int item_put(store *st, const char *tenant, const char *sid, const char *kind, const char *id,
                    const store_value *v) {
    sealed_store *s = S(st);
    if (!sealed_kind(s, kind)) return s->inner->ops->item_put(s->inner, tenant, sid, kind, id, v);
    store_value sealed = {0};
    int rc = seal(s, tenant, sid, kind, id, v, &sealed);
    if (rc == STORE_OK) rc = s->inner->ops->item_put(s->inner, tenant, sid, kind, id, &sealed);
    store_value_free(&sealed);
    return rc;
}

static int item_get(store *st, const char *tenant, const char *sid, const char *kind, const char *id,
                    store_value *out) {
    sealed_store *s = S(st);
    int rc = s->inner->ops->item_get(s->inner, tenant, sid, kind, id, out);
    if (rc == STORE_OK && sealed_kind(s, kind) && (rc = open_value(s, tenant, sid, kind, id, out)))
        store_value_free(out);
    return rc;
}

/* A listing being opened, shared by the threads of a parallel run. */
typedef struct {
    sealed_store *s;
    const char *tenant, *sid, *kind;
    store_value *values;
    atomic_int rc; /* the first failure, STORE_OK if none */
} listing;

static void open_listed(void *arg, size_t i) {
    listing *l = arg;
    int rc = atomic_load(&l->rc) == STORE_OK ? open_value(l->s, l->tenant, l->sid, l->kind, NULL, &l->values[i]) : STORE_OK;
    int ok = STORE_OK;
    if (rc != STORE_OK) atomic_compare_exchange_strong(&l->rc, &ok, rc);
}

static int item_list(store *st, const char *tenant, const char *sid, const char *kind, store_value **out,
                     size_t *count) {
    sealed_store *s = S(st);
    int rc = s->inner->ops->item_list(s->inner, tenant, sid, kind, out, count);
    if (rc || !sealed_kind(s, kind)) return rc;
    listing l = {s, tenant, sid, kind, *out, STORE_OK};
    if (s->parallel && *count > 1) s->parallel(s->parallel_ctx, *count, open_listed, &l);
    else
        for (size_t i = 0; atomic_load(&l.rc) == STORE_OK && i < *count; i++) open_listed(&l, i);
    rc = atomic_load(&l.rc);
    if (rc) {
        store_values_free(*out, *count);
        *out = NULL;
        *count = 0;
    }
    return rc;
}

/* ---- forwarded unchanged ---------------------------------------------------------- */

static int session_create(store *st, const char *tenant, const char *sid, const store_value *v, int64_t expires_ms) {
    return S(st)->inner->ops->session_create(S(st)->inner, tenant, sid, v, expires_ms);
}
static int session_get(store *st, const char *tenant, const char *sid, store_value *out, int64_t *expires_ms) {
    return S(st)->inner->ops->session_get(S(st)->inner, tenant, sid, out, expires_ms);
}
static int session_update(store *st, const char *tenant, const char *sid, const store_value *expected,
                          const store_value *v) {
    return S(st)->inner->ops->session_update(S(st)->inner, tenant, sid, expected, v);
}
static int session_delete(store *st, const char *tenant, const char *sid) {
    return S(st)->inner->ops->session_delete(S(st)->inner, tenant, sid);
}
static int item_delete(store *st, const char *tenant, const char *sid, const char *kind, const char *id) {
    return S(st)->inner->ops->item_delete(S(st)->inner, tenant, sid, kind, id);
}
static int item_delete_all(store *st, const char *tenant, const char *sid, const char *kind) {
    return S(st)->inner->ops->item_delete_all(S(st)->inner, tenant, sid, kind);
}
static int usage_add(store *st, const char *key_name, const char *operation, long delta) {
    return S(st)->inner->ops->usage_add(S(st)->inner, key_name, operation, delta);
}
static int usage_get(store *st, const char *key_name, store_usage *out, size_t max, size_t *count) {
    return S(st)->inner->ops->usage_get(S(st)->inner, key_name, out, max, count);
}
static int job_push(store *st, const char *queue, const store_value *payload) {
    return S(st)->inner->ops->job_push(S(st)->inner, queue, payload);
}
static int job_pop(store *st, const char *queue, int timeout_ms, int64_t lease_ms, store_job *out) {
    return S(st)->inner->ops->job_pop(S(st)->inner, queue, timeout_ms, lease_ms, out);
}
static int job_renew(store *st, const char *queue, const char *id, int64_t lease_ms) {
    return S(st)->inner->ops->job_renew(S(st)->inner, queue, id, lease_ms);
}
static int job_ack(store *st, const char *queue, const char *id) {
    return S(st)->inner->ops->job_ack(S(st)->inner, queue, id);
}
static int deadline_add(store *st, const char *index, const char *member, int64_t deadline_ms) {
    return S(st)->inner->ops->deadline_add(S(st)->inner, index, member, deadline_ms);
}
static int deadline_claim(store *st, const char *index, int64_t now_ms, store_value *member) {
    return S(st)->inner->ops->deadline_claim(S(st)->inner, index, now_ms, member);
}
static const char *status(store *st) { return S(st)->inner->ops->status(S(st)->inner); }
static const char *durability(store *st) { return S(st)->inner->ops->durability(S(st)->inner); }

static void destroy(store *st) {
    store_close(S(st)->inner);
    free(st);
}

static const store_ops sealed_ops = {
    .name = "sealed",
    .session_create = session_create,
    .session_get = session_get,
    .session_update = session_update,
    .session_delete = session_delete,
    .item_put = item_put,
    .item_get = item_get,
    .item_list = item_list,
    .item_delete = item_delete,
    .item_delete_all = item_delete_all,
    .usage_add = usage_add,
    .usage_get = usage_get,
    .job_push = job_push,
    .job_pop = job_pop,
    .job_renew = job_renew,
    .job_ack = job_ack,
    .deadline_add = deadline_add,
    .deadline_claim = deadline_claim,
    .status = status,
    .durability = durability,
    .destroy = destroy,
};

store *store_sealed_create(store *inner, data_keyring *ring, const char *const *kinds) {
    sealed_store *s = inner && ring ? calloc(1, sizeof(*s)) : NULL;
    for (int i = 0; s && kinds && kinds[i]; i++) {
        if (i >= SEALED_STORE_MAX_KINDS || strlen(kinds[i]) >= KIND_MAX) {
            free(s);
            s = NULL;
        } else {
            snprintf(s->kinds[i], KIND_MAX, "%s", kinds[i]);
            s->kind_count = i + 1;
        }
    }
    if (!s) {
        store_close(inner);
        return NULL;
    }
    s->ops = sealed_ops;
    s->ops.name = inner->ops->name;
    s->base.ops = &s->ops;
    s->inner = inner;
    s->ring = ring;
    return &s->base;
}

void store_sealed_set_parallel(store *st, sealed_parallel_for *run, void *ctx) {
    S(st)->parallel = run;
    S(st)->parallel_ctx = ctx;
}
