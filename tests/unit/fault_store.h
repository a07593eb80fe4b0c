/* A store that fails on purpose (STYLE.md pattern 4): it forwards every call to an
 * inner store, except call number fail_at (counted from fault_store_arm), which
 * answers fail_code without reaching the inner store. Tests loop fail_at over 1, 2,
 * 3... until an operation completes without reaching it, and check after each run
 * that nothing is half-done. Not a test_*.c file: #included by the tests using it. */
#ifndef TESTS_UNIT_FAULT_STORE_H
#define TESTS_UNIT_FAULT_STORE_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

typedef struct {
    store base;
    store *inner;
    pthread_mutex_t lock;
    int calls, fail_at, fail_code;
    const char *failed_op; /* the name of the operation that was failed, or NULL */
} fault_store;

/* True when this call is the one to fail; counts every call. */
static bool fault_hit(store *s, const char *op) {
    fault_store *f = (fault_store *)s;
    pthread_mutex_lock(&f->lock);
    bool hit = f->fail_at && ++f->calls == f->fail_at;
    if (hit) f->failed_op = op;
    pthread_mutex_unlock(&f->lock);
    return hit;
}

#define FAULT_INNER(s) (((fault_store *)(s))->inner)
#define FAULT_FORWARD(s, op, ...) \
    (fault_hit(s, #op) ? ((fault_store *)(s))->fail_code : FAULT_INNER(s)->ops->op(FAULT_INNER(s), __VA_ARGS__))

static int fs_session_create(store *s, const char *t, const char *sid, const store_value *v, int64_t e) {
    return FAULT_FORWARD(s, session_create, t, sid, v, e);
}
static int fs_session_get(store *s, const char *t, const char *sid, store_value *out, int64_t *e) {
    return FAULT_FORWARD(s, session_get, t, sid, out, e);
}
static int fs_session_update(store *s, const char *t, const char *sid, const store_value *x, const store_value *v) {
    return FAULT_FORWARD(s, session_update, t, sid, x, v);
}
static int fs_session_delete(store *s, const char *t, const char *sid) { return FAULT_FORWARD(s, session_delete, t, sid); }
static int fs_item_put(store *s, const char *t, const char *sid, const char *k, const char *id, const store_value *v) {
    return FAULT_FORWARD(s, item_put, t, sid, k, id, v);
}
static int fs_item_get(store *s, const char *t, const char *sid, const char *k, const char *id, store_value *out) {
    return FAULT_FORWARD(s, item_get, t, sid, k, id, out);
}
static int fs_item_list(store *s, const char *t, const char *sid, const char *k, store_value **out, size_t *n) {
    return FAULT_FORWARD(s, item_list, t, sid, k, out, n);
}
static int fs_item_delete(store *s, const char *t, const char *sid, const char *k, const char *id) {
    return FAULT_FORWARD(s, item_delete, t, sid, k, id);
}
static int fs_item_delete_all(store *s, const char *t, const char *sid, const char *k) {
    return FAULT_FORWARD(s, item_delete_all, t, sid, k);
}
static int fs_usage_add(store *s, const char *key, const char *op, long d) { return FAULT_FORWARD(s, usage_add, key, op, d); }
static int fs_usage_get(store *s, const char *key, store_usage *out, size_t max, size_t *n) {
    return FAULT_FORWARD(s, usage_get, key, out, max, n);
}
static int fs_job_push(store *s, const char *q, const store_value *p) { return FAULT_FORWARD(s, job_push, q, p); }
static int fs_job_pop(store *s, const char *q, int ms, int64_t lease, store_job *out) {
    return FAULT_FORWARD(s, job_pop, q, ms, lease, out);
}
static int fs_job_renew(store *s, const char *q, const char *id, int64_t lease) { return FAULT_FORWARD(s, job_renew, q, id, lease); }
static int fs_job_ack(store *s, const char *q, const char *id) { return FAULT_FORWARD(s, job_ack, q, id); }
static int fs_deadline_add(store *s, const char *i, const char *m, int64_t d) { return FAULT_FORWARD(s, deadline_add, i, m, d); }
static int fs_deadline_claim(store *s, const char *i, int64_t now, store_value *m) {
    return FAULT_FORWARD(s, deadline_claim, i, now, m);
}
static const char *fs_status(store *s) { return FAULT_INNER(s)->ops->status(FAULT_INNER(s)); }
static const char *fs_durability(store *s) { return FAULT_INNER(s)->ops->durability(FAULT_INNER(s)); }
static void fs_destroy(store *s) {
    fault_store *f = (fault_store *)s;
    store_close(f->inner);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const store_ops fault_ops = {
    .name = "fault",
    .session_create = fs_session_create, .session_get = fs_session_get, .session_update = fs_session_update,
    .session_delete = fs_session_delete, .item_put = fs_item_put, .item_get = fs_item_get, .item_list = fs_item_list,
    .item_delete = fs_item_delete, .item_delete_all = fs_item_delete_all, .usage_add = fs_usage_add,
    .usage_get = fs_usage_get, .job_push = fs_job_push, .job_pop = fs_job_pop, .job_renew = fs_job_renew,
    .job_ack = fs_job_ack, .deadline_add = fs_deadline_add, .deadline_claim = fs_deadline_claim,
    .status = fs_status, .durability = fs_durability, .destroy = fs_destroy,
};

/* Takes inner; faults are off until fault_store_arm. */
static store *fault_store_create(store *inner) {
    fault_store *f = calloc(1, sizeof(*f));
    f->base.ops = &fault_ops;
    f->inner = inner;
    pthread_mutex_init(&f->lock, NULL);
    return &f->base;
}

/* Fails the fail_at-th call from now (0 = none) with code. */
static void fault_store_arm(store *s, int fail_at, int code) {
    fault_store *f = (fault_store *)s;
    pthread_mutex_lock(&f->lock);
    f->calls = 0;
    f->fail_at = fail_at;
    f->fail_code = code;
    f->failed_op = NULL;
    pthread_mutex_unlock(&f->lock);
}

#endif
