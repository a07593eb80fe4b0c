/*
 * test_nn_load.c - malformed models give a load error that names the file, the
 * node and the attribute, never a crash (issue 11: stride 0 was a SIGFPE, a node
 * without op type a NULL dereference, float->int and shift overflows UB).
 *
 * ONNX cases are built here with protobuf-c, one bad field each, on a small
 * valid Conv model; TF.js cases write a model.json and its weights.bin into a
 * temporary folder. Two cases mutate the real models in models/ instead.
 * Run from the repository root (models are read from models/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/nn.h"
#include "nn_load_expect.h"
#include "onnx/onnx.pb-c.h"

static char tmp_dir[64];

static const char *tmp_path(const char *name)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}


/* ---- ONNX: a small valid model, and one field broken per test ----------- */

/* x [1,2,8,8] -> Conv(W [4,2,3,3], attributes) -> y, node named "conv_1". */
typedef struct {
    Onnx__TensorShapeProto__Dimension d[4], *dp[4];
    Onnx__TensorShapeProto shape;
    Onnx__TypeProto__Tensor tt;
    Onnx__TypeProto type;
    Onnx__ValueInfoProto x, y, *ins[1], *outs[1];
    float wdata[72];
    int64_t wdims[4];
    Onnx__TensorProto w, *inits[2];
    char *node_in[3], *node_out[1];
    Onnx__AttributeProto attrs[4], *attr_p[4];
    int64_t ints[4][8];
    Onnx__NodeProto node, *nodes[1];
    Onnx__GraphProto g;
    Onnx__ModelProto m;
} onnx_case;

static void onnx_case_init(onnx_case *c, const char *op_type)
{
    memset(c, 0, sizeof *c);
    static const int64_t xd[4] = {1, 2, 8, 8};
    for (int i = 0; i < 4; i++) {
        c->d[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        c->d[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        c->d[i].dim_value = xd[i];
        c->dp[i] = &c->d[i];
    }
    c->shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    c->shape.n_dim = 4;
    c->shape.dim = c->dp;
    c->tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    c->tt.has_elem_type = 1;
    c->tt.elem_type = 1;
    c->tt.shape = &c->shape;
    c->type = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    c->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    c->type.tensor_type = &c->tt;
    c->x = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    c->y = c->x;
    c->x.name = "x";
    c->x.type = &c->type;
    c->y.name = "y";
    c->ins[0] = &c->x;
    c->outs[0] = &c->y;

    for (int i = 0; i < 72; i++) c->wdata[i] = (float)(i % 7) - 3;
    static const int64_t wd[4] = {4, 2, 3, 3};
    memcpy(c->wdims, wd, sizeof wd);
    c->w = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    c->w.name = "W";
    c->w.n_dims = 4;
    c->w.dims = c->wdims;
    c->w.has_data_type = 1;
    c->w.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    c->w.n_float_data = 72;
    c->w.float_data = c->wdata;
    c->inits[0] = &c->w;

    c->node_in[0] = "x";
    c->node_in[1] = "W";
    c->node_out[0] = "y";
    c->node = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    c->node.name = "conv_1";
    c->node.op_type = (char *)op_type;
    c->node.n_input = 2;
    c->node.input = c->node_in;
    c->node.n_output = 1;
    c->node.output = c->node_out;
    c->node.attribute = c->attr_p;
    c->nodes[0] = &c->node;

    c->g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    c->g.name = "case";
    c->g.n_node = 1;
    c->g.node = c->nodes;
    c->g.n_initializer = 1;
    c->g.initializer = c->inits;
    c->g.n_input = 1;
    c->g.input = c->ins;
    c->g.n_output = 1;
    c->g.output = c->outs;
    c->m = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    c->m.graph = &c->g;
}

/* Adds an int-list attribute (n values) or, with n < 0, the int attribute v[0]. */
static void onnx_case_attr(onnx_case *c, const char *name, const int64_t *v, int n)
{
    size_t k = c->node.n_attribute++;
    Onnx__AttributeProto *a = &c->attrs[k];
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    if (n < 0) {
        a->has_i = 1;
        a->i = v[0];
    } else {
        memcpy(c->ints[k], v, (size_t)n * sizeof *v);
        a->n_ints = (size_t)n;
        a->ints = c->ints[k];
    }
    c->attr_p[k] = a;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static const char *onnx_case_write(onnx_case *c)
{
    size_t len = onnx__model_proto__get_packed_size(&c->m);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    onnx__model_proto__pack(&c->m, buf);
    const char *path = tmp_path("case.onnx");
    write_bytes(path, buf, len);
    free(buf);
    return path;
}

static void test_onnx_case_is_valid(void **state)
{
    (void)state;
    onnx_case c;
    onnx_case_init(&c, "Conv");
    char err[256];
    nn_model *m = nn_model_load(onnx_case_write(&c), err, sizeof err);
    if (!m) fail_msg("the base case must load: %s", err);
    nn_model_free(m);
}

static void test_onnx_conv_attributes(void **state)
{
    (void)state;
    static const struct { const char *attr; int64_t v[4]; int n; const char *needle; } cases[] = {
        {"strides", {0, 1}, 2, "strides"},                         /* was SIGFPE */
        {"strides", {1, -3}, 2, "strides"},
        {"dilations", {0, 0}, 2, "dilations"},
        {"pads", {-1, 0, 0, 0}, 4, "pads"},
        {"pads", {0, 0, 2147483647, 0}, 4, "too large"},            /* int overflow of the output size */
        {"strides", {4294967296LL, 1}, 2, "strides"},               /* clamps to INT_MAX: fine, 1 row out */
        {"group", {0}, -1, "group"},
        {"group", {1LL << 40}, -1, "group"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        onnx_case c;
        onnx_case_init(&c, "Conv");
        onnx_case_attr(&c, cases[i].attr, cases[i].v, cases[i].n);
        const char *path = onnx_case_write(&c);
        if (i == 5) {   /* a huge stride is legal: one output row, no overflow */
            char err[256];
            nn_model *m = nn_model_load(path, err, sizeof err);
            if (!m) fail_msg("huge stride: %s", err);
            nn_model_free(m);
            continue;
        }
        EXPECT_ERROR(path, "node conv_1", "Conv y", cases[i].needle);
    }
}

static void test_onnx_pool_attributes(void **state)
{
    (void)state;
    static const struct { const char *attr; int64_t v[4]; int n; } cases[] = {
        {"kernel_shape", {0, 2}, 2}, {"strides", {2, 0}, 2}, {"pads", {0, -2, 0, 0}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        onnx_case c;
        onnx_case_init(&c, "MaxPool");
        c.node.n_input = 1;
        if (strcmp(cases[i].attr, "kernel_shape")) onnx_case_attr(&c, "kernel_shape", (int64_t[]){2, 2}, 2);
        onnx_case_attr(&c, cases[i].attr, cases[i].v, cases[i].n);
        EXPECT_ERROR(onnx_case_write(&c), "MaxPool y", cases[i].attr);
    }
}

static void test_onnx_missing_names(void **state)
{
    (void)state;
    onnx_case c;
    onnx_case_init(&c, NULL);   /* no op_type: was a NULL dereference */
    EXPECT_ERROR(onnx_case_write(&c), "node 0 conv_1", "no op_type");

    onnx_case_init(&c, "Conv");
    c.node.name = NULL;          /* a node without a name is legal ONNX */
    char err[256];
    nn_model *m = nn_model_load(onnx_case_write(&c), err, sizeof err);
    if (!m) fail_msg("unnamed node: %s", err);
    nn_model_free(m);

    onnx_case_init(&c, "Conv");
    c.node.n_output = 0;
    EXPECT_ERROR(onnx_case_write(&c), "conv_1", "no output");

    onnx_case_init(&c, "Conv");
    onnx_case_attr(&c, "strides", (int64_t[]){1, 1}, 2);
    c.attrs[0].name = NULL;
    EXPECT_ERROR(onnx_case_write(&c), "conv_1", "attribute 0 has no name");

    onnx_case_init(&c, "Conv");
    c.w.name = NULL;
    EXPECT_ERROR(onnx_case_write(&c), "initializer 0 has no name");

    onnx_case_init(&c, "Conv");
    c.x.name = NULL;
    EXPECT_ERROR(onnx_case_write(&c), "graph input 0 has no name");

    onnx_case_init(&c, "Conv");
    c.y.name = NULL;
    EXPECT_ERROR(onnx_case_write(&c), "graph output 0 has no name");
}

static void test_onnx_weights(void **state)
{
    (void)state;
    onnx_case c;
    onnx_case_init(&c, "Conv");
    c.w.n_float_data = 70;       /* two values short of [4,2,3,3] */
    EXPECT_ERROR(onnx_case_write(&c), "tensor W", "70 values, expected 72");

    onnx_case_init(&c, "Conv");
    int64_t huge[4] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};   /* 2^80 values: size_t overflow */
    memcpy(c.wdims, huge, sizeof huge);
    EXPECT_ERROR(onnx_case_write(&c), "tensor W", "more than");

    onnx_case_init(&c, "Conv");
    c.wdims[0] = 2;              /* [2,3,3,4] = 72 values: 3 input channels for a 2-channel input */
    c.wdims[1] = 3;
    c.wdims[3] = 4;
    EXPECT_ERROR(onnx_case_write(&c), "Conv y", "does not match 2 input channels");
}

/* Single-input ops whose one attribute or constant is out of range. */
static void test_onnx_axes_and_indices(void **state)
{
    (void)state;
    onnx_case c;
    onnx_case_init(&c, "Softmax");
    c.node.n_input = 1;
    onnx_case_attr(&c, "axis", (int64_t[]){7}, -1);
    EXPECT_ERROR(onnx_case_write(&c), "Softmax y", "axis");

    onnx_case_init(&c, "Unsqueeze");   /* 1 << 40 was a shift overflow */
    c.node.n_input = 1;
    onnx_case_attr(&c, "axes", (int64_t[]){40}, 1);
    EXPECT_ERROR(onnx_case_write(&c), "Unsqueeze y", "axes");

    onnx_case_init(&c, "Squeeze");
    c.node.n_input = 1;
    onnx_case_attr(&c, "axes", (int64_t[]){-9}, 1);
    EXPECT_ERROR(onnx_case_write(&c), "Squeeze y", "axes");

    onnx_case_init(&c, "Flatten");
    c.node.n_input = 1;
    onnx_case_attr(&c, "axis", (int64_t[]){99}, -1);
    EXPECT_ERROR(onnx_case_write(&c), "Flatten y", "axis");

    onnx_case_init(&c, "Gather");     /* indices -3,-2,-1,0 on axis 0 of size 1 */
    c.w.n_dims = 1;
    c.wdims[0] = 4;
    c.w.n_float_data = 4;
    EXPECT_ERROR(onnx_case_write(&c), "Gather y", "index -3", "out of range");

    onnx_case_init(&c, "Gather");     /* 1e10 as an index: was a float->int overflow */
    c.w.n_dims = 1;
    c.wdims[0] = 1;
    c.w.n_float_data = 1;
    c.wdata[0] = 1e10f;
    EXPECT_ERROR(onnx_case_write(&c), "Gather y", "index");

    onnx_case_init(&c, "Reshape");
    c.w.n_dims = 1;
    c.wdims[0] = 2;
    c.w.n_float_data = 2;
    c.wdata[0] = NAN;
    c.wdata[1] = 1;
    EXPECT_ERROR(onnx_case_write(&c), "Reshape y", "bad dimension");

    onnx_case_init(&c, "Reshape");
    c.wdata[0] = 3e9f;
    c.wdata[1] = 3e9f;
    c.w.n_dims = 1;
    c.wdims[0] = 2;
    c.w.n_float_data = 2;
    EXPECT_ERROR(onnx_case_write(&c), "Reshape y", "bad dimension");

    onnx_case_init(&c, "Concat");
    c.node.n_input = 0;
    EXPECT_ERROR(onnx_case_write(&c), "Concat y", "inputs");

    onnx_case_init(&c, "Pad");
    c.node.n_input = 1;
    onnx_case_attr(&c, "pads", (int64_t[]){0, 0, -1, 0, 0, 0, 0, 0}, 8);
    EXPECT_ERROR(onnx_case_write(&c), "Pad y", "pads");
}

/* The real landmark model with its first Conv's strides set to 0. */
static void test_onnx_real_model_stride_zero(void **state)
{
    (void)state;
    FILE *f = fopen("models/faceplugin/fr_landmark.onnx", "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, (size_t)n, buf);
    free(buf);
    assert_non_null(m);
    Onnx__NodeProto *conv = NULL;
    Onnx__AttributeProto *strides = NULL;
    for (size_t i = 0; i < m->graph->n_node && !strides; i++)
        if (!strcmp(m->graph->node[i]->op_type, "Conv"))
            for (size_t k = 0; k < m->graph->node[i]->n_attribute; k++)
                if (!strcmp(m->graph->node[i]->attribute[k]->name, "strides")) {
                    conv = m->graph->node[i];
                    strides = conv->attribute[k];
                }
    assert_non_null(strides);
    strides->ints[0] = strides->ints[1] = 0;
    size_t len = onnx__model_proto__get_packed_size(m);
    buf = malloc(len);
    onnx__model_proto__pack(m, buf);
    const char *path = tmp_path("fr_landmark-stride0.onnx");
    write_bytes(path, buf, len);
    free(buf);
    char conv_out[200];
    snprintf(conv_out, sizeof conv_out, "Conv %s", conv->output[0]);
    EXPECT_ERROR(path, conv_out, "strides");
    onnx__model_proto__free_unpacked(m, NULL);
}

/* ---- TF.js ------------------------------------------------------------- */

/* Placeholder x [1,8,8,2]; Const f [3,3,2,4] (72 float32 in weights.bin);
 * Conv2D(x, f) "conv" with strides [1,1,1,1]. Tests break one thing each. */
static json_t *tfjs_case(void)
{
    return json_pack(
        "{s:{s:[{s:s,s:s,s:{s:{s:{s:[{s:s},{s:s},{s:s},{s:s}]}}}},{s:s,s:s},"
        "{s:s,s:s,s:[s,s],s:{s:{s:{s:[s,s,s,s]}},s:{s:s}}}]},"
        "s:[{s:[s],s:[{s:s,s:[i,i,i,i],s:s}]}]}",
        "modelTopology", "node",
        "name", "x", "op", "Placeholder", "attr", "shape", "shape", "dim", "size", "1", "size", "8", "size", "8",
        "size", "2",
        "name", "f", "op", "Const",
        "name", "conv", "op", "Conv2D", "input", "x", "f", "attr", "strides", "list", "i", "1", "1", "1", "1",
        "padding", "s", "U0FNRQ==",   /* "SAME" */
        "weightsManifest", "paths", "weights.bin", "weights", "name", "f", "shape", 3, 3, 2, 4, "dtype", "float32");
}

static json_t *tfjs_node(json_t *model, int i)
{
    return json_array_get(json_object_get(json_object_get(model, "modelTopology"), "node"), (size_t)i);
}

/* Writes model.json (taking the reference) and weights.bin of n floats. */
static const char *tfjs_write(json_t *model, size_t n_floats)
{
    float w[128] = {0};
    for (size_t i = 0; i < 128; i++) w[i] = (float)(i % 5) - 2;
    write_bytes(tmp_path("weights.bin"), w, n_floats * sizeof(float));
    const char *path = tmp_path("model.json");
    assert_int_equal(json_dump_file(model, path, 0), 0);
    json_decref(model);
    return path;
}

static void test_tfjs_case_is_valid(void **state)
{
    (void)state;
    char err[256];
    nn_model *m = nn_model_load(tfjs_write(tfjs_case(), 72), err, sizeof err);
    if (!m) fail_msg("the base case must load: %s", err);
    nn_model_free(m);
}

static void set_list(json_t *node, const char *attr, json_t *list)
{
    json_object_set_new(json_object_get(node, "attr"), attr, json_pack("{s:{s:o}}", "list", "i", list));
}

static void test_tfjs_conv_attributes(void **state)
{
    (void)state;
    json_t *m = tfjs_case();
    set_list(tfjs_node(m, 2), "strides", json_pack("[s,s,s,s]", "1", "0", "0", "1"));   /* was SIGFPE */
    EXPECT_ERROR(tfjs_write(m, 72), "Conv2D conv", "strides");

    m = tfjs_case();
    set_list(tfjs_node(m, 2), "dilations", json_pack("[i,i,i,i]", 1, -1, 1, 1));
    EXPECT_ERROR(tfjs_write(m, 72), "Conv2D conv", "dilations");

    m = tfjs_case();
    set_list(tfjs_node(m, 2), "strides", json_pack("[s,s,s,s]", "1", "99999999999999999999", "1", "1"));
    char err[256];   /* clamped to INT_MAX: one output row, no overflow in SAME padding */
    nn_model *ok = nn_model_load(tfjs_write(m, 72), err, sizeof err);
    if (!ok) fail_msg("huge stride: %s", err);
    nn_model_free(ok);

    m = tfjs_case();
    json_object_set_new(json_object_get(tfjs_node(m, 2), "attr"), "padding", json_pack("{s:s}", "s", "RVhQTElDSVQ="));
    set_list(tfjs_node(m, 2), "explicit_paddings", json_pack("[i,i,i,i,i,i,i,i]", 0, 0, -5, 0, 0, 0, 0, 0));
    EXPECT_ERROR(tfjs_write(m, 72), "Conv2D conv", "padding");
}

static void test_tfjs_missing_names(void **state)
{
    (void)state;
    json_t *m = tfjs_case();
    json_object_del(tfjs_node(m, 0), "name");   /* a Placeholder without name: was a NULL dereference */
    EXPECT_ERROR(tfjs_write(m, 72), "model.json: node 0 has no name");

    m = tfjs_case();
    json_object_del(tfjs_node(m, 2), "op");
    EXPECT_ERROR(tfjs_write(m, 72), "node conv has no op");

    m = tfjs_case();
    json_object_set_new(tfjs_node(m, 2), "name", json_string(""));
    EXPECT_ERROR(tfjs_write(m, 72), "node 2 has no name");
}

static void test_tfjs_weights(void **state)
{
    (void)state;
    EXPECT_ERROR(tfjs_write(tfjs_case(), 60), "weight f", "truncated");          /* .bin too short */
    EXPECT_ERROR(tfjs_write(tfjs_case(), 80), "manifest describes 288 bytes", "hold 320");   /* too long */

    json_t *m = tfjs_case();
    json_t *shape = json_object_get(json_array_get(json_object_get(json_array_get(
        json_object_get(m, "weightsManifest"), 0), "weights"), 0), "shape");
    json_array_clear(shape);
    for (int i = 0; i < 4; i++) json_array_append_new(shape, json_integer(1 << 20));   /* 2^80 values */
    EXPECT_ERROR(tfjs_write(m, 72), "weight f", "more than");

    m = tfjs_case();   /* filter for 3 input channels on a 2-channel input */
    shape = json_object_get(json_array_get(json_object_get(json_array_get(
        json_object_get(m, "weightsManifest"), 0), "weights"), 0), "shape");
    json_array_set_new(shape, 2, json_integer(3));
    json_array_set_new(shape, 3, json_integer(2));   /* [3,3,3,2] = 54 values */
    EXPECT_ERROR(tfjs_write(m, 54), "Conv2D conv", "does not match input channels");
}

/* Replaces node 2 by op(x, f) with f's 72 values laid out as `dims`. */
static json_t *tfjs_op_on_const(const char *op, json_t *fshape)
{
    json_t *m = tfjs_case();
    json_t *node = tfjs_node(m, 2);
    json_object_set_new(node, "op", json_string(op));
    json_object_set_new(node, "attr", json_object());
    json_object_set_new(json_array_get(json_object_get(json_array_get(json_object_get(m, "weightsManifest"), 0),
                                                       "weights"), 0), "shape", fshape);
    return m;
}

static void test_tfjs_constants_as_ints(void **state)
{
    (void)state;
    /* weights.bin holds (i % 5) - 2: -2,-1,0,1,2,... and f is cut to the shape */
    EXPECT_ERROR(tfjs_write(tfjs_op_on_const("Transpose", json_pack("[i]", 4)), 4), "Transpose conv", "f[0] = -2");
    EXPECT_ERROR(tfjs_write(tfjs_op_on_const("Pad", json_pack("[i,i]", 4, 2)), 8), "Pad conv", "f[0] = -2");
    EXPECT_ERROR(tfjs_write(tfjs_op_on_const("Reshape", json_pack("[i]", 4)), 4), "Reshape conv", "f[0] = -2");

    static const struct { const char *op; float v; const char *needle; } one[] = {
        {"Reshape", 1e20f, "is not an integer"},   /* float->int overflow: was UB */
        {"Reshape", NAN, "is not an integer"},
        {"Mean", 4, "[-4, 3]"},                     /* axis 4 of a rank-4 input */
        {"ConcatV2", 1e10f, "is not an integer"},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        json_t *m = tfjs_op_on_const(one[i].op, json_pack("[i]", 1));
        if (!strcmp(one[i].op, "ConcatV2")) json_object_set_new(tfjs_node(m, 2), "input", json_pack("[s,s,s]", "x", "x", "f"));
        write_bytes(tmp_path("weights.bin"), &one[i].v, sizeof one[i].v);
        const char *path = tmp_path("model.json");
        assert_int_equal(json_dump_file(m, path, 0), 0);
        json_decref(m);
        EXPECT_ERROR(path, one[i].op, one[i].needle);
    }

    json_t *m = tfjs_op_on_const("Squeeze", json_pack("[i]", 72));
    set_list(tfjs_node(m, 2), "squeeze_dims", json_pack("[i]", 40));   /* was a shift overflow */
    json_array_remove(json_object_get(tfjs_node(m, 2), "input"), 1);
    EXPECT_ERROR(tfjs_write(m, 72), "Squeeze conv", "squeeze_dims");
}

/* A chain of 1,200 convolutions: the depth-first translation stops at 1,000
 * nodes with an error instead of overflowing the stack (4,000 did, under ASan). */
static void test_tfjs_too_deep(void **state)
{
    (void)state;
    json_t *m = tfjs_case(), *nodes = json_object_get(json_object_get(m, "modelTopology"), "node");
    json_t *shape = json_object_get(json_array_get(json_object_get(json_array_get(
        json_object_get(m, "weightsManifest"), 0), "weights"), 0), "shape");
    json_array_set_new(shape, 2, json_integer(2));
    json_array_set_new(shape, 3, json_integer(2));   /* f [3,3,2,2]: 2 -> 2 channels, SAME */
    char prev[16] = "x", name[16];
    json_array_remove(nodes, 2);
    for (int i = 0; i < 1200; i++) {
        snprintf(name, sizeof name, "c%d", i);
        json_array_append_new(nodes, json_pack("{s:s,s:s,s:[s,s],s:{s:{s:s}}}", "name", name, "op", "Conv2D",
                                               "input", prev, "f", "attr", "padding", "s", "U0FNRQ=="));
        snprintf(prev, sizeof prev, "%s", name);
    }
    EXPECT_ERROR(tfjs_write(m, 36), "deeper than 1000");
}

/* The real facemesh model with its first convolution's strides set to 0. */
static void test_tfjs_real_model_stride_zero(void **state)
{
    (void)state;
    json_t *m = json_load_file("models/human/facemesh.json", 0, NULL);
    assert_non_null(m);
    json_t *nodes = json_object_get(json_object_get(m, "modelTopology"), "node"), *conv = NULL;
    for (size_t i = 0; i < json_array_size(nodes) && !conv; i++)
        if (strstr(json_string_value(json_object_get(json_array_get(nodes, i), "op")), "Conv2D"))
            conv = json_array_get(nodes, i);
    assert_non_null(conv);
    set_list(conv, "strides", json_pack("[s,s,s,s]", "1", "0", "0", "1"));
    char cmd[256], needle[300];
    snprintf(cmd, sizeof cmd, "ln -sf \"$PWD/models/human/facemesh.bin\" %s", tmp_path("facemesh.bin"));
    assert_int_equal(system(cmd), 0);
    const char *path = tmp_path("facemesh.json");
    assert_int_equal(json_dump_file(m, path, 0), 0);
    snprintf(needle, sizeof needle, "%s", json_string_value(json_object_get(conv, "name")));
    json_decref(m);
    EXPECT_ERROR(path, needle, "strides");
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nn-load-test-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_case_is_valid),
        cmocka_unit_test(test_onnx_conv_attributes),
        cmocka_unit_test(test_onnx_pool_attributes),
        cmocka_unit_test(test_onnx_missing_names),
        cmocka_unit_test(test_onnx_weights),
        cmocka_unit_test(test_onnx_axes_and_indices),
        cmocka_unit_test(test_onnx_real_model_stride_zero),
        cmocka_unit_test(test_tfjs_case_is_valid),
        cmocka_unit_test(test_tfjs_conv_attributes),
        cmocka_unit_test(test_tfjs_missing_names),
        cmocka_unit_test(test_tfjs_weights),
        cmocka_unit_test(test_tfjs_constants_as_ints),
        cmocka_unit_test(test_tfjs_too_deep),
        cmocka_unit_test(test_tfjs_real_model_stride_zero),
    };
    return cmocka_run_group_tests_name("nn_load", tests, setup, teardown);
}
