/* Unit tests for capture jobs (src/api/liveness_jobs.c) on a memory store behind a
 * fault store (tests/unit/fault_store.h): whichever store call of an evaluation
 * fails, the job reports that it must run again (so the dispatcher does not ack
 * it), and the runs that follow end in one consistent verdict: the session record
 * and the liveness item agree, the frames are gone; and a run of a job whose
 * session already has its verdict changes nothing (at-least-once delivery). The
 * evaluation itself runs without models (ERROR verdict): what is tested is the
 * bookkeeping around it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/liveness_jobs.h"
#include "api/liveness_state.h"
#include "core/util.h"
#include "fault_store.h"

#define T "tenant"
#define S "session"
#define NONCE "nonce-1"
#define HOUR_MS (3600 * 1000)

static const char *const JOB = "{\"tenant\":\"" T "\",\"session\":\"" S "\",\"nonce\":\"" NONCE "\"}";

static void put(store *st, const char *kind, const char *text) {
    store_value v = {(uint8_t *)text, strlen(text)};
    assert_int_equal(st->ops->item_put(st, T, S, kind, LIVENESS_ITEM, &v), STORE_OK);
}

/* A session waiting for its uploaded capture, as the upload handler leaves it. */
static void uploaded_session(store *st) {
    const char *rec = "{\"livenessStatus\":\"IN_PROGRESS\",\"livenessNonce\":\"" NONCE "\"}";
    store_value v = {(uint8_t *)rec, strlen(rec)};
    assert_int_equal(st->ops->session_create(st, T, S, &v, time_now_ms() + HOUR_MS), STORE_OK);
    put(st, LIVENESS_KIND, "{\"status\":\"IN_PROGRESS\",\"serverRandom\":\"" NONCE "\",\"type\":\"LIVENESS_PASSIVE\","
                           "\"securityLevel\":\"LOW\",\"seed\":7}");
    put(st, LIVENESS_CAPTURE_KIND, "{\"frames\":[{\"timestamp\":1,\"image\":\"AAAA\"}]}");
}

static char *session_status(store *st) {
    liveness_snapshot s;
    assert_int_equal(liveness_snapshot_load(st, T, S, &s), STORE_OK);
    const char *status = api_json_string(s.json, "livenessStatus");
    char *out = strdup(status ? status : "");
    liveness_snapshot_free(&s);
    return out;
}

static bool run(app *a, int delivery) {
    store_value job = {(uint8_t *)JOB, strlen(JOB)};
    return liveness_run_job(a, NULL, &job, delivery);
}

/* The verdict is in, once, in both places, and the frames are gone. */
static void expect_verdict(store *st, bool capture_may_remain) {
    char *status = session_status(st);
    assert_string_equal(status, "ERROR");
    free(status);
    int rc;
    json_t *item = liveness_item_load(st, T, S, &rc);
    assert_non_null(item);
    assert_string_equal(json_string_value(json_object_get(item, "status")), "ERROR");
    json_decref(item);
    store_value v = {0};
    rc = st->ops->item_get(st, T, S, LIVENESS_CAPTURE_KIND, LIVENESS_ITEM, &v);
    store_value_free(&v);
    if (!capture_may_remain) assert_int_equal(rc, STORE_NOT_FOUND);
}

static void fail_each_call(int code) {
    int exercised = 0;
    for (int fail_at = 1;; fail_at++) {
        app a;
        memset(&a, 0, sizeof a);
        a.config.max_image_pixels = 1000000;
        a.store = fault_store_create(store_memory_create(16));
        uploaded_session(a.store);
        fault_store_arm(a.store, fail_at, code);
        int delivery = 1;
        bool done = run(&a, delivery);
        fault_store *f = (fault_store *)a.store;
        const char *failed = f->failed_op;
        fault_store_arm(a.store, 0, 0);
        if (!failed) {
            assert_true(done);
            expect_verdict(a.store, false);
            store_close(a.store);
            break;
        }
        exercised++;
        while (!done && delivery < 5) done = run(&a, ++delivery);
        if (!done) fail_msg("call %d (%s) failed: the job never finished", fail_at, failed);
        /* Only a failed delete of the frames may leave them (they expire with the session). */
        expect_verdict(a.store, !strcmp(failed, "item_delete"));
        /* The job delivered once more (a lease that ran out): nothing changes. */
        int rc;
        json_t *before = liveness_item_load(a.store, T, S, &rc);
        assert_true(run(&a, delivery + 1));
        json_t *after = liveness_item_load(a.store, T, S, &rc);
        assert_true(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        expect_verdict(a.store, !strcmp(failed, "item_delete"));
        store_close(a.store);
    }
    assert_true(exercised >= 6); /* every store call of the evaluation was made to fail once */
}

static void test_store_unavailable_at_each_call(void **state) {
    (void)state;
    fail_each_call(STORE_UNAVAILABLE);
}

static void test_store_out_of_memory_at_each_call(void **state) {
    (void)state;
    fail_each_call(STORE_NOMEM);
}

/* A job whose session was deleted, or re-initialised (another nonce), does nothing. */
static void test_stale_job_is_skipped(void **state) {
    (void)state;
    app a;
    memset(&a, 0, sizeof a);
    a.store = store_memory_create(16);
    assert_true(run(&a, 1)); /* no session at all */
    uploaded_session(a.store);
    assert_int_equal(liveness_session_transition(a.store, T, S, "IN_PROGRESS", NONCE, "INITIALIZED", "nonce-2"), STORE_OK);
    assert_true(run(&a, 1));
    char *status = session_status(a.store);
    assert_string_equal(status, "INITIALIZED");
    free(status);
    store_close(a.store);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_unavailable_at_each_call),
        cmocka_unit_test(test_store_out_of_memory_at_each_call),
        cmocka_unit_test(test_stale_job_is_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
