/* Unit tests for the face pipeline (src/face/pipeline.c) on real images read from
 * ../shared/data (tests run from the repository root): verification ordering on an
 * LFW pair, no face / several faces, the plausibility check, quality factors, the
 * age methods, landmark sanity, rotation search, and the
 * error paths (corrupt data, pixel limit, missing model). One engine is loaded for
 * the whole group; each test uses its own worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "face/geometry.h"
#include "core/file.h"
#include "data_file.h"
#include "face/image.h"
#include "face/pipeline.h"
#include "face/pipeline_internal.h" /* FACE_NORM_MIN */
#include "match/similarity.h"

#define DATA "../shared/data/"
#define LFW DATA "lfw/lfw_deepfunneled/"
#define SAME_A LFW "Abel_Pacheco/Abel_Pacheco_0001.jpg"
#define SAME_B LFW "Abel_Pacheco/Abel_Pacheco_0004.jpg"
#define OTHER LFW "AJ_Cook/AJ_Cook_0001.jpg"
#define NO_FACE DATA "negatives/no_face/skimage__brick.png"
#define MULTI_FACE DATA "photos/sample1.jpg"
#define WEBCAM DATA "spoof/nuaa/live/0001/0001_00_00_01_0.jpg" /* 640x480 */
/* no_face images that fr_detect takes for a face (docs/negatives.md). */
#define FOOLS_DETECTOR_A DATA "negatives/no_face/skimage__retina.jpg"
#define FOOLS_DETECTOR_B DATA "negatives/no_face/skimage__text.png"
#define SMALL_PORTRAIT DATA "documents/specimens/passporteye__0_pass-lva.jpg" /* faintest kept */
#define AGE_ADULT DATA "age/utkface/44_0_0_20170104183723462.jpg.chip.jpg"  /* labelled 44 */

typedef struct {
    face_engine *engine;
    face_worker *worker;
    face_result result;
} fixture;

static int group_setup(void **state)
{
    char err[512];
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    *state = fx;
    fx->engine = face_engine_load("models", err, sizeof err);
    if (!fx->engine) {
        fprintf(stderr, "face_engine_load: %s\n", err);
        return -1;
    }
    fx->worker = face_worker_create(fx->engine, err, sizeof err);
    return fx->worker ? 0 : -1;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    face_worker_free(fx->worker);
    face_engine_free(fx->engine);
    free(fx);
    return 0;
}

/* Analyses a blob with embedding on; returns face_analyze's code. */
static int analyse_blob(fixture *fx, blob b, bool rotation, face_result *r)
{
    char err[256] = "";
    face_options opt = {.want_embedding = true, .rotation_enabled = rotation};
    return face_analyze(fx->worker, b.data, b.len, &opt, r, err, sizeof err);
}

static int analyse_file(fixture *fx, const char *path, face_result *r)
{
    blob b = read_blob(path);
    assert_non_null(b.data);
    int rc = analyse_blob(fx, b, false, r);
    free(b.data);
    return rc;
}

static void test_same_person_scores_above_different(void **state)
{
    fixture *fx = *state;
    static face_result a, b, c;
    assert_int_equal(analyse_file(fx, SAME_A, &a), FACE_OK);
    assert_int_equal(analyse_file(fx, SAME_B, &b), FACE_OK);
    assert_int_equal(analyse_file(fx, OTHER, &c), FACE_OK);
    assert_true(a.faces_found >= 1 && b.faces_found >= 1 && c.faces_found >= 1);
    assert_int_equal(a.embedding_dim, face_engine_embedding_dim(fx->engine));
    float same = embedding_similarity(a.embedding, b.embedding, a.embedding_dim);
    float diff = embedding_similarity(a.embedding, c.embedding, a.embedding_dim);
    assert_true(same > diff + 0.2f);
    assert_true(fabsf(embedding_similarity(a.embedding, a.embedding, a.embedding_dim) - 1) < 1e-4f);
}

/* The accurate mode's embedding (fusion-v2): fr_feature's 512 values, dlib's 128,
 * MobileFaceNet's 192, parts of squared norms the fusion weights, unit length in
 * all; the same person scores above another, and the fr_feature part is the
 * mirrored fast embedding (same direction). */
static void test_accurate_embedding(void **state)
{
    fixture *fx = *state;
    static face_result a, b, c, fast;
    const char *paths[3] = {SAME_A, SAME_B, OTHER};
    face_result *out[3] = {&a, &b, &c};
    char err[256] = "";
    face_options opt = {.want_embedding = true, .accurate = true};
    for (int i = 0; i < 3; i++) {
        blob bl = read_blob(paths[i]);
        assert_non_null(bl.data);
        assert_int_equal(face_analyze(fx->worker, bl.data, bl.len, &opt, out[i], err, sizeof err), FACE_OK);
        free(bl.data);
        assert_true(out[i]->faces_found >= 1);
    }
    int fd = face_engine_embedding_dim(fx->engine);
    assert_int_equal(a.embedding_dim, fd + DLIB_DIM + MFN_DIM);
    assert_int_equal(a.embedding_dim, face_accurate_dim(fx->engine));
    const int start[3] = {0, fd, fd + DLIB_DIM}, end[3] = {fd, fd + DLIB_DIM, fd + DLIB_DIM + MFN_DIM};
    const float weight[3] = {FUSION_W_FEATURE, FUSION_W_DLIB, FUSION_W_MOBILEFACENET};
    for (int p = 0; p < 3; p++) {
        double n = 0;
        for (int i = start[p]; i < end[p]; i++) n += (double)a.embedding[i] * a.embedding[i];
        assert_true(fabs(n - weight[p]) < 1e-4);
    }
    float same = embedding_similarity(a.embedding, b.embedding, a.embedding_dim);
    float diff = embedding_similarity(a.embedding, c.embedding, a.embedding_dim);
    print_message("  accurate: same %.4f, different %.4f\n", same, diff);
    assert_true(same > diff + 0.2f);
    face_options mirrored = {.want_embedding = true, .mirror_embedding = true};
    blob bl = read_blob(SAME_A);
    assert_int_equal(face_analyze(fx->worker, bl.data, bl.len, &mirrored, &fast, err, sizeof err), FACE_OK);
    free(bl.data);
    assert_true(fabsf(embedding_similarity(a.embedding, fast.embedding, fd) / sqrtf(FUSION_W_FEATURE) - 1.0f) < 1e-3f);
}

static void test_no_face(void **state)
{
    fixture *fx = *state;
    face_result *r = &fx->result;
    assert_int_equal(analyse_file(fx, NO_FACE, r), FACE_OK);
    assert_int_equal(r->faces_found, 0);
    assert_true(r->quality < 0);
}

/* What the detector finds on a retina photo and on printed text is not a face to
 * fr_feature: no face, flagged implausible, no quality. */
static void test_implausible_detection_is_no_face(void **state)
{
    fixture *fx = *state;
    face_result *r = &fx->result;
    const char *fools[] = {FOOLS_DETECTOR_A, FOOLS_DETECTOR_B};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(analyse_file(fx, fools[i], r), FACE_OK);
        assert_int_equal(r->faces_found, 0);
        assert_true(r->implausible);
        assert_true(r->embedding_norm > 0 && r->embedding_norm < FACE_NORM_MIN);
        assert_true(r->quality < 0);
    }
    /* A real face, however small and printed, passes, and says by how much. */
    assert_int_equal(analyse_file(fx, SMALL_PORTRAIT, r), FACE_OK);
    assert_true(r->faces_found >= 1 && !r->implausible);
    assert_true(r->embedding_norm > FACE_NORM_MIN);
    assert_int_equal(analyse_file(fx, NO_FACE, r), FACE_OK);
    assert_false(r->implausible); /* nothing detected at all */
}

/* Quality is its factors combined: each in [0, 1], and a good LFW face has every
 * factor high and a quality above the spec's 100. */
static void test_quality_factors(void **state)
{
    fixture *fx = *state;
    face_result *r = &fx->result;
    assert_int_equal(analyse_file(fx, SAME_A, r), FACE_OK);
    for (int k = 0; k < FACE_QF_COUNT; k++)
        assert_true(r->quality_factors[k] >= 0 && r->quality_factors[k] <= 1);
    assert_true(r->quality_factors[FACE_QF_DETECTION] > 0.9f);
    assert_true(r->quality_factors[FACE_QF_LIKENESS] > 0.5f);
    assert_true(r->quality > 100 && r->quality <= 300);
}

/* Age: the method in use and the superseded one read the same face; both near the
 * label of an adult, and the calibration is what age.c says. */
static void test_age_methods(void **state)
{
    fixture *fx = *state;
    static face_result now, before;
    blob b = read_blob(AGE_ADULT);
    assert_non_null(b.data);
    char err[256];
    face_options opt = {.want_embedding = true, .want_age = true};
    assert_int_equal(face_analyze(fx->worker, b.data, b.len, &opt, &now, err, sizeof err), FACE_OK);
    opt.age_baseline = true;
    assert_int_equal(face_analyze(fx->worker, b.data, b.len, &opt, &before, err, sizeof err), FACE_OK);
    free(b.data);
    assert_true(now.has_age && before.has_age);
    assert_true(fabsf(now.age - 44) < 10 && fabsf(before.age - 44) < 10);
    assert_true(now.age_raw[0] != before.age_raw[0]); /* other context, other input */
    assert_true(before.age_raw[1] == 0);                /* the old method: faceres-deep only */
    assert_true(fabsf(now.age_raw[1] - 44) < 15);       /* face-api's own estimate, in years */
    float c[FACE_AGE_TERMS], d = now.age_raw[0], f = now.age_raw[1];
    face_age_calibration(c);
    assert_true(fabsf(now.age - (c[0] + c[1] * d + c[2] * d * d + c[3] * f)) < 1e-3f);
}

static void test_multi_face_and_landmarks(void **state)
{
    fixture *fx = *state;
    face_result *r = &fx->result;
    assert_int_equal(analyse_file(fx, MULTI_FACE, r), FACE_OK);
    assert_true(r->faces_found > 1);
    assert_true(r->image_width > 1000 && r->image_height > 1000);
    const float *bx = r->box, *e = r->eyes;
    for (int i = 0; i < 2; i++) {
        assert_true(e[2 * i] > bx[0] && e[2 * i] < bx[0] + bx[2]);
        assert_true(e[2 * i + 1] > bx[1] && e[2 * i + 1] < bx[1] + bx[3]);
    }
    assert_true(e[0] < e[2]); /* x1 is the eye on the image left */
    assert_true(r->detection_score > 0.5f && r->detection_score <= 1.0f);
}

/* A 90-degree clockwise copy must be found at rotation 270, with the eyes mapped
 * back to the rotated image's own pixels: upright (x, y) is (H - 1 - y, x) there. */
static void test_rotation_search(void **state)
{
    fixture *fx = *state;
    static face_result up, rot;
    blob b = read_blob(SAME_A);
    assert_int_equal(analyse_blob(fx, b, false, &up), FACE_OK);
    image_rgb img = {0}, turned = {0};
    assert_int_equal(image_decode(b.data, b.len, NULL, 1, &img, NULL, 0), 0);
    assert_int_equal(image_rgb_rotate(&img, 90, &turned), 0);
    blob t = {NULL, 0};
    assert_int_equal(image_encode_jpeg(&turned, 95, &t.data, &t.len), 0);
    assert_int_equal(analyse_blob(fx, t, true, &rot), FACE_OK);
    assert_true(rot.faces_found >= 1);
    assert_int_equal(rot.rotation, 270);
    int H = img.height;
    assert_true(fabsf(rot.eyes[0] - (H - 1 - up.eyes[1])) < 6);
    assert_true(fabsf(rot.eyes[1] - up.eyes[0]) < 6);
    assert_true(embedding_similarity(up.embedding, rot.embedding, up.embedding_dim) > 0.8f);
    free(t.data);
    free(b.data);
    image_rgb_free(&img);
    image_rgb_free(&turned);
}

static void test_corrupt_image(void **state)
{
    fixture *fx = *state;
    blob b = read_blob(SAME_A);
    char err[256] = "";
    face_options opt = {.want_embedding = true};
    assert_int_equal(face_analyze(fx->worker, b.data, b.len / 2, &opt, &fx->result, err, sizeof err),
                     FACE_ERR_IMAGE);
    assert_true(strlen(err) > 0);
    uint8_t junk[64] = "definitely not an image";
    assert_int_equal(face_analyze(fx->worker, junk, sizeof junk, &opt, &fx->result, err, sizeof err),
                     FACE_ERR_IMAGE);
    free(b.data);
}

static void test_pixel_limit(void **state)
{
    fixture *fx = *state;
    blob b = read_blob(SAME_A);
    char err[256] = "";
    face_options opt = {.want_embedding = true, .max_pixels = 10000};
    assert_int_equal(face_analyze(fx->worker, b.data, b.len, &opt, &fx->result, err, sizeof err),
                     FACE_ERR_TOO_LARGE);
    free(b.data);
}

/* The capture stream's tracker: on a webcam frame the same face as the analysis
 * (box and eyes), without quality or embedding; no face; the same input errors. */
static void test_track(void **state)
{
    fixture *fx = *state;
    blob b = read_blob(WEBCAM);
    assert_non_null(b.data);
    face_result *full = calloc(1, sizeof *full);
    char err[256] = "";
    face_options opt = {0};
    assert_int_equal(face_analyze(fx->worker, b.data, b.len, &opt, full, err, sizeof err), FACE_OK);
    assert_int_equal(face_track(fx->worker, b.data, b.len, 0, &fx->result, err, sizeof err), FACE_OK);
    face_result *t = &fx->result;
    assert_int_equal(t->faces_found, full->faces_found);
    assert_int_equal(t->image_width, 640);
    assert_int_equal(t->image_height, 480);
    float eye_dist = full->eyes[2] - full->eyes[0];
    for (int i = 0; i < 4; i++) {
        assert_true(fabsf(t->box[i] - full->box[i]) < 0.05f * full->box[2]);
        assert_true(fabsf(t->eyes[i] - full->eyes[i]) < 0.1f * eye_dist);
    }
    assert_true(t->quality < 0 && t->embedding_dim == 0);
    free(b.data);
    b = read_blob(NO_FACE);
    assert_int_equal(face_track(fx->worker, b.data, b.len, 0, t, err, sizeof err), FACE_OK);
    assert_int_equal(t->faces_found, 0);
    free(b.data);
    b = read_blob(WEBCAM);
    assert_int_equal(face_track(fx->worker, b.data, b.len / 2, 0, t, err, sizeof err), FACE_ERR_IMAGE);
    assert_int_equal(face_track(fx->worker, b.data, b.len, 1000, t, err, sizeof err), FACE_ERR_TOO_LARGE);
    free(b.data);
    free(full);
}

/* A worker runs another model (liveness) in its own arena: the session is made once,
 * answers as a session of its own would, and leaves face analysis unchanged. */
static void test_worker_session(void **state)
{
    fixture *fx = *state;
    char err[256];
    static face_result before, after;
    nn_model *m = nn_model_load("models/faceplugin/fr_liveness.onnx", err, sizeof err);
    assert_non_null(m);
    face_worker *w = face_worker_create(fx->engine, err, sizeof err);
    assert_non_null(w);
    blob b = read_blob(SAME_A);
    assert_non_null(b.data);
    face_options opt = {.want_embedding = true};
    assert_int_equal(face_analyze(w, b.data, b.len, &opt, &before, err, sizeof err), FACE_OK);
    nn_session *s = face_worker_session(w, m);
    assert_non_null(s);
    assert_ptr_equal(face_worker_session(w, m), s);
    nn_session *own = nn_session_create(m, err, sizeof err);
    assert_non_null(own);
    size_t n = 3 * 128 * 128;
    for (size_t i = 0; i < n; i++) nn_session_input(s, 0)[i] = nn_session_input(own, 0)[i] = (float)(i % 255);
    assert_int_equal(nn_run(s), 0);
    assert_int_equal(nn_run(own), 0);
    assert_memory_equal(nn_session_output(s, 0), nn_session_output(own, 0), 3 * sizeof(float));
    assert_int_equal(face_analyze(w, b.data, b.len, &opt, &after, err, sizeof err), FACE_OK);
    assert_memory_equal(after.embedding, before.embedding, sizeof(float) * (size_t)before.embedding_dim);
    free(b.data);
    nn_session_free(own);
    face_worker_free(w); /* before the model its extra session uses */
    nn_model_free(m);
}

static void test_missing_model(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(face_engine_load("/nonexistent-models", err, sizeof err));
    assert_non_null(strstr(err, "missing"));
    assert_non_null(strstr(err, "fr_detect.onnx"));
}

/* The accurate mode's MobileFaceNet: a models folder without it does not load (the
 * message names the file), and another TFLite model in its place is refused by its
 * shapes, never run on the wrong input. */
static void test_mobilefacenet_missing_or_wrong(void **state)
{
    (void)state;
    char dir[] = "/tmp/bioserver-models-XXXXXX", path[512], target[512], err[512] = "";
    assert_non_null(mkdtemp(dir));
    const char *const linked[] = {"faceplugin", "human", "faceapi"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, linked[i]);
        assert_non_null(realpath("models", target));
        snprintf(target + strlen(target), sizeof target - strlen(target), "/%s", linked[i]);
        assert_int_equal(symlink(target, path), 0);
    }
    assert_null(face_engine_load(dir, err, sizeof err));
    assert_non_null(strstr(err, "missing"));
    assert_non_null(strstr(err, "MobileFaceNet.tflite"));
    snprintf(path, sizeof path, "%s/expo", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/expo/MobileFaceNet.tflite", dir);
    assert_non_null(realpath("models/expo/FaceAntiSpoofing.tflite", target));
    assert_int_equal(symlink(target, path), 0);
    assert_null(face_engine_load(dir, err, sizeof err));
    print_message("  %s\n", err);
    assert_non_null(strstr(err, "MobileFaceNet.tflite: expected input"));
    unlink(path);
    snprintf(path, sizeof path, "%s/expo", dir);
    rmdir(path);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, linked[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_person_scores_above_different),
        cmocka_unit_test(test_accurate_embedding),
        cmocka_unit_test(test_no_face),
        cmocka_unit_test(test_implausible_detection_is_no_face),
        cmocka_unit_test(test_quality_factors),
        cmocka_unit_test(test_age_methods),
        cmocka_unit_test(test_multi_face_and_landmarks),
        cmocka_unit_test(test_rotation_search),
        cmocka_unit_test(test_corrupt_image),
        cmocka_unit_test(test_pixel_limit),
        cmocka_unit_test(test_worker_session),
        cmocka_unit_test(test_track),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_mobilefacenet_missing_or_wrong),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
