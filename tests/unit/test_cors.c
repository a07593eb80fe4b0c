/* CORS origin matching (http/cors.h): off by default, exact listed origins, "*". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/cors.h"

static void test_cors_off_and_lists(void **state) {
    (void)state;
    assert_null(cors_allow_origin("", "https://a.example"));
    assert_null(cors_allow_origin(NULL, "https://a.example"));
    assert_null(cors_allow_origin("https://a.example", NULL));
    assert_null(cors_allow_origin("https://a.example", ""));
    const char *list = "https://a.example, https://b.example:8443";
    assert_string_equal(cors_allow_origin(list, "https://a.example"), "https://a.example");
    assert_string_equal(cors_allow_origin(list, "HTTPS://A.EXAMPLE"), "HTTPS://A.EXAMPLE");
    assert_string_equal(cors_allow_origin(list, "https://b.example:8443"), "https://b.example:8443");
    assert_null(cors_allow_origin(list, "https://b.example"));         /* port differs */
    assert_null(cors_allow_origin(list, "https://a.example.evil.com")); /* prefix only */
    assert_null(cors_allow_origin(list, "https://a.exampl"));
    assert_null(cors_allow_origin(list, "http://a.example"));
    assert_string_equal(cors_allow_origin("*", "https://anything"), "*");
    assert_string_equal(cors_allow_origin("https://x.example,*", "https://y.example"), "*");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cors_off_and_lists)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
