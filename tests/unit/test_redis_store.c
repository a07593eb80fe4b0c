/* Unit tests for the Redis store (src/store/redis_store.c) against a real
 * redis-server that this test starts on a free loopback port and stops at the end.
 * Runs the shared store conformance suite (tests/unit/store_conformance.h: sessions,
 * tenant isolation and crafted names, items, expiry, compare-and-set, usage counters,
 * job queues, deadline indexes) on a Redis store, plus what is Redis-only: URL
 * parsing, AUTH, DOWN at start, database selection, usage counters shared by two
 * store objects (escaped names, kept across a reconnect), Redis down ->
 * STORE_UNAVAILABLE and back -> works again with the same store object. Skipped
 * (exit 0 with a note) when redis-server is absent. */
#include "store_conformance.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

typedef struct {
    int port;
    pid_t pid;
    char url[64];
} redis_proc;

static redis_proc g_redis; /* the one test server; set up once in main */

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
    return fixture_setup(state, store_redis_create(g_redis.url, NULL, CONFORMANCE_MAX_ITEMS, err, sizeof err),
                         100, 200);
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

/* Two store objects stand for two server instances: each one's counts are the sum,
 * crafted key names do not collide, and the counts outlive a store object. The
 * single-object checks (never counted, max entries, too long names) are in the
 * conformance test_usage. */
static void test_usage_shared_by_instances(void **state) {
    store *s = fixture_store(state);
    char err[256];
    store *other = store_redis_create(g_redis.url, NULL, CONFORMANCE_MAX_ITEMS, err, sizeof err);
    assert_non_null(other);
    store_usage u[STORE_USAGE_MAX_OPS];
    size_t n = 99;
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
    /* Crafted key names are data: "u2}" is not "u2", "{key-u2}" not "key-u2". */
    assert_int_equal(s->ops->usage_add(s, "key-u2}", "createBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_add(s, "{key-u2}", "createBioSession", 1), STORE_OK);
    assert_int_equal(s->ops->usage_get(s, "key-u2", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(calls_of(u, n, "createBioSession"), 7);
    store_close(other);
    /* A new store object (an instance restart) still sees the counts. */
    other = store_redis_create(g_redis.url, NULL, CONFORMANCE_MAX_ITEMS, err, sizeof err);
    assert_int_equal(other->ops->usage_get(other, "key-u1", u, STORE_USAGE_MAX_OPS, &n), STORE_OK);
    assert_int_equal(calls_of(u, n, "createBioSession"), 3);
    store_close(other);
}

/* Kill Redis: every operation fails with STORE_UNAVAILABLE (no crash, no hang);
 * restart it on the same port: the same store object works again. */
static void test_redis_down_and_back(void **state) {
    store *s = fixture_store(state);
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
        STORE_CONFORMANCE_TESTS(setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_usage_shared_by_instances, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_and_back, setup, fixture_teardown),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    redis_stop(&g_redis);
    return rc;
}
