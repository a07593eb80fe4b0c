/* The biometric mode table (api/modes.h): every mode of the reference is known,
 * and faces compare only within one algorithm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/modes.h"

static void test_every_reference_mode_is_known(void **state) {
    (void)state;
    const char *names[] = {"F5_1_VID60", "F5_3_VID60", "F5_2_VID75", "F5_1_VID0"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const biometric_mode *m = biometric_mode_find(names[i]);
        assert_non_null(m);
        assert_non_null(m->algorithm);
    }
    assert_null(biometric_mode_find("F9_9_VID99"));
    assert_null(biometric_mode_find(NULL));
}

static void test_comparable_within_one_algorithm(void **state) {
    (void)state;
    for (int i = 0; biometric_modes[i].name; i++)
        for (int j = 0; biometric_modes[j].name; j++) {
            bool same = !strcmp(biometric_modes[i].algorithm, biometric_modes[j].algorithm);
            assert_int_equal(biometric_modes_comparable(biometric_modes[i].name, biometric_modes[j].name), same);
        }
    assert_false(biometric_modes_comparable("F5_1_VID60", "unknown"));
    assert_false(biometric_modes_comparable("unknown", "unknown"));
}

/* F5_2_VID75 alone runs the accurate algorithm; the fast modes compare with each other, not with it. */
static void test_accurate_mode_is_its_own_algorithm(void **state) {
    (void)state;
    assert_true(biometric_mode_accurate("F5_2_VID75"));
    assert_false(biometric_mode_accurate("F5_1_VID60"));
    assert_false(biometric_mode_accurate("F5_3_VID60"));
    assert_false(biometric_mode_accurate("F5_1_VID0"));
    assert_false(biometric_mode_accurate("unknown"));
    assert_false(biometric_mode_accurate(NULL));
    assert_false(biometric_modes_comparable("F5_2_VID75", "F5_1_VID60"));
    assert_true(biometric_modes_comparable("F5_2_VID75", "F5_2_VID75"));
    assert_true(biometric_modes_comparable("F5_1_VID60", "F5_3_VID60"));
}

/* F5_2_VID75 runs fusion-v2 (832 values); its retired fusion-v1 (640 values) is
 * named, so its templates are refused by name, and never compared: not with the
 * current algorithm, nor with each other (no calibration of theirs is left). */
static void test_retired_algorithm_is_known_by_its_dimension(void **state) {
    (void)state;
    assert_int_equal(biometric_mode_find("F5_2_VID75")->dim, 512 + 128 + 192);
    assert_int_equal(biometric_mode_find("F5_1_VID60")->dim, 512);
    assert_string_equal(biometric_algorithm_of("F5_2_VID75", 832), "fusion-v2");
    assert_string_equal(biometric_algorithm_of("F5_2_VID75", 640), "fusion-v1");
    assert_string_equal(biometric_algorithm_of("F5_1_VID60", 512), "fr_feature-v1");
    assert_null(biometric_algorithm_of("F5_1_VID60", 640));
    assert_null(biometric_algorithm_of("F5_2_VID75", 512));
    assert_null(biometric_algorithm_of("unknown", 640));
    assert_null(biometric_algorithm_of(NULL, 640));
    assert_true(biometric_faces_comparable("F5_2_VID75", 832, "F5_2_VID75", 832));
    assert_false(biometric_faces_comparable("F5_2_VID75", 640, "F5_2_VID75", 640));
    assert_false(biometric_faces_comparable("F5_2_VID75", 640, "F5_2_VID75", 832));
    assert_false(biometric_faces_comparable("F5_2_VID75", 832, "F5_1_VID60", 512));
    assert_true(biometric_faces_comparable("F5_1_VID60", 512, "F5_3_VID60", 512));
    assert_false(biometric_faces_comparable("F5_1_VID60", 511, "F5_1_VID60", 511));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_reference_mode_is_known),
        cmocka_unit_test(test_comparable_within_one_algorithm),
        cmocka_unit_test(test_accurate_mode_is_its_own_algorithm),
        cmocka_unit_test(test_retired_algorithm_is_known_by_its_dimension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
