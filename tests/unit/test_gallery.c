/* Unit tests for src/gallery: the 4-bit index (kernel against a plain dot product,
 * exact top-k against a float scan, several threads giving the same answer, removal,
 * embedding-size checks, UUID bytes), the SQLite store (galleries, limits, faces,
 * paging, externalId deletion, tenant isolation, reopening the file) and the
 * service (float rescoring returns exact similarities, best first). The Redis store
 * runs the same routes in tests/api (test_galleries.py, redis-pair). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "gallery/gallery.h"
#include "gallery/gallery_index.h"
#include "gallery/gallery_store.h"
#include "match/similarity.h"

#define DIM 512

/* Deterministic unit vectors (xorshift + Box-Muller-free: uniform is fine here). */
static void random_unit(unsigned *seed, float *v, int dim) {
    double n = 0;
    for (int i = 0; i < dim; i++) {
        *seed ^= *seed << 13, *seed ^= *seed >> 17, *seed ^= *seed << 5;
        v[i] = (float)((*seed % 20001) / 10000.0 - 1.0);
        n += (double)v[i] * v[i];
    }
    for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(n));
}

static void id_of(int i, uint8_t id[GALLERY_ID_BYTES]) {
    memset(id, 0, GALLERY_ID_BYTES);
    memcpy(id, &i, sizeof i);
}

static void check_int4_dot(int dim, int code_value, int query_value) {
    int8_t code[1024], q[1024 + 128] = {0};
    uint8_t packed[512];
    int32_t want = 0;
    for (int i = 0; i < dim; i++) {
        code[i] = (int8_t)(code_value ? code_value : (i * 5) % 15 - 7);
        q[i] = (int8_t)(query_value ? query_value : 127 - (i * 91) % 255);
        want += code[i] * q[i];
    }
    gallery_pack_int4(code, dim, packed);
    for (gallery_kernel k = GALLERY_KERNEL_SCALAR; k <= GALLERY_KERNEL_BEST; k++) {
        int32_t got = 0;
        if (gallery_dot_int4(k, packed, q, dim, &got)) assert_int_equal(got, want);
        else assert_true(k == GALLERY_KERNEL_AVX2 || k == GALLERY_KERNEL_VNNI); /* this CPU lacks it */
    }
}

static void test_int4_kernel_matches_plain_dot(void **state) {
    (void)state;
    assert_int_equal(gallery_code_bytes(512), 256);
    assert_int_equal(gallery_code_bytes(100), 64); /* padded to whole 64-dimension blocks */
    check_int4_dot(512, 0, 0);
    check_int4_dot(100, 0, 0);
    check_int4_dot(64, 0, 0); /* 32 code bytes: too few for the VNNI kernel */
    check_int4_dot(1024, 7, -127); /* the extremes */
    check_int4_dot(512, -7, -127);
}

/* Builds an index of n random faces; vecs receives them (n*DIM). */
static gallery_index *random_index(int n, float *vecs) {
    gallery_index *gi = gallery_index_create();
    unsigned seed = 12345;
    for (int i = 0; i < n; i++) {
        uint8_t id[GALLERY_ID_BYTES];
        random_unit(&seed, vecs + (size_t)i * DIM, DIM);
        id_of(i, id);
        assert_int_equal(gallery_index_add(gi, id, vecs + (size_t)i * DIM, DIM), GALLERY_INDEX_OK);
    }
    return gi;
}

static void test_search_finds_exact_top_k(void **state) {
    (void)state;
    int n = 2000;
    float *vecs = malloc((size_t)n * DIM * sizeof(float));
    gallery_index *gi = random_index(n, vecs);
    assert_int_equal(gallery_index_count(gi), n);
    assert_int_equal(gallery_index_dim(gi), DIM);
    /* A probe close to face 777: it must come first, its approximate similarity
     * within 0.03 (5 standard deviations of the 4-bit error) of the float one. */
    float q[DIM];
    unsigned seed = 99;
    random_unit(&seed, q, DIM);
    for (int i = 0; i < DIM; i++) q[i] = 0.8f * vecs[777 * DIM + i] + 0.2f * q[i];
    float norm = sqrtf(embedding_similarity(q, q, DIM));
    for (int i = 0; i < DIM; i++) q[i] /= norm;
    gallery_candidate out[10];
    assert_int_equal(gallery_index_search(gi, q, DIM, 10, 1, out), 10);
    uint8_t want[GALLERY_ID_BYTES];
    id_of(777, want);
    assert_memory_equal(out[0].id, want, GALLERY_ID_BYTES);
    assert_true(fabsf(out[0].similarity - embedding_similarity(q, vecs + 777 * DIM, DIM)) < 0.03f);
    for (int i = 1; i < 10; i++) assert_true(out[i - 1].similarity >= out[i].similarity);
    /* Fewer faces than k. */
    gallery_candidate many[3000];
    assert_int_equal(gallery_index_search(gi, q, DIM, 3000, 1, many), n);
    gallery_index_free(gi);
    free(vecs);
}

static void test_threads_give_the_same_answer(void **state) {
    (void)state;
    int n = GALLERY_INDEX_PARALLEL_MIN + 1000;
    float *vecs = malloc((size_t)n * DIM * sizeof(float));
    gallery_index *gi = random_index(n, vecs);
    gallery_candidate one[50], four[50];
    assert_int_equal(gallery_index_search(gi, vecs + 5 * DIM, DIM, 50, 1, one), 50);
    assert_int_equal(gallery_index_search(gi, vecs + 5 * DIM, DIM, 50, 4, four), 50);
    for (int i = 0; i < 50; i++) assert_true(one[i].similarity == four[i].similarity);
    uint8_t want[GALLERY_ID_BYTES];
    id_of(5, want);
    assert_memory_equal(one[0].id, want, GALLERY_ID_BYTES);
    gallery_index_free(gi);
    free(vecs);
}

static void test_remove_and_dim_checks(void **state) {
    (void)state;
    float vecs[3 * DIM];
    gallery_index *gi = random_index(3, vecs);
    uint8_t id[GALLERY_ID_BYTES];
    id_of(1, id);
    assert_int_equal(gallery_index_add(gi, id, vecs + DIM, DIM), GALLERY_INDEX_OK); /* a duplicate entry */
    assert_true(gallery_index_remove(gi, id));
    assert_false(gallery_index_remove(gi, id));
    assert_int_equal(gallery_index_count(gi), 2); /* both entries of face 1 went */
    assert_int_equal(gallery_index_add(gi, id, vecs, 128), GALLERY_INDEX_DIM);
    gallery_candidate out[2];
    assert_int_equal(gallery_index_search(gi, vecs, 128, 2, 1, out), GALLERY_INDEX_DIM);
    assert_int_equal(gallery_index_add(gi, id, vecs, 0), GALLERY_INDEX_DIM);
    gallery_index_free(gi);
    gallery_index_free(NULL);
}

static void test_uuid_bytes_round_trip(void **state) {
    (void)state;
    char u[UUID_STR_LEN], back[37];
    uuid_generate(u);
    uint8_t id[GALLERY_ID_BYTES];
    assert_true(gallery_id_parse(u, id));
    gallery_id_format(id, back);
    assert_string_equal(u, back);
    assert_false(gallery_id_parse("not-a-uuid", id));
    assert_false(gallery_id_parse("0000000-00000-4000-8000-000000000000", id));
    assert_false(gallery_id_parse("00000000-0000-4000-8000-00000000000g", id));
}

/* ---- the SQLite store ---------------------------------------------------------------- */

static char db_path[128];

static int make_db_path(void **state) {
    (void)state;
    snprintf(db_path, sizeof db_path, "/tmp/test_gallery_%d.sqlite3", (int)getpid());
    return 0;
}

static int remove_db(void **state) {
    (void)state;
    char p[160];
    unlink(db_path);
    snprintf(p, sizeof p, "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db_path);
    unlink(p);
    return 0;
}

static gallery_store *open_db(void) {
    char err[256];
    gallery_store *s = gallery_store_sqlite_open(db_path, false, err, sizeof err);
    assert_non_null(s);
    return s;
}

static bool count_row(void *ctx, const gallery_face *f) {
    (void)f;
    ++*(int *)ctx;
    return true;
}

static bool first_ids(void *ctx, const gallery_face *f) {
    char(*ids)[40] = ctx;
    int i = 0;
    while (ids[i][0]) i++;
    snprintf(ids[i], 40, "%s", f->id);
    return true;
}

static void test_sqlite_galleries_and_limits(void **state) {
    (void)state;
    gallery_store *s = open_db();
    const gallery_store_ops *o = s->ops;
    assert_int_equal(o->gallery_create(s, "t1", "g1", "{\"name\":\"a\"}", 2), STORE_OK);
    assert_int_equal(o->gallery_create(s, "t1", "g1", "{}", 2), STORE_EXISTS);
    assert_int_equal(o->gallery_create(s, "t1", "g2", "{}", 2), STORE_OK);
    assert_int_equal(o->gallery_create(s, "t1", "g3", "{}", 2), STORE_FULL);
    assert_int_equal(o->gallery_create(s, "t2", "g3", "{}", 2), STORE_OK); /* per tenant */
    char *json = NULL;
    long faces = -1;
    assert_int_equal(o->gallery_get(s, "t1", "g1", &json, &faces), STORE_OK);
    assert_string_equal(json, "{\"name\":\"a\"}");
    assert_int_equal(faces, 0);
    free(json);
    assert_int_equal(o->gallery_get(s, "t2", "g1", NULL, NULL), STORE_NOT_FOUND); /* other tenant */
    assert_int_equal(o->gallery_delete(s, "t2", "g1"), STORE_NOT_FOUND);
    assert_int_equal(o->gallery_delete(s, "t1", "g2"), STORE_OK);
    assert_int_equal(o->gallery_get(s, "t1", "g2", NULL, NULL), STORE_NOT_FOUND);
    o->destroy(s);
}

static void test_sqlite_faces_survive_reopen(void **state) {
    (void)state;
    gallery_store *s = open_db();
    const gallery_store_ops *o = s->ops;
    float e[DIM];
    unsigned seed = 7;
    random_unit(&seed, e, DIM);
    assert_int_equal(o->gallery_create(s, "t", "g", "{}", 10), STORE_OK);
    const char *ids[] = {"f1", "f2", "f3", "f4"}, *ext[] = {"x", "y", "x", "z"};
    for (int i = 0; i < 4; i++) {
        gallery_face f = {"t", "g", ids[i], ext[i], "{\"n\":1}", e, DIM};
        assert_int_equal(o->face_put(s, &f, 4), STORE_OK);
    }
    gallery_face over = {"t", "g", "f5", "q", "{}", e, DIM};
    assert_int_equal(o->face_put(s, &over, 4), STORE_FULL);
    gallery_face dup = {"t", "g", "f1", "q", "{}", e, DIM};
    assert_int_equal(o->face_put(s, &dup, 10), STORE_EXISTS);
    gallery_face nog = {"t", "nope", "f9", "q", "{}", e, DIM};
    assert_int_equal(o->face_put(s, &nog, 10), STORE_NOT_FOUND);
    o->destroy(s);

    s = open_db(); /* everything is on disk */
    o = s->ops;
    float got[DIM];
    int dim = 0;
    char *json = NULL;
    assert_int_equal(o->face_get(s, "t", "g", "f2", &json, got, &dim), STORE_OK);
    assert_int_equal(dim, DIM);
    assert_memory_equal(got, e, sizeof e);
    assert_string_equal(json, "{\"n\":1}");
    free(json);
    assert_int_equal(o->face_get(s, "u", "g", "f2", NULL, got, &dim), STORE_NOT_FOUND);
    char page[4][40] = {{0}};
    long total = 0;
    assert_int_equal(o->face_list(s, "t", "g", 1, 2, first_ids, page, &total), STORE_OK);
    assert_int_equal(total, 4);
    assert_string_equal(page[0], "f2");
    assert_string_equal(page[1], "f3");
    assert_string_equal(page[2], "");
    int removed = 0;
    assert_int_equal(o->face_delete_external(s, "t", "g", "x", count_row, &removed), STORE_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(o->face_delete(s, "t", "g", "f2"), STORE_OK);
    assert_int_equal(o->face_delete(s, "t", "g", "f2"), STORE_NOT_FOUND);
    long faces = 0;
    assert_int_equal(o->gallery_get(s, "t", "g", NULL, &faces), STORE_OK);
    assert_int_equal(faces, 1);
    int all = 0;
    assert_int_equal(o->load_all(s, count_row, &all), STORE_OK);
    assert_int_equal(all, 1);
    assert_int_equal(o->gallery_delete(s, "t", "g"), STORE_OK);
    all = 0;
    assert_int_equal(o->load_all(s, count_row, &all), STORE_OK);
    assert_int_equal(all, 0);
    o->destroy(s);
}

static void test_sqlite_open_failure_says_why(void **state) {
    (void)state;
    char err[256] = "";
    assert_null(gallery_store_sqlite_open("/nonexistent-dir/x/galleries.sqlite3", true, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x/galleries.sqlite3"));
}

/* ---- the service: rescoring is exact and ordered ---------------------------------------- */

static void test_service_search_rescored_exactly(void **state) {
    (void)state;
    char err[256];
    gallery_service_config cfg = {.store = open_db(), .search_threads = 2};
    gallery_service *svc = gallery_service_open(&cfg, err, sizeof err);
    assert_non_null(svc);
    gallery_store *s = gallery_service_store(svc);
    assert_int_equal(s->ops->gallery_create(s, "t", "g", "{}", 10), STORE_OK);
    enum { N = 300 };
    static float vecs[N][DIM];
    static char ids[N][UUID_STR_LEN];
    unsigned seed = 3;
    for (int i = 0; i < N; i++) {
        random_unit(&seed, vecs[i], DIM);
        uuid_generate(ids[i]);
        gallery_face f = {"t", "g", ids[i], "e", "{}", vecs[i], DIM};
        assert_int_equal(gallery_enrol(svc, &f, N), STORE_OK);
    }
    gallery_face extra = {"t", "g", "00000000-0000-4000-8000-000000000001", "e", "{}", vecs[0], DIM};
    assert_int_equal(gallery_enrol(svc, &extra, N), STORE_FULL);
    gallery_face small = {"t", "g", "00000000-0000-4000-8000-000000000002", "e", "{}", vecs[0], 128};
    assert_int_equal(gallery_enrol(svc, &small, N + 10), GALLERY_DIM_MISMATCH);
    gallery_hit hits[5];
    size_t n = 0;
    long size = 0;
    assert_int_equal(gallery_search(svc, "t", "g", vecs[42], DIM, 5, -2.0f, hits, &n, &size), STORE_OK);
    assert_int_equal(n, 5);
    assert_int_equal(size, N);
    assert_string_equal(hits[0].id, ids[42]);
    assert_true(hits[0].similarity == embedding_similarity(vecs[42], vecs[42], DIM));
    for (size_t i = 1; i < n; i++) assert_true(hits[i - 1].similarity >= hits[i].similarity);
    gallery_hits_free(hits, n);
    assert_int_equal(gallery_remove_face(svc, "t", "g", ids[42]), STORE_OK);
    assert_int_equal(gallery_search(svc, "t", "g", vecs[42], DIM, 1, -2.0f, hits, &n, &size), STORE_OK);
    assert_string_not_equal(hits[0].id, ids[42]);
    gallery_hits_free(hits, n);
    assert_int_equal(gallery_search(svc, "u", "g", vecs[42], DIM, 1, -2.0f, hits, &n, &size), STORE_NOT_FOUND);
    gallery_service_close(svc);

    /* Reopened: the index is rebuilt from the database. */
    cfg.store = open_db();
    svc = gallery_service_open(&cfg, err, sizeof err);
    assert_int_equal(gallery_search(svc, "t", "g", vecs[7], DIM, 1, -2.0f, hits, &n, &size), STORE_OK);
    assert_int_equal(size, N - 1);
    assert_string_equal(hits[0].id, ids[7]);
    gallery_hits_free(hits, n);
    assert_int_equal(gallery_drop(svc, "t", "g"), STORE_OK);
    assert_int_equal(gallery_search(svc, "t", "g", vecs[7], DIM, 1, -2.0f, hits, &n, &size), STORE_NOT_FOUND);
    gallery_service_close(svc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int4_kernel_matches_plain_dot),
        cmocka_unit_test(test_search_finds_exact_top_k),
        cmocka_unit_test(test_threads_give_the_same_answer),
        cmocka_unit_test(test_remove_and_dim_checks),
        cmocka_unit_test(test_uuid_bytes_round_trip),
        cmocka_unit_test_setup_teardown(test_sqlite_galleries_and_limits, make_db_path, remove_db),
        cmocka_unit_test_setup_teardown(test_sqlite_faces_survive_reopen, make_db_path, remove_db),
        cmocka_unit_test(test_sqlite_open_failure_says_why),
        cmocka_unit_test_setup_teardown(test_service_search_rescored_exactly, make_db_path, remove_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
