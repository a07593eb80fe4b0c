/* Unit tests for the shared helpers: base64/base64url (src/core/util.c), UUIDs,
 * ISO time stamps, clocks, hex, and the per-request arena (src/core/arena.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <math.h>

#include "core/arena.h"
#include "core/util.h"

/* Under ASan, an impossible malloc must return NULL (as glibc's does) instead of
 * aborting, so the huge-size arena test checks the arena and not the allocator. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ---- base64 -------------------------------------------------------------------- */

static void test_base64_vectors(void **state) {
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]), out_len = 99;
        char *e = base64_encode((const uint8_t *)plain[i], n);
        assert_string_equal(e, std[i]);
        free(e);
        e = base64url_encode((const uint8_t *)plain[i], n);
        assert_string_equal(e, url[i]);
        free(e);
        uint8_t *d = base64_decode(std[i], strlen(std[i]), &out_len);
        assert_non_null(d);
        assert_int_equal(out_len, n);
        assert_memory_equal(d, plain[i], n);
        free(d);
        d = base64url_decode(url[i], strlen(url[i]), &out_len);
        assert_non_null(d);
        assert_int_equal(out_len, n);
        assert_memory_equal(d, plain[i], n);
        free(d);
    }
    /* The two alphabets differ in 62/63. */
    const uint8_t hi[] = {0xfb, 0xff, 0xbf};
    char *e = base64_encode(hi, 3);
    assert_string_equal(e, "+/+/");
    free(e);
    e = base64url_encode(hi, 3);
    assert_string_equal(e, "-_-_");
    free(e);
    const uint8_t two[] = {0xfb, 0xff};
    e = base64_encode(two, 2);
    assert_string_equal(e, "+/8=");
    free(e);
    e = base64url_encode(two, 2);
    assert_string_equal(e, "-_8");
    free(e);
    /* Decoding only looks at text_len bytes. */
    size_t n;
    uint8_t *d = base64_decode("Zm9vYmFyGARBAGE", 8, &n);
    assert_non_null(d);
    assert_int_equal(n, 6);
    assert_memory_equal(d, "foobar", 6);
    free(d);
}

static void test_base64_roundtrip(void **state) {
    (void)state;
    uint8_t buf[300];
    srand(7);
    for (size_t len = 0; len <= sizeof buf; len += (len < 70 ? 1 : 37)) {
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rand();
        char *e = base64_encode(buf, len);
        char *u = base64url_encode(buf, len);
        assert_int_equal(strlen(e), 4 * ((len + 2) / 3));
        assert_null(strpbrk(u, "+/="));
        /* base64url is base64 with - and _ for + and /, unpadded (RFC 4648 section 5). */
        char *mapped = strdup(e);
        for (char *p = mapped; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        mapped[strcspn(mapped, "=")] = '\0';
        assert_string_equal(u, mapped);
        free(mapped);
        assert_int_equal(strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="), strlen(e));
        size_t n1 = 12345, n2 = 12345;
        uint8_t *d1 = base64_decode(e, strlen(e), &n1);
        uint8_t *d2 = base64url_decode(u, strlen(u), &n2);
        assert_non_null(d1);
        assert_non_null(d2);
        assert_int_equal(n1, len);
        assert_int_equal(n2, len);
        if (len) {
            assert_memory_equal(d1, buf, len);
            assert_memory_equal(d2, buf, len);
        }
        free(e);
        free(u);
        free(d1);
        free(d2);
    }
}

static void expect_malformed(const char *text) {
    size_t n = 777;
    uint8_t *d = base64_decode(text, strlen(text), &n);
    if (d) print_error("base64_decode accepted '%s'\n", text);
    assert_null(d);
    d = base64url_decode(text, strlen(text), &n);
    if (d) print_error("base64url_decode accepted '%s'\n", text);
    assert_null(d);
}

static void test_base64_malformed(void **state) {
    (void)state;
    expect_malformed("Zm9v!");
    expect_malformed("Z");        /* one character cannot encode a byte */
    expect_malformed("Zm9vY");    /* 4n+1 characters */
    expect_malformed("Zm 9v");
    expect_malformed("Zm9v\n");
    expect_malformed("Zm=9");     /* padding inside */
    expect_malformed("=Zm9");
    expect_malformed("Zm9v.Zm9v");
    expect_malformed("\xc3\xa9\xc3\xa9");
    char with_nul[] = "Zm\0v";
    size_t n;
    assert_null(base64_decode(with_nul, 4, &n));
}

/* Canonical: exactly what base64_encode makes; every other spelling of the same
 * bytes (no or wrong padding, url alphabet, leftover bits) is refused. */
/* ---- reals as JSON text ------------------------------------------------------------ */

/* json_real_text must print exactly what jansson prints, since GetMatches splices
 * its scores into text that other replies build with json_dumps. */
static void expect_real_as_jansson(double v, int digits) {
    json_t *real = json_real(v);
    char *want = json_dumps(real, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(digits));
    char got[JSON_REAL_TEXT_MAX];
    size_t len = json_real_text(v, digits, got);
    assert_non_null(want);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(want);
    json_decref(real);
}

static void test_json_real_text(void **state) {
    (void)state;
    const double fixed[] = {0.0, -0.0, 1.0, -1.0, 10000.0, 1e10, 1e15, 1e16, 1e17, 1e100, 1e300, 1e-5, 1e-300,
                            5e-324, 1.7976931348623157e308, 0.1, 108.561, 3.533047727e-08, 6225.925248, 2.5e-7,
                            123456789012.0, 99.99999999999, -42.5e-12};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int digits = 1; digits <= 17; digits += 8) expect_real_as_jansson(fixed[i], digits);
    char text[JSON_REAL_TEXT_MAX];
    assert_int_equal(json_real_text(NAN, 10, text), 0);
    assert_int_equal(json_real_text(-INFINITY, 10, text), 0);
    srand(11);
    for (int i = 0; i < 20000; i++) { /* scores, rates in percent, anything a double holds */
        double mantissa = (double)rand() / RAND_MAX * (rand() % 2 ? 1 : -1);
        expect_real_as_jansson(ldexp(mantissa, rand() % 2090 - 1070), 10);
    }
}

static void test_base64_canonical(void **state) {
    (void)state;
    static const char *const good[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYmFy", "+/+/", "+/8="};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t n = 99;
        uint8_t *d = base64_decode_canonical(good[i], strlen(good[i]), &n);
        assert_non_null(d);
        free(d);
    }
    static const char *const bad[] = {
        "Zg",      /* padding missing */
        "Zg=",     /* padding short */
        "Zg===",   /* padding long */
        "Zm9v=",   /* padding after a full quantum */
        "Zh==",    /* leftover bits set: decodes to "f" too */
        "Zm9=",    /* leftover bits set */
        "-_-_",    /* url alphabet */
        "Zm9v!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        if (base64_decode_canonical(bad[i], strlen(bad[i]), &n)) fail_msg("accepted non-canonical \"%s\"", bad[i]);
    }
    /* The liberal decoder still takes the unpadded and url forms. */
    size_t n;
    uint8_t *d = base64_decode("Zg", 2, &n);
    assert_non_null(d);
    free(d);
}

/* ---- identifiers, time, hex ------------------------------------------------------- */

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static void test_uuid(void **state) {
    (void)state;
    enum { N = 2000 };
    char(*ids)[UUID_STR_LEN] = calloc(N, UUID_STR_LEN);
    for (int i = 0; i < N; i++) {
        char *u = ids[i];
        uuid_generate(u);
        assert_int_equal(strlen(u), 36);
        for (int j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23) assert_int_equal(u[j], '-');
            else assert_true(is_lower_hex(u[j]));
        }
        assert_int_equal(u[14], '4');                        /* version 4 */
        assert_non_null(strchr("89ab", u[19]));               /* RFC 4122 variant */
        assert_true(uuid_is_valid(u));
    }
    qsort(ids, N, UUID_STR_LEN, (int (*)(const void *, const void *))strcmp);
    for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);

    assert_true(uuid_is_valid("0991cedc-9111-4b9d-9e4e-8d6eb4db488f"));
    assert_true(uuid_is_valid("0991CEDC-9111-4B9D-9E4E-8D6EB4DB488F"));
    assert_false(uuid_is_valid(NULL));
    assert_false(uuid_is_valid(""));
    assert_false(uuid_is_valid("0991cedc-9111-4b9d-9e4e-8d6eb4db488"));   /* 35 */
    assert_false(uuid_is_valid("0991cedc-9111-4b9d-9e4e-8d6eb4db488ff")); /* 37 */
    assert_false(uuid_is_valid("0991cedc-9111-4b9d-9e4e-8d6eb4db488g"));
    assert_false(uuid_is_valid("0991cedc9-111-4b9d-9e4e-8d6eb4db488f"));
    assert_false(uuid_is_valid("0991cedc-9111-4b9d-9e4e_8d6eb4db488f"));
    assert_false(uuid_is_valid("../../../../../../../../etc/passwd....."));
}

static void test_iso_time(void **state) {
    (void)state;
    char out[ISO_TIME_LEN];
    time_format_iso(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    time_format_iso(1495102479587LL, out); /* the spec's example */
    assert_string_equal(out, "2017-05-18T10:14:39.587Z");
    time_format_iso(1495102479007LL, out);
    assert_string_equal(out, "2017-05-18T10:14:39.007Z");
    time_format_iso(951782400999LL, out); /* leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.999Z");
    time_format_iso(2147483648001LL, out); /* past 2038 */
    assert_string_equal(out, "2038-01-19T03:14:08.001Z");
    time_format_iso(253402300799999LL, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");

    int64_t now = time_now_ms();
    assert_true(now > 1577836800000LL); /* after 2020 */
    time_format_iso(now, out);
    assert_int_equal(strlen(out), 24);
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[23], 'Z');
    int64_t m1 = time_monotonic_ms();
    double s1 = time_monotonic_s();
    int64_t m2 = time_monotonic_ms();
    double s2 = time_monotonic_s();
    assert_true(m2 >= m1);
    assert_true(s2 >= s1);
    assert_true(s1 * 1000 - (double)m1 < 1000 && s1 * 1000 - (double)m1 > -1000);
}

static void test_hex(void **state) {
    (void)state;
    const uint8_t b[] = {0x00, 0x01, 0xab, 0xff, 0x7e};
    char out[11];
    hex_encode(b, sizeof b, out);
    assert_string_equal(out, "0001abff7e");
    hex_encode(b, 0, out);
    assert_string_equal(out, "");
}

/* ---- arena --------------------------------------------------------------------- */

static void test_arena_alignment_and_zeroing(void **state) {
    (void)state;
    arena *a = arena_create(64); /* small blocks: forces many */
    assert_non_null(a);
    assert_int_equal(arena_bytes_used(a), 0);
    static const size_t sizes[] = {1, 3, 7, 8, 13, 16, 17, 31, 64, 65, 100, 1000, 5000, 1, 2};
    void *prev[sizeof sizes / sizeof sizes[0]];
    size_t used = 0;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            uint8_t *p = arena_alloc(a, sizes[i]);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
            for (size_t j = 0; j < sizes[i]; j++) assert_int_equal(p[j], 0);
            memset(p, 0xa5, sizes[i]); /* ASan: the whole size is ours */
            prev[i] = p;
            assert_true(arena_bytes_used(a) >= used + sizes[i]);
            used = arena_bytes_used(a);
        }
        /* Earlier allocations are not overwritten by later ones. */
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (size_t j = 0; j < sizes[i]; j++) assert_int_equal(((uint8_t *)prev[i])[j], 0xa5);
    }
    /* Any type fits at the returned alignment. */
    long double *ld = arena_alloc(a, 3 * sizeof(long double));
    ld[2] = 1.5L;
    double *d = arena_alloc(a, sizeof(double));
    *d = 2.5;
    assert_true(ld[2] == 1.5L && *d == 2.5);
    /* One huge allocation beyond the block size. */
    uint8_t *big = arena_alloc(a, 3u << 20);
    assert_non_null(big);
    big[(3u << 20) - 1] = 1;
    /* Overflowing sizes fail cleanly. */
    assert_null(arena_alloc(a, SIZE_MAX));
    assert_null(arena_alloc(a, SIZE_MAX - 3));
    arena_free(a);
    arena_free(NULL);
    /* A zero first block size falls back to a default. */
    a = arena_create(0);
    assert_non_null(arena_alloc(a, 10));
    arena_free(a);
}

static void test_arena_strings(void **state) {
    (void)state;
    arena *a = arena_create(32);
    char *s = arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    assert_int_equal((uintptr_t)s % alignof(max_align_t), 0);
    char *e = arena_strdup(a, "");
    assert_string_equal(e, "");
    char *n = arena_strndup(a, "abcdef", 3);
    assert_string_equal(n, "abc");
    char *z = arena_strndup(a, "ab\0cd", 5); /* copies n bytes and terminates */
    assert_memory_equal(z, "ab\0cd", 6);
    char *p = arena_printf(a, "%s-%d-%05.1f-%c", "x", 42, 3.14159, 'z');
    assert_string_equal(p, "x-42-003.1-z");
    assert_string_equal(s, "hello");
    /* Longer than any block so far. */
    char long_text[3000];
    memset(long_text, 'q', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    char *l = arena_printf(a, "<%s>", long_text);
    assert_int_equal(strlen(l), sizeof long_text + 1);
    assert_int_equal(l[0], '<');
    assert_int_equal(l[sizeof long_text], '>');
    char *ld = arena_strdup(a, long_text);
    assert_string_equal(ld, long_text);
    assert_string_equal(p, "x-42-003.1-z");
    assert_true(arena_bytes_used(a) >= 2 * sizeof long_text);
    arena_free(a);
}

/* Runs arena_alloc(size) in a child process (so a hang cannot hang the suite) and
 * returns 0 when it returned NULL, 1 when it returned memory, -1 on crash/timeout. */
static int alloc_in_child(size_t size) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(5);
        arena *a = arena_create(4096);
        void *p = arena_alloc(a, size);
        _exit(p ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_arena_huge_sizes_fail_cleanly(void **state) {
    (void)state;
    /* "NULL only when malloc fails": an impossible size must give NULL, promptly. */
    assert_int_equal(alloc_in_child(SIZE_MAX), 0);
    assert_int_equal(alloc_in_child(SIZE_MAX / 4), 0);
    assert_int_equal(alloc_in_child(SIZE_MAX / 2), 0);
    assert_int_equal(alloc_in_child(SIZE_MAX / 2 + 2), 0);
    assert_int_equal(alloc_in_child(SIZE_MAX - 64), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_malformed),
        cmocka_unit_test(test_base64_canonical),
        cmocka_unit_test(test_json_real_text),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_arena_alignment_and_zeroing),
        cmocka_unit_test(test_arena_strings),
        cmocka_unit_test(test_arena_huge_sizes_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
