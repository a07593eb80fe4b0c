/* Store conformance suite: the behaviour every store backend (src/store/) must show
 * through the store interface, written once and included by each backend's runner
 * (tests/unit/test_store.c for memory, tests/unit/test_redis_store.c for Redis).
 * Covers sessions, tenant isolation (including crafted names), items (order, limit,
 * delete_all), expiry, compare-and-set, the per-key usage counters, the job queues
 * and their leases (renew, ack, expiry hands a job out again, exactly once), and
 * the deadline indexes.
 *
 * Not a test_*.c file on purpose: the Makefile builds those as binaries; this one is
 * only #included. A runner:
 *   - creates its store with at most CONFORMANCE_MAX_ITEMS items per session,
 *   - has a setup that creates the store and calls fixture_setup (which puts a
 *     store_fixture in the cmocka state),
 *   - lists STORE_CONFORMANCE_TESTS(its_setup, fixture_teardown) in its test array.
 * Tests use fixed names and clean up what they create, so a backend whose data
 * outlives one store object (Redis) can run them in sequence on one server. */
#ifndef TESTS_UNIT_STORE_CONFORMANCE_H
#define TESTS_UNIT_STORE_CONFORMANCE_H

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
#define CONFORMANCE_MAX_ITEMS 3 /* the item limit every runner's store is created with */

/* What a runner's setup hands to the tests through the cmocka state. */
typedef struct {
    store *s;
    int cas_rounds;   /* increments per thread in test_concurrent_compare_and_set */
    int usage_rounds; /* usage_add calls per thread in test_concurrent_usage */
} store_fixture;

static store *fixture_store(void **state) { return ((store_fixture *)*state)->s; }

/* For a runner's setup: puts a fixture for store s (NULL: setup fails) in the state. */
static int fixture_setup(void **state, store *s, int cas_rounds, int usage_rounds) {
    static store_fixture f;
    if (!s) return -1;
    f = (store_fixture){.s = s, .cas_rounds = cas_rounds, .usage_rounds = usage_rounds};
    *state = &f;
    return 0;
}

/* A runner's teardown: closes the fixture's store. */
static int fixture_teardown(void **state) {
    store_close(fixture_store(state));
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static store_value V(const char *s) { return (store_value){(uint8_t *)s, strlen(s)}; }

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

static void expect_list(store *s, const char *tenant, const char *sid, const char *kind, int n,
                        const char *const *texts) {
    store_value *list = NULL;
    size_t count = 99;
    assert_int_equal(s->ops->item_list(s, tenant, sid, kind, &list, &count), STORE_OK);
    assert_int_equal(count, n);
    for (int i = 0; i < n; i++) check_value(&list[i], texts[i]);
    store_values_free(list, count);
}

/* The count of one operation in a usage_get answer (0 when absent). */
static long calls_of(const store_usage *u, size_t n, const char *operation) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(u[i].operation, operation)) return u[i].calls;
    return 0;
}

/* ---- sessions and items -------------------------------------------------------- */

static void test_session_roundtrip(void **state) {
    store *s = fixture_store(state);
    store_value v = V("{\"id\":\"s1\"}"), out = {0};
    int64_t expires = time_now_ms() + HOUR_MS, got_exp = 0;
    s->ops->session_delete(s, "A", "s1");
    assert_int_equal(s->ops->session_create(s, "A", "s1", &v, expires), STORE_OK);
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
    /* Empty and binary values are values. */
    store_value empty = {(uint8_t *)"", 0};
    s->ops->session_delete(s, "A", "empty");
    assert_int_equal(s->ops->session_create(s, "A", "empty", &empty, expires), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "empty", &out, NULL), STORE_OK);
    assert_int_equal(out.len, 0);
    store_value_free(&out);
    uint8_t bin[] = {0, 1, '\r', '\n', 0xff, 0};
    store_value bv = {bin, sizeof bin};
    assert_int_equal(s->ops->item_put(s, "A", "empty", "image", "b", &bv), STORE_OK);
    assert_int_equal(s->ops->item_get(s, "A", "empty", "image", "b", &out), STORE_OK);
    assert_int_equal(out.len, sizeof bin);
    assert_memory_equal(out.data, bin, sizeof bin);
    store_value_free(&out);
    assert_int_equal(s->ops->session_delete(s, "A", "empty"), STORE_OK);
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
    store *s = fixture_store(state);
    int64_t exp = time_now_ms() + HOUR_MS;
    store_value a = V("tenant A"), b = V("tenant B"), out = {0};
    assert_int_equal(s->ops->session_create(s, "A", "iso", &a, exp), STORE_OK);
    /* B does not see, change or delete A's session... */
    assert_int_equal(s->ops->session_get(s, "B", "iso", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_update(s, "B", "iso", NULL, &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "B", "iso"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "B", "iso", "face", "f1", &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "A", "iso", "face", "f1", &a), STORE_OK);
    assert_int_equal(s->ops->item_get(s, "B", "iso", "face", "f1", &out), STORE_NOT_FOUND);
    store_value *list = NULL;
    size_t n = 99;
    assert_int_equal(s->ops->item_list(s, "B", "iso", "face", &list, &n), STORE_NOT_FOUND);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->item_delete(s, "B", "iso", "face", "f1"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_delete_all(s, "B", "iso", "face"), STORE_NOT_FOUND);
    /* ...and may hold a session with the same id of its own. */
    assert_int_equal(s->ops->session_create(s, "B", "iso", &b, exp), STORE_OK);
    expect_session(s, "A", "iso", "tenant A");
    expect_session(s, "B", "iso", "tenant B");
    expect_item(s, "A", "iso", "face", "f1", "tenant A");
    expect_item(s, "B", "iso", "face", "f1", NULL);
    assert_int_equal(s->ops->session_delete(s, "B", "iso"), STORE_OK);
    expect_session(s, "A", "iso", "tenant A");
    /* Tenant names are compared whole ("AB"+"C" is not "A"+"BC"). */
    assert_int_equal(s->ops->session_create(s, "AB", "C", &a, exp), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "BC", &out, NULL), STORE_NOT_FOUND);
    /* Crafted names cannot reach another tenant's keys: separators, hash-tag braces
     * and escape characters in a tenant or id are data, not structure. */
    assert_int_equal(s->ops->session_create(s, "A", "x:y", &a, exp), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A:x", "y", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_get(s, "A%3Ax", "y", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_get(s, "A", "x%3Ay", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_create(s, "A", "}{B:iso", &b, exp), STORE_OK);
    expect_session(s, "A", "}{B:iso", "tenant B");
    assert_int_equal(s->ops->session_get(s, "B", "iso", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "A", "iso", "face:x", "y", &a), STORE_OK);
    expect_item(s, "A", "iso", "face", "x:y", NULL);
    expect_list(s, "A", "iso", "face", 1, (const char *const[]){"tenant A"});
    const char *sids[] = {"iso", "x:y", "}{B:iso"};
    for (int i = 0; i < 3; i++) assert_int_equal(s->ops->session_delete(s, "A", sids[i]), STORE_OK);
    assert_int_equal(s->ops->session_delete(s, "AB", "C"), STORE_OK);
}

static void test_items(void **state) {
    store *s = fixture_store(state); /* at most CONFORMANCE_MAX_ITEMS (3) items per session */
    int64_t exp = time_now_ms() + HOUR_MS;
    store_value sv = V("session"), v1 = V("one"), v2 = V("two"), v3 = V("three"), v4 = V("four");
    s->ops->session_delete(s, "T", "s");
    assert_int_equal(s->ops->session_create(s, "T", "s", &sv, exp), STORE_OK);
    expect_list(s, "T", "s", "face", 0, NULL);
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
    expect_list(s, "T", "s", "face", 2, (const char *const[]){"two", "one"});
    expect_list(s, "T", "s", "live", 1, (const char *const[]){"three"});
    /* Full: a 4th new item is refused, replacing one is not (one copy per id, moved last). */
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_FULL);
    expect_item(s, "T", "s", "face", "f4", NULL);
    store_value v2b = V("two again");
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f2", &v2b), STORE_OK);
    expect_item(s, "T", "s", "face", "f2", "two again");
    expect_list(s, "T", "s", "face", 2, (const char *const[]){"one", "two again"});
    /* Delete one, then there is room again. */
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_NOT_FOUND);
    expect_item(s, "T", "s", "face", "f2", NULL);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f5", &v4), STORE_FULL);
    /* delete_all of one kind keeps the others. */
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK);
    expect_list(s, "T", "s", "face", 0, NULL);
    expect_item(s, "T", "s", "live", "l1", "three");
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK); /* nothing left: still OK */
    /* The tail is consistent after deleting every item: appending works and keeps order. */
    assert_int_equal(s->ops->item_delete(s, "T", "s", "live", "l1"), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "a", &v1), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "b", &v2), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "c", &v3), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "c"), STORE_OK); /* the tail */
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "d", &v4), STORE_OK);
    expect_list(s, "T", "s", "face", 3, (const char *const[]){"one", "two", "four"});
    /* Items die with their session; a new session with the same id starts empty. */
    assert_int_equal(s->ops->session_delete(s, "T", "s"), STORE_OK);
    expect_item(s, "T", "s", "face", "a", NULL);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "x", &v1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_create(s, "T", "s", &sv, exp), STORE_OK);
    expect_list(s, "T", "s", "face", 0, NULL);
    /* Too long kinds and ids are refused, not truncated. */
    char long_id[100];
    memset(long_id, 'x', 99);
    long_id[99] = '\0';
    assert_int_not_equal(s->ops->item_put(s, "T", "s", "face", long_id, &v1), STORE_OK);
    assert_int_not_equal(s->ops->item_put(s, "T", "s", long_id, "a", &v1), STORE_OK);
    assert_int_equal(s->ops->session_delete(s, "T", "s"), STORE_OK);
}

/* A session dies at its expiry, with its items; its id can be used again. */
static void test_expiry(void **state) {
    store *s = fixture_store(state);
    store_value v = V("short"), out = {0};
    int64_t now = time_now_ms();
    s->ops->session_delete(s, "T", "long");
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
    /* An expired id can be created again, and starts without the old items. */
    assert_int_equal(s->ops->session_create(s, "T", "short", &v, time_now_ms() + HOUR_MS), STORE_OK);
    expect_list(s, "T", "short", "face", 0, NULL);
    /* Already expired at creation: never visible. */
    assert_int_equal(s->ops->session_create(s, "T", "past", &v, now - 1), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "T", "past", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "T", "short"), STORE_OK);
    assert_int_equal(s->ops->session_delete(s, "T", "long"), STORE_OK);
}

/* ---- compare-and-set ----------------------------------------------------------- */

static void test_compare_and_set(void **state) {
    store *s = fixture_store(state);
    store_value v0 = V("v0"), v1 = V("v1"), v2 = V("v2");
    s->ops->session_delete(s, "T", "cas");
    int64_t exp = time_now_ms() + HOUR_MS, got = 0;
    assert_int_equal(s->ops->session_create(s, "T", "cas", &v0, exp), STORE_OK);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v1), STORE_OK);
    expect_session(s, "T", "cas", "v1");
    /* A writer that read v0 loses: the value stays v1. */
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v2), STORE_CONFLICT);
    expect_session(s, "T", "cas", "v1");
    /* Same prefix, different length is a different value. */
    store_value v1x = V("v1x"), shorter = V("v");
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v1x, &v2), STORE_CONFLICT);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &shorter, &v2), STORE_CONFLICT);
    /* expected NULL: unconditional. */
    assert_int_equal(s->ops->session_update(s, "T", "cas", NULL, &v2), STORE_OK);
    expect_session(s, "T", "cas", "v2");
    assert_int_equal(s->ops->session_update(s, "T", "missing", NULL, &v2), STORE_NOT_FOUND);
    /* The update keeps the expiry and the items. */
    assert_int_equal(s->ops->item_put(s, "T", "cas", "face", "f", &v0), STORE_OK);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v2, &v0), STORE_OK);
    expect_item(s, "T", "cas", "face", "f", "v0");
    store_value out = {0};
    assert_int_equal(s->ops->session_get(s, "T", "cas", &out, &got), STORE_OK);
    assert_int_equal(got, exp);
    store_value_free(&out);
    assert_int_equal(s->ops->session_delete(s, "T", "cas"), STORE_OK);
}

/* Threads increment a counter held in one session with compare-and-set loops:
 * no increment may be lost. */
#define CAS_THREADS 4

static void *cas_worker(void *p) {
    const store_fixture *f = p;
    store *s = f->s;
    for (int i = 0; i < f->cas_rounds; i++) {
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
    store_fixture *f = *state;
    store *s = f->s;
    store_value zero = V("0");
    assert_true(f->cas_rounds > 0);
    s->ops->session_delete(s, "T", "counter");
    assert_int_equal(s->ops->session_create(s, "T", "counter", &zero, time_now_ms() + HOUR_MS), STORE_OK);
    pthread_t t[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, cas_worker, f), 0);
    for (int i = 0; i < CAS_THREADS; i++) pthread_join(t[i], NULL);
    char expect[32];
    snprintf(expect, sizeof expect, "%d", CAS_THREADS * f->cas_rounds);
    expect_session(s, "T", "counter", expect);
    assert_int_equal(s->ops->session_delete(s, "T", "counter"), STORE_OK);
}

/* ---- usage counters (billing) -------------------------------------------------- */

static void test_usage(void **state) {
    store *s = fixture_store(state);
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
    /* Exactly the limit is fine. */
    long_name[STORE_USAGE_NAME_MAX] = '\0';
    assert_int_equal(s->ops->usage_add(s, "key-limit", long_name, 1), STORE_OK);
    assert_int_equal(s->ops->usage_get(s, "key-limit", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(calls_of(u, n, long_name), 1);
}

#define USAGE_THREADS 4

static void *usage_worker(void *p) {
    const store_fixture *f = p;
    for (int i = 0; i < f->usage_rounds; i++)
        if (f->s->ops->usage_add(f->s, "key-conc", "op", 1) != STORE_OK) abort();
    return NULL;
}

/* Concurrent requests lose no count. */
static void test_concurrent_usage(void **state) {
    store_fixture *f = *state;
    assert_true(f->usage_rounds > 0);
    pthread_t t[USAGE_THREADS];
    for (int i = 0; i < USAGE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, usage_worker, f), 0);
    for (int i = 0; i < USAGE_THREADS; i++) pthread_join(t[i], NULL);
    store_usage u[4];
    size_t n = 0;
    assert_int_equal(f->s->ops->usage_get(f->s, "key-conc", u, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(u[0].calls, USAGE_THREADS * f->usage_rounds);
}

/* ---- job queues and deadline indexes (shared by every instance) ----------------- */

/* Pops (an hour's lease), checks the payload, and acks: the job is done. */
static void expect_pop(store *s, const char *queue, const char *text) {
    store_job out = {0};
    assert_int_equal(s->ops->job_pop(s, queue, 100, HOUR_MS, &out), text ? STORE_OK : STORE_NOT_FOUND);
    if (text) {
        check_value(&out.payload, text);
        assert_int_equal(out.deliveries, 1);
        assert_int_equal(s->ops->job_ack(s, queue, out.id), STORE_OK);
    }
    store_job_free(&out);
}

/* FIFO per queue, queues independent, binary-safe payloads, a bounded wait. */
static void test_job_queue(void **state) {
    store *s = fixture_store(state);
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
    store_job out = {0};
    assert_int_equal(s->ops->job_pop(s, "q-fifo", 100, HOUR_MS, &out), STORE_OK);
    assert_int_equal(out.payload.len, 3);
    assert_memory_equal(out.payload.data, "x\0y", 3);
    assert_int_equal(s->ops->job_ack(s, "q-fifo", out.id), STORE_OK);
    store_job_free(&out);
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
    store_job out = {0};
    while (r->s->ops->job_pop(r->s, "q-race", 100, HOUR_MS, &out) == STORE_OK) {
        int i = atoi((const char *)out.payload.data);
        assert_int_equal(r->s->ops->job_ack(r->s, "q-race", out.id), STORE_OK);
        store_job_free(&out);
        pthread_mutex_lock(&r->lock);
        if (i >= 0 && i < QUEUE_JOBS) r->got[i]++;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

/* Concurrent poppers (instances' dispatchers): every job is taken exactly once,
 * both when it is new and, with reclaim set, when every lease has run out (the
 * instance holding them all died). */
static void job_race(void **state, bool reclaim) {
    pop_race r = {.s = fixture_store(state)};
    pthread_mutex_init(&r.lock, NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        store_value v = {(uint8_t *)text, strlen(text) + 1};
        assert_int_equal(r.s->ops->job_push(r.s, "q-race", &v), STORE_OK);
    }
    store_job dead = {0};
    for (int i = 0; reclaim && i < QUEUE_JOBS; i++) {
        assert_int_equal(r.s->ops->job_pop(r.s, "q-race", 100, 50, &dead), STORE_OK);
        store_job_free(&dead);
    }
    if (reclaim) usleep(150 * 1000);
    pthread_t t[QUEUE_THREADS];
    for (int i = 0; i < QUEUE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, popper, &r), 0);
    for (int i = 0; i < QUEUE_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < QUEUE_JOBS; i++) assert_int_equal(r.got[i], 1);
    pthread_mutex_destroy(&r.lock);
}

static void test_job_queue_each_job_once(void **state) { job_race(state, false); }
static void test_job_reclaimed_once(void **state) { job_race(state, true); }

/* Leases: a popped job is nobody else's until its lease runs out; renewing moves
 * the end, renewing to 0 gives it up at once; an expired lease hands the job out
 * again (same id, one more delivery) before newer jobs; an acked job is gone. */
static void test_job_lease(void **state) {
    store *s = fixture_store(state);
    store_value l = V("leased"), n = V("newer");
    store_job a = {0}, b = {0};
    assert_int_equal(s->ops->job_push(s, "q-lease", &l), STORE_OK);
    assert_int_equal(s->ops->job_pop(s, "q-lease", 100, 200, &a), STORE_OK);
    check_value(&a.payload, "leased");
    assert_int_equal(a.deliveries, 1);
    assert_int_equal(s->ops->job_pop(s, "q-lease", 50, HOUR_MS, &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->job_renew(s, "q-lease", a.id, 600), STORE_OK);
    usleep(300 * 1000); /* past the first lease, within the renewed one */
    assert_int_equal(s->ops->job_pop(s, "q-lease", 50, HOUR_MS, &b), STORE_NOT_FOUND);
    assert_int_equal(s->ops->job_push(s, "q-lease", &n), STORE_OK);
    usleep(400 * 1000); /* the renewed lease is over */
    assert_int_equal(s->ops->job_pop(s, "q-lease", 100, HOUR_MS, &b), STORE_OK);
    check_value(&b.payload, "leased");
    assert_string_equal(b.id, a.id);
    assert_int_equal(b.deliveries, 2);
    assert_int_equal(s->ops->job_ack(s, "q-lease", b.id), STORE_OK);
    assert_int_equal(s->ops->job_ack(s, "q-lease", a.id), STORE_NOT_FOUND); /* the slow first holder */
    assert_int_equal(s->ops->job_renew(s, "q-lease", a.id, HOUR_MS), STORE_NOT_FOUND);
    store_job_free(&a);
    store_job_free(&b);
    assert_int_equal(s->ops->job_pop(s, "q-lease", 100, HOUR_MS, &a), STORE_OK);
    check_value(&a.payload, "newer");
    assert_string_not_equal(a.id, b.id);
    assert_int_equal(s->ops->job_renew(s, "q-lease", a.id, 0), STORE_OK); /* given up */
    assert_int_equal(s->ops->job_pop(s, "q-lease", 100, HOUR_MS, &b), STORE_OK);
    assert_string_equal(b.id, a.id);
    assert_int_equal(b.deliveries, 2);
    assert_int_equal(s->ops->job_ack(s, "q-lease", b.id), STORE_OK);
    store_job_free(&a);
    store_job_free(&b);
    assert_int_equal(s->ops->job_pop(s, "q-lease", 50, HOUR_MS, &a), STORE_NOT_FOUND);
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
    store *s = fixture_store(state);
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
    claim_race r = {.s = fixture_store(state), .now = time_now_ms()};
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

/* The conformance tests as CMUnitTest entries, each run with the runner's own
 * setup/teardown: put STORE_CONFORMANCE_TESTS(setup, teardown) in the test array. */
#define STORE_CONFORMANCE_TESTS(setup, teardown)                                   \
    cmocka_unit_test_setup_teardown(test_session_roundtrip, setup, teardown),          \
    cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),           \
    cmocka_unit_test_setup_teardown(test_items, setup, teardown),                      \
    cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),                     \
    cmocka_unit_test_setup_teardown(test_compare_and_set, setup, teardown),            \
    cmocka_unit_test_setup_teardown(test_concurrent_compare_and_set, setup, teardown), \
    cmocka_unit_test_setup_teardown(test_usage, setup, teardown),                      \
    cmocka_unit_test_setup_teardown(test_concurrent_usage, setup, teardown),           \
    cmocka_unit_test_setup_teardown(test_job_queue, setup, teardown),                  \
    cmocka_unit_test_setup_teardown(test_job_queue_each_job_once, setup, teardown),    \
    cmocka_unit_test_setup_teardown(test_job_reclaimed_once, setup, teardown),         \
    cmocka_unit_test_setup_teardown(test_job_lease, setup, teardown),                  \
    cmocka_unit_test_setup_teardown(test_deadlines, setup, teardown),                  \
    cmocka_unit_test_setup_teardown(test_deadline_claimed_once, setup, teardown)

#endif
