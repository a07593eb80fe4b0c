/* Unit tests for the liveness evidence uploader (src/liveness/evidence.c) without
 * an object store: the key layout, the bounded queue (entries and bytes), an
 * unreachable store, and the end of every object when the uploader stops. The
 * uploads themselves are tested against a real S3-compatible server in
 * tests/api/test_evidence.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "liveness/evidence.h"

/* A loopback URL where nothing listens (connection refused at once). */
static void dead_url(char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(out, cap, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(fd);
}

typedef struct {
    pthread_mutex_t lock;
    int stored, failed, skipped;
    char last_reason[EVIDENCE_REASON_MAX];
} outcomes;

static bool always_alive(void *ctx, const char *tenant, const char *sid) {
    (void)ctx, (void)tenant, (void)sid;
    return true;
}

static void record_outcome(void *ctx, const evidence_object *obj, evidence_outcome outcome, const char *reason) {
    outcomes *o = ctx;
    (void)obj;
    pthread_mutex_lock(&o->lock);
    if (outcome == EVIDENCE_STORED) o->stored++;
    else if (outcome == EVIDENCE_FAILED) o->failed++;
    else o->skipped++;
    snprintf(o->last_reason, sizeof o->last_reason, "%s", reason);
    pthread_mutex_unlock(&o->lock);
}

static evidence_store *dead_store(outcomes *o, char *url, size_t cap) {
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->lock, NULL);
    dead_url(url, cap);
    evidence_target t = {url, "us-east-1", "bucket", "AKID", "SECRET"};
    evidence_hooks h = {always_alive, record_outcome, o};
    char err[128];
    evidence_store *e = evidence_store_create(&t, &h, err, sizeof err);
    assert_non_null(e);
    return e;
}

static evidence_object object(const char *key) {
    evidence_object obj = {.tenant = "t", .session_id = "s", .tag = "c", .slot = "imageStorage",
                           .content_type = "image/jpeg"};
    snprintf(obj.key, sizeof obj.key, "%s", key);
    return obj;
}

static void test_key_layout(void **state) {
    (void)state;
    char key[EVIDENCE_KEY_MAX];
    assert_int_equal(evidence_key("bio/dev", "bank-a", "0f1e", "c4", "best-image.jpg", key, sizeof key), 0);
    assert_string_equal(key, "bio/dev/bank-a/0f1e/c4/best-image.jpg");
    /* Characters that would need escaping, and dot-only segments, are neutralised. */
    assert_int_equal(evidence_key("", "ten ant/é", "..", "c", "capture.json", key, sizeof key), 0);
    assert_string_equal(key, "ten_ant___/_../c/capture.json");
    char small[16];
    assert_int_equal(evidence_key("prefix", "tenant", "session", "capture", "name", small, sizeof small), -1);
}

static void test_unreachable_store_is_worth_a_retry(void **state) {
    (void)state;
    char url[64], err[EVIDENCE_REASON_MAX];
    dead_url(url, sizeof url);
    evidence_target t = {url, "us-east-1", "bucket", "AKID", "SECRET"};
    evidence_object obj = object("k");
    snprintf(obj.sha256, sizeof obj.sha256, "%064d", 0);
    bool retry = false;
    assert_int_equal(evidence_put_once(&t, &obj, (const uint8_t *)"x", 1, NULL, &retry, err, sizeof err), -1);
    assert_true(retry);
    assert_non_null(strstr(err, "the object store cannot be reached"));
    assert_null(strstr(err, "SECRET"));
}

static void test_queue_is_bounded_and_every_object_ends_once(void **state) {
    (void)state;
    outcomes o;
    char url[64];
    evidence_store *e = dead_store(&o, url, sizeof url);
    for (int i = 0; i < EVIDENCE_MAX_PENDING; i++) {
        uint8_t *data = malloc(1);
        data[0] = (uint8_t)i;
        evidence_object obj = object("k");
        assert_int_equal(evidence_store_put(e, &obj, data, 1), 0);
    }
    /* Entry limit: refused at once, and reported as failed. */
    evidence_object obj = object("one-too-many");
    assert_int_equal(evidence_store_put(e, &obj, malloc(1), 1), -1);
    assert_int_equal(o.failed, 1);
    assert_non_null(strstr(o.last_reason, "queue is full"));
    /* Byte limit: an object larger than the whole queue never waits. */
    assert_int_equal(evidence_store_put(e, &obj, calloc(1, EVIDENCE_MAX_PENDING_BYTES + 1), EVIDENCE_MAX_PENDING_BYTES + 1), -1);
    assert_int_equal(o.failed, 2);
    evidence_stats st;
    evidence_store_stats(e, &st);
    assert_int_equal(st.pending, EVIDENCE_MAX_PENDING);
    assert_int_equal(st.pending_bytes, EVIDENCE_MAX_PENDING);
    assert_int_equal(st.failed, 2);
    /* Stopping ends the waiting ones as failed (no PENDING left behind). */
    evidence_store_free(e);
    assert_int_equal(o.failed, EVIDENCE_MAX_PENDING + 2);
    assert_int_equal(o.stored + o.skipped, 0);
    pthread_mutex_destroy(&o.lock);
}

static void test_unreachable_store_gives_up_after_the_last_attempt(void **state) {
    (void)state;
    outcomes o;
    char url[64];
    evidence_store *e = dead_store(&o, url, sizeof url);
    evidence_object obj = object("k");
    assert_int_equal(evidence_store_put(e, &obj, malloc(1), 1), 0);
    for (int i = 0; i < 100 && o.failed == 0; i++) usleep(100 * 1000); /* back-off: 0.5 + 1 + 2 s */
    evidence_stats st;
    evidence_store_stats(e, &st);
    assert_int_equal(o.failed, 1);
    assert_int_equal(st.failed_attempts, EVIDENCE_MAX_ATTEMPTS);
    assert_int_equal(st.pending, 0);
    assert_non_null(strstr(o.last_reason, "(after 4 attempts)"));
    assert_true(st.last_error_ms > 0 && st.last_success_ms == 0);
    evidence_store_free(e);
    pthread_mutex_destroy(&o.lock);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_unreachable_store_is_worth_a_retry),
        cmocka_unit_test(test_queue_is_bounded_and_every_object_ends_once),
        cmocka_unit_test(test_unreachable_store_gives_up_after_the_last_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
