/* Unit tests for the in-memory store (src/store/memory_store.c) through the store
 * interface: tenant isolation, items (put/get/list order/delete/delete_all), expiry,
 * the per-session item limit, compare-and-set updates and the per-key usage
 * counters (billing), the job queues and deadline indexes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "store/store.h"

#define HOUR_MS (3600 * 1000)

static store_value V(const char *s) { return (store_value){(uint8_t *)s, strlen(s)}; }

static int setup(void **state) {
    store *s = store_memory_create(3);
    if (!s) return -1;
    *state = s;
    return 0;
}

static int teardown(void **state) {
    store_close(*state);
    return 0;
}

static void check_value(const store_value *v, const char *text) {
    assert_int_equal(v->len, strlen(text));
    assert_memory_equal(v->data, text, v->len);
}

static void expect_session(store *s, const char *tenant, const char *sid, const char *text) {
    store_value out = {0};
    int64_t exp = 0;
    assert_int_equal(s->ops->session_get(s, tenant, sid, &out, &exp), STORE_OK);
    check_value(&out, text);
    assert_true(exp > time_now_ms());
    store_value_free(&out);
}

static void expect_item(store *s, const char *tenant, const char *sid, const char *kind, const char *id,
                        const char *text) {
    store_value out = {0};
    int rc = s->ops->item_get(s, tenant, sid, kind, id, &out);
    assert_int_equal(rc, text ? STORE_OK : STORE_NOT_FOUND);
    if (text) check_value(&out, text);
    store_value_free(&out);
}

static void test_open(void **state) {
    (void)state;
    char err[256] = "";
    store *s = store_open("memory", 10, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s->ops->name, "memory");
    assert_string_equal(s->ops->status(s), "UP");
    store_close(s);
    assert_null(store_open("mongodb://x", 10, err, sizeof err));
    assert_non_null(strstr(err, "mongodb://x"));
    store_close(NULL);
    store_value_free(NULL);
    store_values_free(NULL, 0);
}

static void test_session_roundtrip(void **state) {
    store *s = *state;
    store_value v = V("{\"id\":\"s1\"}");
    int64_t expires = time_now_ms() + HOUR_MS;
    assert_int_equal(s->ops->session_create(s, "A", "s1", &v, expires), STORE_OK);
    store_value out = {0};
    int64_t got_exp = 0;
    assert_int_equal(s->ops->session_get(s, "A", "s1", &out, &got_exp), STORE_OK);
    check_value(&out, "{\"id\":\"s1\"}");
    assert_true(out.data != v.data); /* a copy */
    assert_int_equal(got_exp, expires);
    store_value_free(&out);
    assert_null(out.data);
    assert_int_equal(s->ops->session_get(s, "A", "s1", &out, NULL), STORE_OK); /* expires optional */
    store_value_free(&out);
    assert_int_equal(s->ops->session_create(s, "A", "s1", &v, expires), STORE_EXISTS);
    assert_int_equal(s->ops->session_get(s, "A", "nope", &out, NULL), STORE_NOT_FOUND);
    /* Empty values are values. */
    store_value empty = {(uint8_t *)"", 0};
    assert_int_equal(s->ops->session_create(s, "A", "empty", &empty, expires), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "empty", &out, NULL), STORE_OK);
    assert_int_equal(out.len, 0);
    store_value_free(&out);
    assert_int_equal(s->ops->session_delete(s, "A", "s1"), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "s1", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "A", "s1"), STORE_NOT_FOUND);
    /* Too long identifiers are refused, not truncated. */
    char long_id[100];
    memset(long_id, 'x', 99);
    long_id[99] = '\0';
    assert_int_not_equal(s->ops->session_create(s, "A", long_id, &v, expires), STORE_OK);
    assert_int_not_equal(s->ops->session_create(s, long_id, "s2", &v, expires), STORE_OK);
}

static void test_tenant_isolation(void **state) {
    store *s = *state;
    int64_t exp = time_now_ms() + HOUR_MS;
    store_value a = V("tenant A"), b = V("tenant B"), out = {0};
    assert_int_equal(s->ops->session_create(s, "A", "sid", &a, exp), STORE_OK);
    /* B does not see, change or delete A's session... */
    assert_int_equal(s->ops->session_get(s, "B", "sid", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_update(s, "B", "sid", NULL, &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "B", "sid"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "B", "sid", "face", "f1", &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "A", "sid", "face", "f1", &a), STORE_OK);
    assert_int_equal(s->ops->item_get(s, "B", "sid", "face", "f1", &out), STORE_NOT_FOUND);
    store_value *list = NULL;
    size_t n = 99;
    assert_int_equal(s->ops->item_list(s, "B", "sid", "face", &list, &n), STORE_NOT_FOUND);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->item_delete(s, "B", "sid", "face", "f1"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_delete_all(s, "B", "sid", "face"), STORE_NOT_FOUND);
    /* ...and may hold a session with the same id of its own. */
    assert_int_equal(s->ops->session_create(s, "B", "sid", &b, exp), STORE_OK);
    expect_session(s, "A", "sid", "tenant A");
    expect_session(s, "B", "sid", "tenant B");
    expect_item(s, "A", "sid", "face", "f1", "tenant A");
    expect_item(s, "B", "sid", "face", "f1", NULL);
    assert_int_equal(s->ops->session_delete(s, "B", "sid"), STORE_OK);
    expect_session(s, "A", "sid", "tenant A");
    /* Tenant names are compared whole ("AB"+"C" is not "A"+"BC"). */
    assert_int_equal(s->ops->session_create(s, "AB", "C", &a, exp), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "BC", &out, NULL), STORE_NOT_FOUND);
}

static void test_items(void **state) {
    store *s = *state; /* at most 3 items per session */
    int64_t exp = time_now_ms() + HOUR_MS;
    store_value sv = V("session"), v1 = V("one"), v2 = V("two"), v3 = V("three"), out = {0};
    assert_int_equal(s->ops->session_create(s, "T", "s", &sv, exp), STORE_OK);
    store_value *list = NULL;
    size_t n = 99;
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_values_free(list, n);

    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f2", &v2), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "live", "l1", &v3), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f1", &v1), STORE_OK);
    expect_item(s, "T", "s", "face", "f1", "one");
    expect_item(s, "T", "s", "face", "f2", "two");
    expect_item(s, "T", "s", "live", "l1", "three");
    expect_item(s, "T", "s", "live", "f1", NULL); /* kind is part of the key */
    expect_item(s, "T", "s", "face", "l1", NULL);
    expect_item(s, "T", "other", "face", "f1", NULL);

    /* Listed oldest first, only the asked kind. */
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    check_value(&list[0], "two");
    check_value(&list[1], "one");
    store_values_free(list, n);
    assert_int_equal(s->ops->item_list(s, "T", "s", "live", &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    check_value(&list[0], "three");
    store_values_free(list, n);

    /* Full: a 4th new item is refused, replacing an existing one is not. */
    store_value v4 = V("four");
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_FULL);
    expect_item(s, "T", "s", "face", "f4", NULL);
    store_value v1b = V("one again");
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f1", &v1b), STORE_OK);
    expect_item(s, "T", "s", "face", "f1", "one again");
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 2); /* one copy per id */
    store_values_free(list, n);

    /* Delete one, then there is room again. */
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_NOT_FOUND);
    expect_item(s, "T", "s", "face", "f2", NULL);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f5", &v4), STORE_FULL);

    /* delete_all of one kind keeps the others. */
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK);
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_values_free(list, n);
    expect_item(s, "T", "s", "live", "l1", "three");
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK); /* nothing left: still OK */
    /* The tail is consistent after deleting every item: appending works and keeps order. */
    assert_int_equal(s->ops->item_delete(s, "T", "s", "live", "l1"), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "a", &v1), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "b", &v2), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "c", &v3), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "c"), STORE_OK); /* the tail */
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "d", &v4), STORE_OK);
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 3);
    check_value(&list[0], "one");
    check_value(&list[1], "two");
    check_value(&list[2], "four");
    store_values_free(list, n);

    /* Items die with their session; a new session with the same id starts empty. */
    assert_int_equal(s->ops->session_delete(s, "T", "s"), STORE_OK);
    expect_item(s, "T", "s", "face", "a", NULL);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "x", &v1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_create(s, "T", "s", &sv, exp), STORE_OK);
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_values_free(list, n);
    (void)out;
}

static void test_expiry(void **state) {
    store *s = *state;
    store_value v = V("short"), out = {0};
    int64_t now = time_now_ms();
    assert_int_equal(s->ops->session_create(s, "T", "short", &v, now + 150), STORE_OK);
    assert_int_equal(s->ops->session_create(s, "T", "long", &v, now + HOUR_MS), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "short", "face", "f", &v), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "T", "short", &out, NULL), STORE_OK);
    store_value_free(&out);
    usleep(300 * 1000);
    assert_int_equal(s->ops->session_get(s, "T", "short", &out, NULL), STORE_NOT_FOUND);
    assert_null(out.data);
    assert_int_equal(s->ops->item_get(s, "T", "short", "face", "f", &out), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "T", "short", "face", "g", &v), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_update(s, "T", "short", NULL, &v), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "T", "short"), STORE_NOT_FOUND);
    expect_session(s, "T", "long", "short");
    /* An expired id can be created again. */
    assert_int_equal(s->ops->session_create(s, "T", "short", &v, time_now_ms() + HOUR_MS), STORE_OK);
    /* Already expired at creation: never visible. */
    assert_int_equal(s->ops->session_create(s, "T", "past", &v, now - 1), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "T", "past", &out, NULL), STORE_NOT_FOUND);
    /* Expired sessions are swept without being read (checked by ASan/LSan at close),
     * and an expiring session's id does not block others in the same bucket. */
    for (int i = 0; i < 50; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "sweep-%d", i);
        assert_int_equal(s->ops->session_create(s, "T", sid, &v, time_now_ms() + 50), STORE_OK);
        assert_int_equal(s->ops->item_put(s, "T", sid, "face", "f", &v), STORE_OK);
    }
    usleep(1300 * 1000); /* the sweeper runs once a second */
    expect_session(s, "T", "long", "short");
}

static void test_compare_and_set(void **state) {
    store *s = *state;
    store_value v0 = V("v0"), v1 = V("v1"), v2 = V("v2"), out = {0};
    assert_int_equal(s->ops->session_create(s, "T", "cas", &v0, time_now_ms() + HOUR_MS), STORE_OK);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v1), STORE_OK);
    expect_session(s, "T", "cas", "v1");
    /* A writer that read v0 loses: the value stays v1. */
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v2), STORE_CONFLICT);
    expect_session(s, "T", "cas", "v1");
    /* Same prefix, different length is a different value. */
    store_value v1x = V("v1x");
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v1x, &v2), STORE_CONFLICT);
    store_value shorter = V("v");
    assert_int_equal(s->ops->session_update(s, "T", "cas", &shorter, &v2), STORE_CONFLICT);
    /* expected NULL: unconditional. */
    assert_int_equal(s->ops->session_update(s, "T", "cas", NULL, &v2), STORE_OK);
    expect_session(s, "T", "cas", "v2");
    assert_int_equal(s->ops->session_update(s, "T", "missing", NULL, &v2), STORE_NOT_FOUND);
    /* The update keeps the expiry and the items. */
    assert_int_equal(s->ops->item_put(s, "T", "cas", "face", "f", &v0), STORE_OK);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v2, &v0), STORE_OK);
    expect_item(s, "T", "cas", "face", "f", "v0");
    (void)out;
}

/* Threads increment a counter held in one session with compare-and-set loops:
 * no increment may be lost. */
#define CAS_THREADS 4
#define CAS_ROUNDS 300

static void *cas_worker(void *p) {
    store *s = p;
    for (int i = 0; i < CAS_ROUNDS; i++) {
        for (;;) {
            store_value cur = {0};
            if (s->ops->session_get(s, "T", "counter", &cur, NULL) != STORE_OK) abort();
            char buf[32];
            snprintf(buf, sizeof buf, "%.*s", (int)cur.len, (const char *)cur.data);
            snprintf(buf, sizeof buf, "%ld", strtol(buf, NULL, 10) + 1);
            store_value next = V(buf);
            int rc = s->ops->session_update(s, "T", "counter", &cur, &next);
            store_value_free(&cur);
            if (rc == STORE_OK) break;
            if (rc != STORE_CONFLICT) abort();
        }
    }
    return NULL;
}

static void test_concurrent_compare_and_set(void **state) {
    store *s = *state;
    store_value zero = V("0");
    assert_int_equal(s->ops->session_create(s, "T", "counter", &zero, time_now_ms() + HOUR_MS), STORE_OK);
    pthread_t t[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, cas_worker, s), 0);
    for (int i = 0; i < CAS_THREADS; i++) pthread_join(t[i], NULL);
    char expect[32];
    snprintf(expect, sizeof expect, "%d", CAS_THREADS * CAS_ROUNDS);
    expect_session(s, "T", "counter", expect);
}

/* The count of one operation in a usage_get answer (0 when absent). */
static long calls_of(const store_usage *u, size_t n, const char *operation) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(u[i].operation, operation)) return u[i].calls;
    return 0;
}

static void test_usage(void **state) {
    store *s = *state;
    store_usage u[STORE_USAGE_MAX_OPS + 1];
    size_t n = 99;
    assert_int_equal(s->ops->usage_get(s, "key-never", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->usage_add(s, "key-a", "createBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "key-a", "createBioSession", 2), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "key-a", "getBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "key-b", "createBioSession", 5), STORE_OK);
    assert_int_equal(s->ops->usage_get(s, "key-a", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(calls_of(u, n, "createBioSession"), 3);
    assert_int_equal(calls_of(u, n, "getBioSession"), 1);
    assert_int_equal(s->ops->usage_get(s, "key-b", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(calls_of(u, n, "createBioSession"), 5);
    /* At most max entries are written. */
    assert_int_equal(s->ops->usage_get(s, "key-a", u, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* Too long names are refused, not truncated onto another name. */
    char long_name[STORE_USAGE_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(s->ops->usage_add(s, long_name, "op", 1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->usage_add(s, "key-a", long_name, 1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->usage_get(s, long_name, u, STORE_USAGE_MAX_OPS, &n), STORE_NOT_FOUND);
    long_name[STORE_USAGE_NAME_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(s->ops->usage_add(s, "key-c", long_name, 1), STORE_OK);
    /* The table of one key is bounded. */
    for (int i = 1; i < STORE_USAGE_MAX_OPS; i++) {
        char op[16];
        snprintf(op, sizeof op, "op%d", i);
        assert_int_equal(s->ops->usage_add(s, "key-c", op, i), STORE_OK);
    }
    assert_int_equal(s->ops->usage_add(s, "key-c", "one-too-many", 1), STORE_FULL);
    assert_int_equal(s->ops->usage_add(s, "key-c", "op7", 1), STORE_OK);
    assert_int_equal(s->ops->usage_get(s, "key-c", u, STORE_USAGE_MAX_OPS + 1, &n), STORE_OK);
    assert_int_equal(n, STORE_USAGE_MAX_OPS);
    assert_int_equal(calls_of(u, n, "op7"), 8);
    assert_int_equal(calls_of(u, n, long_name), 1);
}

#define USAGE_THREADS 4
#define USAGE_ROUNDS 1000

static void *usage_worker(void *p) {
    store *s = p;
    for (int i = 0; i < USAGE_ROUNDS; i++)
        if (s->ops->usage_add(s, "key-t", "op", 1) != STORE_OK) abort();
    return NULL;
}

/* Concurrent requests lose no count. */
static void test_concurrent_usage(void **state) {
    store *s = *state;
    pthread_t t[USAGE_THREADS];
    for (int i = 0; i < USAGE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, usage_worker, s), 0);
    for (int i = 0; i < USAGE_THREADS; i++) pthread_join(t[i], NULL);
    store_usage u[4];
    size_t n = 0;
    assert_int_equal(s->ops->usage_get(s, "key-t", u, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(u[0].calls, USAGE_THREADS * USAGE_ROUNDS);
}

/* ---- job queues and deadline indexes (shared by every instance) ----------------- */

static void expect_pop(store *s, const char *queue, const char *text) {
    store_value out = {0};
    assert_int_equal(s->ops->job_pop(s, queue, 100, &out), text ? STORE_OK : STORE_NOT_FOUND);
    if (text) check_value(&out, text);
    store_value_free(&out);
}

/* FIFO per queue, queues independent, binary-safe payloads, a bounded wait. */
static void test_job_queue(void **state) {
    store *s = *state;
    int64_t t0 = time_monotonic_ms();
    expect_pop(s, "q-fifo", NULL);
    assert_true(time_monotonic_ms() - t0 >= 80);
    store_value a = V("a"), b = V("b"), other = V("other"), bin = {(uint8_t *)"x\0y", 3};
    assert_int_equal(s->ops->job_push(s, "q-fifo", &a), STORE_OK);
    assert_int_equal(s->ops->job_push(s, "q-other", &other), STORE_OK);
    assert_int_equal(s->ops->job_push(s, "q-fifo", &b), STORE_OK);
    assert_int_equal(s->ops->job_push(s, "q-fifo", &bin), STORE_OK);
    expect_pop(s, "q-fifo", "a");
    expect_pop(s, "q-fifo", "b");
    store_value out = {0};
    assert_int_equal(s->ops->job_pop(s, "q-fifo", 100, &out), STORE_OK);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "x\0y", 3);
    store_value_free(&out);
    expect_pop(s, "q-fifo", NULL);
    expect_pop(s, "q-other", "other");
    expect_pop(s, "q-other", NULL);
}

#define QUEUE_JOBS 200
#define QUEUE_THREADS 4

typedef struct {
    store *s;
    int got[QUEUE_JOBS];
    pthread_mutex_t lock;
} pop_race;

static void *popper(void *arg) {
    pop_race *r = arg;
    store_value out = {0};
    while (r->s->ops->job_pop(r->s, "q-race", 100, &out) == STORE_OK) {
        int i = atoi((const char *)out.data);
        store_value_free(&out);
        pthread_mutex_lock(&r->lock);
        if (i >= 0 && i < QUEUE_JOBS) r->got[i]++;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

/* Concurrent poppers (instances' dispatchers): every job is taken exactly once. */
static void test_job_queue_each_job_once(void **state) {
    pop_race r = {.s = *state};
    pthread_mutex_init(&r.lock, NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        store_value v = {(uint8_t *)text, strlen(text) + 1};
        assert_int_equal(r.s->ops->job_push(r.s, "q-race", &v), STORE_OK);
    }
    pthread_t t[QUEUE_THREADS];
    for (int i = 0; i < QUEUE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, popper, &r), 0);
    for (int i = 0; i < QUEUE_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) assert_int_equal(r.got[i], 1);
    pthread_mutex_destroy(&r.lock);
}

static void expect_claim(store *s, const char *index, int64_t now, const char *text) {
    store_value out = {0};
    assert_int_equal(s->ops->deadline_claim(s, index, now, &out), text ? STORE_OK : STORE_NOT_FOUND);
    if (text) check_value(&out, text);
    store_value_free(&out);
}

/* Only due members are claimed, once each; filing again moves the deadline;
 * indexes are independent. */
static void test_deadlines(void **state) {
    store *s = *state;
    int64_t now = time_now_ms();
    assert_int_equal(s->ops->deadline_add(s, "d-test", "[\"T\",\"later\"]", now + HOUR_MS), STORE_OK);
    assert_int_equal(s->ops->deadline_add(s, "d-test", "due", now - 5), STORE_OK);
    assert_int_equal(s->ops->deadline_add(s, "d-other", "elsewhere", now - 5), STORE_OK);
    expect_claim(s, "d-test", now, "due");
    expect_claim(s, "d-test", now, NULL);
    assert_int_equal(s->ops->deadline_add(s, "d-test", "[\"T\",\"later\"]", now - 1), STORE_OK);
    assert_int_equal(s->ops->deadline_add(s, "d-test", "moved-away", now - 1), STORE_OK);
    assert_int_equal(s->ops->deadline_add(s, "d-test", "moved-away", now + HOUR_MS), STORE_OK);
    expect_claim(s, "d-test", now, "[\"T\",\"later\"]");
    expect_claim(s, "d-test", now, NULL);
    expect_claim(s, "d-test", now + 2 * HOUR_MS, "moved-away");
    expect_claim(s, "d-other", now, "elsewhere");
    expect_claim(s, "d-other", now, NULL);
}

typedef struct {
    store *s;
    int64_t now;
    int got[QUEUE_JOBS];
    pthread_mutex_t lock;
} claim_race;

static void *claimer(void *arg) {
    claim_race *r = arg;
    store_value out = {0};
    while (r->s->ops->deadline_claim(r->s, "d-race", r->now, &out) == STORE_OK) {
        char text[16] = "";
        memcpy(text, out.data, out.len < sizeof text - 1 ? out.len : sizeof text - 1);
        int i = atoi(text);
        store_value_free(&out);
        pthread_mutex_lock(&r->lock);
        if (i >= 0 && i < QUEUE_JOBS) r->got[i]++;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

/* Concurrent claimers: each due member goes to exactly one (the TIMEOUT callback is
 * sent once however many instances scan). */
static void test_deadline_claimed_once(void **state) {
    claim_race r = {.s = *state, .now = time_now_ms()};
    pthread_mutex_init(&r.lock, NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        assert_int_equal(r.s->ops->deadline_add(r.s, "d-race", text, r.now - i), STORE_OK);
    }
    pthread_t t[QUEUE_THREADS];
    for (int i = 0; i < QUEUE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, claimer, &r), 0);
    for (int i = 0; i < QUEUE_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) assert_int_equal(r.got[i], 1);
    pthread_mutex_destroy(&r.lock);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test_setup_teardown(test_session_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_queue_each_job_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_claimed_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
