/*
 * test_tflite_load.c - the TFLite reader (src/nn/tflite_load.c) on a model built
 * here byte by byte, and on that model broken one field at a time: every bad
 * offset, index, option or size gives an error that names the file and the
 * operator or tensor, never a crash (every prefix of the file is tried too; the
 * sanitizer build checks the reads). The real models' outputs are checked
 * against a reference in test_nn.c.
 *
 * The model: input x [1,2,2,2] -> CONV_2D with a 1x1 filter w [2,1,1,2] (float32,
 * or int8 with a scale per output channel) and a bias b [2] -> y [1,2,2,2]. The little flatbuffer writer below lays every object
 * after the one that points to it (flatbuffer offsets point forward) and gives
 * every table 4-byte slots, one per field.
 * Run from the repository root (one case reads models/expo).
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
#include <unistd.h>

#include "nn/nn.h"
#include "nn_load_expect.h"

/* ---- a forward-only flatbuffer writer -------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} fbb;

static void align4(fbb *f) { f->n = (f->n + 3) & ~(size_t)3; }

static void put(fbb *f, size_t pos, const void *p, size_t len) { memcpy(f->b + pos, p, len); }

/* A table of nf 4-byte slots, all present and zero; returns its position. */
static size_t table(fbb *f, int nf) {
    align4(f);
    size_t vt = f->n;
    uint16_t head[2] = {(uint16_t)(4 + 2 * nf), (uint16_t)(4 + 4 * nf)};
    put(f, vt, head, 4);
    for (int i = 0; i < nf; i++) {
        uint16_t off = (uint16_t)(4 + 4 * i);
        put(f, vt + 4 + 2 * (size_t)i, &off, 2);
    }
    f->n = vt + 4 + 2 * (size_t)nf;
    align4(f);
    size_t pos = f->n;
    int32_t soff = (int32_t)(pos - vt);
    put(f, pos, &soff, 4);
    memset(f->b + pos + 4, 0, 4 * (size_t)nf);
    f->n = pos + 4 + 4 * (size_t)nf;
    return pos;
}

static size_t slot(size_t table_pos, int i) { return table_pos + 4 + 4 * (size_t)i; }

static void set_u32(fbb *f, size_t t, int i, uint32_t v) { put(f, slot(t, i), &v, 4); }

/* Field i of table t points at target (which lies after it). */
static void set_ref(fbb *f, size_t t, int i, size_t target) { set_u32(f, t, i, (uint32_t)(target - slot(t, i))); }

/* Marks field i of table t absent. */
static void clear(fbb *f, size_t t, int i) {
    int32_t soff;
    memcpy(&soff, f->b + t, 4);
    uint16_t zero = 0;
    put(f, t - (size_t)soff + 4 + 2 * (size_t)i, &zero, 2);
}

static size_t vec_bytes(fbb *f, const void *p, uint32_t len) {
    align4(f);
    size_t pos = f->n;
    put(f, pos, &len, 4);
    put(f, pos + 4, p, len);
    f->n = pos + 4 + len;
    return pos;
}

static size_t vec_i32(fbb *f, const int32_t *v, uint32_t n) {
    size_t pos = vec_bytes(f, v, 4 * n);
    memcpy(f->b + pos, &n, 4); /* the count is elements, not bytes */
    return pos;
}

/* A vector of n table offsets, filled by set_elem. */
static size_t vec_tables(fbb *f, uint32_t n) {
    align4(f);
    size_t pos = f->n;
    put(f, pos, &n, 4);
    memset(f->b + pos + 4, 0, 4 * (size_t)n);
    f->n = pos + 4 + 4 * (size_t)n;
    return pos;
}

static void set_elem(fbb *f, size_t vec, int k, size_t target) {
    size_t p = vec + 4 + 4 * (size_t)k;
    uint32_t v = (uint32_t)(target - p);
    put(f, p, &v, 4);
}

/* ---- the model and its variants ----------------------------------------------------- */

typedef struct {
    int32_t builtin;     /* operator code */
    int32_t stride_w;
    int32_t w_buffer;    /* buffer index of the filter */
    uint32_t w_bytes;    /* bytes in the filter's buffer */
    int32_t y_channels;  /* declared output channels */
    int32_t op_input1;   /* the operator's second input (the filter) */
    int break_root;      /* root offset beyond the file */
    int no_options;      /* operator without builtin options */
    int w_int8;          /* the filter as int8 with per-channel scales */
} variant;

static const variant GOOD = {3, 1, 1, 16, 2, 1, 0, 0, 0};

/* A float32 tensor, or with `scales` an int8 one quantised per channel along axis 0
 * (zero points 0). */
static size_t tensor(fbb *f, size_t vec, int k, const char *name, const int32_t *shape, int rank, int32_t buffer,
                     const float *scales) {
    size_t t = table(f, 5);
    set_elem(f, vec, k, t);
    set_u32(f, t, 1, scales ? 9 : 0); /* INT8 : FLOAT32 */
    set_u32(f, t, 2, (uint32_t)buffer);
    set_ref(f, t, 0, vec_i32(f, shape, (uint32_t)rank));
    set_ref(f, t, 3, vec_bytes(f, name, (uint32_t)strlen(name)));
    if (!scales) {
        clear(f, t, 4);
        return t;
    }
    size_t q = table(f, 7); /* QuantizationParameters: min, max, scale, zero_point, ..., quantized_dimension */
    set_ref(f, t, 4, q);
    clear(f, q, 0), clear(f, q, 1), clear(f, q, 4), clear(f, q, 5);
    set_u32(f, q, 6, 0);
    const int64_t zero[2] = {0, 0};
    set_ref(f, q, 2, vec_i32(f, (const int32_t *)scales, (uint32_t)shape[0]));
    size_t z = vec_bytes(f, zero, sizeof zero);
    uint32_t two = 2;
    memcpy(f->b + z, &two, 4);
    set_ref(f, q, 3, z);
    return t;
}

static size_t build(fbb *f, const variant *v) {
    memset(f, 0, sizeof *f);
    f->n = 8;
    memcpy(f->b + 4, "TFL3", 4);
    size_t model = table(f, 5);
    uint32_t root = v->break_root ? 100000 : (uint32_t)model;
    put(f, 0, &root, 4);
    set_u32(f, model, 0, 3);
    clear(f, model, 3);

    size_t codes = vec_tables(f, 1);
    set_ref(f, model, 1, codes);
    size_t code = table(f, 4);
    set_elem(f, codes, 0, code);
    set_u32(f, code, 0, v->builtin < 127 ? (uint32_t)v->builtin : 127);
    clear(f, code, 1);
    set_u32(f, code, 2, 1);
    set_u32(f, code, 3, (uint32_t)v->builtin);

    size_t sgs = vec_tables(f, 1);
    set_ref(f, model, 2, sgs);
    size_t sg = table(f, 5);
    set_elem(f, sgs, 0, sg);
    clear(f, sg, 4);
    size_t tensors = vec_tables(f, 4);
    set_ref(f, sg, 0, tensors);
    const int32_t x_shape[4] = {1, 2, 2, 2}, w_shape[4] = {2, 1, 1, 2}, b_shape[1] = {2};
    const int32_t y_shape[4] = {1, 2, 2, v->y_channels};
    const float scales[2] = {0.5f, 2.0f};
    tensor(f, tensors, 0, "x", x_shape, 4, 0, NULL);
    tensor(f, tensors, 1, "w", w_shape, 4, v->w_buffer, v->w_int8 ? scales : NULL);
    tensor(f, tensors, 2, "b", b_shape, 1, 2, NULL);
    tensor(f, tensors, 3, "y", y_shape, 4, 0, NULL);
    const int32_t in[1] = {0}, out[1] = {3}, op_in[3] = {0, v->op_input1, 2};
    set_ref(f, sg, 1, vec_i32(f, in, 1));
    set_ref(f, sg, 2, vec_i32(f, out, 1));
    size_t ops = vec_tables(f, 1);
    set_ref(f, sg, 3, ops);
    size_t op = table(f, 5);
    set_elem(f, ops, 0, op);
    set_u32(f, op, 0, 0);
    set_ref(f, op, 1, vec_i32(f, op_in, 3));
    set_ref(f, op, 2, vec_i32(f, out, 1));
    set_u32(f, op, 3, 1); /* Conv2DOptions */
    if (v->no_options) {
        clear(f, op, 4);
    } else {
        size_t opt = table(f, 6);
        set_ref(f, op, 4, opt);
        const uint32_t vals[6] = {1 /* VALID */, (uint32_t)v->stride_w, 1, 0 /* no activation */, 1, 1};
        for (int i = 0; i < 6; i++) set_u32(f, opt, i, vals[i]);
    }

    size_t bufs = vec_tables(f, 3);
    set_ref(f, model, 4, bufs);
    const float w[4] = {1, 2, 3, 4}, b[2] = {0.5f, -1};
    const int8_t w8[4] = {2, 4, 2, 2}; /* x scales 0.5, 2 per output channel: 1, 2, 4, 4 */
    for (int k = 0; k < 3; k++) {
        size_t buf = table(f, 3);
        set_elem(f, bufs, k, buf);
        clear(f, buf, 1);
        clear(f, buf, 2);
        if (k == 0) clear(f, buf, 0);
        else if (k == 1) set_ref(f, buf, 0, v->w_int8 ? vec_bytes(f, w8, 4) : vec_bytes(f, w, v->w_bytes));
        else set_ref(f, buf, 0, vec_bytes(f, b, sizeof b));
    }
    return f->n;
}

static char tmp_path[64];

static void write_file(const void *bytes, size_t len) {
    FILE *out = fopen(tmp_path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(bytes, 1, len, out), len);
    fclose(out);
}

static const char *write_model(const variant *v) {
    static fbb f;
    write_file(f.b, build(&f, v));
    return tmp_path;
}

#define EXPECT_BROKEN(v, ...) EXPECT_ERROR(write_model(v), __VA_ARGS__)

static int setup(void **state) {
    (void)state;
    snprintf(tmp_path, sizeof tmp_path, "/tmp/nn-test-tflite-%d.tflite", (int)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(tmp_path);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Loads variant v, runs it on x = 1..8 and checks y = x . w^T + b. */
static void check_runs(const variant *v, const float w[4]) {
    char err[256];
    nn_model *m = nn_model_load(write_model(v), err, sizeof err);
    if (!m) fail_msg("%s", err);
    nn_shape s = nn_model_input_shape(m, 0);
    assert_int_equal(s.rank, 4);
    assert_int_equal(s.dims[3], 2);
    assert_int_equal(nn_model_output_index(m, "y"), 0);
    nn_session *ss = nn_session_create(m, err, sizeof err);
    assert_non_null(ss);
    float *x = nn_session_input(ss, 0);
    for (int i = 0; i < 8; i++) x[i] = (float)(i + 1);
    assert_int_equal(nn_run(ss), NN_OK);
    const float *y = nn_session_output(ss, 0);
    /* y[p][o] = sum_i x[p][i] * w[o][i] + b[o], b = [0.5, -1] */
    for (int p = 0; p < 4; p++) {
        float a = x[2 * p], c = x[2 * p + 1];
        assert_float_equal(y[2 * p], w[0] * a + w[1] * c + 0.5f, 1e-5);
        assert_float_equal(y[2 * p + 1], w[2] * a + w[3] * c - 1, 1e-5);
    }
    nn_session_free(ss);
    nn_model_free(m);
}

static void test_tiny_model_runs(void **state) {
    (void)state;
    check_runs(&GOOD, (const float[4]){1, 2, 3, 4});
}

/* int8 weights with a scale per output channel are dequantised at load. */
static void test_int8_weights(void **state) {
    (void)state;
    variant v = GOOD;
    v.w_int8 = 1;
    check_runs(&v, (const float[4]){1, 2, 4, 4});
}

static void test_not_tflite(void **state) {
    (void)state;
    write_file("this is not a flatbuffer", 24);
    EXPECT_ERROR(tmp_path, "not a TensorFlow Lite model");
}

static void test_bad_fields_are_named(void **state) {
    (void)state;
    variant v = GOOD;
    v.stride_w = 0;
    EXPECT_BROKEN(&v, "CONV_2D", "y", "option stride_w is 0");
    v = GOOD;
    v.builtin = 32; /* CUSTOM */
    EXPECT_BROKEN(&v, "unsupported operator 32", "y");
    v = GOOD;
    v.w_buffer = 99;
    EXPECT_BROKEN(&v, "tensor w", "buffer 99 does not exist");
    v = GOOD;
    v.w_bytes = 12;
    EXPECT_BROKEN(&v, "tensor w", "buffer holds 12 bytes");
    v = GOOD;
    v.y_channels = 3;
    EXPECT_BROKEN(&v, "CONV_2D y", "differs from the declared");
    v = GOOD;
    v.op_input1 = 7;
    EXPECT_BROKEN(&v, "CONV_2D y", "tensor 7 does not exist");
    v = GOOD;
    v.op_input1 = 3; /* its own output: not computed yet, not constant */
    EXPECT_BROKEN(&v, "CONV_2D y", "neither computed before nor constant");
    v = GOOD;
    v.break_root = 1;
    EXPECT_BROKEN(&v, "root table outside the file");
}

/* Absent options take the schema's defaults (SAME padding, stride 1). */
static void test_default_options(void **state) {
    (void)state;
    variant v = GOOD;
    v.no_options = 1;
    char err[256];
    nn_model *m = nn_model_load(write_model(&v), err, sizeof err);
    if (!m) fail_msg("%s", err);
    nn_model_free(m);
}

/* Every prefix of the file fails to load cleanly (the sanitizer build checks reads). */
static void test_every_truncation(void **state) {
    (void)state;
    static fbb f;
    size_t n = build(&f, &GOOD);
    for (size_t len = 0; len < n; len++) {
        write_file(f.b, len);
        char err[256] = "";
        nn_model *m = nn_model_load(tmp_path, err, sizeof err);
        if (m) fail_msg("a %zu-byte prefix of %zu loaded", len, n);
        if (strncmp(err, tmp_path, strlen(tmp_path)) != 0) fail_msg("prefix %zu: error \"%s\"", len, err);
    }
}

static void test_truncated_real_model(void **state) {
    (void)state;
    size_t len = 0;
    FILE *in = fopen("models/expo/MobileFaceNet.tflite", "rb");
    assert_non_null(in);
    uint8_t *buf = malloc(6 << 20);
    assert_non_null(buf);
    len = fread(buf, 1, 6 << 20, in);
    fclose(in);
    write_file(buf, len * 6 / 10);
    free(buf);
    EXPECT_ERROR(tmp_path, "outside the file");
}

/* MobileFaceNet.tflite fixes a batch of two; loaded with a batch of one, each image
 * gives what it gives in its slot of the batch of two (fp32: the same arithmetic),
 * in less activation memory. A batch is refused for other formats and below 0. */
static void test_batch_override(void **state) {
    (void)state;
    char err[256];
    const char *path = "models/expo/MobileFaceNet.tflite";
    nn_model *two = nn_model_load(path, err, sizeof err), *one = nn_model_load_batch(path, 1, err, sizeof err);
    assert_non_null(two);
    assert_non_null(one);
    assert_int_equal(nn_model_input_shape(two, 0).dims[0], 2);
    assert_int_equal(nn_model_input_shape(one, 0).dims[0], 1);
    assert_int_equal(nn_model_output_shape(one, 0).dims[0], 1);
    assert_int_equal(nn_model_output_shape(one, 0).dims[1], 192);
    assert_true(nn_model_arena_bytes(one) < nn_model_arena_bytes(two));
    nn_session *s2 = nn_session_create(two, err, sizeof err), *s1 = nn_session_create(one, err, sizeof err);
    assert_non_null(s2);
    assert_non_null(s1);
    const size_t n = 112 * 112 * 3;
    float *in2 = nn_session_input(s2, 0);
    for (size_t i = 0; i < 2 * n; i++) in2[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    assert_int_equal(nn_run(s2), NN_OK);
    for (int k = 0; k < 2; k++) {
        memcpy(nn_session_input(s1, 0), in2 + k * n, n * sizeof(float));
        assert_int_equal(nn_run(s1), NN_OK);
        const float *o1 = nn_session_output(s1, 0), *o2 = nn_session_output(s2, 0) + k * 192;
        for (int i = 0; i < 192; i++) assert_true(fabsf(o1[i] - o2[i]) <= 1e-4f * (1.0f + fabsf(o2[i])));
    }
    nn_session_free(s1);
    nn_session_free(s2);
    nn_model_free(one);
    nn_model_free(two);
    assert_null(nn_model_load_batch("models/faceplugin/fr_feature.onnx", 1, err, sizeof err));
    assert_non_null(strstr(err, ".tflite models only"));
    assert_null(nn_model_load_batch(path, -1, err, sizeof err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_override),
        cmocka_unit_test(test_tiny_model_runs),
        cmocka_unit_test(test_int8_weights),
        cmocka_unit_test(test_not_tflite),
        cmocka_unit_test(test_bad_fields_are_named),
        cmocka_unit_test(test_default_options),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_truncated_real_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
