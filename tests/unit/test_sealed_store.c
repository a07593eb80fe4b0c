/* Unit tests for encryption at rest: the key ring (src/sign/data_keyring.c: file
 * format, sealing, rotation) and the sealed store (src/store/sealed_store.c). The
 * sealed store runs the whole store conformance suite over a memory store (with
 * the suite's item kinds sealed), then what only it promises: the backend holds
 * no plain byte of a sealed item, a value moved to another item, kind, session or
 * tenant does not open, and data sealed before a key rotation still opens. */
#include "store_conformance.h"

#include <sys/stat.h>

#include "core/worker_pool.h"
#include "sign/data_keyring.h"
#include "store/sealed_store.h"

static char ring_dir[64];
static data_keyring *ring;

static const char *const sealed_kinds[] = {"face", "image", "live", "capture", NULL};

static void remove_dir(const char *dir) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, DATA_KEYRING_FILE);
    unlink(path);
    rmdir(dir);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(ring_dir, sizeof ring_dir, "/tmp/test-sealed-XXXXXX");
    char err[256];
    ring = mkdtemp(ring_dir) ? data_keyring_load_or_create(ring_dir, err, sizeof err) : NULL;
    return ring ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    data_keyring_free(ring);
    remove_dir(ring_dir);
    return 0;
}

/* The conformance runner's store, and the memory store under it for inspection. */
static store *inner_store;

static int setup(void **state) {
    inner_store = store_memory_create(CONFORMANCE_MAX_ITEMS);
    return fixture_setup(state, store_sealed_create(inner_store, ring, sealed_kinds), 300, 1000);
}

/* The same store opening its listings on a worker pool, as the server does. */
static worker_pool *pool;

static void open_on_pool(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg) {
    worker_pool_parallel_for(ctx, n, fn, arg);
}

static int setup_parallel(void **state) {
    pool = worker_pool_create(3, 16, NULL);
    int rc = pool ? setup(state) : -1;
    if (rc == 0) store_sealed_set_parallel(fixture_store(state), open_on_pool, pool);
    return rc;
}

static int teardown_parallel(void **state) {
    int rc = fixture_teardown(state);
    worker_pool_free(pool);
    return rc;
}

/* A long listing opens whole on the pool, and one bad item among many fails it all. */
static void test_parallel_listing(void **state) {
    store *s = fixture_store(state);
    store_value sess = V("{}"), *list = NULL;
    size_t n = 0;
    assert_int_equal(s->ops->session_create(s, "T", "s", &sess, time_now_ms() + HOUR_MS), STORE_OK);
    for (int i = 0; i < CONFORMANCE_MAX_ITEMS; i++) {
        char id[8], text[16];
        snprintf(id, sizeof id, "f%d", i);
        snprintf(text, sizeof text, "face %d", i);
        store_value v = {(uint8_t *)text, strlen(text)};
        assert_int_equal(s->ops->item_put(s, "T", "s", "face", id, &v), STORE_OK);
    }
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_OK);
    assert_int_equal(n, CONFORMANCE_MAX_ITEMS);
    for (size_t i = 0; i < n; i++) assert_memory_equal(list[i].data, "face ", 5);
    store_values_free(list, n);
    store_value raw = {0};
    assert_int_equal(inner_store->ops->item_get(inner_store, "T", "s", "face", "f1", &raw), STORE_OK);
    raw.data[raw.len - 1] ^= 1; /* one flipped bit of a tag */
    assert_int_equal(inner_store->ops->item_put(inner_store, "T", "s", "face", "f1", &raw), STORE_OK);
    store_value_free(&raw);
    assert_int_equal(s->ops->item_list(s, "T", "s", "face", &list, &n), STORE_CORRUPT);
    assert_null(list);
    assert_int_equal(n, 0);
    assert_int_equal(s->ops->session_delete(s, "T", "s"), STORE_OK);
}

/* ---- key ring ----------------------------------------------------------------------- */

static void test_ring_file(void **state) {
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", ring_dir, DATA_KEYRING_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(data_keyring_current_id(ring), 1);
    /* Malformed files are refused with a message naming the line. */
    char dir[] = "/tmp/test-ring-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s", dir, DATA_KEYRING_FILE);
    static const char *const bad[] = {"1 abcd\n", "0 " "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
                                      "x 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
                                      "# only a comment\n", "", NULL};
    for (int i = 0; bad[i]; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        err[0] = '\0';
        assert_null(data_keyring_load_or_create(dir, err, sizeof err));
        assert_non_null(strstr(err, DATA_KEYRING_FILE));
    }
    FILE *f = fopen(path, "w");
    fputs("# blank lines count\n\n1 not-hex\n", f);
    fclose(f);
    assert_null(data_keyring_load_or_create(dir, err, sizeof err));
    assert_non_null(strstr(err, "line 3"));
    f = fopen(path, "w");
    fputs("# two keys, out of order\n7 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n"
          "3 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n", f);
    fclose(f);
    data_keyring *r = data_keyring_load_or_create(dir, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(data_keyring_current_id(r), 7);
    data_keyring_free(r);
    remove_dir(dir);
}

static void test_seal_open(void **state) {
    (void)state;
    const uint8_t plain[] = "a face embedding", aad[] = "tenant|session|face|id";
    uint8_t sealed[sizeof plain + DATA_KEYRING_OVERHEAD], again[sizeof sealed], out[sizeof plain];
    uint32_t id = 0;
    assert_int_equal(data_keyring_seal(ring, KEY_PURPOSE_STORE, aad, sizeof aad, plain, sizeof plain, false, sealed), 0);
    assert_null(memmem(sealed, sizeof sealed, "embedding", 9));
    assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_STORE, aad, sizeof aad, sealed, sizeof sealed, out, &id), 0);
    assert_memory_equal(out, plain, sizeof plain);
    assert_int_equal(id, 1);
    /* Random nonces: the same input seals differently; deterministic: identically. */
    assert_int_equal(data_keyring_seal(ring, KEY_PURPOSE_STORE, aad, sizeof aad, plain, sizeof plain, false, again), 0);
    assert_memory_not_equal(again, sealed, sizeof sealed);
    assert_int_equal(data_keyring_seal(ring, KEY_PURPOSE_STORE, aad, sizeof aad, plain, sizeof plain, true, sealed), 0);
    assert_int_equal(data_keyring_seal(ring, KEY_PURPOSE_STORE, aad, sizeof aad, plain, sizeof plain, true, again), 0);
    assert_memory_equal(again, sealed, sizeof sealed);
    /* Other associated data, another purpose's key, any flipped bit: refused. */
    assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_STORE, aad, sizeof aad - 2, sealed, sizeof sealed, out, NULL),
                     DATA_KEYRING_ERR_AUTH);
    assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_TEMPLATE, aad, sizeof aad, sealed, sizeof sealed, out, NULL),
                     DATA_KEYRING_ERR_AUTH);
    for (size_t i = 4; i < sizeof sealed; i++) {
        sealed[i] ^= 0x80;
        assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_STORE, aad, sizeof aad, sealed, sizeof sealed, out, NULL),
                         DATA_KEYRING_ERR_AUTH);
        sealed[i] ^= 0x80;
    }
    sealed[3] ^= 0x40; /* the key id */
    assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_STORE, aad, sizeof aad, sealed, sizeof sealed, out, NULL),
                     DATA_KEYRING_ERR_UNKNOWN_KEY);
    assert_int_equal(data_keyring_open(ring, KEY_PURPOSE_STORE, aad, sizeof aad, sealed, DATA_KEYRING_OVERHEAD - 1, out, NULL),
                     DATA_KEYRING_ERR_FORMAT);
}

/* Rotation: the new key seals, the old still opens; an instance started before the
 * rotation opens the new key's data by reading the file again. */
static void test_rotation(void **state) {
    (void)state;
    char dir[] = "/tmp/test-rotate-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    data_keyring *before = data_keyring_load_or_create(dir, err, sizeof err);
    assert_non_null(before);
    const uint8_t plain[] = "biometric", aad[] = "aad";
    uint8_t old_sealed[sizeof plain + DATA_KEYRING_OVERHEAD], new_sealed[sizeof old_sealed], out[sizeof plain];
    assert_int_equal(data_keyring_seal(before, KEY_PURPOSE_STORE, aad, 3, plain, sizeof plain, false, old_sealed), 0);
    assert_int_equal(data_keyring_rotate(dir, err, sizeof err), 2);
    data_keyring *after = data_keyring_load_or_create(dir, err, sizeof err);
    assert_int_equal(data_keyring_current_id(after), 2);
    uint32_t id = 0;
    assert_int_equal(data_keyring_open(after, KEY_PURPOSE_STORE, aad, 3, old_sealed, sizeof old_sealed, out, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(data_keyring_seal(after, KEY_PURPOSE_STORE, aad, 3, plain, sizeof plain, false, new_sealed), 0);
    assert_int_equal(data_keyring_open(before, KEY_PURPOSE_STORE, aad, 3, new_sealed, sizeof new_sealed, out, &id), 0);
    assert_int_equal(id, 2);
    assert_memory_equal(out, plain, sizeof plain);
    assert_int_equal(data_keyring_current_id(before), 1); /* sealing moves on at restart */
    assert_int_equal(data_keyring_rotate(dir, err, sizeof err), 3);
    data_keyring_free(before);
    data_keyring_free(after);
    remove_dir(dir);
    /* A folder that cannot be created is an error, not a crash. */
    assert_int_equal(data_keyring_rotate("/proc/no-such/dir", err, sizeof err), 0);
    assert_non_null(strstr(err, "/proc/no-such/dir"));
}

/* ---- sealed store ---------------------------------------------------------------------- */

static void test_backend_holds_no_plain_bytes(void **state) {
    store *s = fixture_store(state);
    store_value sess = V("{}"), v = V("\xff\xd8\xff JPEG of a face, FRC1 record {\"quality\":295}"), raw = {0};
    assert_int_equal(s->ops->session_create(s, "T", "s1", &sess, time_now_ms() + HOUR_MS), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "T", "s1", "image", "f1", &v), STORE_OK);
    assert_int_equal(inner_store->ops->item_get(inner_store, "T", "s1", "image", "f1", &raw), STORE_OK);
    assert_int_equal(raw.len, 4 + 1 + 2 + v.len + DATA_KEYRING_OVERHEAD);
    assert_memory_equal(raw.data, "BSV1", 4);
    assert_null(memmem(raw.data, raw.len, "JPEG", 4));
    assert_null(memmem(raw.data, raw.len, "quality", 7));
    assert_null(memmem(raw.data, raw.len, "\xff\xd8\xff", 3));
    store_value_free(&raw);
    /* Kinds not listed (and sessions) pass through as they are. */
    assert_int_equal(s->ops->item_put(s, "T", "s1", "other", "o", &v), STORE_OK);
    assert_int_equal(inner_store->ops->item_get(inner_store, "T", "s1", "other", "o", &raw), STORE_OK);
    check_value(&raw, (const char *)v.data);
    store_value_free(&raw);
    expect_item(s, "T", "s1", "image", "f1", (const char *)v.data);
    assert_int_equal(s->ops->session_delete(s, "T", "s1"), STORE_OK);
}

/* Copies the backend's raw value of (tenant, sid, kind, id) to another place. */
static void copy_raw(const char *tenant, const char *sid, const char *kind, const char *id, const char *to_tenant,
                     const char *to_sid, const char *to_kind, const char *to_id) {
    store_value raw = {0};
    assert_int_equal(inner_store->ops->item_get(inner_store, tenant, sid, kind, id, &raw), STORE_OK);
    assert_int_equal(inner_store->ops->item_put(inner_store, to_tenant, to_sid, to_kind, to_id, &raw), STORE_OK);
    store_value_free(&raw);
}

static void test_values_bound_to_their_place(void **state) {
    store *s = fixture_store(state);
    store_value sess = V("{}"), v = V("face of A"), out = {0}, *list = NULL;
    size_t n = 0;
    const char *places[][2] = {{"A", "s1"}, {"A", "s2"}, {"B", "s1"}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(s->ops->session_create(s, places[i][0], places[i][1], &sess, time_now_ms() + HOUR_MS), STORE_OK);
    assert_int_equal(s->ops->item_put(s, "A", "s1", "face", "f1", &v), STORE_OK);
    copy_raw("A", "s1", "face", "f1", "A", "s1", "face", "f2");   /* another id */
    copy_raw("A", "s1", "face", "f1", "A", "s1", "image", "f1");  /* another kind */
    copy_raw("A", "s1", "face", "f1", "A", "s2", "face", "f1");   /* another session */
    copy_raw("A", "s1", "face", "f1", "B", "s1", "face", "f1");   /* another tenant */
    assert_int_equal(s->ops->item_get(s, "A", "s1", "face", "f2", &out), STORE_CORRUPT);
    assert_int_equal(s->ops->item_get(s, "A", "s1", "image", "f1", &out), STORE_CORRUPT);
    assert_int_equal(s->ops->item_get(s, "A", "s2", "face", "f1", &out), STORE_CORRUPT);
    assert_int_equal(s->ops->item_get(s, "B", "s1", "face", "f1", &out), STORE_CORRUPT);
    assert_int_equal(s->ops->item_list(s, "A", "s2", "face", &list, &n), STORE_CORRUPT);
    assert_null(list);
    assert_int_equal(n, 0);
    /* A plain value written behind the sealed store's back is refused too. */
    store_value plain = V("{\"forged\":true}");
    assert_int_equal(inner_store->ops->item_put(inner_store, "B", "s1", "face", "f9", &plain), STORE_OK);
    assert_int_equal(s->ops->item_get(s, "B", "s1", "face", "f9", &out), STORE_CORRUPT);
    /* The original still opens, alone in its list: the copy under f2 is refused. */
    expect_item(s, "A", "s1", "face", "f1", "face of A");
    assert_int_equal(s->ops->item_delete(s, "A", "s1", "face", "f2"), STORE_OK);
    expect_list(s, "A", "s1", "face", 1, (const char *const[]){"face of A"});
    for (int i = 0; i < 3; i++) assert_int_equal(s->ops->session_delete(s, places[i][0], places[i][1]), STORE_OK);
}

/* Data sealed under key 1 opens after a rotation, through a store built on the
 * rotated ring (as after a restart), and new data goes under key 2. */
static void test_store_across_rotation(void **state) {
    (void)state;
    char dir[] = "/tmp/test-srot-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    data_keyring *r1 = data_keyring_load_or_create(dir, err, sizeof err);
    store *mem = store_memory_create(10);
    store *s1 = store_sealed_create(mem, r1, sealed_kinds);
    store_value sess = V("{}"), v = V("sealed under key 1"), raw = {0};
    assert_int_equal(s1->ops->session_create(s1, "T", "s", &sess, time_now_ms() + HOUR_MS), STORE_OK);
    assert_int_equal(s1->ops->item_put(s1, "T", "s", "face", "old", &v), STORE_OK);
    assert_int_equal(data_keyring_rotate(dir, err, sizeof err), 2);
    data_keyring *r2 = data_keyring_load_or_create(dir, err, sizeof err);
    /* Swap the ring under the same backend: the sealed store borrows it. */
    store *s2 = store_sealed_create(mem, r2, sealed_kinds);
    store_value w = V("sealed under key 2");
    expect_item(s2, "T", "s", "face", "old", "sealed under key 1");
    assert_int_equal(s2->ops->item_put(s2, "T", "s", "face", "new", &w), STORE_OK);
    assert_int_equal(mem->ops->item_get(mem, "T", "s", "face", "new", &raw), STORE_OK);
    assert_int_equal(raw.data[5 + 3], 2); /* "BSV1" | 3 | "new" | key id 2 */
    store_value_free(&raw);
    assert_int_equal(mem->ops->item_get(mem, "T", "s", "face", "old", &raw), STORE_OK);
    assert_int_equal(raw.data[5 + 3], 1);
    store_value_free(&raw);
    expect_list(s2, "T", "s", "face", 2, (const char *const[]){"sealed under key 1", "sealed under key 2"});
    expect_item(s1, "T", "s", "face", "new", "sealed under key 2"); /* the old instance reads the file again */
    free(s2); /* shares mem with s1: only s1 closes it */
    store_close(s1);
    data_keyring_free(r1);
    data_keyring_free(r2);
    remove_dir(dir);
}

static void test_bad_arguments(void **state) {
    (void)state;
    static const char *const too_long[] = {"a-kind-of-16-chr", NULL};
    assert_null(store_sealed_create(store_memory_create(1), ring, too_long));
    assert_null(store_sealed_create(NULL, ring, sealed_kinds));
    assert_null(store_sealed_create(store_memory_create(1), NULL, sealed_kinds));
    store *s = store_sealed_create(store_memory_create(1), ring, sealed_kinds);
    assert_string_equal(s->ops->name, "memory"); /* reports show the backend */
    store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_file),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_rotation),
        STORE_CONFORMANCE_TESTS(setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_backend_holds_no_plain_bytes, setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_values_bound_to_their_place, setup, fixture_teardown),
        STORE_CONFORMANCE_TESTS(setup_parallel, teardown_parallel),
        cmocka_unit_test_setup_teardown(test_values_bound_to_their_place, setup_parallel, teardown_parallel),
        cmocka_unit_test_setup_teardown(test_parallel_listing, setup_parallel, teardown_parallel),
        cmocka_unit_test(test_store_across_rotation),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
