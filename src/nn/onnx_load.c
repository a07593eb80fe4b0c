/*
 * onnx_load.c - ONNX (opset 9) models into the internal graph.
 *
 * ONNX tensors are NCHW, XNNPACK wants NHWC. Each ONNX value remembers how it
 * is stored: 4-D activations produced by convolutions and pooling stay NHWC,
 * everything else is stored as ONNX lays it out. Ops that care convert their
 * inputs on demand (a transpose node, folded away for constants and for
 * tensors whose spatial size is 1), so the only real transposes left are at
 * the model boundary and where the model itself reshapes feature maps.
 */
#include "nn/graph.h"
#include "onnx/onnx.pb-c.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int id;          /* tensor as stored */
    int nhwc;        /* 1: logical NCHW 4-D tensor stored as NHWC */
    int plain_id;    /* cached NCHW-stored copy, or -1 */
    int nhwc_id;     /* cached NHWC-stored copy, or -1 */
} onnx_value;

typedef struct {
    nn_graph *g;
    onnx_value *vals;
    int n_vals, cap_vals;
    const Onnx__NodeProto *node;    /* node being translated, for messages */
} onnx_ctx;

static const int TO_NHWC[4] = {0, 2, 3, 1};
static const int TO_NCHW[4] = {0, 3, 1, 2};
static const int PHYS_AXIS[4] = {0, 3, 1, 2};   /* logical NCHW axis -> NHWC position */

static onnx_value *find_value(onnx_ctx *c, const char *name)
{
    for (int i = c->n_vals - 1; i >= 0; i--)
        if (strcmp(c->vals[i].name, name) == 0) return &c->vals[i];
    return NULL;
}

static int put_value(onnx_ctx *c, const char *name, int id, int nhwc)
{
    if (id < 0) return -1;
    if (c->n_vals == c->cap_vals) {
        int cap = c->cap_vals ? 2 * c->cap_vals : 256;
        onnx_value *v = realloc(c->vals, (size_t)cap * sizeof *v);
        if (!v) return nn_fail(c->g, "out of memory");
        c->vals = v;
        c->cap_vals = cap;
    }
    c->vals[c->n_vals++] = (onnx_value){name, id, nhwc, nhwc ? -1 : id, nhwc ? id : -1};
    return 0;
}

static nn_shape logical_shape(onnx_ctx *c, const onnx_value *v)
{
    nn_shape s = c->g->tensors[v->id].shape;
    if (!v->nhwc) return s;
    nn_shape l = s;
    for (int i = 0; i < 4; i++) l.dims[i] = s.dims[TO_NCHW[i]];
    return l;
}

/* The value stored as ONNX lays it out. */
static int as_plain(onnx_ctx *c, onnx_value *v)
{
    if (v->plain_id < 0) {
        char name[256];
        snprintf(name, sizeof name, "%s.nchw", v->name);
        v->plain_id = nn_add_transpose(c->g, c->node->op_type, name, v->id, TO_NCHW);
    }
    return v->plain_id;
}

/* The value as NHWC; lower-rank values are first aligned to rank 4 (broadcasting). */
static int as_nhwc(onnx_ctx *c, onnx_value *v)
{
    if (v->nhwc_id >= 0) return v->nhwc_id;
    nn_shape s = c->g->tensors[v->id].shape;
    char name[256];
    int x = v->id;
    if (s.rank > 4) return nn_fail(c->g, "%s: %s has rank %d, expected at most 4", c->node->op_type, v->name, s.rank);
    if (s.rank < 4) {
        int dims[4] = {1, 1, 1, 1};
        for (int i = 0; i < s.rank; i++) dims[4 - s.rank + i] = s.dims[i];
        snprintf(name, sizeof name, "%s.rank4", v->name);
        x = nn_add_reshape(c->g, c->node->op_type, name, x, nn_shape_make(4, dims));
        if (x < 0) return x;
    }
    snprintf(name, sizeof name, "%s.nhwc", v->name);
    int id = nn_add_transpose(c->g, c->node->op_type, name, x, TO_NHWC);
    if (s.rank == 4) v->nhwc_id = id;
    return id;
}

/* ---- attributes and inputs ------------------------------------------ */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)   /* names checked by check_graph_names */
        if (strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}

/* Integer attribute in [lo, hi] (def when absent); -1 with a message naming it otherwise. */
static int attr_int(onnx_ctx *c, const char *out, const char *name, int def, int lo, int hi, int *v)
{
    const Onnx__AttributeProto *a = attr(c->node, name);
    if (!a || !a->has_i) { *v = def; return 0; }
    if (a->i < lo || a->i > hi)
        return nn_fail(c->g, "%s %s: attribute %s = %lld out of range [%d, %d]", c->node->op_type, out, name,
                       (long long)a->i, lo, hi);
    *v = (int)a->i;
    return 0;
}

/* Every value of an int list attribute in [lo, hi], or -1 with a message naming it. */
static int attr_ints_in(onnx_ctx *c, const char *out, const char *name, const int *v, int n, int lo, int hi)
{
    for (int i = 0; i < n; i++)
        if (v[i] < lo || v[i] > hi)
            return nn_fail(c->g, "%s %s: attribute %s[%d] = %d out of range [%d, %d]", c->node->op_type, out, name,
                           i, v[i], lo, hi);
    return 0;
}

static long attr_i(const Onnx__NodeProto *n, const char *name, long def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? (long)a->i : def;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}

/* Copies an int list attribute (clamped to int range); returns its length or -1. */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int *out, int max)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) return -1;
    int k = (int)a->n_ints < max ? (int)a->n_ints : max;
    for (int i = 0; i < k; i++) {
        int64_t v = a->ints[i];
        out[i] = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
    }
    return k;
}

static onnx_value *input(onnx_ctx *c, int i)
{
    const Onnx__NodeProto *n = c->node;
    if (i >= (int)n->n_input || !n->input[i][0]) {
        nn_fail(c->g, "%s %s: missing input %d", n->op_type, n->n_output ? n->output[0] : "", i);
        return NULL;
    }
    onnx_value *v = find_value(c, n->input[i]);
    if (!v) nn_fail(c->g, "%s %s: unknown input tensor %s", n->op_type, n->n_output ? n->output[0] : "", n->input[i]);
    return v;
}

static const float *const_data(onnx_ctx *c, onnx_value *v, size_t want)
{
    const nn_tensor *t = &c->g->tensors[as_plain(c, v)];
    if (!t->data) {
        nn_fail(c->g, "%s %s: input %s must be a constant", c->node->op_type, c->node->output[0], v->name);
        return NULL;
    }
    if (want && nn_shape_size(&t->shape) != want) {
        nn_fail(c->g, "%s %s: constant %s has %zu values, expected %zu", c->node->op_type,
                c->node->output[0], v->name, nn_shape_size(&t->shape), want);
        return NULL;
    }
    return t->data;
}

/* ---- tensors from the file -------------------------------------------- */

static int tensor_from_proto(onnx_ctx *c, const Onnx__TensorProto *tp, const char *name)
{
    if (tp->n_dims > NN_MAX_RANK) return nn_fail(c->g, "tensor %s: rank %zu too large", name, tp->n_dims);
    nn_shape s = {.rank = (int)tp->n_dims};
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0 || tp->dims[i] > (int64_t)NN_MAX_ELEMENTS)
            return nn_fail(c->g, "tensor %s: dimension %zu is %lld", name, i, (long long)tp->dims[i]);
        s.dims[i] = (int)tp->dims[i];
    }
    if (!nn_shape_ok(&s)) return nn_fail(c->g, "tensor %s: more than %zu values", name, NN_MAX_ELEMENTS);
    size_t n = nn_shape_size(&s);
    float *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return nn_fail(c->g, "tensor %s: out of memory", name);
    size_t elem = tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? 4 :
                  tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 :
                  tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 :
                  tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? 8 : 0;
    if (!elem) { free(d); return nn_fail(c->g, "tensor %s: unsupported data type %d", name, tp->data_type); }
    if (tp->has_raw_data) {
        if (tp->raw_data.len != n * elem) {
            free(d);
            return nn_fail(c->g, "tensor %s: %zu bytes of data, expected %zu (truncated?)", name, tp->raw_data.len, n * elem);
        }
        const unsigned char *r = tp->raw_data.data;
        for (size_t i = 0; i < n; i++) {
            if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { float v; memcpy(&v, r + 4 * i, 4); d[i] = v; }
            else if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) { int32_t v; memcpy(&v, r + 4 * i, 4); d[i] = (float)v; }
            else if (tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) { int64_t v; memcpy(&v, r + 8 * i, 8); d[i] = (float)v; }
            else { double v; memcpy(&v, r + 8 * i, 8); d[i] = (float)v; }
        }
    } else {
        size_t have = tp->n_float_data ? tp->n_float_data : tp->n_int64_data ? tp->n_int64_data :
                      tp->n_int32_data ? tp->n_int32_data : tp->n_double_data;
        if (have != n) { free(d); return nn_fail(c->g, "tensor %s: %zu values, expected %zu", name, have, n); }
        for (size_t i = 0; i < n; i++)
            d[i] = tp->n_float_data ? tp->float_data[i] : tp->n_int64_data ? (float)tp->int64_data[i] :
                   tp->n_int32_data ? (float)tp->int32_data[i] : (float)tp->double_data[i];
    }
    return nn_tensor_add(c->g, name, s, d);
}

/* ---- op translations ------------------------------------------------- */

typedef int (*op_fn)(onnx_ctx *c, const char *out);

static int op_conv(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0), *w = input(c, 1);
    if (!x || !w) return -1;
    nn_shape ws = c->g->tensors[w->id].shape, xs = logical_shape(c, x);
    if (ws.rank != 4 || xs.rank != 4) return nn_fail(c->g, "Conv %s: only 2-D convolution is supported", out);
    const float *wd = const_data(c, w, 0);
    if (!wd) return -1;
    nn_conv_params p = {0};
    int ks[2] = {ws.dims[2], ws.dims[3]}, st[2] = {1, 1}, dl[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    attr_ints(c->node, "strides", st, 2);
    attr_ints(c->node, "dilations", dl, 2);
    attr_ints(c->node, "pads", pads, 4);
    if (attr_ints_in(c, out, "strides", st, 2, 1, INT_MAX) || attr_ints_in(c, out, "dilations", dl, 2, 1, INT_MAX) ||
        attr_ints_in(c, out, "pads", pads, 4, 0, INT_MAX))
        return -1;
    const Onnx__AttributeProto *ap = attr(c->node, "auto_pad");
    if (ap && ap->has_s && ap->s.len && strncmp((const char *)ap->s.data, "NOTSET", ap->s.len) != 0 &&
        strncmp((const char *)ap->s.data, "VALID", ap->s.len) != 0)
        return nn_fail(c->g, "Conv %s: auto_pad %.*s unsupported", out, (int)ap->s.len, ap->s.data);
    p.kh = ks[0]; p.kw = ks[1]; p.sh = st[0]; p.sw = st[1]; p.dh = dl[0]; p.dw = dl[1];
    p.pad_top = pads[0]; p.pad_left = pads[1]; p.pad_bottom = pads[2]; p.pad_right = pads[3];
    if (attr_int(c, out, "group", 1, 1, xs.dims[1] > 1 ? xs.dims[1] : 1, &p.groups)) return -1;
    p.out_min = -INFINITY;
    p.out_max = INFINITY;
    p.cout = ws.dims[0];
    p.cin = xs.dims[1];
    if (ks[0] < 1 || ks[1] < 1 || p.cout < 1 || p.cin != (long long)ws.dims[1] * p.groups)
        return nn_fail(c->g, "Conv %s: weight %s does not match %d input channels", out, w->name, p.cin);
    size_t per = (size_t)p.kh * p.kw * ws.dims[1];
    p.weights = malloc((size_t)p.cout * per * sizeof(float));
    p.bias = calloc((size_t)p.cout, sizeof(float));
    if (!p.weights || !p.bias) { free(p.weights); free(p.bias); return nn_fail(c->g, "Conv %s: out of memory", out); }
    /* OIHW -> O,H,W,I */
    int ci = ws.dims[1];
    for (int o = 0; o < p.cout; o++)
        for (int i = 0; i < ci; i++)
            for (int k = 0; k < p.kh * p.kw; k++)
                p.weights[(size_t)o * per + (size_t)k * ci + i] = wd[((size_t)o * ci + i) * p.kh * p.kw + k];
    if (c->node->n_input > 2 && c->node->input[2][0]) {
        onnx_value *b = input(c, 2);
        const float *bd = b ? const_data(c, b, (size_t)p.cout) : NULL;
        if (!bd) { free(p.weights); free(p.bias); return -1; }
        memcpy(p.bias, bd, (size_t)p.cout * sizeof(float));
    }
    int xin = as_nhwc(c, x);
    int id = xin < 0 ? -1 : nn_add_conv(c->g, "Conv", out, xin, &p);
    if (id < 0) { free(p.weights); free(p.bias); return -1; }
    return put_value(c, out, id, 1);
}

static int op_pool(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    const char *t = c->node->op_type;
    if (logical_shape(c, x).rank != 4) return nn_fail(c->g, "%s %s: input is not 4-D", t, out);
    if (strcmp(t, "GlobalAveragePool") == 0) {
        int xin = as_nhwc(c, x);
        return put_value(c, out, xin < 0 ? -1 : nn_add_gap(c->g, t, out, xin), 1);
    }
    nn_conv_params p = {0};
    int ks[2] = {0, 0}, st[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    if (attr_ints(c->node, "kernel_shape", ks, 2) != 2) return nn_fail(c->g, "%s %s: no kernel_shape", t, out);
    attr_ints(c->node, "strides", st, 2);
    attr_ints(c->node, "pads", pads, 4);
    if (attr_ints_in(c, out, "kernel_shape", ks, 2, 1, INT_MAX) || attr_ints_in(c, out, "strides", st, 2, 1, INT_MAX) ||
        attr_ints_in(c, out, "pads", pads, 4, 0, INT_MAX))
        return -1;
    if (attr_i(c->node, "ceil_mode", 0)) return nn_fail(c->g, "%s %s: ceil_mode unsupported", t, out);
    int has_pad = pads[0] || pads[1] || pads[2] || pads[3];
    if (strcmp(t, "AveragePool") == 0 && has_pad && attr_i(c->node, "count_include_pad", 0))
        return nn_fail(c->g, "%s %s: count_include_pad unsupported", t, out);
    p.kh = ks[0]; p.kw = ks[1]; p.sh = st[0]; p.sw = st[1];
    p.pad_top = pads[0]; p.pad_left = pads[1]; p.pad_bottom = pads[2]; p.pad_right = pads[3];
    int xin = as_nhwc(c, x);
    nn_op op = strcmp(t, "MaxPool") == 0 ? NN_OP_MAXPOOL : NN_OP_AVGPOOL;
    return put_value(c, out, xin < 0 ? -1 : nn_add_pool(c->g, t, out, op, xin, &p), 1);
}

static int op_unary(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    const char *t = c->node->op_type;
    nn_unary_kind k = strcmp(t, "Relu") == 0 ? NN_UN_RELU : strcmp(t, "Sigmoid") == 0 ? NN_UN_SIGMOID :
                      strcmp(t, "Tanh") == 0 ? NN_UN_TANH : strcmp(t, "Exp") == 0 ? NN_UN_EXP :
                      strcmp(t, "Abs") == 0 ? NN_UN_ABS : strcmp(t, "Neg") == 0 ? NN_UN_NEG :
                      strcmp(t, "Sqrt") == 0 ? NN_UN_SQRT : NN_UN_CLAMP;
    float lo = attr_f(c->node, "min", -INFINITY), hi = attr_f(c->node, "max", INFINITY);
    return put_value(c, out, nn_add_unary(c->g, t, out, x->id, k, lo, hi), x->nhwc);
}

static int op_identity(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    onnx_value copy = *x;
    if (put_value(c, out, x->id, x->nhwc)) return -1;
    c->vals[c->n_vals - 1].plain_id = copy.plain_id;
    c->vals[c->n_vals - 1].nhwc_id = copy.nhwc_id;
    return 0;
}

/* Per-channel scale/shift of a [N,C] or [N,C,H,W] tensor, stored channel-last. */
static int channel_affine(onnx_ctx *c, const char *out, onnx_value *x, const float *scale, const float *shift, int ch)
{
    nn_shape ls = logical_shape(c, x);
    if ((ls.rank != 4 && ls.rank != 2) || ls.dims[1] != ch)
        return nn_fail(c->g, "%s %s: input %s must be [N,%d] or [N,%d,H,W]", c->node->op_type, out, x->name, ch, ch);
    int xin = ls.rank == 4 ? as_nhwc(c, x) : x->id;
    char name[256];
    snprintf(name, sizeof name, "%s.scale", out);
    int sc = nn_const_add(c->g, name, nn_shape_make(1, &ch), scale);
    snprintf(name, sizeof name, "%s.shift", out);
    int sh = nn_const_add(c->g, name, nn_shape_make(1, &ch), shift);
    snprintf(name, sizeof name, "%s.scaled", out);
    int m = nn_add_binary(c->g, c->node->op_type, name, NN_BIN_MUL, xin, sc);
    int a = m < 0 || sh < 0 ? -1 : nn_add_binary(c->g, c->node->op_type, out, NN_BIN_ADD, m, sh);
    return put_value(c, out, a, ls.rank == 4);
}

static int op_batchnorm(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0), *s = input(c, 1), *b = input(c, 2), *mean = input(c, 3), *var = input(c, 4);
    if (!x || !s || !b || !mean || !var) return -1;
    nn_shape ls = logical_shape(c, x);
    int ch = ls.rank >= 2 ? ls.dims[1] : 0;
    const float *sd = const_data(c, s, (size_t)ch), *bd = const_data(c, b, (size_t)ch);
    const float *md = const_data(c, mean, (size_t)ch), *vd = const_data(c, var, (size_t)ch);
    if (!sd || !bd || !md || !vd) return -1;
    float eps = attr_f(c->node, "epsilon", 1e-5f);
    float *scale = malloc((size_t)ch * sizeof *scale), *shift = malloc((size_t)ch * sizeof *shift);
    if (!scale || !shift) { free(scale); free(shift); return nn_fail(c->g, "out of memory"); }
    for (int i = 0; i < ch; i++) {
        scale[i] = sd[i] / sqrtf(vd[i] + eps);
        shift[i] = bd[i] - md[i] * scale[i];
    }
    int rc = channel_affine(c, out, x, scale, shift, ch);
    free(scale);
    free(shift);
    return rc;
}

static int op_prelu(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0), *s = input(c, 1);
    if (!x || !s) return -1;
    nn_shape ls = logical_shape(c, x);
    const float *sd = const_data(c, s, 0);
    if (!sd) return -1;
    size_t n = nn_shape_size(&c->g->tensors[s->id].shape);
    int ch = ls.rank >= 2 ? ls.dims[1] : 1;
    if (n != 1 && n != (size_t)ch) return nn_fail(c->g, "PRelu %s: slope %s must be per channel", out, s->name);
    if (ls.rank != 4 && ls.rank != 2 && n != 1) return nn_fail(c->g, "PRelu %s: unsupported rank", out);
    int xin = ls.rank == 4 ? as_nhwc(c, x) : x->id;
    char name[256];
    snprintf(name, sizeof name, "%s.slope", out);
    int len = (int)n;
    int sl = nn_const_add(c->g, name, nn_shape_make(1, &len), sd);
    return put_value(c, out, xin < 0 || sl < 0 ? -1 : nn_add_prelu(c->g, "PRelu", out, xin, sl), ls.rank == 4);
}

static int op_binary(onnx_ctx *c, const char *out)
{
    onnx_value *a = input(c, 0), *b = input(c, 1);
    if (!a || !b) return -1;
    const char *t = c->node->op_type;
    nn_binary_kind k = strcmp(t, "Add") == 0 ? NN_BIN_ADD : strcmp(t, "Sub") == 0 ? NN_BIN_SUB :
                       strcmp(t, "Mul") == 0 ? NN_BIN_MUL : strcmp(t, "Div") == 0 ? NN_BIN_DIV :
                       strcmp(t, "Max") == 0 ? NN_BIN_MAX : NN_BIN_MIN;
    nn_shape la = logical_shape(c, a), lb = logical_shape(c, b);
    int r = la.rank > lb.rank ? la.rank : lb.rank;
    if (r == 4 && (a->nhwc || b->nhwc)) {
        int x = as_nhwc(c, a), y = x < 0 ? -1 : as_nhwc(c, b);
        return put_value(c, out, y < 0 ? -1 : nn_add_binary(c->g, t, out, k, x, y), 1);
    }
    int x = as_plain(c, a), y = x < 0 ? -1 : as_plain(c, b);
    return put_value(c, out, y < 0 ? -1 : nn_add_binary(c->g, t, out, k, x, y), 0);
}

/* MatMul / Gemm with a constant right-hand side: a fully connected layer. */
static int fc_from(onnx_ctx *c, const char *out, onnx_value *a, onnx_value *w, int trans_b,
                   float alpha, float beta, onnx_value *bias)
{
    nn_shape ws = c->g->tensors[w->id].shape;
    if (ws.rank != 2) return nn_fail(c->g, "%s %s: weight %s is not 2-D", c->node->op_type, out, w->name);
    const float *wd = const_data(c, w, 0);
    if (!wd) return -1;
    nn_fc_params p;
    if (nn_fc_from_matrix(c->g, wd, &ws, trans_b, alpha, &p)) return -1;
    if (bias) {
        const float *bd = const_data(c, bias, 0);
        size_t n = bd ? nn_shape_size(&c->g->tensors[bias->id].shape) : 0;
        if (!bd || (n != 1 && n != (size_t)p.m)) {
            free(p.weights); free(p.bias);
            return nn_fail(c->g, "%s %s: bias %s must have 1 or %d values", c->node->op_type, out, bias->name, p.m);
        }
        for (int o = 0; o < p.m; o++) p.bias[o] = beta * bd[n == 1 ? 0 : o];
    }
    int x = as_plain(c, a);
    int id = x < 0 ? -1 : nn_add_fc(c->g, c->node->op_type, out, x, &p);
    if (id < 0) { free(p.weights); free(p.bias); return -1; }
    return put_value(c, out, id, 0);
}

static int op_matmul(onnx_ctx *c, const char *out)
{
    onnx_value *a = input(c, 0), *b = input(c, 1);
    if (!a || !b) return -1;
    return fc_from(c, out, a, b, 0, 1.0f, 1.0f, NULL);
}

static int op_gemm(onnx_ctx *c, const char *out)
{
    onnx_value *a = input(c, 0), *b = input(c, 1), *bias = NULL;
    if (!a || !b) return -1;
    if (attr_i(c->node, "transA", 0)) return nn_fail(c->g, "Gemm %s: transA unsupported", out);
    if (c->node->n_input > 2 && c->node->input[2][0] && !(bias = input(c, 2))) return -1;
    int trans_b;
    if (attr_int(c, out, "transB", 0, 0, 1, &trans_b)) return -1;
    return fc_from(c, out, a, b, trans_b, attr_f(c->node, "alpha", 1.0f),
                   attr_f(c->node, "beta", 1.0f), bias);
}

static int op_pad(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    const Onnx__AttributeProto *mode = attr(c->node, "mode");
    if (mode && mode->has_s && mode->s.len && strncmp((const char *)mode->s.data, "constant", mode->s.len) != 0)
        return nn_fail(c->g, "Pad %s: mode %.*s unsupported", out, (int)mode->s.len, mode->s.data);
    nn_shape ls = logical_shape(c, x);
    int pads[2 * NN_MAX_RANK] = {0}, before[NN_MAX_RANK], after[NN_MAX_RANK];
    if (attr_ints(c->node, "pads", pads, 2 * NN_MAX_RANK) != 2 * ls.rank)
        return nn_fail(c->g, "Pad %s: pads must have %d values", out, 2 * ls.rank);
    if (attr_ints_in(c, out, "pads", pads, 2 * ls.rank, 0, INT_MAX)) return -1;
    for (int i = 0; i < ls.rank; i++) {
        int p = x->nhwc ? PHYS_AXIS[i] : i;
        before[p] = pads[i];
        after[p] = pads[ls.rank + i];
    }
    return put_value(c, out, nn_add_pad(c->g, "Pad", out, x->id, before, after, attr_f(c->node, "value", 0)), x->nhwc);
}

static int op_concat(onnx_ctx *c, const char *out)
{
    int n = (int)c->node->n_input, ids[64], any_nhwc = 0, all4 = 1;
    long axis = attr_i(c->node, "axis", 0);
    if (n < 1 || n > 64) return nn_fail(c->g, "Concat %s: %d inputs, expected 1 to 64", out, n);
    onnx_value *vs[64];
    for (int i = 0; i < n; i++) {
        if (!(vs[i] = input(c, i))) return -1;
        any_nhwc |= vs[i]->nhwc;
        if (logical_shape(c, vs[i]).rank != 4) all4 = 0;
    }
    int rank = logical_shape(c, vs[0]).rank;
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return nn_fail(c->g, "Concat %s: attribute axis out of range for rank %d", out, rank);
    int nhwc = any_nhwc && all4;
    for (int i = 0; i < n; i++)
        if ((ids[i] = nhwc ? as_nhwc(c, vs[i]) : as_plain(c, vs[i])) < 0) return -1;
    return put_value(c, out, nn_add_concat(c->g, "Concat", out, ids, n, nhwc ? PHYS_AXIS[axis] : (int)axis), nhwc);
}

static int op_reshape(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0), *s = input(c, 1);
    if (!x || !s) return -1;
    const float *sd = const_data(c, s, 0);
    if (!sd) return -1;
    nn_shape in = logical_shape(c, x), to = {0};
    size_t n = nn_shape_size(&c->g->tensors[s->id].shape), known = 1;
    if (n > NN_MAX_RANK) return nn_fail(c->g, "Reshape %s: rank %zu too large", out, n);
    int minus = -1;
    to.rank = (int)n;
    for (size_t i = 0; i < n; i++) {
        int v;
        if (nn_float_to_int(sd[i], -1, (int)NN_MAX_ELEMENTS, &v) || (v == -1 && minus >= 0))
            return nn_fail(c->g, "Reshape %s: bad dimension %g in shape %s", out, (double)sd[i], s->name);
        if (v == 0 && (int)i < in.rank) v = in.dims[i];
        if (v == -1) { minus = (int)i; v = 1; }
        to.dims[i] = v;
        known *= (size_t)v;
        if (known > NN_MAX_ELEMENTS) return nn_fail(c->g, "Reshape %s: shape %s too large", out, s->name);
    }
    if (minus >= 0 && known) to.dims[minus] = (int)(nn_shape_size(&in) / known);
    int xin = as_plain(c, x);
    return put_value(c, out, xin < 0 ? -1 : nn_add_reshape(c->g, "Reshape", out, xin, to), 0);
}

static int op_flatten(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    nn_shape in = logical_shape(c, x);
    int axis;
    if (attr_int(c, out, "axis", 1, -in.rank, in.rank, &axis)) return -1;
    if (axis < 0) axis += in.rank;
    int d[2] = {1, 1};
    for (int i = 0; i < in.rank; i++) d[i < axis ? 0 : 1] *= in.dims[i];
    int xin = as_plain(c, x);
    return put_value(c, out, xin < 0 ? -1 : nn_add_reshape(c->g, "Flatten", out, xin, nn_shape_make(2, d)), 0);
}

static int op_unsqueeze(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    int axes[NN_MAX_RANK], na = attr_ints(c->node, "axes", axes, NN_MAX_RANK);
    nn_shape in = logical_shape(c, x), to = {0};
    int squeeze = strcmp(c->node->op_type, "Squeeze") == 0;
    int mask = 0;
    int rank = squeeze ? in.rank : in.rank + (na > 0 ? na : 0);
    if (rank > NN_MAX_RANK) return nn_fail(c->g, "%s %s: rank too large", c->node->op_type, out);
    for (int i = 0; i < na; i++) {
        int a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank || (mask >> a) & 1)
            return nn_fail(c->g, "%s %s: attribute axes[%d] = %d out of range or repeated", c->node->op_type, out, i, axes[i]);
        mask |= 1 << a;
    }
    if (squeeze) {
        for (int i = 0; i < in.rank; i++)
            if (!((na > 0 ? (mask >> i) & 1 : in.dims[i] == 1))) to.dims[to.rank++] = in.dims[i];
    } else {
        for (int i = 0, k = 0; i < rank; i++) to.dims[to.rank++] = (mask >> i) & 1 ? 1 : in.dims[k++];
    }
    int xin = as_plain(c, x);
    return put_value(c, out, xin < 0 ? -1 : nn_add_reshape(c->g, c->node->op_type, out, xin, to), 0);
}

static int op_transpose(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    nn_shape in = logical_shape(c, x);
    int perm[NN_MAX_RANK], phys[NN_MAX_RANK];
    if (attr_ints(c->node, "perm", perm, NN_MAX_RANK) != in.rank)
        for (int i = 0; i < in.rank; i++) perm[i] = in.rank - 1 - i;
    /* compose with the storage permutation so only one transpose runs */
    for (int i = 0; i < in.rank; i++) {
        if (perm[i] < 0 || perm[i] >= in.rank) return nn_fail(c->g, "Transpose %s: bad perm", out);
        phys[i] = x->nhwc ? PHYS_AXIS[perm[i]] : perm[i];
    }
    return put_value(c, out, nn_add_transpose(c->g, "Transpose", out, x->id, phys), 0);
}

static int op_slice(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    nn_shape in = logical_shape(c, x);
    int st[NN_MAX_RANK], en[NN_MAX_RANK], ax[NN_MAX_RANK];
    int starts[NN_MAX_RANK], ends[NN_MAX_RANK], steps[NN_MAX_RANK];
    int ns = attr_ints(c->node, "starts", st, NN_MAX_RANK), ne = attr_ints(c->node, "ends", en, NN_MAX_RANK);
    int na = attr_ints(c->node, "axes", ax, NN_MAX_RANK);
    if (ns < 0 || ns != ne || (na >= 0 && na != ns)) return nn_fail(c->g, "Slice %s: starts/ends/axes mismatch (opset 9 attributes expected)", out);
    for (int i = 0; i < in.rank; i++) { starts[i] = 0; ends[i] = in.dims[i]; steps[i] = 1; }
    for (int i = 0; i < ns; i++) {
        int a = na >= 0 ? ax[i] : i;
        if (a < 0) a += in.rank;
        if (a < 0 || a >= in.rank) return nn_fail(c->g, "Slice %s: bad axis", out);
        starts[a] = st[i];
        ends[a] = en[i];
    }
    int xin = as_plain(c, x);
    return put_value(c, out, xin < 0 ? -1 : nn_add_slice(c->g, "Slice", out, xin, starts, ends, steps), 0);
}

static int op_softmax(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    int axis, rank = logical_shape(c, x).rank;
    if (attr_int(c, out, "axis", 1, -rank, rank - 1, &axis)) return -1;
    int xin = as_plain(c, x);
    return put_value(c, out, xin < 0 ? -1 : nn_add_softmax(c->g, "Softmax", out, xin, axis), 0);
}

static int op_shape(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0);
    if (!x) return -1;
    nn_shape ls = logical_shape(c, x);
    float d[NN_MAX_RANK];
    for (int i = 0; i < ls.rank; i++) d[i] = (float)ls.dims[i];
    return put_value(c, out, nn_const_add(c->g, out, nn_shape_make(1, &ls.rank), d), 0);
}

static int op_gather(onnx_ctx *c, const char *out)
{
    onnx_value *x = input(c, 0), *i = input(c, 1);
    if (!x || !i) return -1;
    int axis, rank = logical_shape(c, x).rank;
    if (attr_int(c, out, "axis", 0, -rank, rank - 1, &axis)) return -1;
    int xin = as_plain(c, x), ii = xin < 0 ? -1 : as_plain(c, i);
    return put_value(c, out, ii < 0 ? -1 : nn_add_gather(c->g, "Gather", out, xin, ii, axis), 0);
}

static int op_constant(onnx_ctx *c, const char *out)
{
    const Onnx__AttributeProto *a = attr(c->node, "value");
    if (!a || !a->t) return nn_fail(c->g, "Constant %s: no tensor value", out);
    return put_value(c, out, tensor_from_proto(c, a->t, out), 0);
}

static const struct { const char *name; op_fn fn; } OPS[] = {
    {"Conv", op_conv}, {"MaxPool", op_pool}, {"AveragePool", op_pool}, {"GlobalAveragePool", op_pool},
    {"Relu", op_unary}, {"Sigmoid", op_unary}, {"Tanh", op_unary}, {"Exp", op_unary}, {"Abs", op_unary},
    {"Neg", op_unary}, {"Sqrt", op_unary}, {"Clip", op_unary},
    {"Identity", op_identity}, {"Dropout", op_identity},
    {"BatchNormalization", op_batchnorm}, {"PRelu", op_prelu},
    {"Add", op_binary}, {"Sub", op_binary}, {"Mul", op_binary}, {"Div", op_binary},
    {"Max", op_binary}, {"Min", op_binary},
    {"MatMul", op_matmul}, {"Gemm", op_gemm}, {"Pad", op_pad}, {"Concat", op_concat},
    {"Reshape", op_reshape}, {"Flatten", op_flatten}, {"Unsqueeze", op_unsqueeze}, {"Squeeze", op_unsqueeze},
    {"Transpose", op_transpose}, {"Slice", op_slice}, {"Softmax", op_softmax}, {"Shape", op_shape},
    {"Gather", op_gather}, {"Constant", op_constant},
};

static int translate_node(onnx_ctx *c, const Onnx__NodeProto *n)
{
    c->node = n;
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return nn_fail(c->g, "%s %s: operator domain %s unsupported", n->op_type, n->output[0], n->domain);
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(OPS[i].name, n->op_type) == 0) return OPS[i].fn(c, n->output[0]);
    return nn_fail(c->g, "unsupported operator %s (node output %s)", n->op_type, n->output[0]);
}

static int named(const char *s) { return s && s[0]; }

/* protobuf-c leaves absent optional strings NULL: everything the translation
 * looks up by name must have one, checked once here. */
static int check_graph_names(onnx_ctx *c, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (!named(gp->initializer[i]->name)) return nn_fail(c->g, "initializer %zu has no name", i);
    for (size_t i = 0; i < gp->n_input; i++)
        if (!named(gp->input[i]->name)) return nn_fail(c->g, "graph input %zu has no name", i);
    for (size_t i = 0; i < gp->n_output; i++)
        if (!named(gp->output[i]->name)) return nn_fail(c->g, "graph output %zu has no name", i);
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        const char *label = named(n->name) ? n->name : "(unnamed)";
        if (!named(n->op_type)) return nn_fail(c->g, "node %zu %s has no op_type", i, label);
        if (n->n_output < 1 || !named(n->output[0]))
            return nn_fail(c->g, "node %zu %s (%s) has no output", i, label, n->op_type);
        for (size_t k = 0; k < n->n_attribute; k++)
            if (!named(n->attribute[k]->name))
                return nn_fail(c->g, "node %zu %s (%s): attribute %zu has no name", i, label, n->op_type, k);
    }
    return 0;
}

/* ---- the model ------------------------------------------------------ */

static int is_initializer(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (strcmp(gp->initializer[i]->name, name) == 0) return 1;
    return 0;
}

static int add_graph_input(onnx_ctx *c, const Onnx__ValueInfoProto *vi)
{
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape)
        return nn_fail(c->g, "input %s: no tensor shape", vi->name);
    const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
    if (sp->n_dim > NN_MAX_RANK) return nn_fail(c->g, "input %s: rank too large", vi->name);
    nn_shape s = {.rank = (int)sp->n_dim};
    for (size_t i = 0; i < sp->n_dim; i++) {
        int64_t d = sp->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? sp->dim[i]->dim_value : 1;
        if (d < 1 || d > (1 << 24)) return nn_fail(c->g, "input %s: bad dimension", vi->name);
        s.dims[i] = (int)d;   /* symbolic (batch) dimensions are fixed to 1 */
    }
    int id = nn_tensor_add(c->g, vi->name, s, NULL);
    int *in = realloc(c->g->inputs, (size_t)(c->g->n_inputs + 1) * sizeof *in);
    if (id < 0 || !in) return nn_fail(c->g, "out of memory");
    c->g->inputs = in;
    in[c->g->n_inputs++] = id;
    return put_value(c, vi->name, id, 0);
}

static int build(onnx_ctx *c, const Onnx__GraphProto *gp)
{
    if (check_graph_names(c, gp)) return -1;
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (put_value(c, gp->initializer[i]->name, tensor_from_proto(c, gp->initializer[i], gp->initializer[i]->name), 0))
            return -1;
    for (size_t i = 0; i < gp->n_input; i++)
        if (!is_initializer(gp, gp->input[i]->name) && add_graph_input(c, gp->input[i])) return -1;
    if (c->g->n_inputs < 1) return nn_fail(c->g, "model has no input");
    for (size_t i = 0; i < gp->n_node; i++)
        if (translate_node(c, gp->node[i])) {
            char label[300];
            snprintf(label, sizeof label, "node %s", gp->node[i]->name);
            if (named(gp->node[i]->name)) nn_fail_prefix(c->g, label);
            return -1;
        }
    c->g->outputs = calloc(gp->n_output + 1, sizeof *c->g->outputs);
    c->g->output_names = calloc(gp->n_output + 1, sizeof *c->g->output_names);
    if (!c->g->outputs || !c->g->output_names) return nn_fail(c->g, "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        onnx_value *v = find_value(c, gp->output[i]->name);
        if (!v) return nn_fail(c->g, "output %s is never produced", gp->output[i]->name);
        c->node = gp->n_node ? gp->node[gp->n_node - 1] : NULL;
        int id = as_plain(c, v);
        if (id < 0) return -1;
        c->g->outputs[c->g->n_outputs] = id;
        c->g->output_names[c->g->n_outputs++] = strdup(gp->output[i]->name);
    }
    return c->g->n_outputs ? 0 : nn_fail(c->g, "model has no output");
}

int nn_onnx_load(nn_graph *g, const char *path)
{
    size_t len;
    unsigned char *buf = nn_read_file(g, path, &len);
    if (!buf) return -1;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!m) return nn_fail(g, "%s: not a valid ONNX protobuf (truncated or corrupt)", path);
    if (!m->graph) { onnx__model_proto__free_unpacked(m, NULL); return nn_fail(g, "%s: no graph", path); }
    g->nchw = 1;
    onnx_ctx c = {.g = g};
    int rc = build(&c, m->graph);
    free(c.vals);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rc) nn_fail_prefix(g, path);
    return rc;
}
