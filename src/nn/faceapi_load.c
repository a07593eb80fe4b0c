/*
 * faceapi_load.c - @vladmandic/face-api's models (`NAME-weights_manifest.json` +
 * shards) into the internal graph.
 *
 * face-api ships weights only (8-bit quantised, decoded by tfjs_load.c's
 * nn_tfjs_weights_load); each network's layers are written in its JavaScript. This
 * file writes the same layers with the graph builders, recognising the network by
 * its weight names:
 *   age_gender_model        TinyXception with two middle blocks on a 112x112 face;
 *                           outputs "age" [1,1] (years) and "gender" [1,2] (softmax,
 *                           male first).
 *   face_recognition_model  dlib's ResNet-29 on the 150x150 chip; output
 *                           "descriptor" [1,128] (not normalised).
 * Input "input" is [1,S,S,3] NHWC, RGB 0-255; the graph subtracts face-api's mean
 * RGB and divides by 255 itself. tests/unit/test_nn.c compares both networks
 * with face-api running on TF.js (scripts/faceapi_ref/).
 */
#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* face-api's normalisation for both networks (src/ops/normalize use in each net). */
static const float FACEAPI_MEAN_RGB[3] = {122.782f, 117.001f, 104.298f};

/* The constant weight named prefix/leaf with the expected number of dimensions. */
static int weight(nn_graph *g, const char *prefix, const char *leaf, int rank)
{
    char name[256];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "/" : "", leaf);
    int id = nn_tensor_find(g, name);
    if (id < 0 || !g->tensors[id].data) return nn_fail(g, "weight %s missing", name);
    if (g->tensors[id].shape.rank != rank) return nn_fail(g, "weight %s: rank %d, expected %d", name, g->tensors[id].shape.rank, rank);
    return id;
}

/* How a convolution is placed and what follows it. */
typedef struct {
    int stride;
    int same;         /* TF "SAME" padding, else "VALID" */
    int depthwise;
    int relu;
    int bias;         /* tensor id of a bias to add, -1 for none */
    int scale_w, scale_b; /* dlib's per-channel scale layer after the bias, -1 for none */
} conv_spec;

/* A convolution by the TF filter `filters` ([kh, kw, cin, cout]), with the bias,
 * scale and ReLU of spec folded into the node. */
static int conv(nn_graph *g, const char *name, int x, int filters, const conv_spec *spec)
{
    if (x < 0 || filters < 0) return -1;
    const nn_shape *fs = &g->tensors[filters].shape, *xs = &g->tensors[x].shape;
    nn_conv_params p = {0};
    if (nn_conv_from_hwio(g, g->tensors[filters].data, fs, spec->depthwise, &p)) return -1;
    p.sh = p.sw = spec->stride;
    p.dh = p.dw = 1;
    if (spec->same && (nn_same_pads(xs->dims[1], p.kh, p.sh, 1, &p.pad_top, &p.pad_bottom) ||
                       nn_same_pads(xs->dims[2], p.kw, p.sw, 1, &p.pad_left, &p.pad_right)))
        goto fail;
    size_t per = (size_t)p.kh * p.kw * (p.cin / p.groups);
    const float *b = spec->bias >= 0 ? g->tensors[spec->bias].data : NULL;
    const float *sw = spec->scale_w >= 0 ? g->tensors[spec->scale_w].data : NULL;
    const float *sb = spec->scale_b >= 0 ? g->tensors[spec->scale_b].data : NULL;
    int sizes[3] = {spec->bias, spec->scale_w, spec->scale_b};
    for (int i = 0; i < 3; i++)
        if (sizes[i] >= 0 && nn_shape_size(&g->tensors[sizes[i]].shape) != (size_t)p.cout) {
            nn_fail(g, "%s: %s has %zu values for %d channels", name, g->tensors[sizes[i]].name,
                    nn_shape_size(&g->tensors[sizes[i]].shape), p.cout);
            goto fail;
        }
    /* (conv + b) * sw + sb = conv' + b', conv' with every filter of channel o times sw[o]. */
    for (int o = 0; o < p.cout; o++) {
        float s = sw ? sw[o] : 1.0f;
        p.bias[o] = (b ? b[o] : 0.0f) * s + (sb ? sb[o] : 0.0f);
        for (size_t j = 0; j < per && sw; j++) p.weights[(size_t)o * per + j] *= s;
    }
    if (spec->relu) p.out_min = 0;
    int id = nn_add_conv(g, "faceapi", name, x, &p);
    if (id >= 0) return id;
fail:
    free(p.weights);
    free(p.bias);
    return -1;
}

/* The input placeholder and face-api's normalisation: (x - mean RGB) / 255. */
static int normalised_input(nn_graph *g, int size)
{
    int dims[4] = {1, size, size, 3}, three = 3, one = 1;
    const float inv255 = 1.0f / 255.0f;
    int x = nn_graph_add_input(g, "input", nn_shape_make(4, dims));
    int mean = nn_const_add(g, "mean_rgb", nn_shape_make(1, &three), FACEAPI_MEAN_RGB);
    int scale = nn_const_add(g, "inv255", nn_shape_make(1, &one), &inv255);
    if (x < 0 || mean < 0 || scale < 0) return -1;
    int centred = nn_add_binary(g, "faceapi", "input/centred", NN_BIN_SUB, x, mean);
    return centred < 0 ? -1 : nn_add_binary(g, "faceapi", "input/normalised", NN_BIN_MUL, centred, scale);
}

/* [1,1,1,C] -> [1,C] -> x W + b, W [C, M] as in TF.js matMul. */
static int dense(nn_graph *g, const char *name, int x, int w, int bias)
{
    if (x < 0 || w < 0) return -1;
    nn_fc_params p;
    if (nn_fc_from_matrix(g, g->tensors[w].data, &g->tensors[w].shape, 0, 1.0f, &p)) return -1;
    if (bias >= 0) {
        if (nn_shape_size(&g->tensors[bias].shape) != (size_t)p.m) {
            free(p.weights);
            free(p.bias);
            return nn_fail(g, "%s: bias size mismatch", name);
        }
        memcpy(p.bias, g->tensors[bias].data, (size_t)p.m * sizeof(float));
    }
    int id = nn_add_fc(g, "faceapi", name, x, &p);
    if (id < 0) {
        free(p.weights);
        free(p.bias);
    }
    return id;
}

static int flatten(nn_graph *g, const char *name, int x)
{
    if (x < 0) return -1;
    int dims[2] = {1, (int)nn_shape_size(&g->tensors[x].shape)};
    return nn_add_reshape(g, "faceapi", name, x, nn_shape_make(2, dims));
}

static int pool(nn_graph *g, const char *name, nn_op op, int x, int k, int s, int same)
{
    if (x < 0) return -1;
    nn_conv_params p = {.kh = k, .kw = k, .sh = s, .sw = s};
    const nn_shape *xs = &g->tensors[x].shape;
    if (same && (nn_same_pads(xs->dims[1], k, s, 1, &p.pad_top, &p.pad_bottom) ||
                 nn_same_pads(xs->dims[2], k, s, 1, &p.pad_left, &p.pad_right)))
        return nn_fail(g, "%s: padding too large", name);
    return nn_add_pool(g, "faceapi", name, op, x, &p);
}

/* ---- age_gender_model: TinyXception (face-api src/xception, src/ageGenderNet) ---- */

/* Depthwise 3x3 then pointwise 1x1 + bias, both "SAME", stride 1. */
static int separable(nn_graph *g, const char *prefix, int x)
{
    char name[256];
    conv_spec dw = {1, 1, 1, 0, -1, -1, -1}, pw = {1, 1, 0, 0, -1, -1, -1};
    pw.bias = weight(g, prefix, "bias", 1);
    snprintf(name, sizeof name, "%s/depthwise", prefix);
    x = conv(g, name, x, weight(g, prefix, "depthwise_filter", 4), &dw);
    return pw.bias < 0 ? -1 : conv(g, prefix, x, weight(g, prefix, "pointwise_filter", 4), &pw);
}

static int relu(nn_graph *g, const char *name, int x)
{
    return x < 0 ? -1 : nn_add_unary(g, "faceapi", name, x, NN_UN_RELU, 0, INFINITY);
}

static int add(nn_graph *g, const char *name, int a, int b)
{
    return a < 0 || b < 0 ? -1 : nn_add_binary(g, "faceapi", name, NN_BIN_ADD, a, b);
}

/* relu? -> sep0 -> relu -> sep1 -> maxpool 3x3/2 SAME, plus a strided 1x1 conv of x. */
static int reduction_block(nn_graph *g, const char *prefix, int x, int activate_input)
{
    char a[256], b[256], c[256], d[256];
    snprintf(a, sizeof a, "%s/relu_in", prefix);
    snprintf(b, sizeof b, "%s/separable_conv0", prefix);
    snprintf(c, sizeof c, "%s/separable_conv1", prefix);
    snprintf(d, sizeof d, "%s/expansion_conv", prefix);
    int out = activate_input ? relu(g, a, x) : x;
    out = separable(g, b, out);
    snprintf(a, sizeof a, "%s/relu_mid", prefix);
    out = separable(g, c, relu(g, a, out));
    snprintf(a, sizeof a, "%s/maxpool", prefix);
    out = pool(g, a, NN_OP_MAXPOOL, out, 3, 2, 1);
    conv_spec ex = {2, 1, 0, 0, weight(g, d, "bias", 1), -1, -1};
    int shortcut = ex.bias < 0 ? -1 : conv(g, d, x, weight(g, d, "filters", 4), &ex);
    snprintf(a, sizeof a, "%s/add", prefix);
    return add(g, a, out, shortcut);
}

/* Three (relu -> separable) steps plus the input. */
static int main_block(nn_graph *g, const char *prefix, int x)
{
    char r[256], s[256];
    int out = x;
    for (int i = 0; i < 3; i++) {
        snprintf(r, sizeof r, "%s/relu%d", prefix, i);
        snprintf(s, sizeof s, "%s/separable_conv%d", prefix, i);
        out = separable(g, s, relu(g, r, out));
    }
    snprintf(r, sizeof r, "%s/add", prefix);
    return add(g, r, out, x);
}

#define AGE_GENDER_SIZE 112
#define XCEPTION_MAIN_BLOCKS 2

static int build_age_gender(nn_graph *g)
{
    int x = normalised_input(g, AGE_GENDER_SIZE);
    conv_spec in = {2, 1, 0, 1, weight(g, "entry_flow/conv_in", "bias", 1), -1, -1};
    x = conv(g, "entry_flow/conv_in", x, weight(g, "entry_flow/conv_in", "filters", 4), &in);
    x = reduction_block(g, "entry_flow/reduction_block_0", x, 0);
    x = reduction_block(g, "entry_flow/reduction_block_1", x, 1);
    for (int i = 0; i < XCEPTION_MAIN_BLOCKS; i++) {
        char p[64];
        snprintf(p, sizeof p, "middle_flow/main_block_%d", i);
        x = main_block(g, p, x);
    }
    x = reduction_block(g, "exit_flow/reduction_block", x, 1);
    x = relu(g, "exit_flow/relu", separable(g, "exit_flow/separable_conv", x));
    /* avgPool 7x7 stride 2 "valid" over the 7x7 map: the global average. */
    if (x >= 0 && (g->tensors[x].shape.dims[1] != 7 || g->tensors[x].shape.dims[2] != 7))
        return nn_fail(g, "age_gender_model: bottleneck is not 7x7");
    int pooled = flatten(g, "pooled", x < 0 ? -1 : nn_add_gap(g, "faceapi", "gap", x));
    int age = dense(g, "age", pooled, weight(g, "fc/age", "weights", 2), weight(g, "fc/age", "bias", 1));
    int gender = dense(g, "gender/logits", pooled, weight(g, "fc/gender", "weights", 2),
                       weight(g, "fc/gender", "bias", 1));
    gender = gender < 0 ? -1 : nn_add_softmax(g, "faceapi", "gender", gender, 1);
    if (age < 0 || gender < 0) return -1;
    return nn_graph_add_output(g, "age", age) || nn_graph_add_output(g, "gender", gender) ? -1 : 0;
}

/* ---- face_recognition_model: dlib's ResNet (face-api src/faceRecognitionNet) ---- */

/* conv (+bias, *scale, +bias) with optional ReLU; "down" = stride 2 "VALID". */
static int dlib_conv(nn_graph *g, const char *prefix, int x, int down, int with_relu)
{
    char c[256], s[256];
    snprintf(c, sizeof c, "%s/conv", prefix);
    snprintf(s, sizeof s, "%s/scale", prefix);
    conv_spec spec = {down ? 2 : 1, !down, 0, with_relu, weight(g, c, "bias", 1), weight(g, s, "weights", 1),
                      weight(g, s, "biases", 1)};
    if (spec.bias < 0 || spec.scale_w < 0 || spec.scale_b < 0) return -1;
    return conv(g, prefix, x, weight(g, c, "filters", 4), &spec);
}

/* relu(conv2(conv1(x)) + x); residual_down: conv1 strided, and the shortcut is a
 * 2x2/2 average pool, zero-padded to the new channel count, with the conv path
 * zero-padded by one row and column where the pool's map is larger. */
static int residual(nn_graph *g, const char *prefix, int x, int down)
{
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/conv1", prefix);
    snprintf(b, sizeof b, "%s/conv2", prefix);
    int out = dlib_conv(g, b, dlib_conv(g, a, x, down, 1), 0, 0);
    int shortcut = x;
    if (down && out >= 0) {
        snprintf(a, sizeof a, "%s/avgpool", prefix);
        shortcut = pool(g, a, NN_OP_AVGPOOL, x, 2, 2, 0);
        if (shortcut < 0) return -1;
        const nn_shape *ps = &g->tensors[shortcut].shape, *os = &g->tensors[out].shape;
        int grow = ps->dims[1] - os->dims[1];
        if (grow < 0 || grow > 1 || ps->dims[2] - os->dims[2] != grow || ps->dims[3] > os->dims[3])
            return nn_fail(g, "%s: shortcut %dx%dx%d does not fit %dx%dx%d", prefix, ps->dims[1], ps->dims[2],
                           ps->dims[3], os->dims[1], os->dims[2], os->dims[3]);
        int zero[4] = {0, 0, 0, 0}, chan[4] = {0, 0, 0, os->dims[3] - ps->dims[3]}, hw[4] = {0, grow, grow, 0};
        snprintf(a, sizeof a, "%s/shortcut_pad", prefix);
        if (chan[3]) shortcut = nn_add_pad(g, "faceapi", a, shortcut, zero, chan, 0.0f);
        snprintf(a, sizeof a, "%s/out_pad", prefix);
        if (grow) out = nn_add_pad(g, "faceapi", a, out, zero, hw, 0.0f);
    }
    snprintf(a, sizeof a, "%s/add", prefix);
    snprintf(b, sizeof b, "%s/relu", prefix);
    return relu(g, b, add(g, a, out, shortcut));
}

#define RECOGNITION_SIZE 150

static int build_recognition(nn_graph *g)
{
    /* name, strided (a residual_down) */
    static const struct { const char *name; int down; } BLOCKS[] = {
        {"conv32_1", 0}, {"conv32_2", 0}, {"conv32_3", 0},
        {"conv64_down", 1}, {"conv64_1", 0}, {"conv64_2", 0}, {"conv64_3", 0},
        {"conv128_down", 1}, {"conv128_1", 0}, {"conv128_2", 0},
        {"conv256_down", 1}, {"conv256_1", 0}, {"conv256_2", 0}, {"conv256_down_out", 1},
    };
    int x = dlib_conv(g, "conv32_down", normalised_input(g, RECOGNITION_SIZE), 1, 1);
    x = pool(g, "conv32_down/maxpool", NN_OP_MAXPOOL, x, 3, 2, 0);
    for (size_t i = 0; i < sizeof BLOCKS / sizeof BLOCKS[0]; i++) x = residual(g, BLOCKS[i].name, x, BLOCKS[i].down);
    int pooled = flatten(g, "pooled", x < 0 ? -1 : nn_add_gap(g, "faceapi", "gap", x));
    int d = dense(g, "descriptor", pooled, weight(g, "", "fc", 2), -1);
    return d < 0 ? -1 : nn_graph_add_output(g, "descriptor", d);
}

int nn_faceapi_load(nn_graph *g, const char *path)
{
    int rc = nn_tfjs_weights_load(g, path);
    if (rc == 0) {
        if (nn_tensor_find(g, "fc/age/weights") >= 0) rc = build_age_gender(g);
        else if (nn_tensor_find(g, "conv32_down/conv/filters") >= 0) rc = build_recognition(g);
        else rc = nn_fail(g, "not a face-api network this server knows (age_gender_model, face_recognition_model)");
    }
    if (rc || g->failed) {
        nn_fail_prefix(g, path);
        return -1;
    }
    return 0;
}
