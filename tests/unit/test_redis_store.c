/* Unit tests for the Redis store (src/store/redis_store.c) against a real
 * redis-server that this test starts on a free loopback port and stops at the end.
 * The same behaviour checks as the memory store (tenant isolation, item order,
 * delete_all, expiry, item limit, compare-and-set), plus: escaping of crafted ids,
 * binary values, the per-key usage counters (shared by two store objects, escaped
 * names, kept across a reconnect), Redis down -> STORE_UNAVAILABLE, Redis back -> works again with
 * the same store object, the job queues and deadline indexes. Skipped (exit 0 with
 * a note) when redis-server is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "store/store.h"

#define HOUR_MS (3600 * 1000)
#define MAX_ITEMS 3

typedef struct {
    int port;
    pid_t pid;
    char url[64];
} redis_proc;

static redis_proc g_redis; /* the one test server; set up once in main */

static store_value V(const char *s) { return (store_value){(uint8_t *)s, strlen(s)}; }

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Probes the port with a raw PING so readiness does not depend on the code under test. */
static int redis_answers(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char buf[16] = "";
    int ok = fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a) && write(fd, "PING\r\n", 6) == 6 &&
             read(fd, buf, sizeof buf - 1) > 0 && !strncmp(buf, "+PONG", 5);
    if (fd >= 0) close(fd);
    return ok;
}

static int redis_start(redis_proc *r) {
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        int devnull = open("/dev/null", 1);
        if (devnull >= 0) dup2(devnull, 1);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && r->pid > 0; i++) {
        if (redis_answers(r->port)) return 0;
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) break;
        usleep(25 * 1000);
    }
    return -1;
}

static void redis_stop(redis_proc *r) {
    if (r->pid <= 0) return;
    kill(r->pid, SIGKILL); /* like a crash: nothing is flushed */
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

static int setup(void **state) {
    char err[256];
    store *s = store_redis_create(g_redis.url, NULL, MAX_ITEMS, err, sizeof err);
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

static void expect_list(store *s, const char *tenant, const char *sid, const char *kind, int n,
                        const char *const *texts) {
    store_value *list = NULL;
    size_t count = 99;
    assert_int_equal(s->ops->item_list(s, tenant, sid, kind, &list, &count), STORE_OK);
    assert_int_equal(count, n);
    for (int i = 0; i < n; i++) check_value(&list[i], texts[i]);
    store_values_free(list, count);
}

static void test_open(void **state) {
    (void)state;
    char err[256] = "";
    store *s = store_open(g_redis.url, 10, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s->ops->name, "redis");
    assert_string_equal(s->ops->status(s), "UP");
    store_close(s);
    /* Bad URLs are refused with a reason; a password in the URL would be logged. */
    assert_null(store_open("redis://", 10, err, sizeof err));
    assert_null(store_open("redis://h:0", 10, err, sizeof err));
    assert_null(store_open("redis://h:99999", 10, err, sizeof err));
    assert_null(store_open("redis://h:12x", 10, err, sizeof err));
    assert_null(store_open("redis://h:1/x", 10, err, sizeof err));
    assert_null(store_open("redis://:secret@h:1", 10, err, sizeof err));
    assert_null(strstr(err, "secret"));
    /* A wrong password is a configuration error (this Redis has none). */
    assert_null(store_open_auth(g_redis.url, "wrong-password", 10, err, sizeof err));
    assert_non_null(strstr(err, "AUTH"));
    /* Unreachable at start: the store exists, is DOWN, and answers UNAVAILABLE. */
    char url[96];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", free_port());
    s = store_open(url, 10, err, sizeof err);
    assert_non_null(s);
    assert_true(!strncmp(s->ops->status(s), "DOWN: ", 6));
    store_value v = V("x"), out = {0};
    assert_int_equal(s->ops->session_create(s, "A", "s", &v, time_now_ms() + HOUR_MS), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->session_get(s, "A", "s", &out, NULL), STORE_UNAVAILABLE);
    store_close(s);
    /* A database number selects another keyspace. */
    snprintf(url, sizeof url, "%s/3", g_redis.url);
    s = store_open(url, 10, err, sizeof err);
    assert_non_null(s);
    store *s0 = store_open(g_redis.url, 10, err, sizeof err);
    assert_int_equal(s->ops->session_create(s, "A", "db3", &v, time_now_ms() + HOUR_MS), STORE_OK);
    assert_int_equal(s0->ops->session_get(s0, "A", "db3", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_delete(s, "A", "db3"), STORE_OK);
    store_close(s0);
    store_close(s);
}

static void test_session_roundtrip(void **state) {
    store *s = *state;
    store_value v = V("{\"id\":\"s1\"}"), out = {0};
    int64_t expires = time_now_ms() + HOUR_MS, got_exp = 0;
    s->ops->session_delete(s, "A", "s1");
    assert_int_equal(s->ops->session_create(s, "A", "s1", &v, expires), STORE_OK);
    assert_int_equal(s->ops->session_get(s, "A", "s1", &out, &got_exp), STORE_OK);
    check_value(&out, "{\"id\":\"s1\"}");
    assert_int_equal(got_exp, expires);
    store_value_free(&out);
    assert_int_equal(s->ops->session_get(s, "A", "s1", &out, NULL), STORE_OK);
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
    store *s = *state;
    int64_t exp = time_now_ms() + HOUR_MS;
    store_value a = V("tenant A"), b = V("tenant B"), out = {0};
    assert_int_equal(s->ops->session_create(s, "A", "iso", &a, exp), STORE_OK);
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
    assert_int_equal(s->ops->session_create(s, "B", "iso", &b, exp), STORE_OK);
    expect_session(s, "A", "iso", "tenant A");
    expect_session(s, "B", "iso", "tenant B");
    expect_item(s, "A", "iso", "face", "f1", "tenant A");
    expect_item(s, "B", "iso", "face", "f1", NULL);
    assert_int_equal(s->ops->session_delete(s, "B", "iso"), STORE_OK);
    expect_session(s, "A", "iso", "tenant A");
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
    store *s = *state; /* at most 3 items per session */
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
    expect_item(s, "T", "s", "live", "f1", NULL);
    expect_item(s, "T", "s", "face", "l1", NULL);
    expect_item(s, "T", "other", "face", "f1", NULL);
    expect_list(s, "T", "s", "face", 2, (const char *const[]){"two", "one"});
    expect_list(s, "T", "s", "live", 1, (const char *const[]){"three"});
    /* Full: a 4th new item is refused, replacing one is not (and moves it last). */
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_FULL);
    expect_item(s, "T", "s", "face", "f4", NULL);
    store_value v2b = V("two again");
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f2", &v2b), STORE_OK);
    expect_list(s, "T", "s", "face", 2, (const char *const[]){"one", "two again"});
    /* Delete one, then there is room again. */
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "f2"), STORE_NOT_FOUND);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f4", &v4), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "f5", &v4), STORE_FULL);
    /* delete_all of one kind keeps the others. */
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK);
    expect_list(s, "T", "s", "face", 0, NULL);
    expect_item(s, "T", "s", "live", "l1", "three");
    assert_int_equal(s->ops->item_delete_all(s, "T", "s", "face"), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "live", "l1"), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "a", &v1), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "b", &v2), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s", "face", "c", &v3), STORE_OK);
    assert_int_equal(s->ops->item_delete(s, "T", "s", "face", "c"), STORE_OK);
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

static void test_expiry(void **state) {
    store *s = *state;
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

static void test_compare_and_set(void **state) {
    store *s = *state;
    store_value v0 = V("v0"), v1 = V("v1"), v2 = V("v2");
    s->ops->session_delete(s, "T", "cas");
    int64_t exp = time_now_ms() + HOUR_MS, got = 0;
    assert_int_equal(s->ops->session_create(s, "T", "cas", &v0, exp), STORE_OK);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v1), STORE_OK);
    expect_session(s, "T", "cas", "v1");
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v0, &v2), STORE_CONFLICT);
    expect_session(s, "T", "cas", "v1");
    store_value v1x = V("v1x"), shorter = V("v");
    assert_int_equal(s->ops->session_update(s, "T", "cas", &v1x, &v2), STORE_CONFLICT);
    assert_int_equal(s->ops->session_update(s, "T", "cas", &shorter, &v2), STORE_CONFLICT);
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

#define CAS_THREADS 4
#define CAS_ROUNDS 100

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

/* Many threads share the connection pool; compare-and-set loses no increment. */
static void test_concurrent_compare_and_set(void **state) {
    store *s = *state;
    store_value zero = V("0");
    s->ops->session_delete(s, "T", "counter");
    assert_int_equal(s->ops->session_create(s, "T", "counter", &zero, time_now_ms() + HOUR_MS), STORE_OK);
    pthread_t t[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, cas_worker, s), 0);
    for (int i = 0; i < CAS_THREADS; i++) pthread_join(t[i], NULL);
    char expect[32];
    snprintf(expect, sizeof expect, "%d", CAS_THREADS * CAS_ROUNDS);
    expect_session(s, "T", "counter", expect);
    assert_int_equal(s->ops->session_delete(s, "T", "counter"), STORE_OK);
}

static long calls_of(const store_usage *u, size_t n, const char *operation) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(u[i].operation, operation)) return u[i].calls;
    return 0;
}

/* Two store objects stand for two server instances: each one's counts are the sum. */
static void test_usage(void **state) {
    store *s = *state;
    char err[256];
    store *other = store_redis_create(g_redis.url, NULL, MAX_ITEMS, err, sizeof err);
    assert_non_null(other);
    store_usage u[STORE_USAGE_MAX_OPS];
    size_t n = 99;
    assert_int_equal(s->ops->usage_get(s, "key-never", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->usage_add(s, "key-u1", "createBioSession", 1), STORE_OK);
    assert_int_equal(other->ops->usage_add(other, "key-u1", "createBioSession", 2), STORE_OK);
    assert_int_equal(other->ops->usage_add(other, "key-u1", "getBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "key-u2", "createBioSession", 7), STORE_OK);
    for (store *st = s; st; st = st == s ? other : NULL) {
        assert_int_equal(st->ops->usage_get(st, "key-u1", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
        assert_int_equal(n, 2);
        assert_int_equal(calls_of(u, n, "createBioSession"), 3);
        assert_int_equal(calls_of(u, n, "getBioSession"), 1);
    }
    assert_int_equal(s->ops->usage_get(s, "key-u1", u, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* Crafted key names are data: "u2}" is not "u2", "{key-u2}" not "key-u2". */
    assert_int_equal(s->ops->usage_add(s, "key-u2}", "createBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "{key-u2}", "createBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_get(s, "key-u2", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(calls_of(u, n, "createBioSession"), 7);
    /* Too long names are refused, not truncated. */
    char long_name[STORE_USAGE_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(s->ops->usage_add(s, long_name, "op", 1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->usage_add(s, "key-u1", long_name, 1), STORE_NOT_FOUND);
    assert_int_equal(s->ops->usage_get(s, long_name, u, STORE_USAGE_MAX_OPS, &n), STORE_NOT_FOUND);
    store_close(other);
    /* A new store object (an instance restart) still sees the counts. */
    other = store_redis_create(g_redis.url, NULL, MAX_ITEMS, err, sizeof err);
    assert_int_equal(other->ops->usage_get(other, "key-u1", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(calls_of(u, n, "createBioSession"), 3);
    store_close(other);
}

#define USAGE_THREADS 4
#define USAGE_ROUNDS 200

static void *usage_worker(void *p) {
    store *s = p;
    for (int i = 0; i < USAGE_ROUNDS; i++)
        if (s->ops->usage_add(s, "key-conc", "op", 1) != STORE_OK) abort();
    return NULL;
}

/* Many threads on the connection pool: HINCRBY loses no count. */
static void test_concurrent_usage(void **state) {
    store *s = *state;
    pthread_t t[USAGE_THREADS];
    for (int i = 0; i < USAGE_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, usage_worker, s), 0);
    for (int i = 0; i < USAGE_THREADS; i++) pthread_join(t[i], NULL);
    store_usage u[4];
    size_t n = 0;
    assert_int_equal(s->ops->usage_get(s, "key-conc", u, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(u[0].calls, USAGE_THREADS * USAGE_ROUNDS);
}

/* Kill Redis: every operation fails with STORE_UNAVAILABLE (no crash, no hang);
 * restart it on the same port: the same store object works again. */
static void test_redis_down_and_back(void **state) {
    store *s = *state;
    store_value v = V("v"), out = {0};
    int64_t exp = time_now_ms() + HOUR_MS;
    assert_int_equal(s->ops->session_create(s, "T", "before", &v, exp), STORE_OK);
    redis_stop(&g_redis);
    assert_int_equal(s->ops->session_create(s, "T", "down", &v, exp), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->session_get(s, "T", "before", &out, NULL), STORE_UNAVAILABLE);
    assert_null(out.data);
    assert_int_equal(s->ops->session_update(s, "T", "before", NULL, &v), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->session_delete(s, "T", "before"), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->item_put(s, "T", "before", "face", "f", &v), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->item_get(s, "T", "before", "face", "f", &out), STORE_UNAVAILABLE);
    store_value *list = NULL;
    size_t n = 99;
    assert_int_equal(s->ops->item_list(s, "T", "before", "face", &list, &n), STORE_UNAVAILABLE);
    assert_int_equal(n, 0);
    assert_null(list);
    assert_int_equal(s->ops->item_delete(s, "T", "before", "face", "f"), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->item_delete_all(s, "T", "before", "face"), STORE_UNAVAILABLE);
    store_usage u[4];
    size_t un = 99;
    assert_int_equal(s->ops->usage_add(s, "key-down", "op", 1), STORE_UNAVAILABLE);
    assert_int_equal(s->ops->usage_get(s, "key-down", u, 4, &un), STORE_UNAVAILABLE);
    assert_int_equal(un, 0);
    const char *st = s->ops->status(s);
    assert_true(!strncmp(st, "DOWN: ", 6));
    assert_int_equal(redis_start(&g_redis), 0);
    usleep(200 * 1000); /* past the reconnect backoff */
    assert_string_equal(s->ops->status(s), "UP");
    /* Nothing survived (no persistence), and the scripts are reloaded transparently. */
    assert_int_equal(s->ops->session_get(s, "T", "before", &out, NULL), STORE_NOT_FOUND);
    assert_int_equal(s->ops->session_create(s, "T", "after", &v, exp), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "after", "face", "f", &v), STORE_OK);
    expect_item(s, "T", "after", "face", "f", "v");
    assert_int_equal(s->ops->session_delete(s, "T", "after"), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "key-down", "op", 1), STORE_OK);
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
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        printf("test_redis_store: SKIPPED (redis-server not installed)\n");
        return 0;
    }
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc; attempt++) {
        g_redis.port = free_port();
        rc = redis_start(&g_redis);
        if (rc) redis_stop(&g_redis);
    }
    if (rc) {
        fprintf(stderr, "test_redis_store: cannot start redis-server\n");
        return 1;
    }
    snprintf(g_redis.url, sizeof g_redis.url, "redis://127.0.0.1:%d", g_redis.port);
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
        cmocka_unit_test_setup_teardown(test_redis_down_and_back, setup, teardown),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    redis_stop(&g_redis);
    return rc;
}
