/*
 * test_expo_models.c - the models new with the TFLite reader and the PAD fusion,
 * on real images from ../shared/data (tests run from the repository root):
 *   - MobileFaceNet.tflite, the accurate mode's third network, embeds our aligned
 *     faces (face_mobilefacenet_descriptor): two photos of one person are closer
 *     than photos of two people, and the face plus its mirror, run as one batch,
 *     describe the mirrored face the same way;
 *   - the PAD models (liveness/pad.h) on NUAA subject 0005, which the server's
 *     thresholds were not tuned on: the server's verdict (fr_liveness) passes the
 *     live frames and rejects the printed photos at HIGH, and each model's raw
 *     score is finite; the ones that separate this subject are checked to.
 * Numerics against a reference are in test_nn.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "face/image.h"
#include "face/pipeline.h"
#include "face/pipeline_internal.h" /* face_mobilefacenet_descriptor, MFN_DIM */
#include "liveness/evaluate.h"
#include "liveness/pad.h"
#include "nn/nn.h"

#define DATA "../shared/data/"
#define LFW DATA "lfw/lfw_deepfunneled/"
#define NUAA DATA "spoof/nuaa/"

static face_engine *engine;
static face_worker *worker;

static int setup(void **state) {
    (void)state;
    char err[512];
    engine = face_engine_load("models", err, sizeof err);
    worker = engine ? face_worker_create(engine, err, sizeof err) : NULL;
    if (!worker) fprintf(stderr, "setup: %s\n", err);
    return worker ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    face_worker_free(worker);
    face_engine_free(engine);
    return 0;
}

/* face_analyze on a file; its result into r (one face expected). */
static void analyze(const char *path, face_result *r) {
    size_t len;
    uint8_t *data = file_read_all(path, (size_t)1 << 26, &len);
    if (!data) fail_msg("cannot read %s", path);
    char err[256];
    face_options opt = {.want_embedding = true};
    int rc = face_analyze(worker, data, len, &opt, r, err, sizeof err);
    free(data);
    if (rc != FACE_OK || r->faces_found < 1) fail_msg("%s: no face (%s)", path, err);
}

static void normalise(float *v) {
    double n = 0;
    for (int i = 0; i < MFN_DIM; i++) n += (double)v[i] * v[i];
    assert_true(n > 0);
    for (int i = 0; i < MFN_DIM; i++) v[i] = (float)(v[i] / sqrt(n));
}

/* MobileFaceNet's L2-normalised embedding (face + mirror) of the face in path, as
 * the accurate mode computes it from the worker's aligned face. */
static void mobilefacenet(const char *path, float *emb) {
    face_result *r = malloc(sizeof *r);
    assert_non_null(r);
    analyze(path, r);
    free(r);
    assert_int_equal(face_mobilefacenet_descriptor(worker, emb), FACE_OK);
    normalise(emb);
}

static float dot(const float *a, const float *b) {
    float s = 0;
    for (int i = 0; i < MFN_DIM; i++) s += a[i] * b[i];
    return s;
}

static void test_mobilefacenet_verifies(void **state) {
    (void)state;
    float a1[MFN_DIM], a2[MFN_DIM], b[MFN_DIM], c[MFN_DIM], flipped[MFN_DIM];
    mobilefacenet(LFW "Aaron_Peirsol/Aaron_Peirsol_0001.jpg", a1);
    mobilefacenet(LFW "Aaron_Peirsol/Aaron_Peirsol_0002.jpg", a2);
    mobilefacenet(LFW "Aaron_Eckhart/Aaron_Eckhart_0001.jpg", b);
    mobilefacenet(LFW "Serena_Williams/Serena_Williams_0002.jpg", c);
    float same = dot(a1, a2), diff1 = dot(a1, b), diff2 = dot(a2, c);
    print_message("  MobileFaceNet cosine: same person %.3f, different %.3f %.3f\n", same, diff1, diff2);
    assert_true(same > 0.5f);
    assert_true(same > diff1 + 0.2f && same > diff2 + 0.2f);
    /* The aligned face mirrored in place: the batch holds the same two faces swapped,
     * so the summed descriptor stays (up to int8 rounding of the activations). */
    float *aligned = worker->aligned;
    for (int row = 0; row < 3 * 112; row++)
        for (int i = 0, j = 111; i < j; i++, j--) {
            float t = aligned[row * 112 + i];
            aligned[row * 112 + i] = aligned[row * 112 + j];
            aligned[row * 112 + j] = t;
        }
    assert_int_equal(face_mobilefacenet_descriptor(worker, flipped), FACE_OK);
    normalise(flipped);
    print_message("  MobileFaceNet, mirrored face: cosine %.5f\n", dot(flipped, c));
    assert_true(dot(flipped, c) > 0.999f);
}

/* Three live frames and three printed-photo frames of subject 0005. */
static const char *const LIVE[] = {NUAA "live/0005/0005_00_00_01_0.jpg", NUAA "live/0005/0005_00_00_01_299.jpg",
                                   NUAA "live/0005/0005_00_00_01_385.jpg"};
static const char *const SPOOF[] = {NUAA "spoof/0005/0005_00_00_01_247.jpg", NUAA "spoof/0005/0005_00_00_01_8.jpg",
                                    NUAA "spoof/0005/0005_00_01_02_189.jpg"};

/* Mean raw score of model id over three frames. */
static float mean_raw(pad_model_id id, nn_session *s, const char *const *paths) {
    float sum = 0;
    face_result *r = malloc(sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < 3; i++) {
        analyze(paths[i], r);
        size_t len;
        uint8_t *data = file_read_all(paths[i], (size_t)1 << 26, &len);
        assert_non_null(data);
        image_rgb img = {0};
        image_limits lim = {0};
        char err[256];
        assert_int_equal(image_decode(data, len, &lim, 1, &img, err, sizeof err), 0);
        float raw = NAN;
        assert_int_equal(pad_score(id, s, &img, r->box, &raw), 0);
        assert_true(isfinite(raw));
        sum += raw;
        image_rgb_free(&img);
        free(data);
    }
    free(r);
    return sum / 3;
}

static void test_pad_models_on_held_out_subject(void **state) {
    (void)state;
    for (int id = 0; id < PAD_MODELS; id++) {
        char err[512];
        nn_model *m = pad_model_load((pad_model_id)id, "models", err, sizeof err);
        if (!m) fail_msg("%s", err);
        nn_session *s = nn_session_create(m, err, sizeof err);
        assert_non_null(s);
        float live = mean_raw((pad_model_id)id, s, LIVE), spoof = mean_raw((pad_model_id)id, s, SPOOF);
        print_message("  %-17s mean raw live score: live frames %.3f, printed photos %.3f\n",
                      pad_model_name((pad_model_id)id), live, spoof);
        /* bench-pad: fr_liveness separates every subject by a wide margin */
        if (id == PAD_FR_LIVENESS) assert_true(live > spoof + 5.0f);
        nn_session_free(s);
        nn_model_free(m);
    }
}

/* The server's decision for one frame at level HIGH. */
static liveness_verdict server_verdict(liveness_engine *le, const char *path) {
    size_t len;
    uint8_t *data = file_read_all(path, (size_t)1 << 26, &len);
    assert_non_null(data);
    liveness_frame f = {.timestamp_ms = 0, .data = data, .len = len};
    liveness_request rq = {.type = LIVENESS_PASSIVE, .level = LEVEL_HIGH};
    liveness_outcome out;
    liveness_evaluate(le, worker, &rq, &f, 1, &out);
    print_message("  %s: %s (%s)\n", strrchr(path, '/') + 1, liveness_verdict_name(out.verdict), out.reason);
    free(data);
    return out.verdict;
}

static void test_server_verdict_on_held_out_subject(void **state) {
    (void)state;
    char err[512];
    liveness_engine *le = liveness_engine_load("models", err, sizeof err);
    if (!le) fail_msg("%s", err);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(server_verdict(le, LIVE[i]), VERDICT_SUCCESS);
        assert_int_equal(server_verdict(le, SPOOF[i]), VERDICT_SPOOF);
    }
    /* the worker's sessions of the liveness models go with the worker */
    face_worker_free(worker);
    liveness_engine_free(le);
    worker = face_worker_create(engine, err, sizeof err);
    assert_non_null(worker);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobilefacenet_verifies),
        cmocka_unit_test(test_pad_models_on_held_out_subject),
        cmocka_unit_test(test_server_verdict_on_held_out_subject),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
