/* Unit tests for the bounded worker pool (src/core/worker_pool.c): jobs run,
 * per-worker init/destroy hooks, saturation (WORKER_POOL_BUSY at once, never a
 * wait) and recovery, draining on free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/worker_pool.h"

/* ---- simple jobs --------------------------------------------------------------- */

static void add_one(void *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_run_executes_and_waits(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(4, 8, NULL);
    assert_non_null(p);
    atomic_int n = 0;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(worker_pool_run(p, add_one, &n), WORKER_POOL_OK);
        assert_int_equal(atomic_load(&n), i + 1); /* run returns after the job ran */
    }
    assert_int_equal(worker_pool_queued(p), 0);
    worker_pool_free(p);
    worker_pool_free(NULL);
}

typedef struct {
    atomic_int *counter;
    int payload[8];
} boxed;

static void add_boxed(void *ctx, void *arg) {
    (void)ctx;
    boxed *b = arg;
    atomic_fetch_add(b->counter, b->payload[7]);
}

static void test_submit_and_on_done(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(3, 64, NULL);
    atomic_int total = 0;
    int accepted = 0;
    for (int i = 0; i < 500; i++) {
        boxed *b = calloc(1, sizeof(*b));
        b->counter = &total;
        b->payload[7] = 2;
        int rc = worker_pool_submit(p, add_boxed, b, free); /* on_done frees the arg */
        if (rc == WORKER_POOL_OK) accepted++;
        else {
            assert_int_equal(rc, WORKER_POOL_BUSY);
            free(b);
            usleep(1000);
        }
    }
    assert_true(accepted > 0);
    worker_pool_free(p); /* finishes what was queued */
    assert_int_equal(atomic_load(&total), 2 * accepted);
}

/* ---- hooks --------------------------------------------------------------------- */

#define HOOK_WORKERS 4

typedef struct {
    atomic_int inits, destroys;
    atomic_int seen_index_mask;
    atomic_int wrong_shared;
} hook_stats;

typedef struct {
    hook_stats *stats;
    int index;
    int magic;
    pthread_t thread;
} worker_ctx;

static void *hook_init(void *shared, int index) {
    hook_stats *st = shared;
    worker_ctx *c = calloc(1, sizeof(*c));
    c->stats = st;
    c->index = index;
    c->magic = 0x5eed;
    c->thread = pthread_self();
    atomic_fetch_add(&st->inits, 1);
    atomic_fetch_or(&st->seen_index_mask, 1 << index);
    return c;
}

static void hook_destroy(void *ctx) {
    worker_ctx *c = ctx;
    atomic_fetch_add(&c->stats->destroys, 1);
    c->magic = 0;
    free(c);
}

typedef struct {
    atomic_int ok, bad;
    atomic_int used_mask;
} ctx_check;

static void check_ctx(void *ctx, void *arg) {
    worker_ctx *c = ctx;
    ctx_check *k = arg;
    /* The context is the one made by init for the thread running the job. */
    if (c && c->magic == 0x5eed && pthread_equal(c->thread, pthread_self())) atomic_fetch_add(&k->ok, 1);
    else atomic_fetch_add(&k->bad, 1);
    atomic_fetch_or(&k->used_mask, 1 << c->index);
    usleep(200);
}

static void test_hooks(void **state) {
    (void)state;
    hook_stats st = {0};
    worker_hooks hooks = {.init = hook_init, .destroy = hook_destroy, .shared = &st};
    worker_pool *p = worker_pool_create(HOOK_WORKERS, 16, &hooks);
    assert_non_null(p);
    ctx_check k = {0};
    /* Concurrent run() callers so several workers get work. */
    for (int i = 0; i < 100; i++) {
        int rc;
        while ((rc = worker_pool_submit(p, check_ctx, &k, NULL)) == WORKER_POOL_BUSY) usleep(100);
        assert_int_equal(rc, WORKER_POOL_OK);
    }
    int rc;
    while ((rc = worker_pool_run(p, check_ctx, &k)) == WORKER_POOL_BUSY) usleep(100);
    assert_int_equal(rc, WORKER_POOL_OK);
    worker_pool_free(p);
    assert_int_equal(atomic_load(&st.inits), HOOK_WORKERS);
    assert_int_equal(atomic_load(&st.destroys), HOOK_WORKERS);
    assert_int_equal(atomic_load(&st.seen_index_mask), (1 << HOOK_WORKERS) - 1);
    assert_int_equal(atomic_load(&k.ok), 101);
    assert_int_equal(atomic_load(&k.bad), 0);
}

static void check_shared(void *ctx, void *arg) { *(void **)arg = ctx; }

static void test_no_init_hook_passes_shared(void **state) {
    (void)state;
    int shared_thing = 42;
    worker_hooks hooks = {.shared = &shared_thing};
    worker_pool *p = worker_pool_create(2, 2, &hooks);
    void *seen = NULL;
    assert_int_equal(worker_pool_run(p, check_shared, &seen), WORKER_POOL_OK);
    assert_ptr_equal(seen, &shared_thing);
    worker_pool_free(p);
    p = worker_pool_create(1, 1, NULL);
    seen = &seen;
    assert_int_equal(worker_pool_run(p, check_shared, &seen), WORKER_POOL_OK);
    assert_null(seen);
    worker_pool_free(p);
}

/* ---- saturation ---------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int started, finished;
} gate;

static void gated_job(void *ctx, void *arg) {
    (void)ctx;
    gate *g = arg;
    atomic_fetch_add(&g->started, 1);
    pthread_mutex_lock(&g->lock);
    while (!g->open) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    atomic_fetch_add(&g->finished, 1);
}

static void wait_until(atomic_int *v, int want) {
    int64_t deadline = time_monotonic_ms() + 10000;
    while (atomic_load(v) < want) {
        assert_true(time_monotonic_ms() < deadline);
        usleep(1000);
    }
}

static void test_saturation(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(1, 1, NULL);
    assert_non_null(p);
    gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    /* 1st: taken by the only worker, which blocks on the gate. */
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_OK);
    wait_until(&g.started, 1);
    assert_int_equal(worker_pool_busy(p), 1);
    /* 2nd: waits in the queue (depth 1). */
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_OK);
    assert_int_equal(worker_pool_queued(p), 1);
    /* 3rd: refused at once, both for submit and for run (which must not block). */
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_BUSY);
    int64_t t0 = time_monotonic_ms();
    atomic_int n = 0;
    assert_int_equal(worker_pool_run(p, add_one, &n), WORKER_POOL_BUSY);
    assert_true(time_monotonic_ms() - t0 < 1000);
    assert_int_equal(atomic_load(&n), 0);
    assert_int_equal(worker_pool_queued(p), 1);
    assert_int_equal(atomic_load(&g.started), 1);
    /* Release: both accepted jobs finish, and new work is accepted again. */
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    wait_until(&g.finished, 2);
    assert_int_equal(worker_pool_run(p, add_one, &n), WORKER_POOL_OK);
    assert_int_equal(atomic_load(&n), 1);
    assert_int_equal(worker_pool_submit(p, add_one, &n, NULL), WORKER_POOL_OK);
    assert_int_equal(worker_pool_submit(p, add_one, &n, NULL), WORKER_POOL_OK);
    worker_pool_free(p);
    assert_int_equal(atomic_load(&n), 3);
    assert_int_equal(atomic_load(&g.started), 2);
}

static void test_zero_depth(void **state) {
    (void)state;
    /* Depth 0: a job is accepted only when a worker is idle to take it. */
    worker_pool *p = worker_pool_create(2, 0, NULL);
    gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_OK);
    wait_until(&g.started, 1);
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_OK);
    wait_until(&g.started, 2);
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_BUSY);
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    wait_until(&g.finished, 2);
    atomic_int n = 0;
    assert_int_equal(worker_pool_run(p, add_one, &n), WORKER_POOL_OK);
    assert_int_equal(atomic_load(&n), 1);
    worker_pool_free(p);
}

static void slow_add(void *ctx, void *arg) {
    (void)ctx;
    usleep(20 * 1000);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_free_drains_queue(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(2, 6, NULL);
    atomic_int n = 0;
    int accepted = 0;
    for (int i = 0; i < 8; i++)
        if (worker_pool_submit(p, slow_add, &n, NULL) == WORKER_POOL_OK) accepted++;
    assert_true(accepted >= 6);
    worker_pool_free(p); /* stops accepting, runs everything queued, joins */
    assert_int_equal(atomic_load(&n), accepted);
}

/* ---- parallel for ---------------------------------------------------------------- */

#define PF_MAX 1000

typedef struct {
    atomic_int count[PF_MAX];
    pthread_t thread[PF_MAX];
    bool slow;
} pf_record;

static void pf_mark(void *arg, size_t i) {
    pf_record *r = arg;
    atomic_fetch_add(&r->count[i], 1);
    r->thread[i] = pthread_self();
    if (r->slow) usleep(1000);
}

static int distinct_threads(const pf_record *r, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = pthread_equal(r->thread[i], r->thread[j]);
        k += !seen;
    }
    return k;
}

static void expect_each_once(const pf_record *r, size_t n) {
    for (size_t i = 0; i < n; i++) assert_int_equal(atomic_load(&r->count[i]), 1);
}

/* Every index runs once, and idle workers take part. */
static void test_parallel_for_each_index_once(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(3, 4, NULL);
    assert_non_null(p);
    static pf_record r;
    memset(&r, 0, sizeof r);
    worker_pool_parallel_for(p, PF_MAX, pf_mark, &r);
    expect_each_once(&r, PF_MAX);
    /* Helpers that found nothing left may still be on their way out: only idle
     * workers are asked to help. */
    int64_t deadline = time_monotonic_ms() + 10000;
    while (worker_pool_busy(p) || worker_pool_queued(p)) {
        assert_true(time_monotonic_ms() < deadline);
        usleep(1000);
    }
    memset(&r, 0, sizeof r);
    r.slow = true;
    worker_pool_parallel_for(p, 60, pf_mark, &r);
    expect_each_once(&r, 60);
    assert_true(distinct_threads(&r, 60) >= 2);
    for (int i = 60; i < PF_MAX; i++) assert_int_equal(atomic_load(&r.count[i]), 0);
    worker_pool_free(p);
}

/* With every worker busy and the queue full, the caller does it all, at once. */
static void test_parallel_for_busy_pool(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(1, 1, NULL);
    gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    assert_int_equal(worker_pool_submit(p, gated_job, &g, NULL), WORKER_POOL_OK);
    wait_until(&g.started, 1);
    static pf_record r;
    memset(&r, 0, sizeof r);
    worker_pool_parallel_for(p, 100, pf_mark, &r);
    expect_each_once(&r, 100);
    assert_int_equal(distinct_threads(&r, 100), 1);
    assert_true(pthread_equal(r.thread[0], pthread_self()));
    assert_int_equal(worker_pool_queued(p), 0); /* no helper was left waiting */
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    worker_pool_free(p);
}

typedef struct {
    worker_pool *pool;
    pf_record *r;
} pf_nested;

static void pf_from_worker(void *ctx, void *arg) {
    (void)ctx;
    pf_nested *a = arg;
    worker_pool_parallel_for(a->pool, 200, pf_mark, a->r);
}

/* A job on a worker may spread its own work over the same pool (GetMatches does). */
static void test_parallel_for_from_a_worker(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(2, 2, NULL);
    static pf_record r;
    memset(&r, 0, sizeof r);
    pf_nested a = {p, &r};
    assert_int_equal(worker_pool_run(p, pf_from_worker, &a), WORKER_POOL_OK);
    expect_each_once(&r, 200);
    memset(&r, 0, sizeof r);
    worker_pool_parallel_for(p, 0, pf_mark, &r); /* nothing to do */
    assert_int_equal(atomic_load(&r.count[0]), 0);
    worker_pool_parallel_for(p, 1, pf_mark, &r);
    assert_int_equal(atomic_load(&r.count[0]), 1);
    worker_pool_free(p);
}

/* Many threads calling run() at once: each call returns OK (and ran) or BUSY. */
typedef struct {
    worker_pool *pool;
    atomic_int *ran, *ok, *busy;
} caller_arg;

static void *caller(void *p) {
    caller_arg *a = p;
    for (int i = 0; i < 50; i++) {
        int rc = worker_pool_run(a->pool, add_one, a->ran);
        if (rc == WORKER_POOL_OK) atomic_fetch_add(a->ok, 1);
        else if (rc == WORKER_POOL_BUSY) atomic_fetch_add(a->busy, 1);
        else abort();
    }
    return NULL;
}

static void test_concurrent_callers(void **state) {
    (void)state;
    worker_pool *p = worker_pool_create(2, 2, NULL);
    atomic_int ran = 0, ok = 0, busy = 0;
    caller_arg a = {p, &ran, &ok, &busy};
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, caller, &a);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&ok) + atomic_load(&busy), 400);
    assert_int_equal(atomic_load(&ran), atomic_load(&ok));
    assert_int_equal(worker_pool_busy(p), 0);
    assert_int_equal(worker_pool_queued(p), 0);
    worker_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_executes_and_waits),
        cmocka_unit_test(test_submit_and_on_done),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_no_init_hook_passes_shared),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_zero_depth),
        cmocka_unit_test(test_free_drains_queue),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_parallel_for_each_index_once),
        cmocka_unit_test(test_parallel_for_busy_pool),
        cmocka_unit_test(test_parallel_for_from_a_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
