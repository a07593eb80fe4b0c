/*
 * test_nn.c - the nn runtime against reference outputs and bad inputs.
 *
 * Fixtures (build/fixtures/nn/, made at test time by scripts/make_nn_fixtures.py
 * from ../shared/data, never committed) hold an
 * input image, the recipe turning its pixels into the model input, and the
 * outputs OpenCV DNN (ONNX) or a float64 numpy interpreter (TF.js, TFLite) computed.
 * Run from the repository root: models are read from models/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/nn.h"
#include "nn/nn_internal.h"
#include "onnx/onnx.pb-c.h"

#define FIXTURES "build/fixtures/nn/" /* made by scripts/make_nn_fixtures.py (make test) */

typedef struct {
    char model[256], image[256], layout[8];
    double scale, offset;
    int n_out;
    size_t out_len[16];
    double tol[16];
} recipe;

static int read_recipe(const char *name, recipe *r)
{
    char path[512], key[32];
    snprintf(path, sizeof path, FIXTURES "%s.txt", name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    memset(r, 0, sizeof *r);
    while (fscanf(f, "%31s", key) == 1) {
        if (!strcmp(key, "model") && fscanf(f, "%255s", r->model) != 1) break;
        if (!strcmp(key, "image") && fscanf(f, "%255s", r->image) != 1) break;
        if (!strcmp(key, "layout") && fscanf(f, "%7s", r->layout) != 1) break;
        if (!strcmp(key, "scale") && fscanf(f, "%lf", &r->scale) != 1) break;
        if (!strcmp(key, "offset") && fscanf(f, "%lf", &r->offset) != 1) break;
        if (!strcmp(key, "output") && r->n_out < 16) {
            if (fscanf(f, "%zu %lf", &r->out_len[r->n_out], &r->tol[r->n_out]) != 2) break;
            r->n_out++;
        }
    }
    fclose(f);
    return r->model[0] && r->image[0] && r->n_out ? 0 : -1;
}

/* Decodes the fixture PNG with `channels` channels (1 grey, 3 RGB). */
static unsigned char *read_png(const char *file, int channels, int *w, int *h)
{
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", file);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) { free(buf); png_image_free(&img); return NULL; }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static size_t shape_size(nn_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.rank; i++) n *= (size_t)s.dims[i];
    return n;
}

static void fill_input(nn_session *s, const nn_model *m, const recipe *r)
{
    nn_shape in = nn_model_input_shape(m, 0);
    assert_int_equal(in.rank, 4);
    int nchw = !strcmp(r->layout, "nchw");
    int c = nchw ? in.dims[1] : in.dims[3], h = nchw ? in.dims[2] : in.dims[1], w = nchw ? in.dims[3] : in.dims[2];
    int iw, ih;
    unsigned char *px = read_png(r->image, c, &iw, &ih);
    assert_non_null(px);
    assert_int_equal(iw, w);
    assert_int_equal(ih, h);
    float *x = nn_session_input(s, 0);
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int k = 0; k < c; k++) {
                float v = (float)(px[((size_t)y * w + xx) * c + k] * r->scale + r->offset);
                if (nchw) x[((size_t)k * h + y) * w + xx] = v;
                else x[((size_t)y * w + xx) * c + k] = v;
            }
    free(px);
}

/* Loads, runs and compares one fixture; prints the error figures. */
static void check_fixture(const char *name)
{
    recipe r;
    assert_int_equal(read_recipe(name, &r), 0);
    char err[512], path[512];
    nn_model *m = nn_model_load(r.model, err, sizeof err);
    if (!m) fail_msg("%s: %s", name, err);
    assert_int_equal(nn_model_output_count(m), r.n_out);
    nn_session *s = nn_session_create(m, err, sizeof err);
    if (!s) fail_msg("%s: %s", name, err);
    fill_input(s, m, &r);
    assert_int_equal(nn_run(s), 0);

    snprintf(path, sizeof path, FIXTURES "%s.out", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    for (int o = 0; o < r.n_out; o++) {
        assert_int_equal(shape_size(nn_model_output_shape(m, o)), r.out_len[o]);
        float *want = malloc(r.out_len[o] * sizeof *want);
        assert_non_null(want);
        assert_int_equal(fread(want, sizeof *want, r.out_len[o], f), r.out_len[o]);
        const float *got = nn_session_output(s, o);
        double maxabs = 0, dot = 0, ng = 0, nw = 0;
        for (size_t i = 0; i < r.out_len[o]; i++) {
            double d = fabs((double)got[i] - want[i]);
            if (!(d <= maxabs)) maxabs = d;   /* NaN counts as a failure */
            dot += (double)got[i] * want[i];
            ng += (double)got[i] * got[i];
            nw += (double)want[i] * want[i];
        }
        double cosine = ng > 0 && nw > 0 ? dot / sqrt(ng * nw) : (ng == nw ? 1.0 : 0.0);
        print_message("  %-15s output %d (%zu values): max abs err %.3g (tol %.3g), cosine %.7f\n",
                      name, o, r.out_len[o], maxabs, r.tol[o], cosine);
        if (!(maxabs <= r.tol[o])) fail_msg("%s output %d: max abs error %g > %g", name, o, maxabs, r.tol[o]);
        if (r.out_len[o] >= 4 && !(cosine >= 0.9999)) fail_msg("%s output %d: cosine %f", name, o, cosine);
        free(want);
    }
    fclose(f);
    nn_session_free(s);
    nn_model_free(m);
}

#define FIXTURE_TEST(fn, name) static void fn(void **state) { (void)state; check_fixture(name); }
FIXTURE_TEST(test_fr_detect, "fr_detect")
FIXTURE_TEST(test_fr_landmark, "fr_landmark")
FIXTURE_TEST(test_fr_feature, "fr_feature")
FIXTURE_TEST(test_fr_liveness, "fr_liveness")
FIXTURE_TEST(test_fr_age, "fr_age")
FIXTURE_TEST(test_blazeface_back, "blazeface-back")
FIXTURE_TEST(test_facemesh, "facemesh")
FIXTURE_TEST(test_faceres_deep, "faceres-deep")
FIXTURE_TEST(test_mobilefacenet, "mobilefacenet")
FIXTURE_TEST(test_tflite_mobilefacenet, "MobileFaceNet")
FIXTURE_TEST(test_tflite_face_anti_spoofing, "FaceAntiSpoofing")

/* ---- int8 convolutions (nn_model_use_int8) ------------------------------ */

/* Per output: the largest difference from the fp32 reference and the smallest
 * cosine with it: what was measured on these fixtures, with some room. The
 * detector's scores moved by 0.020 and its boxes by 0.023; the landmarks by 0.0013
 * (crop widths); the embedding's cosine was 0.9982, faceres-deep's 0.9966. */
typedef struct {
    const char *name;
    double tol[3], min_cosine[3];
} int8_case;

static const int8_case int8_cases[] = {
    {"fr_detect", {0.05, 0.05}, {0.9999, 0.9999}},
    {"fr_landmark", {0.005}, {0.99999}},
    {"fr_feature", {0.06}, {0.995}},
    {"fr_liveness", {0.6}, {0.98}},
    {"faceres-deep", {0.005, 0.2, 0.005}, {0.999, 0.99, 0.999}},
};

static double cosine_of(const float *a, const float *b, size_t n, double *maxabs)
{
    double dot = 0, na = 0, nb = 0;
    *maxabs = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= *maxabs)) *maxabs = d;   /* NaN counts as a failure */
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return na > 0 && nb > 0 ? dot / sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
}

/* The int8 model against the same model in fp32, on a real face. */
static void check_int8(const int8_case *c)
{
    recipe r;
    assert_int_equal(read_recipe(c->name, &r), 0);
    char err[512];
    nn_model *fp = nn_model_load(r.model, err, sizeof err), *q = nn_model_load(r.model, err, sizeof err);
    if (!fp || !q) fail_msg("%s: %s", c->name, err);
    int converted = nn_model_use_int8(q, err, sizeof err);
    print_message("  %-15s %d convolutions in int8, weights %zu -> %zu bytes\n", c->name, converted,
                  nn_model_weight_bytes(fp), nn_model_weight_bytes(q));
    assert_true(converted > 0);
    assert_true(nn_model_weight_bytes(q) < nn_model_weight_bytes(fp));
    nn_session *a = nn_session_create(fp, err, sizeof err), *b = nn_session_create(q, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    fill_input(a, fp, &r);
    fill_input(b, q, &r);
    assert_int_equal(nn_run(a), 0);
    assert_int_equal(nn_run(b), 0);
    for (int o = 0; o < r.n_out && o < 3; o++) {
        double maxabs, cos = cosine_of(nn_session_output(a, o), nn_session_output(b, o), r.out_len[o], &maxabs);
        print_message("  %-15s output %d: int8 vs fp32 max abs diff %.3g (tol %.3g), cosine %.6f (min %.5f)\n",
                      c->name, o, maxabs, c->tol[o], cos, c->min_cosine[o]);
        if (!(maxabs <= c->tol[o])) fail_msg("%s output %d: int8 differs by %g > %g", c->name, o, maxabs, c->tol[o]);
        if (r.out_len[o] >= 4 && !(cos >= c->min_cosine[o]))
            fail_msg("%s output %d: int8 cosine %f < %f", c->name, o, cos, c->min_cosine[o]);
    }
    nn_session_free(a);
    nn_session_free(b);
    nn_model_free(fp);
    nn_model_free(q);
}

static void test_int8_close_to_fp32(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof int8_cases / sizeof int8_cases[0]; i++) check_int8(&int8_cases[i]);
}

/* The runtime's own steps (nn_tuning) against the plain ones, on real faces, in fp32
 * and in int8 models: the model is loaded and its session made with *on = 0, then
 * again with *on = 1; both run twice (another input the second time: nothing may
 * depend on what a run left) and every output must be the same to the bit. count,
 * when not NULL, is told the second model (what it did differently) and says how
 * many nodes that concerns. */
static void check_same_outputs(const char *name, bool int8, int *on, int (*count)(const nn_model *),
                               const char *what)
{
    recipe r;
    assert_int_equal(read_recipe(name, &r), 0);
    char err[512];
    nn_model *m[2];
    nn_session *s[2];
    for (int k = 0; k < 2; k++) {
        *on = k;
        if (!(m[k] = nn_model_load(r.model, err, sizeof err))) fail_msg("%s: %s", name, err);
        if (int8) assert_true(nn_model_use_int8(m[k], err, sizeof err) > 0);
        if (!(s[k] = nn_session_create(m[k], err, sizeof err))) fail_msg("%s: %s", name, err);
    }
    *on = 1;
    if (count) {
        int n = count(m[1]);
        print_message("  %-15s %s: %d %s\n", name, int8 ? "int8" : "fp32", n, what);
        if (__builtin_cpu_supports("avx512f")) assert_true(n > 0);
        assert_int_equal(count(m[0]), 0);
    }
    for (int run = 0; run < 2; run++) {
        for (int k = 0; k < 2; k++) {
            fill_input(s[k], m[k], &r);
            if (run) /* the top rows darker */
                for (size_t i = 0; i < 64; i++) nn_session_input(s[k], 0)[i] *= 0.5f;
            assert_int_equal(nn_run(s[k]), 0);
        }
        for (int o = 0; o < r.n_out; o++)
            assert_memory_equal(nn_session_output(s[0], o), nn_session_output(s[1], o), r.out_len[o] * sizeof(float));
    }
    for (int k = 0; k < 2; k++) {
        nn_session_free(s[k]);
        nn_model_free(m[k]);
    }
}

static const char *const own_step_models[] = {"fr_detect", "fr_landmark", "fr_feature", "fr_liveness",
                                              "MobileFaceNet", "mobilefacenet", "blazeface-back", "facemesh"};

static int depthwise_nodes(const nn_model *m)
{
    int n = 0;
    for (int i = 0; i < m->g.n_nodes; i++) n += m->dw[i] != NULL;
    return n;
}

/* depthwise.c's convolutions give XNNPACK's output to the bit (the same chain of
 * multiply-adds per value); each model has some. */
static void test_depthwise_same_as_xnnpack(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof own_step_models / sizeof own_step_models[0]; i++) {
        check_same_outputs(own_step_models[i], false, &nn_tuning.own_depthwise, depthwise_nodes,
                           "depthwise convolutions on depthwise.c");
        check_same_outputs(own_step_models[i], true, &nn_tuning.own_depthwise, depthwise_nodes,
                           "depthwise convolutions on depthwise.c");
    }
}

/* An int8 step taking its input's range from the depthwise or int8 step that wrote
 * it gives exactly what measuring it gives (and the ranges are refreshed every run). */
static void test_int8_shared_ranges_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof own_step_models / sizeof own_step_models[0]; i++)
        check_same_outputs(own_step_models[i], true, &nn_tuning.shared_ranges, NULL, NULL);
}

static int nodes_in_place(const nn_model *m)
{
    int n = 0;
    for (int i = 0; i < m->g.n_nodes; i++) n += m->g.tensors[m->g.nodes[i].out].alias == m->g.nodes[i].in[0] &&
                                             m->g.nodes[i].op != NN_OP_RESHAPE;
    return n;
}

/* PReLUs writing over their input give the values they gave into a buffer of their
 * own, in fp32 and int8 models (the models with PReLUs). */
static void test_in_place_exact(void **state)
{
    (void)state;
    static const char *models[] = {"fr_feature", "fr_liveness", "MobileFaceNet"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        check_same_outputs(models[i], false, &nn_tuning.in_place, nodes_in_place, "PReLUs in place");
        check_same_outputs(models[i], true, &nn_tuning.in_place, nodes_in_place, "PReLUs in place");
    }
}

/* Every convolution with groups 1 converts and drops its fp32 weights; depthwise
 * ones keep theirs (fp32 on XNNPACK); a second call converts nothing more; NULL is
 * no model. */
static void test_int8_what_converts(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(nn_model_use_int8(NULL, err, sizeof err), 0);
    nn_model *m = nn_model_load("models/faceplugin/fr_landmark.onnx", err, sizeof err);
    assert_non_null(m);
    int first = nn_model_use_int8(m, err, sizeof err);
    assert_true(first > 0);
    assert_int_equal(nn_model_use_int8(m, err, sizeof err), 0);
    int dense = 0;
    for (int i = 0; i < m->g.n_nodes; i++)
        if (m->g.nodes[i].op == NN_OP_CONV && m->g.nodes[i].conv.groups == 1) dense++;
    assert_int_equal(first, dense);
    for (int i = 0; i < m->g.n_nodes; i++)
        if (m->int8[i]) assert_null(m->g.nodes[i].conv.weights); /* only the int8 copy is kept */
        else if (m->g.nodes[i].op == NN_OP_CONV) assert_true(m->g.nodes[i].conv.weights || m->dw[i]);
    nn_model_free(m);
}
/* face-api's weights manifests, graph built by faceapi_load.c; reference = face-api on TF.js */
FIXTURE_TEST(test_faceapi_age_gender, "faceapi-age_gender")
FIXTURE_TEST(test_faceapi_recognition, "faceapi-recognition")

/* ---- API behaviour ---------------------------------------------------- */

static void test_api_shapes_and_names(void **state)
{
    (void)state;
    char err[256];
    nn_model *m = nn_model_load("models/faceplugin/fr_detect.onnx", err, sizeof err);
    assert_non_null(m);
    assert_int_equal(nn_model_input_count(m), 1);
    nn_shape in = nn_model_input_shape(m, 0);
    assert_int_equal(in.rank, 4);
    assert_int_equal(in.dims[1], 3);
    assert_int_equal(in.dims[2], 240);
    assert_int_equal(in.dims[3], 320);
    assert_int_equal(nn_model_output_index(m, "boxes"), 1);
    assert_int_equal(nn_model_output_index(m, "scores"), 0);
    assert_int_equal(nn_model_output_index(m, "nope"), -1);
    nn_shape b = nn_model_output_shape(m, 1);
    assert_int_equal(b.rank, 3);
    assert_int_equal(b.dims[1], 4420);
    assert_int_equal(b.dims[2], 4);
    assert_null(nn_session_input(NULL, 0));
    assert_true(nn_run(NULL) < 0);
    nn_model_free(m);
}

/* Two sessions of one model are independent and agree. */
static void test_two_sessions_agree(void **state)
{
    (void)state;
    char err[256];
    nn_model *m = nn_model_load("models/faceplugin/fr_landmark.onnx", err, sizeof err);
    assert_non_null(m);
    nn_session *a = nn_session_create(m, err, sizeof err), *b = nn_session_create(m, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    size_t n = shape_size(nn_model_input_shape(m, 0));
    for (size_t i = 0; i < n; i++) nn_session_input(a, 0)[i] = nn_session_input(b, 0)[i] = (float)(i % 97) / 97.0f;
    assert_int_equal(nn_run(a), 0);
    assert_int_equal(nn_run(b), 0);
    assert_int_equal(nn_run(a), 0);   /* running twice gives the same answer */
    assert_memory_equal(nn_session_output(a, 0), nn_session_output(b, 0), 136 * sizeof(float));
    nn_session_free(a);
    nn_session_free(b);
    nn_model_free(m);
}

/* Writing fr_detect's input in NHWC where nn_session_input_nhwc says gives exactly
 * the outputs of the NCHW input, on every run (the skipped transpose stays skipped). */
static void test_nhwc_input_skips_the_transpose(void **state)
{
    (void)state;
    char err[256];
    nn_model *m = nn_model_load("models/faceplugin/fr_detect.onnx", err, sizeof err);
    if (!m) fail_msg("%s", err);
    nn_session *a = nn_session_create(m, err, sizeof err), *b = nn_session_create(m, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    nn_shape in = nn_model_input_shape(m, 0);
    int c = in.dims[1], h = in.dims[2], w = in.dims[3];
    float *nchw = nn_session_input(a, 0), *nhwc = nn_session_input_nhwc(b, 0);
    assert_non_null(nhwc);
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    float v = (float)((x * 7 + y * 13 + k * 29 + round * 5) % 255 - 127) / 128.0f;
                    nchw[((size_t)k * h + y) * w + x] = v;
                    nhwc[((size_t)y * w + x) * c + k] = v;
                }
        assert_int_equal(nn_run(a), 0);
        assert_int_equal(nn_run(b), 0);
        for (int o = 0; o < nn_model_output_count(m); o++)
            assert_memory_equal(nn_session_output(a, o), nn_session_output(b, o),
                                shape_size(nn_model_output_shape(m, o)) * sizeof(float));
    }
    nn_session_free(a);
    nn_session_free(b);
    nn_model_free(m);
}

/* ---- shared weights and arenas ------------------------------------------ */

static void fill_pattern(nn_session *s, const nn_model *m, int seed)
{
    size_t n = shape_size(nn_model_input_shape(m, 0));
    float *x = nn_session_input(s, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7 + (size_t)seed * 13) % 101) / 101.0f - 0.5f;
}

static size_t output_bytes(const nn_model *m) { return shape_size(nn_model_output_shape(m, 0)) * sizeof(float); }

/* A second session keeps no copy of the packed weights, yet computes exactly what
 * the first does, also after the first (whose blocks the model adopted) is gone. */
static void test_sessions_share_packed_weights(void **state)
{
    (void)state;
    char err[256];
    nn_model *m = nn_model_load("models/faceplugin/fr_feature.onnx", err, sizeof err);
    assert_non_null(m);
    nn_session *a = nn_session_create(m, err, sizeof err), *b = nn_session_create(m, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    print_message("  fr_feature: weights %zu bytes, second session shares %zu\n", nn_model_weight_bytes(m),
                  nn_session_shared_bytes(b));
    assert_int_equal(nn_session_shared_bytes(a), 0);
    assert_true(nn_session_shared_bytes(b) >= nn_model_weight_bytes(m) * 9 / 10);
    fill_pattern(a, m, 1);
    fill_pattern(b, m, 1);
    assert_int_equal(nn_run(a), 0);
    assert_int_equal(nn_run(b), 0);
    size_t bytes = output_bytes(m);
    float *want = malloc(bytes);
    assert_non_null(want);
    memcpy(want, nn_session_output(a, 0), bytes);
    assert_memory_equal(nn_session_output(b, 0), want, bytes);
    nn_session_free(a);
    nn_session *c = nn_session_create(m, err, sizeof err);
    assert_non_null(c);
    assert_true(nn_session_shared_bytes(c) >= nn_model_weight_bytes(m) * 9 / 10);
    fill_pattern(c, m, 1);
    assert_int_equal(nn_run(b), 0);
    assert_int_equal(nn_run(c), 0);
    assert_memory_equal(nn_session_output(b, 0), want, bytes);
    assert_memory_equal(nn_session_output(c, 0), want, bytes);
    free(want);
    nn_session_free(b);
    nn_session_free(c);
    nn_model_free(m);
}

typedef struct {
    const nn_model *m;
    const float *want; /* per seed, output_bytes(m) each */
    int failures;
} share_job;

#define SHARE_SEEDS 4
#define SHARE_ROUNDS 25

static void *run_shared(void *arg)
{
    share_job *j = arg;
    char err[256];
    nn_session *s = nn_session_create(j->m, err, sizeof err);
    size_t n = output_bytes(j->m) / sizeof(float);
    for (int r = 0; s && r < SHARE_ROUNDS; r++) {
        int seed = r % SHARE_SEEDS;
        fill_pattern(s, j->m, seed);
        if (nn_run(s) != 0 || memcmp(nn_session_output(s, 0), j->want + (size_t)seed * n, n * sizeof(float)))
            j->failures++;
    }
    if (!s) j->failures = SHARE_ROUNDS;
    nn_session_free(s);
    return NULL;
}

/* Threads running sessions that share weights get the single-thread answers, also
 * when the model's int8 kernels and weights are shared. */
static void check_shared_across_threads(bool int8)
{
    char err[256];
    nn_model *m = nn_model_load("models/faceplugin/fr_landmark.onnx", err, sizeof err);
    assert_non_null(m);
    if (int8) assert_true(nn_model_use_int8(m, err, sizeof err) > 0);
    nn_session *ref = nn_session_create(m, err, sizeof err);
    assert_non_null(ref);
    size_t n = output_bytes(m) / sizeof(float);
    float *want = malloc(SHARE_SEEDS * n * sizeof(float));
    assert_non_null(want);
    for (int seed = 0; seed < SHARE_SEEDS; seed++) {
        fill_pattern(ref, m, seed);
        assert_int_equal(nn_run(ref), 0);
        memcpy(want + (size_t)seed * n, nn_session_output(ref, 0), n * sizeof(float));
    }
    share_job jobs[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (share_job){m, want, 0};
        assert_int_equal(pthread_create(&t[i], NULL, run_shared, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    free(want);
    nn_session_free(ref);
    nn_model_free(m);
}

static void test_shared_weights_across_threads(void **state)
{
    (void)state;
    check_shared_across_threads(false);
}

static void test_int8_shared_across_threads(void **state)
{
    (void)state;
    check_shared_across_threads(true);
}

static bool inside(const void *p, const char *arena, size_t bytes)
{
    return (const char *)p >= arena && (const char *)p < arena + bytes;
}

/* Sessions of two models in one arena, run in turn, answer as with their own. */
static void test_sessions_share_an_arena(void **state)
{
    (void)state;
    char err[256];
    nn_model *lm = nn_model_load("models/faceplugin/fr_landmark.onnx", err, sizeof err);
    nn_model *ft = nn_model_load("models/faceplugin/fr_feature.onnx", err, sizeof err);
    assert_non_null(lm);
    assert_non_null(ft);
    const nn_model *both[] = {lm, NULL, ft};
    char *arena = nn_arena_for(both, 3);
    assert_non_null(arena);
    size_t bytes = nn_model_arena_bytes(ft) > nn_model_arena_bytes(lm) ? nn_model_arena_bytes(ft)
                                                                        : nn_model_arena_bytes(lm);
    nn_session *lm_own = nn_session_create(lm, err, sizeof err), *ft_own = nn_session_create(ft, err, sizeof err);
    nn_session *lm_in = nn_session_create_in(lm, arena, err, sizeof err);
    nn_session *ft_in = nn_session_create_in(ft, arena, err, sizeof err);
    assert_non_null(lm_own);
    assert_non_null(ft_own);
    assert_non_null(lm_in);
    assert_non_null(ft_in);
    assert_true(inside(nn_session_input(lm_in, 0), arena, bytes));
    assert_true(inside(nn_session_input(ft_in, 0), arena, bytes));
    assert_true(inside(nn_session_output(ft_in, 0), arena, bytes));
    for (int round = 0; round < 3; round++) {
        fill_pattern(lm_own, lm, round);
        fill_pattern(ft_own, ft, round);
        assert_int_equal(nn_run(lm_own), 0);
        assert_int_equal(nn_run(ft_own), 0);
        fill_pattern(lm_in, lm, round);
        assert_int_equal(nn_run(lm_in), 0);
        assert_memory_equal(nn_session_output(lm_in, 0), nn_session_output(lm_own, 0), output_bytes(lm));
        fill_pattern(ft_in, ft, round);
        assert_int_equal(nn_run(ft_in), 0);
        assert_memory_equal(nn_session_output(ft_in, 0), nn_session_output(ft_own, 0), output_bytes(ft));
    }
    nn_session_free(lm_in);
    nn_session_free(ft_in);
    nn_session_free(lm_own);
    nn_session_free(ft_own);
    free(arena);
    nn_model_free(lm);
    nn_model_free(ft);
}

/* ---- failures --------------------------------------------------------- */

static void expect_load_error(const char *path, const char *needle)
{
    char err[512] = "";
    nn_model *m = nn_model_load(path, err, sizeof err);
    assert_null(m);
    print_message("  %s -> %s\n", path, err);
    if (!strstr(err, needle)) fail_msg("error for %s is \"%s\", expected it to mention \"%s\"", path, err, needle);
}

static void copy_prefix(const char *from, const char *to, double fraction)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    long keep = (long)(n * fraction);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, in), (size_t)n);
    assert_int_equal(fwrite(buf, 1, (size_t)keep, out), (size_t)keep);
    free(buf);
    fclose(in);
    fclose(out);
}

static void test_missing_file(void **state)
{
    (void)state;
    expect_load_error("/tmp/nn-test-does-not-exist.onnx", "nn-test-does-not-exist.onnx");
    expect_load_error("/tmp/nn-test-does-not-exist.json", "nn-test-does-not-exist.json");
    char err[8];
    assert_null(nn_model_load(NULL, err, sizeof err));
}

static void test_truncated_onnx(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/nn-test-trunc-%d.onnx", (int)getpid());
    copy_prefix("models/faceplugin/fr_landmark.onnx", path, 0.6);
    expect_load_error(path, "truncated");
    unlink(path);
}

static void test_truncated_tfjs_weights(void **state)
{
    (void)state;
    char dir[64], cmd[256], json[128];
    snprintf(dir, sizeof dir, "/tmp/nn-test-tfjs-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp models/human/facemesh.json %s/", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(json, sizeof json, "%s/facemesh.bin", dir);
    copy_prefix("models/human/facemesh.bin", json, 0.5);
    snprintf(json, sizeof json, "%s/facemesh.json", dir);
    expect_load_error(json, "truncated");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Writes a one-node ONNX model: input [1,a] (op) initializer [1,b] -> y. */
static void write_tiny_onnx(const char *path, const char *op_type, int a, int b)
{
    Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT, d1 = d0;
    d0.value_case = d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d0.dim_value = 1;
    d1.dim_value = a;
    Onnx__TensorShapeProto__Dimension *dims[2] = {&d0, &d1};
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 2;
    shape.dim = dims;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = 1;
    tt.elem_type = 1;
    tt.shape = &shape;
    Onnx__TypeProto type = ONNX__TYPE_PROTO__INIT;
    type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type.tensor_type = &tt;
    Onnx__ValueInfoProto x = ONNX__VALUE_INFO_PROTO__INIT, y = ONNX__VALUE_INFO_PROTO__INIT;
    x.name = "x";
    x.type = &type;
    y.name = "y";
    Onnx__ValueInfoProto *ins[1] = {&x}, *outs[1] = {&y};

    float wdata[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t wdims[2] = {1, b};
    Onnx__TensorProto w = ONNX__TENSOR_PROTO__INIT;
    w.name = "w";
    w.n_dims = 2;
    w.dims = wdims;
    w.has_data_type = 1;
    w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    w.n_float_data = (size_t)b;
    w.float_data = wdata;
    Onnx__TensorProto *inits[1] = {&w};

    char *node_in[2] = {"x", "w"}, *node_out[1] = {"y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = (char *)op_type;
    node.n_input = 2;
    node.input = node_in;
    node.n_output = 1;
    node.output = node_out;
    Onnx__NodeProto *nodes[1] = {&node};

    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "tiny";
    g.n_node = 1;
    g.node = nodes;
    g.n_initializer = 1;
    g.initializer = inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.graph = &g;

    size_t len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    onnx__model_proto__pack(&m, buf);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

static void test_tiny_onnx_runs(void **state)
{
    (void)state;
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/nn-test-ok-%d.onnx", (int)getpid());
    write_tiny_onnx(path, "Mul", 4, 4);
    nn_model *m = nn_model_load(path, err, sizeof err);
    if (!m) fail_msg("%s", err);
    nn_session *s = nn_session_create(m, err, sizeof err);
    assert_non_null(s);
    assert_null(nn_session_input_nhwc(s, 0)); /* no layout transpose to skip */
    assert_null(nn_session_input_nhwc(s, 1));
    for (int i = 0; i < 4; i++) nn_session_input(s, 0)[i] = 0.5f;
    assert_int_equal(nn_run(s), 0);
    assert_float_equal(nn_session_output(s, 0)[3], 2.0f, 1e-6);
    nn_session_free(s);
    nn_model_free(m);
    unlink(path);
}

static void test_unknown_op(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/nn-test-op-%d.onnx", (int)getpid());
    write_tiny_onnx(path, "FrobnicateV7", 4, 4);
    expect_load_error(path, "FrobnicateV7");
    unlink(path);
}

static void test_mismatched_shapes(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/nn-test-shape-%d.onnx", (int)getpid());
    write_tiny_onnx(path, "Add", 3, 4);
    expect_load_error(path, "Add");
    unlink(path);
}

/* face-api manifests of networks faceapi_load.c does not build are refused by name. */
static void test_faceapi_unknown_network(void **state)
{
    (void)state;
    expect_load_error("models/faceapi/tiny_face_detector_model-weights_manifest.json", "not a face-api network");
}

/* A manifest lacking one weight the graph needs names that weight. The last entry
 * of age_gender_model is fc/gender/bias, float32 [2]: dropped from the manifest and
 * its 8 bytes from the shard. */
static void test_faceapi_missing_weight(void **state)
{
    (void)state;
    char dir[64], cmd[512], path[128];
    snprintf(dir, sizeof dir, "/tmp/nn-test-faceapi-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s && /usr/bin/python3 -c \"import json,sys; m=json.load(open(sys.argv[1]));"
             " assert m[0]['weights'][-1]['name']=='fc/gender/bias'; m[0]['weights'].pop();"
             " json.dump(m, open(sys.argv[2], 'w'))\" models/faceapi/age_gender_model-weights_manifest.json"
             " %s/age_gender_model-weights_manifest.json", dir, dir);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen("models/faceapi/age_gender_model.bin", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    double keep = (double)(ftell(f) - 8) / (double)ftell(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/age_gender_model.bin", dir);
    copy_prefix("models/faceapi/age_gender_model.bin", path, keep + 1e-9);
    snprintf(path, sizeof path, "%s/age_gender_model-weights_manifest.json", dir);
    expect_load_error(path, "weight fc/gender/bias missing");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fr_detect),
        cmocka_unit_test(test_fr_landmark),
        cmocka_unit_test(test_fr_feature),
        cmocka_unit_test(test_fr_liveness),
        cmocka_unit_test(test_fr_age),
        cmocka_unit_test(test_blazeface_back),
        cmocka_unit_test(test_facemesh),
        cmocka_unit_test(test_faceres_deep),
        cmocka_unit_test(test_mobilefacenet),
        cmocka_unit_test(test_tflite_mobilefacenet),
        cmocka_unit_test(test_tflite_face_anti_spoofing),
        cmocka_unit_test(test_int8_close_to_fp32),
        cmocka_unit_test(test_int8_what_converts),
        cmocka_unit_test(test_depthwise_same_as_xnnpack),
        cmocka_unit_test(test_int8_shared_ranges_exact),
        cmocka_unit_test(test_in_place_exact),
        cmocka_unit_test(test_int8_shared_across_threads),
        cmocka_unit_test(test_faceapi_age_gender),
        cmocka_unit_test(test_faceapi_recognition),
        cmocka_unit_test(test_faceapi_unknown_network),
        cmocka_unit_test(test_faceapi_missing_weight),
        cmocka_unit_test(test_api_shapes_and_names),
        cmocka_unit_test(test_two_sessions_agree),
        cmocka_unit_test(test_nhwc_input_skips_the_transpose),
        cmocka_unit_test(test_sessions_share_packed_weights),
        cmocka_unit_test(test_shared_weights_across_threads),
        cmocka_unit_test(test_sessions_share_an_arena),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_truncated_onnx),
        cmocka_unit_test(test_truncated_tfjs_weights),
        cmocka_unit_test(test_tiny_onnx_runs),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_mismatched_shapes),
    };
    return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
