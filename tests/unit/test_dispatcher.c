/* Unit tests for the job dispatcher (src/api/dispatcher.c) on the memory store:
 * the lease of a job this instance runs is renewed for as long as it runs (a peer
 * never gets it), the job is acked when the hook returns (nobody gets it again),
 * a job whose holder died (a lease nobody renews) is taken over, as delivery 2,
 * and a run that reports failure is left to its lease and runs again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "api/dispatcher.h"
#include "core/util.h"

#define QUEUE "q"
#define HOUR_MS (3600 * 1000)

typedef struct {
    atomic_int runs, last_delivery, running;
    int sleep_ms;
    int fail_first; /* this many runs report "run me again" */
} probe;

static bool slow_job(void *ctx, void *worker_ctx, const store_value *payload, int delivery) {
    (void)worker_ctx;
    probe *p = ctx;
    assert_int_equal(payload->len, 3);
    assert_memory_equal(payload->data, "job", 3);
    atomic_store(&p->running, 1);
    atomic_store(&p->last_delivery, delivery);
    usleep((useconds_t)p->sleep_ms * 1000);
    int runs = atomic_fetch_add(&p->runs, 1) + 1;
    atomic_store(&p->running, 0);
    return runs > p->fail_first;
}

static dispatcher *start(store *st, worker_pool *pool, probe *p, int64_t lease_ms) {
    dispatcher_config dc = {.store = st, .pool = pool, .workers = 1, .queue = QUEUE, .lease_ms = lease_ms,
                            .run = slow_job, .ctx = p};
    dispatcher *d = dispatcher_start(&dc);
    assert_non_null(d);
    return d;
}

static void push(store *st) {
    store_value v = {(uint8_t *)"job", 3};
    assert_int_equal(st->ops->job_push(st, QUEUE, &v), STORE_OK);
}

/* What a peer instance's pop would get now. */
static int peer_pop(store *st) {
    store_job j = {0};
    int rc = st->ops->job_pop(st, QUEUE, 1, HOUR_MS, &j);
    store_job_free(&j);
    return rc;
}

static void wait_for(atomic_int *flag, int value, int timeout_ms) {
    int64_t until = time_monotonic_ms() + timeout_ms;
    while (atomic_load(flag) != value && time_monotonic_ms() < until) usleep(10 * 1000);
    assert_int_equal(atomic_load(flag), value);
}

/* A job running four leases long is never handed to a peer, and is gone once done. */
static void test_lease_renewed_while_running(void **state) {
    (void)state;
    store *st = store_memory_create(10);
    worker_pool *pool = worker_pool_create(1, 4, NULL);
    probe p = {.sleep_ms = 1200};
    dispatcher *d = start(st, pool, &p, 300);
    push(st);
    wait_for(&p.running, 1, 5000);
    while (atomic_load(&p.running)) {
        assert_int_equal(peer_pop(st), STORE_NOT_FOUND);
        usleep(50 * 1000);
    }
    usleep(100 * 1000); /* the ack follows the hook */
    assert_int_equal(peer_pop(st), STORE_NOT_FOUND);
    assert_int_equal(atomic_load(&p.runs), 1);
    assert_int_equal(atomic_load(&p.last_delivery), 1);
    dispatcher_stop(d);
    worker_pool_free(pool);
    store_close(st);
}

/* An instance popped the job and died (its lease is never renewed): once the lease
 * has run out, this dispatcher runs it, as the second delivery, and acks it. */
static void test_job_of_a_dead_holder_is_taken_over(void **state) {
    (void)state;
    store *st = store_memory_create(10);
    push(st);
    store_job dead = {0};
    assert_int_equal(st->ops->job_pop(st, QUEUE, 1, 300, &dead), STORE_OK);
    store_job_free(&dead);
    worker_pool *pool = worker_pool_create(1, 4, NULL);
    probe p = {.sleep_ms = 0};
    int64_t started = time_monotonic_ms();
    dispatcher *d = start(st, pool, &p, HOUR_MS);
    wait_for(&p.runs, 1, 5000);
    assert_true(time_monotonic_ms() - started >= 250); /* not before the lease ran out */
    assert_int_equal(atomic_load(&p.last_delivery), 2);
    usleep(100 * 1000);
    assert_int_equal(peer_pop(st), STORE_NOT_FOUND);
    dispatcher_stop(d);
    worker_pool_free(pool);
    store_close(st);
}

/* A hook that reports failure (the store failed) leaves the job to its lease: it
 * runs again once the lease is over, as the next delivery, and is then acked. */
static void test_failed_run_runs_again_after_the_lease(void **state) {
    (void)state;
    store *st = store_memory_create(10);
    worker_pool *pool = worker_pool_create(1, 4, NULL);
    probe p = {.fail_first = 1};
    int64_t started = time_monotonic_ms();
    dispatcher *d = start(st, pool, &p, 400);
    push(st);
    wait_for(&p.runs, 2, 5000);
    assert_true(time_monotonic_ms() - started >= 350); /* not before the lease ran out */
    assert_int_equal(atomic_load(&p.last_delivery), 2);
    usleep(100 * 1000);
    assert_int_equal(peer_pop(st), STORE_NOT_FOUND);
    assert_int_equal(atomic_load(&p.runs), 2);
    dispatcher_stop(d);
    worker_pool_free(pool);
    store_close(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_renewed_while_running),
        cmocka_unit_test(test_job_of_a_dead_holder_is_taken_over),
        cmocka_unit_test(test_failed_run_runs_again_after_the_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
