/* Capture-stream guidance (liveness/guidance.h): placement of a face box in the
 * frame, in the order a user fixes it, stability over frames, and the names the
 * WebCapture pages compare against. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "liveness/guidance.h"

/* A 640x480 frame with a face box and level eyes at the usual place in it. */
static guidance_frame face_at(float x, float y, float w, float h) {
    guidance_frame f = {.width = 640, .height = 480, .face = true, .box = {x, y, w, h}};
    f.eyes[0] = x + 0.3f * w;
    f.eyes[2] = x + 0.7f * w;
    f.eyes[1] = f.eyes[3] = y + 0.4f * h;
    return f;
}

static guidance_position judge(guidance_frame f) {
    guidance_state s;
    guidance_init(&s, 1);
    guidance_result r;
    guidance_step(&s, &f, &r);
    return r.position;
}

static void test_placement(void **state) {
    (void)state;
    guidance_frame none = {.width = 640, .height = 480};
    assert_int_equal(judge(none), POSITION_MOVE_BACK_INTO_FRAME);
    assert_int_equal(judge(face_at(245, 130, 150, 200)), POSITION_GOOD);     /* NUAA-like */
    assert_int_equal(judge(face_at(290, 190, 60, 80)), POSITION_MOVE_FORWARDS);
    assert_int_equal(judge(face_at(60, 0, 500, 470)), POSITION_MOVE_BACKWARDS);
    assert_int_equal(judge(face_at(-120, 130, 200, 220)), POSITION_MOVE_BACK_INTO_FRAME);
    /* Unmirrored frames: a face on the image's left is on the user's right. */
    assert_int_equal(judge(face_at(40, 130, 150, 200)), POSITION_MOVE_LEFT);
    assert_int_equal(judge(face_at(450, 130, 150, 200)), POSITION_MOVE_RIGHT);
    assert_int_equal(judge(face_at(245, 10, 150, 160)), POSITION_MOVE_DOWN);
    assert_int_equal(judge(face_at(245, 300, 150, 170)), POSITION_MOVE_UP);
    guidance_frame rolled = face_at(245, 130, 150, 200);
    rolled.eyes[3] += 30; /* image-right eye 30 px lower over 60 px: 27 degrees */
    assert_int_equal(judge(rolled), POSITION_TILT_RIGHT);
    rolled.eyes[3] -= 60;
    assert_int_equal(judge(rolled), POSITION_TILT_LEFT);
}

static void test_too_far_and_too_close_flags(void **state) {
    (void)state;
    guidance_state s;
    guidance_init(&s, 1);
    guidance_result r;
    guidance_frame f = face_at(290, 190, 60, 80);
    guidance_step(&s, &f, &r);
    assert_true(r.too_far);
    assert_false(r.too_close);
    assert_float_equal(r.target_r, 60.0f / 640, 1e-6);
    f = face_at(60, 0, 500, 470);
    guidance_step(&s, &f, &r);
    assert_true(r.too_close);
    assert_false(r.placed);
}

static void test_stability_and_moving_too_fast(void **state) {
    (void)state;
    guidance_state s;
    guidance_init(&s, 3);
    guidance_result r;
    guidance_frame f = face_at(245, 130, 150, 200);
    guidance_step(&s, &f, &r);
    assert_int_equal(r.position, POSITION_STAND_STILL);
    assert_float_equal(r.stability, 1.0f / 3, 1e-6);
    f.box[0] += 10; /* a small natural motion */
    guidance_step(&s, &f, &r);
    assert_true(r.placed);
    assert_float_equal(r.stability, 2.0f / 3, 1e-6);
    f.box[0] += 80; /* 12 % of the frame in one step */
    guidance_step(&s, &f, &r);
    assert_int_equal(r.position, POSITION_MOVING_TOO_FAST);
    assert_false(r.placed);
    assert_float_equal(r.stability, 0, 1e-6);
    for (int i = 0; i < 3; i++) guidance_step(&s, &f, &r);
    assert_int_equal(r.position, POSITION_GOOD);
    assert_float_equal(r.stability, 1, 1e-6);
    guidance_frame none = {.width = 640, .height = 480};
    guidance_step(&s, &none, &r); /* losing the face restarts the run */
    assert_float_equal(r.stability, 0, 1e-6);
}

static void test_yaw_sign(void **state) {
    (void)state;
    guidance_state s;
    guidance_init(&s, 1);
    guidance_result r;
    guidance_frame f = face_at(245, 130, 150, 200);
    f.eyes[0] += 30; /* features towards the image right: a turn to the user's left */
    f.eyes[2] += 30;
    guidance_step(&s, &f, &r);
    assert_true(r.yaw > 0.4f);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(guidance_position_name(POSITION_GOOD), "TRACKER_POSITION_INFO_GOOD");
    assert_string_equal(guidance_position_name(POSITION_MOVE_FORWARDS), "TRACKER_POSITION_INFO_CENTER_MOVE_FORWARDS");
    assert_string_equal(guidance_position_name(POSITION_STAND_STILL), "TRACKER_POSITION_INFO_STAND_STILL");
    assert_string_equal(guidance_position_name((guidance_position)99), "TRACKER_POSITION_INFO_UNKNOWN");
    for (int p = POSITION_GOOD; p <= POSITION_STAND_STILL; p++)
        assert_int_equal(strncmp(guidance_position_name((guidance_position)p), "TRACKER_POSITION_INFO_", 22), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_too_far_and_too_close_flags),
        cmocka_unit_test(test_stability_and_moving_too_fast),
        cmocka_unit_test(test_yaw_sign),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
