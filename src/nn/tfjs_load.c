/*
 * tfjs_load.c - TF.js graph models (model.json + weight shards beside it)
 * into the internal graph.
 *
 * TF.js models are NHWC already, so their shapes are used as they are. Weights
 * are read from the shards in manifest order; float16 and affine-quantised
 * uint8/uint16 weights are expanded to float32 at load. Nodes are translated
 * on demand, depth first from the outputs, because model.json does not
 * promise topological order; nodes no output needs are never built.
 */
#include "nn/graph.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;       /* node name (points into the JSON) */
    json_t *node;
    int id;                 /* built tensor, -1 if not yet, -2 while building */
} tf_entry;

typedef struct {
    nn_graph *g;
    tf_entry *e;
    int n;
    int depth;
} tf_ctx;

/* ---- small helpers -------------------------------------------------- */

static int b64_value(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

/* Decodes base64 into out (NUL-terminated, truncated to cap). */
static void b64_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; in && *in && o + 1 < cap; in++) {
        int v = b64_value((unsigned char)*in);
        if (v < 0) continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; out[o++] = (char)((acc >> bits) & 0xff); }
    }
    out[o] = 0;
}

static json_t *attr(json_t *node, const char *name)
{
    return json_object_get(json_object_get(node, "attr"), name);
}

static void attr_str(json_t *node, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    b64_decode(json_string_value(json_object_get(attr(node, name), "s")), out, cap);
}

/* An integer written as a JSON number or string, clamped to int (atoi would be
 * undefined beyond that range). */
static int json_int_clamped(json_t *v)
{
    long long x = json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : (long long)json_integer_value(v);
    return x > INT_MAX ? INT_MAX : x < INT_MIN ? INT_MIN : (int)x;
}

/* Integer list attribute (stored as strings); returns count. */
static int attr_ints(json_t *node, const char *name, int *out, int max)
{
    json_t *l = json_object_get(json_object_get(attr(node, name), "list"), "i");
    int n = 0;
    for (size_t i = 0; i < json_array_size(l) && n < max; i++) out[n++] = json_int_clamped(json_array_get(l, i));
    return n;
}

/* Every value of a list attribute at least lo, or -1 with a message naming it. */
static int check_at_least(tf_ctx *c, const char *op, const char *name, const char *what, const int *v, int n, int lo)
{
    for (int i = 0; i < n; i++)
        if (v[i] < lo) return nn_fail(c->g, "%s %s: attribute %s[%d] = %d, must be at least %d", op, name, what, i, v[i], lo);
    return 0;
}

static int attr_bool(json_t *node, const char *name)
{
    return json_is_true(json_object_get(attr(node, name), "b"));
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else {   /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static tf_entry *find(tf_ctx *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) return &c->e[i];
    return NULL;
}

/* ---- weights -------------------------------------------------------- */

/* Reads every shard named in the manifest, in order, into one buffer. */
static unsigned char *read_shards(nn_graph *g, json_t *manifest, const char *dir, size_t *len)
{
    unsigned char *all = NULL;
    size_t total = 0;
    for (size_t gi = 0; gi < json_array_size(manifest); gi++) {
        json_t *paths = json_object_get(json_array_get(manifest, gi), "paths");
        for (size_t pi = 0; pi < json_array_size(paths); pi++) {
            const char *p = json_string_value(json_array_get(paths, pi));
            char full[4096];
            if (!p || strstr(p, "..") || snprintf(full, sizeof full, "%s/%s", dir, p) >= (int)sizeof full) {
                free(all);
                nn_fail(g, "weights manifest: bad shard path");
                return NULL;
            }
            size_t n;
            unsigned char *b = nn_read_file(g, full, &n);
            unsigned char *grown = b ? realloc(all, total + n + 1) : NULL;
            if (!grown) { free(b); free(all); return NULL; }
            all = grown;
            memcpy(all + total, b, n);
            total += n;
            free(b);
        }
    }
    *len = total;
    return all ? all : calloc(1, 1);
}

static int dtype_bytes(const char *dt)
{
    if (!dt) return 0;
    if (!strcmp(dt, "float32") || !strcmp(dt, "int32")) return 4;
    if (!strcmp(dt, "float16") || !strcmp(dt, "uint16")) return 2;
    if (!strcmp(dt, "uint8") || !strcmp(dt, "bool")) return 1;
    return 0;
}

/* Decodes one manifest entry at data[*pos]; adds it as a constant tensor. */
static int add_weight(tf_ctx *c, json_t *w, const unsigned char *data, size_t len, size_t *pos)
{
    const char *name = json_string_value(json_object_get(w, "name"));
    const char *dtype = json_string_value(json_object_get(w, "dtype"));
    json_t *q = json_object_get(w, "quantization"), *shape = json_object_get(w, "shape");
    const char *stored = q ? json_string_value(json_object_get(q, "dtype")) : dtype;
    if (!name) return nn_fail(c->g, "weights manifest: entry without name");
    nn_shape s = {.rank = (int)json_array_size(shape)};
    if (s.rank > NN_MAX_RANK) return nn_fail(c->g, "weight %s: rank too large", name);
    for (int i = 0; i < s.rank; i++) {
        json_int_t d = json_integer_value(json_array_get(shape, (size_t)i));
        if (d < 0 || d > (json_int_t)NN_MAX_ELEMENTS) return nn_fail(c->g, "weight %s: dimension %d is %lld", name, i, (long long)d);
        s.dims[i] = (int)d;
    }
    if (!nn_shape_ok(&s)) return nn_fail(c->g, "weight %s: more than %zu values", name, NN_MAX_ELEMENTS);
    int eb = dtype_bytes(stored);
    if (!eb || (!q && !strcmp(dtype, "float16")))
        return nn_fail(c->g, "weight %s: unsupported dtype %s", name, stored ? stored : "?");
    size_t n = nn_shape_size(&s);
    if (n * (size_t)eb > len - *pos)
        return nn_fail(c->g, "weight %s: needs %zu bytes at offset %zu but the weight files hold %zu (truncated .bin?)",
                       name, n * (size_t)eb, *pos, len);
    float *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return nn_fail(c->g, "weight %s: out of memory", name);
    const unsigned char *p = data + *pos;
    double scale = q ? json_number_value(json_object_get(q, "scale")) : 1.0;
    double minv = q ? json_number_value(json_object_get(q, "min")) : 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(stored, "float32")) { float v; memcpy(&v, p + 4 * i, 4); d[i] = v; }
        else if (!strcmp(stored, "int32")) { int32_t v; memcpy(&v, p + 4 * i, 4); d[i] = (float)v; }
        else if (!strcmp(stored, "float16")) { uint16_t v; memcpy(&v, p + 2 * i, 2); d[i] = half_to_float(v); }
        else if (!strcmp(stored, "uint16")) { uint16_t v; memcpy(&v, p + 2 * i, 2); d[i] = (float)(v * scale + minv); }
        else d[i] = q ? (float)(p[i] * scale + minv) : (float)p[i];
    }
    *pos += n * (size_t)eb;
    tf_entry *e = find(c, name);
    int id = nn_tensor_add(c->g, name, s, d);
    if (id < 0) return -1;
    if (e) e->id = id;
    return 0;
}

static int load_weights(tf_ctx *c, json_t *manifest, const char *dir)
{
    size_t len, pos = 0;
    unsigned char *data = read_shards(c->g, manifest, dir, &len);
    if (!data) return -1;
    int rc = 0;
    for (size_t gi = 0; gi < json_array_size(manifest) && !rc; gi++) {
        json_t *ws = json_object_get(json_array_get(manifest, gi), "weights");
        for (size_t wi = 0; wi < json_array_size(ws) && !rc; wi++)
            rc = add_weight(c, json_array_get(ws, wi), data, len, &pos);
    }
    free(data);
    /* Bytes left over mean the manifest and the files disagree: refuse rather than
     * run with weights read from the wrong offsets. */
    if (!rc && pos != len)
        rc = nn_fail(c->g, "weights manifest describes %zu bytes but the weight files hold %zu", pos, len);
    return rc;
}

/* ---- node translation -------------------------------------------------- */

static int resolve(tf_ctx *c, const char *ref);

/* Input i of a node (skipping control inputs). */
static int in(tf_ctx *c, json_t *node, int i)
{
    json_t *ins = json_object_get(node, "input");
    int k = 0;
    for (size_t j = 0; j < json_array_size(ins); j++) {
        const char *r = json_string_value(json_array_get(ins, j));
        if (!r || r[0] == '^') continue;
        if (k++ == i) return resolve(c, r);
    }
    return nn_fail(c->g, "%s %s: missing input %d", json_string_value(json_object_get(node, "op")),
                   json_string_value(json_object_get(node, "name")), i);
}

static int n_inputs(json_t *node)
{
    json_t *ins = json_object_get(node, "input");
    int k = 0;
    for (size_t j = 0; j < json_array_size(ins); j++) {
        const char *r = json_string_value(json_array_get(ins, j));
        if (r && r[0] != '^') k++;
    }
    return k;
}

static const float *const_of(tf_ctx *c, int id, const char *op, const char *name)
{
    if (id < 0) return NULL;
    if (!c->g->tensors[id].data) nn_fail(c->g, "%s %s: input %s must be constant", op, name, c->g->tensors[id].name);
    return c->g->tensors[id].data;
}

/* The values of constant tensor `id` as ints in [lo, hi]: -1 with a message
 * naming the node and the tensor if one is not a whole number in range. */
static int const_ints(tf_ctx *c, int id, const char *op, const char *name, int lo, int hi, int *out, size_t max)
{
    const float *d = const_of(c, id, op, name);
    if (!d) return -1;
    size_t n = nn_shape_size(&c->g->tensors[id].shape);
    if (n > max) return nn_fail(c->g, "%s %s: %s has %zu values, at most %zu expected", op, name, c->g->tensors[id].name, n, max);
    for (size_t i = 0; i < n; i++)
        if (nn_float_to_int(d[i], lo, hi, &out[i]))
            return nn_fail(c->g, "%s %s: %s[%zu] = %g is not an integer in [%d, %d]", op, name,
                           c->g->tensors[id].name, i, (double)d[i], lo, hi);
    return (int)n;
}

/* TF "SAME"/"VALID"/"EXPLICIT" padding for one spatial axis. */
static int tf_pads(json_t *node, int in_size, int k, int s, int d, int axis, int *before, int *after)
{
    char pad[32];
    attr_str(node, "padding", pad, sizeof pad);
    *before = *after = 0;
    if (!strcmp(pad, "SAME")) {   /* s, d, k >= 1 (checked by geometry) */
        if (nn_same_pads(in_size, k, s, d, before, after)) return -1;
    } else if (!strcmp(pad, "EXPLICIT")) {
        int ep[8] = {0};
        if (attr_ints(node, "explicit_paddings", ep, 8) != 8 || ep[2 * axis] < 0 || ep[2 * axis + 1] < 0) return -1;
        *before = ep[2 * axis];
        *after = ep[2 * axis + 1];
    } else if (strcmp(pad, "VALID") != 0) return -1;
    return 0;
}

static int check_nhwc(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    char fmt[16];
    attr_str(node, "data_format", fmt, sizeof fmt);
    if (fmt[0] && strcmp(fmt, "NHWC") != 0) return nn_fail(c->g, "%s %s: data_format %s unsupported", op, name, fmt);
    return 0;
}

static int geometry(tf_ctx *c, json_t *node, const char *op, const char *name, int x, int kh, int kw, nn_conv_params *p)
{
    int st[4] = {1, 1, 1, 1}, dl[4] = {1, 1, 1, 1}, k[2] = {kh, kw};
    attr_ints(node, "strides", st, 4);
    attr_ints(node, "dilations", dl, 4);
    if (check_at_least(c, op, name, "strides", st, 4, 1) || check_at_least(c, op, name, "dilations", dl, 4, 1) ||
        check_at_least(c, op, name, "kernel size", k, 2, 1))
        return -1;
    const nn_shape *s = &c->g->tensors[x].shape;
    if (s->rank != 4) return nn_fail(c->g, "%s %s: input is not 4-D", op, name);
    p->kh = kh; p->kw = kw; p->sh = st[1]; p->sw = st[2]; p->dh = dl[1]; p->dw = dl[2];
    if (tf_pads(node, s->dims[1], kh, p->sh, p->dh, 1, &p->pad_top, &p->pad_bottom) ||
        tf_pads(node, s->dims[2], kw, p->sw, p->dw, 2, &p->pad_left, &p->pad_right))
        return nn_fail(c->g, "%s %s: attribute padding unsupported or explicit_paddings not 8 values >= 0", op, name);
    return 0;
}

/* Applies the fused_ops list after a conv or matmul that produced `id`. */
static int fused_tail(tf_ctx *c, json_t *node, const char *op, const char *name, int id, float *bias, int cout, int first_extra)
{
    json_t *l = json_object_get(json_object_get(attr(node, "fused_ops"), "list"), "s");
    int extra = first_extra;
    for (size_t i = 0; i < json_array_size(l) && id >= 0; i++) {
        char f[32];
        b64_decode(json_string_value(json_array_get(l, i)), f, sizeof f);
        char tn[512];
        snprintf(tn, sizeof tn, "%s/%s", name, f);
        int last = i + 1 == json_array_size(l);
        const char *out = last ? name : tn;
        if (!strcmp(f, "BiasAdd")) {
            const float *b = const_of(c, in(c, node, extra++), op, name);
            if (!b) return -1;
            if (nn_shape_size(&c->g->tensors[in(c, node, extra - 1)].shape) != (size_t)cout)
                return nn_fail(c->g, "%s %s: bias size mismatch", op, name);
            for (int o = 0; o < cout; o++) bias[o] += b[o];
            if (last) id = nn_add_reshape(c->g, op, out, id, c->g->tensors[id].shape);
        } else if (!strcmp(f, "Relu")) id = nn_add_unary(c->g, op, out, id, NN_UN_RELU, 0, INFINITY);
        else if (!strcmp(f, "Relu6")) id = nn_add_unary(c->g, op, out, id, NN_UN_CLAMP, 0, 6);
        else if (!strcmp(f, "Prelu")) {
            int a = in(c, node, extra++);
            if (a < 0) return -1;
            size_t n = nn_shape_size(&c->g->tensors[a].shape);
            int len = (int)n, flat = a;
            if (c->g->tensors[a].shape.rank != 1) flat = nn_add_reshape(c->g, op, tn, a, nn_shape_make(1, &len));
            id = nn_add_prelu(c->g, op, out, id, flat);
        } else return nn_fail(c->g, "%s %s: fused op %s unsupported", op, name, f);
    }
    return id;
}

static int op_conv(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int depthwise = strstr(op, "Depthwise") != NULL;
    int x = in(c, node, 0), f = x < 0 ? -1 : in(c, node, 1);
    const float *fd = const_of(c, f, op, name);
    if (!fd || check_nhwc(c, node, op, name)) return -1;
    const nn_shape *fs = &c->g->tensors[f].shape, *xs = &c->g->tensors[x].shape;
    if (fs->rank != 4 || xs->rank != 4 || fs->dims[2] != xs->dims[3])
        return nn_fail(c->g, "%s %s: filter %s does not match input channels", op, name, c->g->tensors[f].name);
    nn_conv_params p = {0};
    if (geometry(c, node, op, name, x, fs->dims[0], fs->dims[1], &p) ||
        nn_conv_from_hwio(c->g, fd, fs, depthwise, &p))
        return -1;
    /* Biases are folded into p.bias before the node is built. */
    float *bias = p.bias;
    json_t *l = json_object_get(json_object_get(attr(node, "fused_ops"), "list"), "s");
    char tn[512];
    snprintf(tn, sizeof tn, "%s/conv", name);
    int id = nn_add_conv(c->g, op, json_array_size(l) ? tn : name, x, &p);
    if (id < 0) { free(p.weights); free(bias); return -1; }
    return fused_tail(c, node, op, name, id, bias, p.cout, 2);
}

static int op_matmul(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), w = x < 0 ? -1 : in(c, node, 1);
    const float *wd = const_of(c, w, op, name);
    if (!wd) return -1;
    if (attr_bool(node, "transpose_a")) return nn_fail(c->g, "%s %s: transpose_a unsupported", op, name);
    int tb = attr_bool(node, "transpose_b");
    const nn_shape *ws = &c->g->tensors[w].shape;
    if (ws->rank != 2) return nn_fail(c->g, "%s %s: weight is not 2-D", op, name);
    nn_fc_params p;
    if (nn_fc_from_matrix(c->g, wd, ws, tb, 1.0f, &p)) return -1;
    float *bias = p.bias;
    json_t *l = json_object_get(json_object_get(attr(node, "fused_ops"), "list"), "s");
    char tn[512];
    snprintf(tn, sizeof tn, "%s/matmul", name);
    int id = nn_add_fc(c->g, op, json_array_size(l) ? tn : name, x, &p);
    if (id < 0) { free(p.weights); free(bias); return -1; }
    return fused_tail(c, node, op, name, id, bias, p.m, 2);
}

static int op_pool(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), ks[4] = {1, 1, 1, 1};
    if (x < 0 || check_nhwc(c, node, op, name)) return -1;
    attr_ints(node, "ksize", ks, 4);
    nn_conv_params p = {0};
    if (geometry(c, node, op, name, x, ks[1], ks[2], &p)) return -1;
    return nn_add_pool(c->g, op, name, !strcmp(op, "MaxPool") ? NN_OP_MAXPOOL : NN_OP_AVGPOOL, x, &p);
}

static int axes_mask_of(tf_ctx *c, int id, int rank, const char *op, const char *name)
{
    int axes[NN_MAX_RANK], n = const_ints(c, id, op, name, -rank, rank - 1, axes, NN_MAX_RANK), mask = 0;
    for (int i = 0; i < n; i++) mask |= 1 << (axes[i] < 0 ? axes[i] + rank : axes[i]);
    return n < 0 ? -1 : mask;
}

static int op_reduce(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), a = x < 0 ? -1 : in(c, node, 1);
    if (a < 0) return -1;
    int mask = axes_mask_of(c, a, c->g->tensors[x].shape.rank, op, name);
    if (mask < 0) return -1;
    nn_reduce_kind k = !strcmp(op, "Mean") ? NN_RED_MEAN : !strcmp(op, "Sum") ? NN_RED_SUM : NN_RED_MAX;
    return nn_add_reduce(c->g, op, name, x, k, mask, attr_bool(node, "keep_dims"));
}

static int op_pad(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), p = x < 0 ? -1 : in(c, node, 1), pads[2 * NN_MAX_RANK];
    int n = p < 0 ? -1 : const_ints(c, p, op, name, 0, (int)NN_MAX_ELEMENTS, pads, 2 * NN_MAX_RANK);
    if (n < 0) return -1;
    int r = c->g->tensors[x].shape.rank, before[NN_MAX_RANK], after[NN_MAX_RANK];
    if (n != 2 * r) return nn_fail(c->g, "%s %s: paddings has %d values for rank %d", op, name, n, r);
    for (int i = 0; i < r; i++) { before[i] = pads[2 * i]; after[i] = pads[2 * i + 1]; }
    float value = 0;
    if (!strcmp(op, "PadV2")) {
        int vi = in(c, node, 2);
        const float *v = const_of(c, vi, op, name);
        if (!v) return -1;
        if (nn_shape_size(&c->g->tensors[vi].shape) < 1) return nn_fail(c->g, "%s %s: empty pad value", op, name);
        value = v[0];
    }
    return nn_add_pad(c->g, op, name, x, before, after, value);
}

static int op_reshape(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), s = x < 0 ? -1 : in(c, node, 1), dims[NN_MAX_RANK];
    int n = s < 0 ? -1 : const_ints(c, s, op, name, -1, (int)NN_MAX_ELEMENTS, dims, NN_MAX_RANK);
    if (n < 0) return -1;
    size_t known = 1, total = nn_shape_size(&c->g->tensors[x].shape);
    nn_shape to = {.rank = n};
    int minus = -1;
    for (int i = 0; i < n; i++) {
        int v = dims[i];
        if (v == -1 && minus >= 0) return nn_fail(c->g, "%s %s: more than one -1 in the shape", op, name);
        if (v == -1) { minus = i; v = 1; }
        to.dims[i] = v;
        known *= (size_t)v;
        if (known > NN_MAX_ELEMENTS) return nn_fail(c->g, "%s %s: shape too large", op, name);
    }
    if (minus >= 0 && known) to.dims[minus] = (int)(total / known);
    return nn_add_reshape(c->g, op, name, x, to);
}

static int op_squeeze(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), axes[NN_MAX_RANK];
    if (x < 0) return -1;
    int na = attr_ints(node, "squeeze_dims", axes, NN_MAX_RANK), mask = 0;
    const nn_shape *s = &c->g->tensors[x].shape;
    for (int i = 0; i < na; i++) {
        int a = axes[i] < 0 ? axes[i] + s->rank : axes[i];
        if (a < 0 || a >= s->rank)
            return nn_fail(c->g, "%s %s: attribute squeeze_dims[%d] = %d out of range for rank %d", op, name, i, axes[i], s->rank);
        mask |= 1 << a;
    }
    nn_shape to = {0};
    for (int i = 0; i < s->rank; i++)
        if (!(na ? (mask >> i) & 1 : s->dims[i] == 1)) to.dims[to.rank++] = s->dims[i];
    return nn_add_reshape(c->g, op, name, x, to);
}

static int op_concat(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int n = n_inputs(node) - 1, ids[64];
    if (n < 1 || n > 64) return nn_fail(c->g, "%s %s: bad input count", op, name);
    for (int i = 0; i < n; i++) if ((ids[i] = in(c, node, i)) < 0) return -1;
    int axis[1], rank = c->g->tensors[ids[0]].shape.rank, a = in(c, node, n);
    if (a < 0 || const_ints(c, a, op, name, -rank, rank - 1, axis, 1) != 1)
        return c->g->failed ? -1 : nn_fail(c->g, "%s %s: axis must be one value", op, name);
    return nn_add_concat(c->g, op, name, ids, n, axis[0]);
}

static int op_transpose(tf_ctx *c, json_t *node, const char *op, const char *name)
{
    int x = in(c, node, 0), p = x < 0 ? -1 : in(c, node, 1), perm[NN_MAX_RANK];
    int r = x < 0 ? 0 : c->g->tensors[x].shape.rank;
    int n = p < 0 ? -1 : const_ints(c, p, op, name, 0, r - 1, perm, NN_MAX_RANK);
    if (n < 0) return -1;
    if (n != r) return nn_fail(c->g, "%s %s: perm has %d values for rank %d", op, name, n, r);
    return nn_add_transpose(c->g, op, name, x, perm);
}

static const struct { const char *op; nn_unary_kind k; float lo, hi; } UNARY[] = {
    {"Relu", NN_UN_RELU, 0, INFINITY}, {"Relu6", NN_UN_CLAMP, 0, 6}, {"Sigmoid", NN_UN_SIGMOID, 0, 0},
    {"Tanh", NN_UN_TANH, 0, 0}, {"Exp", NN_UN_EXP, 0, 0}, {"Abs", NN_UN_ABS, 0, 0}, {"Neg", NN_UN_NEG, 0, 0},
    {"Square", NN_UN_SQUARE, 0, 0}, {"Sqrt", NN_UN_SQRT, 0, 0}, {"Rsqrt", NN_UN_RSQRT, 0, 0},
};

static const struct { const char *op; nn_binary_kind k; } BINARY[] = {
    {"Add", NN_BIN_ADD}, {"AddV2", NN_BIN_ADD}, {"BiasAdd", NN_BIN_ADD}, {"Sub", NN_BIN_SUB},
    {"Mul", NN_BIN_MUL}, {"RealDiv", NN_BIN_DIV}, {"Div", NN_BIN_DIV}, {"Maximum", NN_BIN_MAX},
    {"Minimum", NN_BIN_MIN},
};

static int translate(tf_ctx *c, json_t *node)
{
    const char *op = json_string_value(json_object_get(node, "op"));
    const char *name = json_string_value(json_object_get(node, "name"));
    if (!op || !name) return nn_fail(c->g, "model.json: node without op or name");
    for (size_t i = 0; i < sizeof UNARY / sizeof UNARY[0]; i++)
        if (!strcmp(op, UNARY[i].op)) {
            int x = in(c, node, 0);
            return x < 0 ? -1 : nn_add_unary(c->g, op, name, x, UNARY[i].k, UNARY[i].lo, UNARY[i].hi);
        }
    for (size_t i = 0; i < sizeof BINARY / sizeof BINARY[0]; i++)
        if (!strcmp(op, BINARY[i].op)) {
            int a = in(c, node, 0), b = a < 0 ? -1 : in(c, node, 1);
            return b < 0 ? -1 : nn_add_binary(c->g, op, name, BINARY[i].k, a, b);
        }
    if (strstr(op, "Conv2D") || strstr(op, "DepthwiseConv2dNative")) return op_conv(c, node, op, name);
    if (!strcmp(op, "MatMul") || !strcmp(op, "_FusedMatMul")) return op_matmul(c, node, op, name);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AvgPool")) return op_pool(c, node, op, name);
    if (!strcmp(op, "Mean") || !strcmp(op, "Sum") || !strcmp(op, "Max")) return op_reduce(c, node, op, name);
    if (!strcmp(op, "Pad") || !strcmp(op, "PadV2")) return op_pad(c, node, op, name);
    if (!strcmp(op, "Reshape")) return op_reshape(c, node, op, name);
    if (!strcmp(op, "Squeeze")) return op_squeeze(c, node, op, name);
    if (!strcmp(op, "ConcatV2")) return op_concat(c, node, op, name);
    if (!strcmp(op, "Transpose")) return op_transpose(c, node, op, name);
    if (!strcmp(op, "Identity") || !strcmp(op, "StopGradient")) return in(c, node, 0);
    if (!strcmp(op, "Softmax")) {
        int x = in(c, node, 0);
        return x < 0 ? -1 : nn_add_softmax(c->g, op, name, x, -1);
    }
    if (!strcmp(op, "Prelu")) {
        int x = in(c, node, 0), a = x < 0 ? -1 : in(c, node, 1);
        if (a < 0) return -1;
        int len = (int)nn_shape_size(&c->g->tensors[a].shape);
        int flat = nn_add_reshape(c->g, op, "", a, nn_shape_make(1, &len));
        return nn_add_prelu(c->g, op, name, x, flat);
    }
    if (!strcmp(op, "Const")) return nn_fail(c->g, "Const %s: no weights in the manifest", name);
    return nn_fail(c->g, "unsupported operator %s (node %s)", op, name);
}

/* Tensor id for an input reference "name", "name:0" (other output indices unsupported). */
static int resolve(tf_ctx *c, const char *ref)
{
    char name[1024];
    snprintf(name, sizeof name, "%s", ref);
    char *colon = strrchr(name, ':');
    if (colon) {
        if (strcmp(colon, ":0") != 0) return nn_fail(c->g, "tensor %s: only the first output of a node is supported", ref);
        *colon = 0;
    }
    tf_entry *e = find(c, name);
    if (!e) return nn_fail(c->g, "unknown tensor %s", ref);
    if (e->id >= 0) return e->id;
    if (e->id == -2) return nn_fail(c->g, "cycle at node %s", name);
    if (!e->node) return nn_fail(c->g, "unknown tensor %s", ref);
    /* Real models need under 400 (rvm 348); 1000 keeps the stack under 8 MiB even with ASan. */
    if (++c->depth > 1000) return nn_fail(c->g, "graph deeper than 1000 nodes at %s", name);
    e->id = -2;
    int id = translate(c, e->node);
    c->depth--;
    e = find(c, name);   /* the table does not move, but stay safe */
    e->id = id < 0 ? -1 : id;
    return id;
}

/* ---- model ---------------------------------------------------------- */

static int add_input(tf_ctx *c, json_t *node)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    json_t *dims = json_object_get(json_object_get(attr(node, "shape"), "shape"), "dim");
    nn_shape s = {.rank = (int)json_array_size(dims)};
    if (s.rank < 1 || s.rank > NN_MAX_RANK) return nn_fail(c->g, "input %s: no usable shape", name);
    for (int i = 0; i < s.rank; i++) {
        int d = json_int_clamped(json_object_get(json_array_get(dims, (size_t)i), "size"));
        if (d == -1) d = 1;   /* batch */
        if (d < 1 || d > (1 << 24)) return nn_fail(c->g, "input %s: dimension %d is not fixed", name, i);
        s.dims[i] = (int)d;
    }
    int id = nn_graph_add_input(c->g, name, s);
    if (id < 0) return -1;
    find(c, name)->id = id;
    return 0;
}

static int add_output(tf_ctx *c, const char *public_name, const char *ref)
{
    int id = resolve(c, ref);
    if (id < 0) return -1;
    return nn_graph_add_output(c->g, public_name, id);
}

/* Outputs: the signature if there is one, else every node nobody reads. */
static int add_outputs(tf_ctx *c, json_t *root, json_t *nodes)
{
    json_t *sig = json_object_get(root, "signature");
    if (!sig) sig = json_object_get(json_object_get(root, "userDefinedMetadata"), "signature");
    json_t *outs = json_object_get(sig, "outputs");
    const char *key;
    json_t *v;
    if (json_object_size(outs)) {
        json_object_foreach(outs, key, v) {
            const char *ref = json_string_value(json_object_get(v, "name"));
            if (add_output(c, key, ref ? ref : key)) return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        json_t *nd = json_array_get(nodes, i);
        const char *name = json_string_value(json_object_get(nd, "name"));
        const char *op = json_string_value(json_object_get(nd, "op"));
        if (!name || !op || !strcmp(op, "Const") || !strcmp(op, "Placeholder")) continue;
        int used = 0;
        for (size_t j = 0; j < json_array_size(nodes) && !used; j++) {
            json_t *ins = json_object_get(json_array_get(nodes, j), "input");
            for (size_t k = 0; k < json_array_size(ins) && !used; k++) {
                const char *r = json_string_value(json_array_get(ins, k));
                size_t len = strlen(name);
                if (r && !strncmp(r, name, len) && (r[len] == 0 || r[len] == ':')) used = 1;
            }
        }
        if (!used && add_output(c, name, name)) return -1;
    }
    return c->g->n_outputs ? 0 : nn_fail(c->g, "model has no output");
}

static int build(tf_ctx *c, json_t *root, const char *dir)
{
    json_t *nodes = json_object_get(json_object_get(root, "modelTopology"), "node");
    json_t *manifest = json_object_get(root, "weightsManifest");
    if (!json_is_array(nodes) || !json_is_array(manifest))
        return nn_fail(c->g, "model.json: no modelTopology.node or weightsManifest (not a graph model?)");
    c->n = (int)json_array_size(nodes);
    c->e = calloc((size_t)c->n + 1, sizeof *c->e);
    if (!c->e) return nn_fail(c->g, "out of memory");
    for (int i = 0; i < c->n; i++) {
        json_t *nd = json_array_get(nodes, (size_t)i);
        const char *name = json_string_value(json_object_get(nd, "name"));
        const char *op = json_string_value(json_object_get(nd, "op"));
        if (!name || !name[0]) return nn_fail(c->g, "node %d has no name", i);
        if (!op || !op[0]) return nn_fail(c->g, "node %s has no op", name);
        c->e[i] = (tf_entry){name, nd, -1};
    }
    if (load_weights(c, manifest, dir)) return -1;
    for (int i = 0; i < c->n; i++) {
        const char *op = json_string_value(json_object_get(c->e[i].node, "op"));
        if (op && !strcmp(op, "Placeholder") && add_input(c, c->e[i].node)) return -1;
    }
    if (c->g->n_inputs < 1) return nn_fail(c->g, "model has no input");
    return add_outputs(c, root, nodes);
}

/* The folder of path, where the weight shards are. */
static void dir_of(const char *path, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, cap, ".");
}

int nn_tfjs_weights_load(nn_graph *g, const char *manifest_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(manifest_path, 0, &jerr);
    if (!root) return nn_fail(g, "%s: invalid JSON at line %d: %s", manifest_path, jerr.line, jerr.text);
    char dir[4096];
    dir_of(manifest_path, dir, sizeof dir);
    tf_ctx c = {.g = g};
    int rc = json_is_array(root) ? load_weights(&c, root, dir)
                                 : nn_fail(g, "not a weights manifest (a JSON array of weight groups)");
    json_decref(root);
    if (rc) nn_fail_prefix(g, manifest_path);
    return rc;
}

int nn_tfjs_load(nn_graph *g, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return nn_fail(g, "%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    tf_ctx c = {.g = g};
    int rc = build(&c, root, dir);
    free(c.e);
    json_decref(root);
    if (rc) nn_fail_prefix(g, path);
    return rc;
}
