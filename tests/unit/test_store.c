/* Unit tests for the in-memory store (src/store/memory_store.c): runs the shared
 * store conformance suite (tests/unit/store_conformance.h: sessions, tenant
 * isolation, items, expiry, compare-and-set, usage counters, job queues, deadline
 * indexes) on a memory store, plus what is memory-only: store_open of "memory" and
 * of unknown URLs, the expiry sweeper, and the bounded per-key usage table. */
#include "store_conformance.h"

static int setup(void **state) {
    return fixture_setup(state, store_memory_create(CONFORMANCE_MAX_ITEMS), 300, 1000);
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

/* Expired sessions are swept without being read (checked by ASan/LSan at close),
 * and an expiring session's id does not block others in the same bucket. */
static void test_expiry_sweeper(void **state) {
    store *s = fixture_store(state);
    store_value v = V("short");
    assert_int_equal(s->ops->session_create(s, "T", "long", &v, time_now_ms() + HOUR_MS), STORE_OK);
    for (int i = 0; i < 50; i++) {
        char sid[32];
        snprintf(sid, sizeof sid, "sweep-%d", i);
        assert_int_equal(s->ops->session_create(s, "T", sid, &v, time_now_ms() + 50), STORE_OK);
        assert_int_equal(s->ops->item_put(s, "T", sid, "face", "f", &v), STORE_OK);
    }
    usleep(1300 * 1000); /* the sweeper runs once a second */
    expect_session(s, "T", "long", "short");
}

/* The table of one key is bounded: STORE_FULL past STORE_USAGE_MAX_OPS operations
 * (a memory-store promise, see store.h), while known operations still count. */
static void test_usage_table_bounded(void **state) {
    store *s = fixture_store(state);
    store_usage u[STORE_USAGE_MAX_OPS + 1];
    size_t n = 99;
    char long_name[STORE_USAGE_NAME_MAX + 1];
    memset(long_name, 'x', STORE_USAGE_NAME_MAX);
    long_name[STORE_USAGE_NAME_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(s->ops->usage_add(s, "key-c", long_name, 1), STORE_OK);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        STORE_CONFORMANCE_TESTS(setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_expiry_sweeper, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_usage_table_bounded, setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
