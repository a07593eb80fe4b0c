/*
 * tflite_load.c - TensorFlow Lite models (.tflite flatbuffers) into the internal
 * graph.
 *
 * A .tflite file is one flatbuffer (schema: tensorflow/lite/schema/schema.fbs).
 * We read the subset the face models need with our own reader instead of
 * generated code: every offset, vtable and vector length is checked against the
 * file before it is followed, so a malformed file gives an error naming the
 * operator or tensor, never a read outside the buffer. TFLite is NHWC like our
 * graph and lists operators in execution order, so each operator is built as it
 * comes. Float16 and int8/uint8 (affine, per-tensor or per-channel) constants
 * are expanded to float32 at load; DEQUANTIZE of a constant is then free.
 * Quantised activations are refused.
 */
#include "nn/graph.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a bounds-checked flatbuffer reader ------------------------------- */

typedef struct {
    const uint8_t *b;
    size_t len;
} fb_buf;

/* A table: its position and the vtable that describes its fields. */
typedef struct {
    size_t pos;
    size_t vt;        /* vtable position */
    unsigned vt_len;  /* vtable bytes */
    unsigned size;    /* table bytes (inline part) */
} fb_table;

static uint32_t rd_u32(const fb_buf *f, size_t p) { uint32_t v; memcpy(&v, f->b + p, 4); return v; }
static uint16_t rd_u16(const fb_buf *f, size_t p) { uint16_t v; memcpy(&v, f->b + p, 2); return v; }

static int fits(const fb_buf *f, size_t pos, size_t n) { return pos <= f->len && n <= f->len - pos; }

/* The table at pos: -1 unless it and its vtable lie inside the file. */
static int fb_table_at(const fb_buf *f, size_t pos, fb_table *t)
{
    if (!fits(f, pos, 4)) return -1;
    int32_t soff;
    memcpy(&soff, f->b + pos, 4);
    long long vt = (long long)pos - soff;
    if (vt < 0 || (size_t)vt > f->len || !fits(f, (size_t)vt, 4)) return -1;
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vt_len = rd_u16(f, t->vt);
    t->size = rd_u16(f, t->vt + 2);
    if (t->vt_len < 4 || t->vt_len % 2 || !fits(f, t->vt, t->vt_len) || t->size < 4 || !fits(f, pos, t->size))
        return -1;
    return 0;
}

/* Position of field i holding `bytes` inline bytes, 0 when absent, SIZE_MAX when
 * it would lie outside the table. */
static size_t fb_field(const fb_buf *f, const fb_table *t, int i, size_t bytes)
{
    size_t slot = 4 + 2 * (size_t)i;
    if (slot + 2 > t->vt_len) return 0;
    unsigned off = rd_u16(f, t->vt + slot);
    if (!off) return 0;
    if (off < 4 || off + bytes > t->size) return SIZE_MAX;
    return t->pos + off;
}

/* Scalar fields: the default when absent; *bad set when out of the table. */
static long long fb_int(const fb_buf *f, const fb_table *t, int i, int bytes, int is_signed, long long def, int *bad)
{
    size_t p = fb_field(f, t, i, (size_t)bytes);
    if (p == 0) return def;
    if (p == SIZE_MAX) { *bad = 1; return def; }
    if (bytes == 1) return is_signed ? (long long)(int8_t)f->b[p] : (long long)f->b[p];
    if (bytes == 2) return is_signed ? (long long)(int16_t)rd_u16(f, p) : (long long)rd_u16(f, p);
    uint32_t v = rd_u32(f, p);
    return is_signed ? (long long)(int32_t)v : (long long)v;
}

static float fb_float(const fb_buf *f, const fb_table *t, int i, float def, int *bad)
{
    size_t p = fb_field(f, t, i, 4);
    if (p == 0) return def;
    if (p == SIZE_MAX) { *bad = 1; return def; }
    float v;
    memcpy(&v, f->b + p, 4);
    return v;
}

/* Follows the offset in field i: 0 and *where = 0 when absent, -1 when bad. */
static int fb_ref(const fb_buf *f, const fb_table *t, int i, size_t *where)
{
    *where = 0;
    size_t p = fb_field(f, t, i, 4);
    if (p == 0) return 0;
    if (p == SIZE_MAX) return -1;
    size_t target = p + rd_u32(f, p);
    if (target < p || target > f->len) return -1;
    *where = target;
    return 0;
}

/* Vector in field i of elements of `elem` bytes: its data and count (0, 0 when
 * absent), -1 when it does not fit in the file. */
static int fb_vector(const fb_buf *f, const fb_table *t, int i, size_t elem, size_t *data, size_t *n)
{
    size_t p;
    *data = 0;
    *n = 0;
    if (fb_ref(f, t, i, &p)) return -1;
    if (!p) return 0;
    if (!fits(f, p, 4)) return -1;
    size_t count = rd_u32(f, p);
    if (count > (f->len - p - 4) / elem) return -1;
    *data = p + 4;
    *n = count;
    return 0;
}

/* Element k of a vector of tables. */
static int fb_vector_table(const fb_buf *f, size_t data, size_t k, fb_table *t)
{
    size_t p = data + 4 * k, target = p + rd_u32(f, p);
    return target < p ? -1 : fb_table_at(f, target, t);
}

/* A string field into out (truncated, NUL-terminated); "" when absent, -1 when bad. */
static int fb_string(const fb_buf *f, const fb_table *t, int i, char *out, size_t cap)
{
    size_t data, n;
    out[0] = 0;
    if (fb_vector(f, t, i, 1, &data, &n)) return -1;
    if (n >= cap) n = cap - 1;
    memcpy(out, f->b + data, n);
    out[n] = 0;
    for (size_t k = 0; k < n; k++)
        if (out[k] < 0x20 || out[k] == 0x7f) out[k] = '?';   /* names go into messages */
    return 0;
}

/* ---- the schema subset --------------------------------------------------- */

/* Field numbers of schema.fbs (version 3). */
enum { MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED = 0, OPCODE_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_NAME = 3, T_QUANT = 4, T_VARIABLE = 5, T_SPARSITY = 6 };
enum { Q_SCALE = 2, Q_ZERO = 3, Q_DIM = 6 };
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS = 4 };
enum { BUF_DATA = 0, BUF_OFFSET = 1, BUF_SIZE = 2 };

enum { TT_FLOAT32 = 0, TT_FLOAT16 = 1, TT_INT32 = 2, TT_UINT8 = 3, TT_INT64 = 4, TT_BOOL = 6, TT_INT8 = 9 };

/* BuiltinOperator codes we translate. */
enum {
    B_ADD = 0, B_AVERAGE_POOL_2D = 1, B_CONCATENATION = 2, B_CONV_2D = 3, B_DEPTHWISE_CONV_2D = 4,
    B_DEQUANTIZE = 6, B_FULLY_CONNECTED = 9, B_LOGISTIC = 14, B_MAX_POOL_2D = 17, B_MUL = 18,
    B_RELU = 19, B_RELU6 = 21, B_RESHAPE = 22, B_SOFTMAX = 25, B_TANH = 28, B_PAD = 34,
    B_TRANSPOSE = 39, B_MEAN = 40, B_SUB = 41, B_DIV = 42, B_SQUEEZE = 43, B_STRIDED_SLICE = 45,
    B_EXP = 47, B_CAST = 53, B_PRELU = 54, B_MAXIMUM = 55, B_MINIMUM = 57, B_LESS = 58, B_NEG = 59,
    B_GREATER = 61, B_GREATER_EQUAL = 62, B_LESS_EQUAL = 63, B_EXPAND_DIMS = 70, B_SUM = 74,
    B_SQRT = 75, B_RSQRT = 76, B_REDUCE_MAX = 82, B_SQUARE = 92, B_LEAKY_RELU = 98, B_ABS = 101,
};

/* Largest counts we accept: far above any model, small enough for int indices. */
#define TFL_MAX_TENSORS 1000000
#define TFL_MAX_OP_INPUTS 64

typedef struct {
    nn_graph *g;
    fb_buf f;
    fb_table model, sg;
    int *opcodes;          /* builtin code per operator-code entry */
    size_t n_opcodes;
    size_t buffers, n_buffers;   /* vector of Buffer tables */
    size_t tensors, n_tensors;   /* vector of Tensor tables */
    int *id;               /* tflite tensor -> graph tensor, -1 while unknown */
    struct tfl_producer { int code, in[2], plain; } *made_by; /* per tflite tensor, code -1: none */
    int batch, file_batch; /* batch > 0: it replaces file_batch, the first input's first dimension */
} tfl_ctx;

/* A declared activation shape with the batch the caller asked for (nn_model_load_batch):
 * a leading dimension equal to the file's batch is the batch. Operators see their
 * inputs' shapes, and build_op checks every computed shape against the declared
 * one, so a dimension taken for the batch by mistake fails the load, never a run. */
static void rebatch(const tfl_ctx *c, nn_shape *s)
{
    if (c->batch > 0 && s->rank >= 1 && s->dims[0] == c->file_batch) s->dims[0] = c->batch;
}

typedef struct {          /* one operator being translated */
    const char *op;        /* builtin name, for messages */
    int code;
    int in[TFL_MAX_OP_INPUTS];   /* tflite tensor indices, -1 = optional and absent */
    int n_in;
    int out;               /* first output (tflite index) */
    char out_name[256];
    fb_table opt;          /* builtin options; has_opt 0 when absent */
    int has_opt;
} tfl_op;

static const char *builtin_name(int code)
{
    static const struct { int code; const char *name; } NAMES[] = {
        {B_ADD, "ADD"}, {B_AVERAGE_POOL_2D, "AVERAGE_POOL_2D"}, {B_CONCATENATION, "CONCATENATION"},
        {B_CONV_2D, "CONV_2D"}, {B_DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D"}, {B_DEQUANTIZE, "DEQUANTIZE"},
        {B_FULLY_CONNECTED, "FULLY_CONNECTED"}, {B_LOGISTIC, "LOGISTIC"}, {B_MAX_POOL_2D, "MAX_POOL_2D"},
        {B_MUL, "MUL"}, {B_RELU, "RELU"}, {B_RELU6, "RELU6"}, {B_RESHAPE, "RESHAPE"}, {B_SOFTMAX, "SOFTMAX"},
        {B_TANH, "TANH"}, {B_PAD, "PAD"}, {B_TRANSPOSE, "TRANSPOSE"}, {B_MEAN, "MEAN"}, {B_SUB, "SUB"},
        {B_DIV, "DIV"}, {B_SQUEEZE, "SQUEEZE"}, {B_STRIDED_SLICE, "STRIDED_SLICE"}, {B_EXP, "EXP"},
        {B_CAST, "CAST"}, {B_PRELU, "PRELU"}, {B_MAXIMUM, "MAXIMUM"}, {B_MINIMUM, "MINIMUM"},
        {B_LESS, "LESS"}, {B_NEG, "NEG"}, {B_GREATER, "GREATER"}, {B_GREATER_EQUAL, "GREATER_EQUAL"},
        {B_LESS_EQUAL, "LESS_EQUAL"}, {B_EXPAND_DIMS, "EXPAND_DIMS"}, {B_SUM, "SUM"}, {B_SQRT, "SQRT"},
        {B_RSQRT, "RSQRT"}, {B_REDUCE_MAX, "REDUCE_MAX"}, {B_SQUARE, "SQUARE"}, {B_LEAKY_RELU, "LEAKY_RELU"},
        {B_ABS, "ABS"},
    };
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (NAMES[i].code == code) return NAMES[i].name;
    return NULL;
}

/* ---- tensors -------------------------------------------------------------- */

static int tensor_table(tfl_ctx *c, int t, fb_table *tt)
{
    if (t < 0 || (size_t)t >= c->n_tensors || fb_vector_table(&c->f, c->tensors, (size_t)t, tt))
        return nn_fail(c->g, "tensor %d: missing or outside the file", t);
    return 0;
}

static void tensor_name(tfl_ctx *c, int t, char *out, size_t cap)
{
    fb_table tt;
    out[0] = 0;
    if (t >= 0 && (size_t)t < c->n_tensors && !fb_vector_table(&c->f, c->tensors, (size_t)t, &tt))
        fb_string(&c->f, &tt, T_NAME, out, cap);
    if (!out[0]) snprintf(out, cap, "#%d", t);
}

/* The declared shape of tensor t. */
static int tensor_shape(tfl_ctx *c, const fb_table *tt, const char *name, nn_shape *s)
{
    size_t data, n;
    if (fb_vector(&c->f, tt, T_SHAPE, 4, &data, &n)) return nn_fail(c->g, "tensor %s: shape outside the file", name);
    if (n > NN_MAX_RANK) return nn_fail(c->g, "tensor %s: rank %zu is over %d", name, n, NN_MAX_RANK);
    s->rank = (int)n;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)rd_u32(&c->f, data + 4 * i);
        if (d < 0) return nn_fail(c->g, "tensor %s: dimension %zu is %d (dynamic shapes are unsupported)", name, i, d);
        s->dims[i] = d;
    }
    if (!nn_shape_ok(s)) return nn_fail(c->g, "tensor %s: more than %zu values", name, NN_MAX_ELEMENTS);
    return 0;
}

/* Bytes of the buffer behind tensor table tt (0 when it has none). */
static int tensor_bytes(tfl_ctx *c, const fb_table *tt, const char *name, const uint8_t **bytes, size_t *len)
{
    int bad = 0;
    long long bi = fb_int(&c->f, tt, T_BUFFER, 4, 0, 0, &bad);
    *bytes = NULL;
    *len = 0;
    if (bad || bi < 0 || (size_t)bi >= (c->n_buffers ? c->n_buffers : 1))
        return nn_fail(c->g, "tensor %s: buffer %lld does not exist", name, bi);
    if (bi == 0 || !c->n_buffers) return 0;   /* buffer 0 is the empty sentinel */
    fb_table bt;
    size_t data, n;
    if (fb_vector_table(&c->f, c->buffers, (size_t)bi, &bt) || fb_vector(&c->f, &bt, BUF_DATA, 1, &data, &n))
        return nn_fail(c->g, "tensor %s: buffer %lld outside the file", name, bi);
    if (!n) {   /* large models keep the data after the flatbuffer: offset and size */
        size_t po = fb_field(&c->f, &bt, BUF_OFFSET, 8), ps = fb_field(&c->f, &bt, BUF_SIZE, 8);
        if (po == SIZE_MAX || ps == SIZE_MAX) return nn_fail(c->g, "tensor %s: buffer %lld is malformed", name, bi);
        uint64_t off = 0, size = 0;
        if (po) memcpy(&off, c->f.b + po, 8);
        if (ps) memcpy(&size, c->f.b + ps, 8);
        if (off > 1 && size) {
            if (off > c->f.len || size > c->f.len - off)
                return nn_fail(c->g, "tensor %s: buffer %lld lies outside the file", name, bi);
            data = (size_t)off;
            n = (size_t)size;
        }
    }
    *bytes = n ? c->f.b + data : NULL;
    *len = n;
    return 0;
}

/* Affine parameters of a quantised tensor: scale[], zero[] per channel along axis. */
typedef struct { size_t scale, zero, n_scale, n_zero; int axis; } tfl_quant;

static int tensor_quant(tfl_ctx *c, const fb_table *tt, const char *name, tfl_quant *q)
{
    memset(q, 0, sizeof *q);
    size_t p;
    fb_table qt;
    if (fb_ref(&c->f, tt, T_QUANT, &p)) return nn_fail(c->g, "tensor %s: quantization outside the file", name);
    if (!p) return 0;
    int bad = 0;
    if (fb_table_at(&c->f, p, &qt) || fb_vector(&c->f, &qt, Q_SCALE, 4, &q->scale, &q->n_scale) ||
        fb_vector(&c->f, &qt, Q_ZERO, 8, &q->zero, &q->n_zero))
        return nn_fail(c->g, "tensor %s: quantization outside the file", name);
    q->axis = (int)fb_int(&c->f, &qt, Q_DIM, 4, 1, 0, &bad);
    return bad ? nn_fail(c->g, "tensor %s: quantization malformed", name) : 0;
}

/* Value i of a constant stored as `type` (quantised types through q). */
static float stored_value(const fb_buf *f, const uint8_t *p, int type, size_t i, const tfl_quant *q, size_t channel)
{
    float scale = 1.0f;
    long long zero = 0;
    if (q->n_scale) memcpy(&scale, f->b + q->scale + 4 * (q->n_scale > 1 ? channel : 0), 4);
    if (q->n_zero) { int64_t z; memcpy(&z, f->b + q->zero + 8 * (q->n_zero > 1 ? channel : 0), 8); zero = z; }
    switch (type) {
    case TT_FLOAT32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case TT_FLOAT16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return nn_half_to_float(v); }
    case TT_INT32: { int32_t v; memcpy(&v, p + 4 * i, 4); return q->n_scale ? (float)((v - zero) * (double)scale) : (float)v; }
    case TT_INT64: { int64_t v; memcpy(&v, p + 8 * i, 8); return (float)v; }
    case TT_INT8: return q->n_scale ? (float)(((int8_t)p[i] - zero) * (double)scale) : (float)(int8_t)p[i];
    case TT_UINT8: return q->n_scale ? (float)((p[i] - zero) * (double)scale) : (float)p[i];
    default: return p[i] ? 1.0f : 0.0f;   /* TT_BOOL */
    }
}

static int type_bytes(int type)
{
    switch (type) {
    case TT_FLOAT32: case TT_INT32: return 4;
    case TT_FLOAT16: return 2;
    case TT_INT64: return 8;
    case TT_UINT8: case TT_INT8: case TT_BOOL: return 1;
    default: return 0;
    }
}

/* Decodes a constant tensor to float32. */
static int add_constant(tfl_ctx *c, int t, const fb_table *tt, const char *name, const nn_shape *s,
                        const uint8_t *bytes, size_t len)
{
    int bad = 0, type = (int)fb_int(&c->f, tt, T_TYPE, 1, 1, TT_FLOAT32, &bad);
    int eb = type_bytes(type);
    if (bad || !eb) return nn_fail(c->g, "tensor %s: unsupported type %d", name, type);
    size_t n = nn_shape_size(s);
    if (n * (size_t)eb != len)
        return nn_fail(c->g, "tensor %s: %zu values of %d bytes but its buffer holds %zu bytes", name, n, eb, len);
    tfl_quant q;
    if (tensor_quant(c, tt, name, &q)) return -1;
    size_t channels = 1, inner = 1;
    if (q.n_scale > 1 || q.n_zero > 1) {   /* per-channel along q.axis */
        if (q.axis < 0 || q.axis >= s->rank) return nn_fail(c->g, "tensor %s: quantized_dimension %d out of range", name, q.axis);
        channels = (size_t)s->dims[q.axis];
        for (int i = q.axis + 1; i < s->rank; i++) inner *= (size_t)s->dims[i];
        if ((q.n_scale > 1 && q.n_scale != channels) || (q.n_zero > 1 && q.n_zero != channels))
            return nn_fail(c->g, "tensor %s: %zu scales for %zu channels", name, q.n_scale, channels);
    }
    float *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return nn_fail(c->g, "tensor %s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        d[i] = stored_value(&c->f, bytes, type, i, &q, channels > 1 ? (i / inner) % channels : 0);
        if (!isfinite(d[i]) && type != TT_FLOAT32 && type != TT_FLOAT16) d[i] = 0;
    }
    c->id[t] = nn_tensor_add(c->g, name, *s, d);
    return c->id[t] < 0 ? -1 : 0;
}

/* Graph tensor of operator input t: built earlier, or a constant read now. */
static int input_of(tfl_ctx *c, const tfl_op *o, int t)
{
    if (t < 0 || (size_t)t >= c->n_tensors)
        return nn_fail(c->g, "%s %s: input tensor %d does not exist", o->op, o->out_name, t);
    if (c->id[t] >= 0) return c->id[t];
    fb_table tt;
    char name[256];
    nn_shape s;
    const uint8_t *bytes;
    size_t len;
    tensor_name(c, t, name, sizeof name);
    if (tensor_table(c, t, &tt) || tensor_shape(c, &tt, name, &s) || tensor_bytes(c, &tt, name, &bytes, &len)) return -1;
    if (!bytes)
        return nn_fail(c->g, "%s %s: input %s is neither computed before nor constant", o->op, o->out_name, name);
    if (add_constant(c, t, &tt, name, &s, bytes, len)) return -1;
    return c->id[t];
}

static const float *const_input(tfl_ctx *c, const tfl_op *o, int k, int *id)
{
    *id = k < o->n_in ? input_of(c, o, o->in[k]) : nn_fail(c->g, "%s %s: missing input %d", o->op, o->out_name, k);
    if (*id < 0) return NULL;
    const float *d = c->g->tensors[*id].data;
    if (!d) nn_fail(c->g, "%s %s: input %s must be constant", o->op, o->out_name, c->g->tensors[*id].name);
    return d;
}

/* Values of constant input k as ints in [lo, hi]; count or -1. */
static int const_ints(tfl_ctx *c, const tfl_op *o, int k, int lo, int hi, int *out, int max)
{
    int id;
    const float *d = const_input(c, o, k, &id);
    if (!d) return -1;
    size_t n = nn_shape_size(&c->g->tensors[id].shape);
    if (n > (size_t)max) return nn_fail(c->g, "%s %s: %s has %zu values, at most %d expected", o->op, o->out_name, c->g->tensors[id].name, n, max);
    for (size_t i = 0; i < n; i++)
        if (nn_float_to_int(d[i], lo, hi, &out[i]))
            return nn_fail(c->g, "%s %s: %s[%zu] = %g is not an integer in [%d, %d]", o->op, o->out_name,
                           c->g->tensors[id].name, i, (double)d[i], lo, hi);
    return (int)n;
}

/* ---- operators --------------------------------------------------------------- */

/* Option `field` (named `what` in messages) of the operator's builtin options. */
static int opt_int(tfl_ctx *c, const tfl_op *o, int field, const char *what, int bytes, long long def, long long lo,
                   long long hi, int *out)
{
    int bad = 0;
    long long v = o->has_opt ? fb_int(&c->f, &o->opt, field, bytes, 1, def, &bad) : def;
    if (bad) return nn_fail(c->g, "%s %s: option %s lies outside its table", o->op, o->out_name, what);
    if (v < lo || v > hi)
        return nn_fail(c->g, "%s %s: option %s is %lld, outside [%lld, %lld]", o->op, o->out_name, what, v, lo, hi);
    *out = (int)v;
    return 0;
}

/* Bounds of a fused activation (ActivationFunctionType); tanh is a separate node. */
static int activation(tfl_ctx *c, const tfl_op *o, int field, float *lo, float *hi, int *tanh)
{
    int act;
    if (opt_int(c, o, field, "fused_activation_function", 1, 0, 0, 4, &act)) return -1;
    static const float LO[] = {-INFINITY, 0, -1, 0, -INFINITY}, HI[] = {INFINITY, INFINITY, 1, 6, INFINITY};
    *lo = LO[act];
    *hi = HI[act];
    *tanh = act == 4;
    return 0;
}

/* Adds the fused activation of field `field` after node output id. */
static int with_activation(tfl_ctx *c, const tfl_op *o, int field, int id)
{
    float lo, hi;
    int tanh;
    if (id < 0 || activation(c, o, field, &lo, &hi, &tanh)) return -1;
    if (tanh) return nn_add_unary(c->g, o->op, o->out_name, id, NN_UN_TANH, 0, 0);
    if (isinf(lo) && isinf(hi)) return id;
    return nn_add_unary(c->g, o->op, o->out_name, id, NN_UN_CLAMP, lo, hi);
}

/* An intermediate tensor name: the output's name plus a suffix. */
static const char *inner_name(const tfl_op *o, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", o->out_name, suffix);
    return buf;
}

/* Padding (field 0: SAME=0, VALID=1) and strides (fields 1, 2: w, h) for conv and pool. */
static int window(tfl_ctx *c, const tfl_op *o, int x, nn_conv_params *p)
{
    int pad, sw, sh;
    if (opt_int(c, o, 0, "padding", 1, 0, 0, 1, &pad) || opt_int(c, o, 1, "stride_w", 4, 1, 1, 1 << 16, &sw) ||
        opt_int(c, o, 2, "stride_h", 4, 1, 1, 1 << 16, &sh))
        return -1;
    const nn_shape *s = &c->g->tensors[x].shape;
    if (s->rank != 4) return nn_fail(c->g, "%s %s: input is not 4-D", o->op, o->out_name);
    p->sh = sh;
    p->sw = sw;
    if (p->kh < 1 || p->kw < 1) return nn_fail(c->g, "%s %s: empty window", o->op, o->out_name);
    if (pad == 0 && (nn_same_pads(s->dims[1], p->kh, sh, p->dh ? p->dh : 1, &p->pad_top, &p->pad_bottom) ||
                     nn_same_pads(s->dims[2], p->kw, sw, p->dw ? p->dw : 1, &p->pad_left, &p->pad_right)))
        return nn_fail(c->g, "%s %s: padding too large", o->op, o->out_name);
    return 0;
}

static int op_conv(tfl_ctx *c, const tfl_op *o)
{
    int depthwise = o->code == B_DEPTHWISE_CONV_2D, x = input_of(c, o, o->in[0]), w, b = -1;
    const float *wd = x < 0 ? NULL : const_input(c, o, 1, &w), *bd = NULL;
    if (!wd) return -1;
    if (o->n_in > 2 && o->in[2] >= 0 && !(bd = const_input(c, o, 2, &b))) return -1;
    const nn_shape *ws = &c->g->tensors[w].shape, *xs = &c->g->tensors[x].shape;
    if (ws->rank != 4 || xs->rank != 4) return nn_fail(c->g, "%s %s: filter or input is not 4-D", o->op, o->out_name);
    /* filters: CONV_2D [O][H][W][I] (XNNPACK's layout), DEPTHWISE [1][H][W][C*M] */
    int kh = ws->dims[1], kw = ws->dims[2], cin = xs->dims[3], tanh;
    nn_conv_params p = {.kh = kh, .kw = kw, .cin = cin};
    int dil_field = depthwise ? 5 : 4;
    if (opt_int(c, o, dil_field, "dilation_w_factor", 4, 1, 1, 1 << 16, &p.dw) || opt_int(c, o, dil_field + 1, "dilation_h_factor", 4, 1, 1, 1 << 16, &p.dh) ||
        window(c, o, x, &p) || activation(c, o, depthwise ? 4 : 3, &p.out_min, &p.out_max, &tanh))
        return -1;
    if (depthwise) {
        if (ws->dims[0] != 1 || cin < 1 || ws->dims[3] % cin)
            return nn_fail(c->g, "%s %s: filter %s does not fit %d input channels", o->op, o->out_name, c->g->tensors[w].name, cin);
        p.groups = cin;
        p.cout = ws->dims[3];
    } else {
        if (ws->dims[3] < 1 || cin < 1 || cin % ws->dims[3]) /* cin 0 would make 0 groups */
            return nn_fail(c->g, "%s %s: filter %s does not fit %d input channels", o->op, o->out_name, c->g->tensors[w].name, cin);
        p.groups = cin / ws->dims[3];
        p.cout = ws->dims[0];
    }
    if (bd && nn_shape_size(&c->g->tensors[b].shape) != (size_t)p.cout)
        return nn_fail(c->g, "%s %s: bias %s does not have %d values", o->op, o->out_name, c->g->tensors[b].name, p.cout);
    size_t per = (size_t)kh * kw * (size_t)(cin / p.groups), total = (size_t)p.cout * per;
    p.weights = malloc(total * sizeof(float));
    p.bias = calloc((size_t)p.cout, sizeof(float));
    if (!p.weights || !p.bias) { free(p.weights); free(p.bias); return nn_fail(c->g, "out of memory"); }
    if (!depthwise) memcpy(p.weights, wd, total * sizeof(float));
    else   /* [1][H][W][C] -> [C][H][W][1] */
        for (size_t k = 0; k < (size_t)kh * kw; k++)
            for (int ch = 0; ch < p.cout; ch++) p.weights[(size_t)ch * per + k] = wd[k * (size_t)p.cout + ch];
    if (bd) memcpy(p.bias, bd, (size_t)p.cout * sizeof(float));
    int id = nn_add_conv(c->g, o->op, o->out_name, x, &p);
    if (id < 0) { free(p.weights); free(p.bias); return -1; }
    return tanh ? nn_add_unary(c->g, o->op, o->out_name, id, NN_UN_TANH, 0, 0) : id;
}

static int op_fully_connected(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), w, b = -1, format;
    const float *wd = x < 0 ? NULL : const_input(c, o, 1, &w), *bd = NULL;
    if (!wd || opt_int(c, o, 1, "weights_format", 1, 0, 0, 0, &format)) return -1;   /* weights_format DEFAULT only */
    if (o->n_in > 2 && o->in[2] >= 0 && !(bd = const_input(c, o, 2, &b))) return -1;
    nn_fc_params p;
    /* weights [M][K]: already the runtime's layout, i.e. "transposed" for the helper */
    if (nn_fc_from_matrix(c->g, wd, &c->g->tensors[w].shape, 1, 1.0f, &p)) return -1;
    if (bd && nn_shape_size(&c->g->tensors[b].shape) != (size_t)p.m) {
        free(p.weights);
        free(p.bias);
        return nn_fail(c->g, "%s %s: bias %s does not have %d values", o->op, o->out_name, c->g->tensors[b].name, p.m);
    }
    if (bd) memcpy(p.bias, bd, (size_t)p.m * sizeof(float));
    int tanh;
    if (activation(c, o, 0, &p.out_min, &p.out_max, &tanh)) { free(p.weights); free(p.bias); return -1; }
    /* without keep_num_dims the input is flattened to [N, K] */
    const nn_shape *xs = &c->g->tensors[x].shape;
    size_t n = nn_shape_size(xs);
    if (xs->rank != 2 && n % (size_t)p.k == 0) {
        int dims[2] = {(int)(n / (size_t)p.k), p.k};
        char buf[300];
        x = nn_add_reshape(c->g, o->op, inner_name(o, "flat", buf, sizeof buf), x, nn_shape_make(2, dims));
    }
    int id = x < 0 ? -1 : nn_add_fc(c->g, o->op, o->out_name, x, &p);
    if (id < 0) { free(p.weights); free(p.bias); return -1; }
    return tanh ? nn_add_unary(c->g, o->op, o->out_name, id, NN_UN_TANH, 0, 0) : id;
}

static int op_pool(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]);
    nn_conv_params p = {0};
    if (x < 0 || opt_int(c, o, 3, "filter_width", 4, 0, 1, 1 << 16, &p.kw) || opt_int(c, o, 4, "filter_height", 4, 0, 1, 1 << 16, &p.kh) ||
        window(c, o, x, &p))
        return -1;
    int id = nn_add_pool(c->g, o->op, o->out_name, o->code == B_MAX_POOL_2D ? NN_OP_MAXPOOL : NN_OP_AVGPOOL, x, &p);
    return with_activation(c, o, 5, id);
}

static int op_binary(tfl_ctx *c, const tfl_op *o, nn_binary_kind k, int swap, int act_field)
{
    int a = input_of(c, o, o->in[0]), b = a < 0 || o->n_in < 2 ? -1 : input_of(c, o, o->in[1]);
    if (b < 0) return c->g->failed ? -1 : nn_fail(c->g, "%s %s: needs two inputs", o->op, o->out_name);
    int id = nn_add_binary(c->g, o->op, o->out_name, k, swap ? b : a, swap ? a : b);
    return act_field < 0 ? id : with_activation(c, o, act_field, id);
}

/* The output keeps the values and takes the declared shape (RESHAPE, SQUEEZE, ...). */
static int op_as_declared(tfl_ctx *c, const tfl_op *o, const nn_shape *declared)
{
    int x = input_of(c, o, o->in[0]);
    return x < 0 ? -1 : nn_add_reshape(c->g, o->op, o->out_name, x, *declared);
}

static int op_strided_slice(tfl_ctx *c, const tfl_op *o, const nn_shape *declared)
{
    int x = input_of(c, o, o->in[0]);
    if (x < 0) return -1;
    const nn_shape *s = &c->g->tensors[x].shape;
    int b[NN_MAX_RANK], e[NN_MAX_RANK], st[NN_MAX_RANK], bm, em, ellipsis, newaxis, shrink;
    int nb = const_ints(c, o, 1, INT_MIN, INT_MAX, b, NN_MAX_RANK);
    int ne = nb < 0 ? -1 : const_ints(c, o, 2, INT_MIN, INT_MAX, e, NN_MAX_RANK);
    int ns = ne < 0 ? -1 : const_ints(c, o, 3, INT_MIN, INT_MAX, st, NN_MAX_RANK);
    if (ns < 0 || opt_int(c, o, 0, "begin_mask", 4, 0, 0, INT_MAX, &bm) || opt_int(c, o, 1, "end_mask", 4, 0, 0, INT_MAX, &em) ||
        opt_int(c, o, 2, "ellipsis_mask", 4, 0, 0, 0, &ellipsis) || opt_int(c, o, 3, "new_axis_mask", 4, 0, 0, 0, &newaxis) ||
        opt_int(c, o, 4, "shrink_axis_mask", 4, 0, 0, INT_MAX, &shrink))
        return -1;
    if (nb != s->rank || ne != s->rank || ns != s->rank)
        return nn_fail(c->g, "%s %s: begin/end/strides need %d values", o->op, o->out_name, s->rank);
    for (int i = 0; i < s->rank; i++) {
        if (st[i] == 0) return nn_fail(c->g, "%s %s: stride %d is 0", o->op, o->out_name, i);
        if (bm >> i & 1) b[i] = st[i] > 0 ? 0 : INT_MAX;
        if (em >> i & 1) e[i] = st[i] > 0 ? INT_MAX : INT_MIN;
        if (shrink >> i & 1) { e[i] = b[i] == -1 ? INT_MAX : b[i] + 1; st[i] = 1; }
    }
    char buf[300];
    int id = nn_add_slice(c->g, o->op, shrink ? inner_name(o, "slice", buf, sizeof buf) : o->out_name, x, b, e, st);
    return id < 0 || !shrink ? id : nn_add_reshape(c->g, o->op, o->out_name, id, *declared);
}

static int op_concat(tfl_ctx *c, const tfl_op *o)
{
    int ids[TFL_MAX_OP_INPUTS], axis;
    for (int i = 0; i < o->n_in; i++)
        if ((ids[i] = input_of(c, o, o->in[i])) < 0) return -1;
    if (opt_int(c, o, 0, "axis", 4, 0, -NN_MAX_RANK, NN_MAX_RANK - 1, &axis)) return -1;
    return with_activation(c, o, 1, nn_add_concat(c->g, o->op, o->out_name, ids, o->n_in, axis));
}

/* LEAKY_RELU (alpha) and PRELU (slope tensor) both become a per-channel PReLU. */
static int op_leaky(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]);
    if (x < 0) return -1;
    int bad = 0;
    float alpha = o->has_opt ? fb_float(&c->f, &o->opt, 0, 0.2f, &bad) : 0.2f;
    const nn_shape *s = &c->g->tensors[x].shape;
    int ch = s->rank ? s->dims[s->rank - 1] : 1;
    if (bad || !isfinite(alpha)) return nn_fail(c->g, "%s %s: bad alpha", o->op, o->out_name);
    float *slope = malloc((size_t)(ch > 0 ? ch : 1) * sizeof *slope);
    if (!slope) return nn_fail(c->g, "out of memory");
    for (int i = 0; i < ch; i++) slope[i] = alpha;
    char buf[300];
    int sl = nn_tensor_add(c->g, inner_name(o, "alpha", buf, sizeof buf), nn_shape_make(1, &ch), slope);
    return sl < 0 ? -1 : nn_add_prelu(c->g, o->op, o->out_name, x, sl);
}

static int op_prelu(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), a;
    const float *ad = x < 0 ? NULL : const_input(c, o, 1, &a);
    if (!ad) return -1;
    int len = (int)nn_shape_size(&c->g->tensors[a].shape);
    char buf[300];
    int flat = nn_add_reshape(c->g, o->op, inner_name(o, "slope", buf, sizeof buf), a, nn_shape_make(1, &len));
    return flat < 0 ? -1 : nn_add_prelu(c->g, o->op, o->out_name, x, flat);
}

static int op_reduce(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), axes[NN_MAX_RANK], keep;
    int r = x < 0 ? 0 : c->g->tensors[x].shape.rank;
    int n = x < 0 ? -1 : const_ints(c, o, 1, -r, r - 1, axes, NN_MAX_RANK);
    if (n < 0 || opt_int(c, o, 0, "keep_dims", 1, 0, 0, 1, &keep)) return -1;
    int mask = 0;
    for (int i = 0; i < n; i++) mask |= 1 << (axes[i] < 0 ? axes[i] + r : axes[i]);
    nn_reduce_kind k = o->code == B_MEAN ? NN_RED_MEAN : o->code == B_SUM ? NN_RED_SUM : NN_RED_MAX;
    return nn_add_reduce(c->g, o->op, o->out_name, x, k, mask, keep);
}

static int op_pad(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), pads[2 * NN_MAX_RANK];
    int n = x < 0 ? -1 : const_ints(c, o, 1, 0, (int)NN_MAX_ELEMENTS, pads, 2 * NN_MAX_RANK);
    if (n < 0) return -1;
    int r = c->g->tensors[x].shape.rank, before[NN_MAX_RANK], after[NN_MAX_RANK];
    if (n != 2 * r) return nn_fail(c->g, "%s %s: paddings has %d values for rank %d", o->op, o->out_name, n, r);
    for (int i = 0; i < r; i++) { before[i] = pads[2 * i]; after[i] = pads[2 * i + 1]; }
    return nn_add_pad(c->g, o->op, o->out_name, x, before, after, 0.0f);
}

static int op_transpose(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), perm[NN_MAX_RANK];
    int r = x < 0 ? 0 : c->g->tensors[x].shape.rank;
    int n = x < 0 ? -1 : const_ints(c, o, 1, 0, r - 1, perm, NN_MAX_RANK);
    if (n < 0) return -1;
    if (n != r) return nn_fail(c->g, "%s %s: perm has %d values for rank %d", o->op, o->out_name, n, r);
    return nn_add_transpose(c->g, o->op, o->out_name, x, perm);
}

static int op_softmax(tfl_ctx *c, const tfl_op *o)
{
    int x = input_of(c, o, o->in[0]), bad = 0;
    float beta = o->has_opt ? fb_float(&c->f, &o->opt, 0, 1.0f, &bad) : 1.0f;
    if (x < 0) return -1;
    if (bad || beta != 1.0f) return nn_fail(c->g, "%s %s: beta %g unsupported (only 1)", o->op, o->out_name, (double)beta);
    return nn_add_softmax(c->g, o->op, o->out_name, x, -1);
}

static const struct { int code; nn_unary_kind k; float lo, hi; } UNARY[] = {
    {B_RELU, NN_UN_RELU, 0, INFINITY}, {B_RELU6, NN_UN_CLAMP, 0, 6}, {B_LOGISTIC, NN_UN_SIGMOID, 0, 0},
    {B_TANH, NN_UN_TANH, 0, 0}, {B_EXP, NN_UN_EXP, 0, 0}, {B_ABS, NN_UN_ABS, 0, 0}, {B_NEG, NN_UN_NEG, 0, 0},
    {B_SQUARE, NN_UN_SQUARE, 0, 0}, {B_SQRT, NN_UN_SQRT, 0, 0}, {B_RSQRT, NN_UN_RSQRT, 0, 0},
};

/* 1 when tflite tensor t came from an operator `code` without fused activation. */
static int made_by(const tfl_ctx *c, int t, int code)
{
    return t >= 0 && (size_t)t < c->n_tensors && c->made_by[t].code == code && c->made_by[t].plain;
}

/* relu(x) + k * (x - |x|) is PReLU(x) with slope 2k: how TOCO wrote MobileFaceNet's
 * PReLU. One XNNPACK node instead of five glue passes over the feature map (the
 * four others are left without readers and dropped). -2 when ADD is not that. */
static int fused_prelu(tfl_ctx *c, const tfl_op *o)
{
    for (int k = 0; k < 2 && o->n_in == 2; k++) {
        int relu = o->in[k], mul = o->in[1 - k];
        if (!made_by(c, relu, B_RELU) || !made_by(c, mul, B_MUL)) continue;
        int x = c->made_by[relu].in[0];
        for (int j = 0; j < 2; j++) {
            int konst = c->made_by[mul].in[j], sub = c->made_by[mul].in[1 - j];
            if (!made_by(c, sub, B_SUB) || c->made_by[sub].in[0] != x) continue;
            int abs = c->made_by[sub].in[1];
            if (!made_by(c, abs, B_ABS) || c->made_by[abs].in[0] != x || c->id[x] < 0) continue;
            int kid = input_of(c, o, konst);
            if (kid < 0) return -1;
            const nn_tensor *kt = &c->g->tensors[kid];
            const nn_shape *xs = &c->g->tensors[c->id[x]].shape;
            int ch = xs->rank ? xs->dims[xs->rank - 1] : 1;
            size_t n = nn_shape_size(&kt->shape);
            if (!kt->data || (n != 1 && n != (size_t)ch)) continue;
            float *slope = malloc(n * sizeof *slope);
            if (!slope) return nn_fail(c->g, "out of memory");
            for (size_t i = 0; i < n; i++) slope[i] = 2.0f * kt->data[i];
            char buf[300];
            int len = (int)n, sl = nn_tensor_add(c->g, inner_name(o, "slope", buf, sizeof buf), nn_shape_make(1, &len), slope);
            return sl < 0 ? -1 : nn_add_prelu(c->g, "ADD(PRELU)", o->out_name, c->id[x], sl);
        }
    }
    return -2;
}

/* Builds one operator; returns its output's graph tensor. */
static int translate(tfl_ctx *c, const tfl_op *o, const nn_shape *declared)
{
    for (size_t i = 0; i < sizeof UNARY / sizeof UNARY[0]; i++)
        if (o->code == UNARY[i].code) {
            int x = input_of(c, o, o->in[0]);
            return x < 0 ? -1 : nn_add_unary(c->g, o->op, o->out_name, x, UNARY[i].k, UNARY[i].lo, UNARY[i].hi);
        }
    switch (o->code) {
    case B_CONV_2D: case B_DEPTHWISE_CONV_2D: return op_conv(c, o);
    case B_FULLY_CONNECTED: return op_fully_connected(c, o);
    case B_MAX_POOL_2D: case B_AVERAGE_POOL_2D: return op_pool(c, o);
    case B_ADD: {
        int act, id = opt_int(c, o, 0, "fused_activation_function", 1, 0, 0, 4, &act) ? -1 : act ? -2 : fused_prelu(c, o);
        return id == -2 ? op_binary(c, o, NN_BIN_ADD, 0, 0) : id;
    }
    case B_SUB: return op_binary(c, o, NN_BIN_SUB, 0, 0);
    case B_MUL: return op_binary(c, o, NN_BIN_MUL, 0, 0);
    case B_DIV: return op_binary(c, o, NN_BIN_DIV, 0, 0);
    case B_MAXIMUM: return op_binary(c, o, NN_BIN_MAX, 0, -1);
    case B_MINIMUM: return op_binary(c, o, NN_BIN_MIN, 0, -1);
    case B_GREATER_EQUAL: return op_binary(c, o, NN_BIN_GE, 0, -1);
    case B_LESS: return op_binary(c, o, NN_BIN_LT, 0, -1);
    case B_GREATER: return op_binary(c, o, NN_BIN_LT, 1, -1);      /* a > b  is  b < a */
    case B_LESS_EQUAL: return op_binary(c, o, NN_BIN_GE, 1, -1);   /* a <= b is  b >= a */
    case B_RESHAPE: case B_SQUEEZE: case B_EXPAND_DIMS: return op_as_declared(c, o, declared);
    case B_STRIDED_SLICE: return op_strided_slice(c, o, declared);
    case B_CONCATENATION: return op_concat(c, o);
    case B_LEAKY_RELU: return op_leaky(c, o);
    case B_PRELU: return op_prelu(c, o);
    case B_MEAN: case B_SUM: case B_REDUCE_MAX: return op_reduce(c, o);
    case B_PAD: return op_pad(c, o);
    case B_TRANSPOSE: return op_transpose(c, o);
    case B_SOFTMAX: return op_softmax(c, o);
    /* Booleans and dequantised constants are floats here already. */
    case B_DEQUANTIZE: case B_CAST: return input_of(c, o, o->in[0]);
    default: return nn_fail(c->g, "unsupported operator %d (output %s)", o->code, o->out_name);
    }
}

/* Reads operator k's table into o. */
static int read_op(tfl_ctx *c, size_t ops, size_t k, tfl_op *o)
{
    fb_table ot;
    size_t in_data, n_in, out_data, n_out, optp;
    int bad = 0;
    memset(o, 0, sizeof *o);
    if (fb_vector_table(&c->f, ops, k, &ot) || fb_vector(&c->f, &ot, OP_INPUTS, 4, &in_data, &n_in) ||
        fb_vector(&c->f, &ot, OP_OUTPUTS, 4, &out_data, &n_out) || fb_ref(&c->f, &ot, OP_OPTIONS, &optp))
        return nn_fail(c->g, "operator %zu: outside the file", k);
    long long opcode = fb_int(&c->f, &ot, OP_OPCODE, 4, 0, 0, &bad);
    if (bad || opcode < 0 || (size_t)opcode >= c->n_opcodes)
        return nn_fail(c->g, "operator %zu: operator code %lld does not exist", k, opcode);
    o->code = c->opcodes[opcode];
    o->op = builtin_name(o->code);
    if (n_out < 1) return nn_fail(c->g, "operator %zu (%s): no output", k, o->op ? o->op : "?");
    o->out = (int32_t)rd_u32(&c->f, out_data);
    tensor_name(c, o->out, o->out_name, sizeof o->out_name);
    if (!o->op) return nn_fail(c->g, "unsupported operator %d (output %s)", o->code, o->out_name);
    if (n_out != 1) return nn_fail(c->g, "%s %s: %zu outputs, only one supported", o->op, o->out_name, n_out);
    if (n_in > TFL_MAX_OP_INPUTS) return nn_fail(c->g, "%s %s: %zu inputs, at most %d", o->op, o->out_name, n_in, TFL_MAX_OP_INPUTS);
    if (n_in < 1) return nn_fail(c->g, "%s %s: no input", o->op, o->out_name);
    o->n_in = (int)n_in;
    for (size_t i = 0; i < n_in; i++) o->in[i] = (int32_t)rd_u32(&c->f, in_data + 4 * i);
    if (o->in[0] < 0) return nn_fail(c->g, "%s %s: first input absent", o->op, o->out_name);
    if (optp) {
        if (fb_table_at(&c->f, optp, &o->opt)) return nn_fail(c->g, "%s %s: options outside the file", o->op, o->out_name);
        o->has_opt = 1;
    }
    return 0;
}

static int build_op(tfl_ctx *c, size_t ops, size_t k)
{
    tfl_op o;
    fb_table tt;
    nn_shape declared;
    if (read_op(c, ops, k, &o)) return -1;
    if (o.out < 0 || (size_t)o.out >= c->n_tensors) return nn_fail(c->g, "%s: output tensor %d does not exist", o.op, o.out);
    if (c->id[o.out] >= 0) return nn_fail(c->g, "%s %s: tensor written twice", o.op, o.out_name);
    if (tensor_table(c, o.out, &tt) || tensor_shape(c, &tt, o.out_name, &declared)) return -1;
    rebatch(c, &declared);
    int id = translate(c, &o, &declared);
    if (id < 0) return c->g->failed ? -1 : nn_fail(c->g, "%s %s: failed", o.op, o.out_name);
    /* Our shape inference must agree with the file's: a disagreement means a
     * misread option or an operator variant we do not implement. */
    const nn_shape *got = &c->g->tensors[id].shape;
    int same = got->rank == declared.rank || (declared.rank == 0 && nn_shape_size(got) == 1);
    for (int i = 0; same && i < got->rank && i < declared.rank; i++) same = got->dims[i] == declared.dims[i];
    if (!same) {
        if (nn_shape_size(got) != nn_shape_size(&declared) || got->rank == 0)
            return nn_fail(c->g, "%s %s: computed shape (rank %d, %zu values) differs from the declared one (rank %d, %zu values)",
                           o.op, o.out_name, got->rank, nn_shape_size(got), declared.rank, nn_shape_size(&declared));
        id = nn_add_reshape(c->g, o.op, o.out_name, id, declared);   /* e.g. [1,1] vs [1] */
        if (id < 0) return -1;
    }
    c->id[o.out] = id;
    int act = 0;
    if ((o.code == B_ADD || o.code == B_SUB || o.code == B_MUL) && opt_int(c, &o, 0, "fused_activation_function", 1, 0, 0, 4, &act))
        return -1;
    c->made_by[o.out] = (struct tfl_producer){o.code, {o.in[0], o.n_in > 1 ? o.in[1] : -1}, act == 0};
    return 0;
}

/* Subgraph inputs (non-constant) become graph inputs. */
static int add_inputs(tfl_ctx *c)
{
    size_t data, n;
    if (fb_vector(&c->f, &c->sg, SG_INPUTS, 4, &data, &n)) return nn_fail(c->g, "subgraph inputs outside the file");
    for (size_t i = 0; i < n; i++) {
        int t = (int32_t)rd_u32(&c->f, data + 4 * i);
        fb_table tt;
        char name[256];
        nn_shape s;
        tensor_name(c, t, name, sizeof name);
        if (tensor_table(c, t, &tt) || tensor_shape(c, &tt, name, &s)) return -1;
        if (i == 0) c->file_batch = s.rank ? s.dims[0] : 0;
        rebatch(c, &s);
        int bad = 0, type = (int)fb_int(&c->f, &tt, T_TYPE, 1, 1, TT_FLOAT32, &bad);
        if (bad || type != TT_FLOAT32) return nn_fail(c->g, "input %s: type %d, only float32 inputs are supported", name, type);
        if (c->id[t] >= 0) return nn_fail(c->g, "input %s listed twice", name);
        int id = nn_tensor_add(c->g, name, s, NULL);
        int *ins = id < 0 ? NULL : realloc(c->g->inputs, (size_t)(c->g->n_inputs + 1) * sizeof *ins);
        if (!ins) return c->g->failed ? -1 : nn_fail(c->g, "out of memory");
        c->g->inputs = ins;
        ins[c->g->n_inputs++] = id;
        c->id[t] = id;
    }
    return c->g->n_inputs ? 0 : nn_fail(c->g, "model has no input");
}

static int add_outputs(tfl_ctx *c)
{
    size_t data, n;
    if (fb_vector(&c->f, &c->sg, SG_OUTPUTS, 4, &data, &n)) return nn_fail(c->g, "subgraph outputs outside the file");
    if (!n) return nn_fail(c->g, "model has no output");
    c->g->outputs = calloc(n, sizeof *c->g->outputs);
    c->g->output_names = calloc(n, sizeof *c->g->output_names);
    if (!c->g->outputs || !c->g->output_names) return nn_fail(c->g, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int t = (int32_t)rd_u32(&c->f, data + 4 * i);
        char name[256];
        tensor_name(c, t, name, sizeof name);
        if (t < 0 || (size_t)t >= c->n_tensors || c->id[t] < 0) return nn_fail(c->g, "output %s is never computed", name);
        c->g->outputs[i] = c->id[t];
        c->g->output_names[i] = strdup(name);
        c->g->n_outputs++;
    }
    return 0;
}

static int read_opcodes(tfl_ctx *c)
{
    size_t data, n;
    if (fb_vector(&c->f, &c->model, MODEL_OPCODES, 4, &data, &n)) return nn_fail(c->g, "operator codes outside the file");
    c->opcodes = calloc(n + 1, sizeof *c->opcodes);
    if (!c->opcodes) return nn_fail(c->g, "out of memory");
    c->n_opcodes = n;
    for (size_t i = 0; i < n; i++) {
        fb_table t;
        int bad = 0;
        if (fb_vector_table(&c->f, data, i, &t)) return nn_fail(c->g, "operator code %zu outside the file", i);
        /* The byte field was the code until 127 ran out; newer files set both. */
        long long old = fb_int(&c->f, &t, OPCODE_DEPRECATED, 1, 1, 0, &bad);
        long long now = fb_int(&c->f, &t, OPCODE_BUILTIN, 4, 1, 0, &bad);
        if (bad) return nn_fail(c->g, "operator code %zu malformed", i);
        c->opcodes[i] = (int)(now > old ? now : old);
    }
    return 0;
}

static int build(tfl_ctx *c)
{
    const fb_buf *f = &c->f;
    if (f->len < 8 || memcmp(f->b + 4, "TFL3", 4) != 0)
        return nn_fail(c->g, "not a TensorFlow Lite model (no TFL3 identifier)");
    size_t sgs, n_sgs, ops, n_ops;
    if (fb_table_at(f, rd_u32(f, 0), &c->model)) return nn_fail(c->g, "root table outside the file");
    if (read_opcodes(c) || fb_vector(f, &c->model, MODEL_BUFFERS, 4, &c->buffers, &c->n_buffers) ||
        fb_vector(f, &c->model, MODEL_SUBGRAPHS, 4, &sgs, &n_sgs))
        return c->g->failed ? -1 : nn_fail(c->g, "buffers or subgraphs outside the file");
    if (n_sgs < 1) return nn_fail(c->g, "model has no subgraph");
    if (fb_vector_table(f, sgs, 0, &c->sg) || fb_vector(f, &c->sg, SG_TENSORS, 4, &c->tensors, &c->n_tensors) ||
        fb_vector(f, &c->sg, SG_OPERATORS, 4, &ops, &n_ops))
        return nn_fail(c->g, "subgraph 0 outside the file");
    if (c->n_tensors > TFL_MAX_TENSORS) return nn_fail(c->g, "%zu tensors, at most %d", c->n_tensors, TFL_MAX_TENSORS);
    c->id = malloc((c->n_tensors + 1) * sizeof *c->id);
    c->made_by = malloc((c->n_tensors + 1) * sizeof *c->made_by);
    if (!c->id || !c->made_by) return nn_fail(c->g, "out of memory");
    for (size_t i = 0; i <= c->n_tensors; i++) c->id[i] = -1, c->made_by[i].code = -1;
    if (add_inputs(c)) return -1;
    for (size_t k = 0; k < n_ops; k++)
        if (build_op(c, ops, k)) return -1;
    return add_outputs(c);
}

int nn_tflite_load(nn_graph *g, const char *path, int batch)
{
    size_t len;
    unsigned char *bytes = nn_read_file(g, path, &len);
    if (!bytes) return -1;
    tfl_ctx c = {.g = g, .f = {bytes, len}, .batch = batch};
    int rc = build(&c);
    free(c.opcodes);
    free(c.id);
    free(c.made_by);
    free(bytes);
    if (rc) nn_fail_prefix(g, path);
    return rc;
}
