/*
 * graph.c - building the internal graph: shape inference, constant folding,
 * fusion of cheap ops into convolutions, and the plain-C glue kernels.
 *
 * The loaders call the nn_add_* builders in topological order. A builder
 * checks its inputs, fixes the output shape once and for all, and if every
 * input is constant evaluates the node immediately, so shape arithmetic
 * (Shape/Gather/Concat/...) never reaches the executor.
 */
#include "nn/graph.h"

#include "core/file.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The glue kernels are simple loops; -O2's "very cheap" vectoriser leaves them
 * scalar (it refuses loops that need a remainder). O3's cost model vectorises
 * them, which matters for residual Adds on large feature maps.
 */
#pragma GCC optimize("O3")

size_t nn_shape_size(const nn_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= (size_t)s->dims[i];
    return n;
}

int nn_shape_ok(const nn_shape *s)
{
    if (s->rank < 0 || s->rank > NN_MAX_RANK) return 0;
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0 || (size_t)s->dims[i] > NN_MAX_ELEMENTS) return 0;
        n *= (size_t)s->dims[i];      /* both factors <= 2^28: cannot wrap */
        if (n > NN_MAX_ELEMENTS) return 0;
    }
    return 1;
}

int nn_float_to_int(float f, int lo, int hi, int *out)
{
    if (!isfinite(f) || f != floorf(f) || f < (float)lo || f > (float)hi) return -1;
    double d = f;      /* in range now; (float)INT_MAX rounds up, so clamp in double */
    *out = d >= (double)INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    return 0;
}

nn_shape nn_shape_make(int rank, const int *dims)
{
    nn_shape s = {0};
    s.rank = rank;
    for (int i = 0; i < rank && i < NN_MAX_RANK; i++) s.dims[i] = dims[i];
    return s;
}

float nn_half_to_float(uint16_t h)
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

int nn_same_pads(int in_size, int k, int s, int d, int *before, int *after)
{
    /* 64-bit: no attribute value can overflow it */
    long long out = ((long long)in_size + s - 1) / s, eff = (long long)(k - 1) * d + 1;
    long long total = (out - 1) * s + eff - in_size;
    if (total < 0) total = 0;
    if (total > INT_MAX) return -1;
    *before = (int)(total / 2);
    *after = (int)(total - *before);
    return 0;
}

void nn_graph_init(nn_graph *g, char *err, size_t err_len)
{
    memset(g, 0, sizeof *g);
    g->err = err;
    g->err_len = err_len;
}

void nn_graph_free(nn_graph *g)
{
    for (int i = 0; i < g->n_tensors; i++) {
        free(g->tensors[i].name);
        free(g->tensors[i].data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].source_op);
        free(g->nodes[i].in);
        free(g->nodes[i].conv.weights);
        free(g->nodes[i].conv.bias);
        free(g->nodes[i].fc.weights);
        free(g->nodes[i].fc.bias);
    }
    for (int i = 0; i < g->n_outputs; i++) free(g->output_names ? g->output_names[i] : NULL);
    free(g->output_names);
    free(g->tensors);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    memset(g, 0, sizeof *g);
}

int nn_fail(nn_graph *g, const char *fmt, ...)
{
    if (!g->failed && g->err && g->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->err, g->err_len, fmt, ap);
        va_end(ap);
    }
    g->failed = 1;
    return -1;
}

void nn_fail_prefix(nn_graph *g, const char *prefix)
{
    if (!g->failed || !g->err || !g->err_len || !prefix) return;
    size_t pl = strlen(prefix), el = strlen(g->err);
    if (strncmp(g->err, prefix, pl) == 0) return;
    if (pl + 2 >= g->err_len) return;
    if (pl + 2 + el >= g->err_len) el = g->err_len - pl - 3;   /* keep the start of the message */
    memmove(g->err + pl + 2, g->err, el);
    memcpy(g->err, prefix, pl);
    memcpy(g->err + pl, ": ", 2);
    g->err[pl + 2 + el] = 0;
}

unsigned char *nn_read_file(nn_graph *g, const char *path, size_t *len)
{
    /* 1 GiB: far above any model here, low enough to refuse a runaway file. */
    unsigned char *buf = file_read_all(path, (size_t)1 << 30, len);
    if (!buf) nn_fail(g, "cannot open or read %s", path);
    return buf;
}

int nn_fc_from_matrix(nn_graph *g, const float *w, const nn_shape *ws, int transposed, float alpha,
                      nn_fc_params *p)
{
    memset(p, 0, sizeof *p);
    if (ws->rank != 2 || !nn_shape_ok(ws) || ws->dims[0] < 1 || ws->dims[1] < 1)
        return nn_fail(g, "weight matrix is not a non-empty 2-D tensor");
    p->k = transposed ? ws->dims[1] : ws->dims[0];
    p->m = transposed ? ws->dims[0] : ws->dims[1];
    p->out_min = -INFINITY;
    p->out_max = INFINITY;
    p->weights = malloc((size_t)p->k * p->m * sizeof(float));
    p->bias = calloc((size_t)p->m, sizeof(float));
    if (!p->weights || !p->bias) {
        free(p->weights);
        free(p->bias);
        return nn_fail(g, "out of memory");
    }
    for (int o = 0; o < p->m; o++)
        for (int i = 0; i < p->k; i++)
            p->weights[(size_t)o * p->k + i] =
                alpha * (transposed ? w[(size_t)o * p->k + i] : w[(size_t)i * p->m + o]);
    return 0;
}

int nn_conv_from_hwio(nn_graph *g, const float *f, const nn_shape *fs, int depthwise, nn_conv_params *p)
{
    if (fs->rank != 4 || !nn_shape_ok(fs) || nn_shape_size(fs) == 0) return nn_fail(g, "filter is not a non-empty 4-D tensor");
    int kh = fs->dims[0], kw = fs->dims[1], ci = fs->dims[2], co = fs->dims[3];
    p->kh = kh;
    p->kw = kw;
    p->out_min = -INFINITY;
    p->out_max = INFINITY;
    p->cin = ci;
    p->groups = depthwise ? ci : 1;
    p->cout = depthwise ? ci * co : co;
    size_t per = (size_t)kh * kw * (depthwise ? 1 : ci);
    p->weights = malloc((size_t)p->cout * per * sizeof(float));
    p->bias = calloc((size_t)p->cout, sizeof(float));
    if (!p->weights || !p->bias) {
        free(p->weights);
        free(p->bias);
        p->weights = p->bias = NULL;
        return nn_fail(g, "out of memory");
    }
    for (int y = 0; y < kh; y++)
        for (int xx = 0; xx < kw; xx++)
            for (int i = 0; i < ci; i++)
                for (int o = 0; o < co; o++) {
                    float v = f[(((size_t)y * kw + xx) * ci + i) * co + o];
                    if (depthwise) p->weights[((size_t)(i * co + o)) * per + (size_t)y * kw + xx] = v;
                    else p->weights[(size_t)o * per + ((size_t)y * kw + xx) * ci + i] = v;
                }
    return 0;
}

/* ---- tensors ---------------------------------------------------------- */

int nn_tensor_find(const nn_graph *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0) return i;
    return -1;
}

int nn_graph_add_input(nn_graph *g, const char *name, nn_shape shape)
{
    int id = nn_tensor_add(g, name, shape, NULL);
    if (id < 0) return -1;
    int *ins = realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof *ins);
    if (!ins) return nn_fail(g, "out of memory");
    g->inputs = ins;
    ins[g->n_inputs++] = id;
    return id;
}

int nn_graph_add_output(nn_graph *g, const char *public_name, int id)
{
    if (id < 0 || id >= g->n_tensors) return nn_fail(g, "output %s: no such tensor", public_name);
    int n = g->n_outputs;
    int *o = realloc(g->outputs, (size_t)(n + 1) * sizeof *o);
    if (o) g->outputs = o;
    char **names = realloc(g->output_names, (size_t)(n + 1) * sizeof *names);
    if (names) g->output_names = names;
    char *copy = o && names ? strdup(public_name) : NULL;
    if (!copy) return nn_fail(g, "out of memory");
    o[n] = id;
    names[n] = copy;
    g->n_outputs++;
    return 0;
}

int nn_tensor_add(nn_graph *g, const char *name, nn_shape shape, float *data_owned)
{
    if (!nn_shape_ok(&shape)) {
        free(data_owned);
        return nn_fail(g, "tensor %s: rank %d or a dimension is negative or too large (limit %zu values)",
                       name ? name : "", shape.rank, NN_MAX_ELEMENTS);
    }
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 64;
        nn_tensor *t = realloc(g->tensors, (size_t)cap * sizeof *t);
        if (!t) { free(data_owned); return nn_fail(g, "out of memory"); }
        g->tensors = t;
        g->cap_tensors = cap;
    }
    nn_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name ? name : "");
    t->shape = shape;
    t->data = data_owned;
    t->alias = -1;
    t->producer = -1;
    return g->n_tensors++;
}

int nn_const_add(nn_graph *g, const char *name, nn_shape shape, const float *data)
{
    size_t n = nn_shape_size(&shape);
    float *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) return nn_fail(g, "out of memory for constant %s", name);
    if (n) memcpy(copy, data, n * sizeof *copy);
    return nn_tensor_add(g, name, shape, copy);
}

/* ---- node creation and constant folding ------------------------------ */

static int node_new(nn_graph *g, nn_op op, const char *src, const int *in, int n_in)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        nn_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return nn_fail(g, "out of memory");
        g->nodes = n;
        g->cap_nodes = cap;
    }
    nn_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->source_op = strdup(src ? src : "?");
    n->in = malloc((size_t)(n_in ? n_in : 1) * sizeof *n->in);
    if (!n->source_op || !n->in) return nn_fail(g, "out of memory");
    memcpy(n->in, in, (size_t)n_in * sizeof *in);
    n->n_in = n_in;
    n->out = -1;
    n->fmin = -INFINITY;
    n->fmax = INFINITY;
    n->conv.out_min = n->fc.out_min = -INFINITY;
    n->conv.out_max = n->fc.out_max = INFINITY;
    return g->n_nodes++;
}

static void node_release(nn_node *n)
{
    free(n->source_op);
    free(n->in);
    free(n->conv.weights);
    free(n->conv.bias);
    free(n->fc.weights);
    free(n->fc.bias);
}

static int is_xnn_op(nn_op op)
{
    return op == NN_OP_CONV || op == NN_OP_FC || op == NN_OP_MAXPOOL ||
           op == NN_OP_AVGPOOL || op == NN_OP_GAP;
}

/*
 * Gives node `ni` its output tensor. If all inputs are constant the node is
 * evaluated now and removed, leaving a constant tensor behind.
 */
static int node_finish(nn_graph *g, int ni, const char *out_name, nn_shape shape)
{
    if (!nn_shape_ok(&shape))
        return nn_fail(g, "%s %s: output shape is invalid or over %zu values", g->nodes[ni].source_op,
                       out_name, NN_MAX_ELEMENTS);
    int out = nn_tensor_add(g, out_name, shape, NULL);
    if (out < 0) return out;
    nn_node *n = &g->nodes[ni];
    int all_const = 1;
    for (int i = 0; i < n->n_in; i++)
        if (!g->tensors[n->in[i]].data) all_const = 0;
    n->out = out;
    if (!all_const || is_xnn_op(n->op)) {
        for (int i = 0; i < n->n_in; i++) g->tensors[n->in[i]].consumers++;
        g->tensors[out].producer = ni;
        return out;
    }
    size_t len = nn_shape_size(&shape);
    float *data = malloc((len ? len : 1) * sizeof *data);
    const float *ins[64];
    if (!data || n->n_in > 64) { free(data); return nn_fail(g, "out of memory folding %s", n->source_op); }
    for (int i = 0; i < n->n_in; i++) ins[i] = g->tensors[n->in[i]].data;
    if (n->op == NN_OP_RESHAPE) memcpy(data, ins[0], len * sizeof *data);
    else nn_glue_run(g, n, ins, data);
    g->tensors[out].data = data;
    node_release(n);
    g->n_nodes--;
    return out;
}

static int check_in(nn_graph *g, const char *src, int x)
{
    if (g->failed) return -1;
    if (x < 0 || x >= g->n_tensors) return nn_fail(g, "%s: missing input tensor", src);
    return 0;
}

/* ---- builders -------------------------------------------------------- */

/* Output size along one axis; 64-bit so no attribute value can overflow it. */
static long long conv_out_dim(int in, int k, int s, int d, int p0, int p1)
{
    long long eff = (long long)(k - 1) * d + 1;
    return ((long long)in + p0 + p1 - eff) / s + 1;
}

/* Kernel, stride and dilation >= 1, padding >= 0, output of 1..INT_MAX per axis. */
static int check_window(nn_graph *g, const char *src, const char *out_name, const nn_shape *s,
                        const nn_conv_params *p, int dilated, int *oh, int *ow)
{
    const char *bad = p->kh < 1 || p->kw < 1 ? "kernel size" : p->sh < 1 || p->sw < 1 ? "stride" :
                      dilated && (p->dh < 1 || p->dw < 1) ? "dilation" :
                      p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0 ? "padding" : NULL;
    if (bad)
        return nn_fail(g, "%s %s: %s must be positive (kernel %dx%d, strides %d,%d, dilations %d,%d, pads %d,%d,%d,%d)",
                       src, out_name, bad, p->kh, p->kw, p->sh, p->sw, p->dh, p->dw, p->pad_top, p->pad_left,
                       p->pad_bottom, p->pad_right);
    long long h = conv_out_dim(s->dims[1], p->kh, p->sh, dilated ? p->dh : 1, p->pad_top, p->pad_bottom);
    long long w = conv_out_dim(s->dims[2], p->kw, p->sw, dilated ? p->dw : 1, p->pad_left, p->pad_right);
    if (h < 1 || w < 1) return nn_fail(g, "%s %s: window larger than the padded input", src, out_name);
    if (h > INT_MAX || w > INT_MAX) return nn_fail(g, "%s %s: output too large", src, out_name);
    *oh = (int)h;
    *ow = (int)w;
    return 0;
}

int nn_add_conv(nn_graph *g, const char *src, const char *out_name, int x, const nn_conv_params *p)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    if (s->rank != 4 || s->dims[3] != p->cin || p->cin < 1 || p->cout < 1 || p->groups < 1 ||
        p->cin % p->groups || p->cout % p->groups)
        return nn_fail(g, "%s %s: input %s has shape incompatible with %d input channels, %d outputs, group %d",
                       src, out_name, g->tensors[x].name, p->cin, p->cout, p->groups);
    int oh = 0, ow = 0;
    if (check_window(g, src, out_name, s, p, 1, &oh, &ow)) return -1;
    int ni = node_new(g, NN_OP_CONV, src, &x, 1);
    if (ni < 0) return ni;
    g->nodes[ni].conv = *p;
    int dims[4] = {s->dims[0], oh, ow, p->cout};
    return node_finish(g, ni, out_name, nn_shape_make(4, dims));
}

int nn_add_fc(nn_graph *g, const char *src, const char *out_name, int x, const nn_fc_params *p)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    size_t total = nn_shape_size(s);
    if (p->k < 1 || p->m < 1) return nn_fail(g, "%s %s: empty weight matrix", src, out_name);
    if (s->rank < 1 || s->dims[s->rank - 1] != p->k)
        return nn_fail(g, "%s %s: input %s last dimension is not %d", src, out_name, g->tensors[x].name, p->k);
    int ni = node_new(g, NN_OP_FC, src, &x, 1);
    if (ni < 0) return ni;
    g->nodes[ni].fc = *p;
    nn_shape o = *s;
    o.dims[o.rank - 1] = p->m;
    (void)total;
    return node_finish(g, ni, out_name, o);
}

int nn_add_pool(nn_graph *g, const char *src, const char *out_name, nn_op op, int x, const nn_conv_params *geom)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    if (s->rank != 4) return nn_fail(g, "%s %s: input %s is not 4-D", src, out_name, g->tensors[x].name);
    nn_conv_params p = *geom;
    p.dh = p.dw = 1;
    int oh = 0, ow = 0;
    if (check_window(g, src, out_name, s, &p, 0, &oh, &ow)) return -1;
    int ni = node_new(g, op, src, &x, 1);
    if (ni < 0) return ni;
    p.weights = p.bias = NULL;
    p.cin = p.cout = s->dims[3];
    g->nodes[ni].conv = p;
    int dims[4] = {s->dims[0], oh, ow, s->dims[3]};
    return node_finish(g, ni, out_name, nn_shape_make(4, dims));
}

int nn_add_gap(nn_graph *g, const char *src, const char *out_name, int x)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    if (s->rank != 4) return nn_fail(g, "%s %s: input %s is not 4-D", src, out_name, g->tensors[x].name);
    int ni = node_new(g, NN_OP_GAP, src, &x, 1);
    if (ni < 0) return ni;
    int dims[4] = {s->dims[0], 1, 1, s->dims[3]};
    return node_finish(g, ni, out_name, nn_shape_make(4, dims));
}

int nn_add_unary(nn_graph *g, const char *src, const char *out_name, int x, nn_unary_kind k, float lo, float hi)
{
    if (check_in(g, src, x)) return -1;
    int ni = node_new(g, NN_OP_UNARY, src, &x, 1);
    if (ni < 0) return ni;
    g->nodes[ni].kind = (int)k;
    g->nodes[ni].fmin = lo;
    g->nodes[ni].fmax = hi;
    return node_finish(g, ni, out_name, g->tensors[x].shape);
}

int nn_add_prelu(nn_graph *g, const char *src, const char *out_name, int x, int slope)
{
    if (check_in(g, src, x) || check_in(g, src, slope)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    size_t n = nn_shape_size(&g->tensors[slope].shape);
    int c = s->rank ? s->dims[s->rank - 1] : 1;
    if (n < 1 || (n != 1 && n != (size_t)c))
        return nn_fail(g, "%s %s: slope %s has %zu values for %d channels", src, out_name,
                       g->tensors[slope].name, n, c);
    int in[2] = {x, slope};
    int ni = node_new(g, NN_OP_PRELU, src, in, 2);
    if (ni < 0) return ni;
    return node_finish(g, ni, out_name, *s);
}

int nn_add_binary(nn_graph *g, const char *src, const char *out_name, nn_binary_kind k, int a, int b)
{
    if (check_in(g, src, a) || check_in(g, src, b)) return -1;
    const nn_shape *sa = &g->tensors[a].shape, *sb = &g->tensors[b].shape;
    int r = sa->rank > sb->rank ? sa->rank : sb->rank;
    nn_shape o = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = i - (r - sa->rank), ib = i - (r - sb->rank);
        int da = ia >= 0 ? sa->dims[ia] : 1, db = ib >= 0 ? sb->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return nn_fail(g, "%s %s: shapes of %s and %s do not broadcast (axis %d: %d vs %d)",
                           src, out_name, g->tensors[a].name, g->tensors[b].name, i, da, db);
        o.dims[i] = da > db ? da : db;
        if (da == 0 || db == 0) o.dims[i] = 0;
    }
    int in[2] = {a, b};
    int ni = node_new(g, NN_OP_BINARY, src, in, 2);
    if (ni < 0) return ni;
    g->nodes[ni].kind = (int)k;
    return node_finish(g, ni, out_name, o);
}

/* A transpose that keeps every non-unit axis in order moves no data. */
static int perm_is_trivial(const nn_shape *s, const int *perm)
{
    int last = -1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[perm[i]] == 1) continue;
        if (perm[i] < last) return 0;
        last = perm[i];
    }
    return 1;
}

int nn_add_transpose(nn_graph *g, const char *src, const char *out_name, int x, const int *perm)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    nn_shape o = {.rank = s->rank};
    int seen = 0;
    for (int i = 0; i < s->rank; i++) {
        if (perm[i] < 0 || perm[i] >= s->rank || (seen & (1 << perm[i])))
            return nn_fail(g, "%s %s: bad permutation", src, out_name);
        seen |= 1 << perm[i];
        o.dims[i] = s->dims[perm[i]];
    }
    if (perm_is_trivial(s, perm)) return nn_add_reshape(g, src, out_name, x, o);
    int ni = node_new(g, NN_OP_TRANSPOSE, src, &x, 1);
    if (ni < 0) return ni;
    memcpy(g->nodes[ni].perm, perm, (size_t)s->rank * sizeof *perm);
    return node_finish(g, ni, out_name, o);
}

int nn_add_reshape(nn_graph *g, const char *src, const char *out_name, int x, nn_shape to)
{
    if (check_in(g, src, x)) return -1;
    if (!nn_shape_ok(&to)) return nn_fail(g, "%s %s: target shape is invalid or too large", src, out_name);
    if (nn_shape_size(&to) != nn_shape_size(&g->tensors[x].shape))
        return nn_fail(g, "%s %s: cannot reshape %s (%zu values) to %zu values", src, out_name,
                       g->tensors[x].name, nn_shape_size(&g->tensors[x].shape), nn_shape_size(&to));
    int ni = node_new(g, NN_OP_RESHAPE, src, &x, 1);
    if (ni < 0) return ni;
    int out = node_finish(g, ni, out_name, to);
    if (out >= 0 && !g->tensors[out].data) g->tensors[out].alias = x;
    return out;
}

int nn_add_concat(nn_graph *g, const char *src, const char *out_name, const int *xs, int n, int axis)
{
    if (n < 1) return nn_fail(g, "%s %s: no inputs", src, out_name);
    for (int i = 0; i < n; i++) if (check_in(g, src, xs[i])) return -1;
    nn_shape o = g->tensors[xs[0]].shape;
    if (axis < 0) axis += o.rank;
    if (axis < 0 || axis >= o.rank) return nn_fail(g, "%s %s: bad axis", src, out_name);
    long long along = 0;
    for (int i = 0; i < n; i++) {
        const nn_shape *s = &g->tensors[xs[i]].shape;
        if (s->rank != o.rank) return nn_fail(g, "%s %s: input %s rank mismatch", src, out_name, g->tensors[xs[i]].name);
        for (int d = 0; d < o.rank; d++)
            if (d != axis && s->dims[d] != o.dims[d])
                return nn_fail(g, "%s %s: input %s shape mismatch", src, out_name, g->tensors[xs[i]].name);
        along += s->dims[axis];
    }
    if (along > INT_MAX) return nn_fail(g, "%s %s: output too large", src, out_name);
    o.dims[axis] = (int)along;
    int ni = node_new(g, NN_OP_CONCAT, src, xs, n);
    if (ni < 0) return ni;
    g->nodes[ni].axis = axis;
    return node_finish(g, ni, out_name, o);
}

int nn_add_slice(nn_graph *g, const char *src, const char *out_name, int x, const int *starts, const int *ends, const int *steps)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    nn_shape o = {.rank = s->rank};
    int st[NN_MAX_RANK], sp[NN_MAX_RANK];
    for (int i = 0; i < s->rank; i++) {   /* 64-bit: starts/ends/steps may be anywhere in int */
        long long d = s->dims[i], step = steps[i], b = starts[i], e = ends[i];
        if (step == 0) return nn_fail(g, "%s %s: zero step", src, out_name);
        if (b < 0) b += d;
        if (e < 0) e += d;
        if (step > 0) {
            b = b < 0 ? 0 : b > d ? d : b;
            e = e < 0 ? 0 : e > d ? d : e;
            o.dims[i] = (int)(e > b ? (e - b + step - 1) / step : 0);
        } else {
            b = b < 0 ? -1 : b > d - 1 ? d - 1 : b;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            o.dims[i] = (int)(b > e ? (b - e - step - 1) / -step : 0);
        }
        st[i] = (int)b;
        sp[i] = (int)step;
    }
    int ni = node_new(g, NN_OP_SLICE, src, &x, 1);
    if (ni < 0) return ni;
    memcpy(g->nodes[ni].starts, st, sizeof st);
    memcpy(g->nodes[ni].steps, sp, sizeof sp);
    return node_finish(g, ni, out_name, o);
}

int nn_add_softmax(nn_graph *g, const char *src, const char *out_name, int x, int axis)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    if (axis < 0) axis += s->rank;
    if (axis < 0 || axis >= s->rank) return nn_fail(g, "%s %s: bad axis", src, out_name);
    int ni = node_new(g, NN_OP_SOFTMAX, src, &x, 1);
    if (ni < 0) return ni;
    g->nodes[ni].axis = axis;
    return node_finish(g, ni, out_name, *s);
}

int nn_add_gather(nn_graph *g, const char *src, const char *out_name, int x, int indices, int axis)
{
    if (check_in(g, src, x) || check_in(g, src, indices)) return -1;
    const nn_shape *s = &g->tensors[x].shape, *si = &g->tensors[indices].shape;
    if (axis < 0) axis += s->rank;
    if (axis < 0 || axis >= s->rank || !g->tensors[indices].data || s->rank + si->rank - 1 > NN_MAX_RANK)
        return nn_fail(g, "%s %s: unsupported gather (axis or non-constant indices)", src, out_name);
    size_t ni_count = nn_shape_size(si);
    for (size_t i = 0; i < ni_count; i++) {
        int v;
        if (nn_float_to_int(g->tensors[indices].data[i], -s->dims[axis], s->dims[axis] - 1, &v))
            return nn_fail(g, "%s %s: index %g out of range for axis %d of size %d", src, out_name,
                           (double)g->tensors[indices].data[i], axis, s->dims[axis]);
    }
    nn_shape o = {0};
    for (int i = 0; i < axis; i++) o.dims[o.rank++] = s->dims[i];
    for (int i = 0; i < si->rank; i++) o.dims[o.rank++] = si->dims[i];
    for (int i = axis + 1; i < s->rank; i++) o.dims[o.rank++] = s->dims[i];
    int in[2] = {x, indices};
    int n = node_new(g, NN_OP_GATHER, src, in, 2);
    if (n < 0) return n;
    g->nodes[n].axis = axis;
    return node_finish(g, n, out_name, o);
}

int nn_add_pad(nn_graph *g, const char *src, const char *out_name, int x, const int *before, const int *after, float value)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    nn_shape o = *s;
    int trivial = 1;
    for (int i = 0; i < s->rank; i++) {
        if (before[i] < 0 || after[i] < 0) return nn_fail(g, "%s %s: negative padding", src, out_name);
        long long d = (long long)o.dims[i] + before[i] + after[i];
        if (d > (long long)NN_MAX_ELEMENTS) return nn_fail(g, "%s %s: padding too large", src, out_name);
        o.dims[i] = (int)d;
        if (before[i] || after[i]) trivial = 0;
    }
    if (trivial) return nn_add_reshape(g, src, out_name, x, o);
    int ni = node_new(g, NN_OP_PAD, src, &x, 1);
    if (ni < 0) return ni;
    for (int i = 0; i < s->rank; i++) {
        g->nodes[ni].pads[i] = before[i];
        g->nodes[ni].pads[NN_MAX_RANK + i] = after[i];
    }
    g->nodes[ni].fmin = value;
    return node_finish(g, ni, out_name, o);
}

int nn_add_reduce(nn_graph *g, const char *src, const char *out_name, int x, nn_reduce_kind k, int axes_mask, int keepdims)
{
    if (check_in(g, src, x)) return -1;
    const nn_shape *s = &g->tensors[x].shape;
    if (axes_mask & ~((1 << s->rank) - 1)) return nn_fail(g, "%s %s: axis out of range", src, out_name);
    /* Mean over H and W of NHWC data is a global average pool: use XNNPACK. */
    if (k == NN_RED_MEAN && s->rank == 4 && axes_mask == 6) {
        int gap = nn_add_gap(g, src, keepdims ? out_name : "", x);
        if (gap < 0 || keepdims) return gap;
        int dims[2] = {s->dims[0], s->dims[3]};
        return nn_add_reshape(g, src, out_name, gap, nn_shape_make(2, dims));
    }
    nn_shape kept = *s, o = {0};
    for (int i = 0; i < s->rank; i++) {
        if (axes_mask & (1 << i)) { kept.dims[i] = 1; if (keepdims) o.dims[o.rank++] = 1; }
        else o.dims[o.rank++] = s->dims[i];
    }
    int ni = node_new(g, NN_OP_REDUCE, src, &x, 1);
    if (ni < 0) return ni;
    g->nodes[ni].kind = (int)k;
    g->nodes[ni].axes_mask = axes_mask;
    (void)kept;
    return node_finish(g, ni, out_name, o);
}

/* ---- glue kernels ---------------------------------------------------- */

static void strides_of(const nn_shape *s, size_t *st)
{
    size_t acc = 1;
    for (int i = s->rank - 1; i >= 0; i--) { st[i] = acc; acc *= (size_t)s->dims[i]; }
}

/* expf, with the arguments it underflows on answered here: glibc's expf gives +0
 * below -103.97 too, but through its error path (__math_uflowf, which sets errno),
 * 1.4 % of fr_detect's run (a softmax of confident scores). Same results. */
static inline float exp_or_zero(float x) { return x < -104.0f ? 0.0f : expf(x); }

static float unary_apply(int kind, float x, float lo, float hi)
{
    switch (kind) {
    case NN_UN_RELU: return x > 0 ? x : 0;
    case NN_UN_CLAMP: return x < lo ? lo : x > hi ? hi : x;
    case NN_UN_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case NN_UN_TANH: {   /* via expf: libm's tanhf is 3x slower; abs error stays ~1e-7 */
        float t = expf(-2.0f * fabsf(x)), r = (1.0f - t) / (1.0f + t);
        return x < 0 ? -r : r;
    }
    case NN_UN_EXP: return exp_or_zero(x);
    case NN_UN_ABS: return fabsf(x);
    case NN_UN_NEG: return -x;
    case NN_UN_SQUARE: return x * x;
    case NN_UN_SQRT: return sqrtf(x);
    case NN_UN_RSQRT: return 1.0f / sqrtf(x);
    default: return x;
    }
}

static float binary_apply(int kind, float a, float b)
{
    switch (kind) {
    case NN_BIN_ADD: return a + b;
    case NN_BIN_SUB: return a - b;
    case NN_BIN_MUL: return a * b;
    case NN_BIN_DIV: return a / b;
    case NN_BIN_MAX: return a > b ? a : b;
    case NN_BIN_GE: return a >= b ? 1.0f : 0.0f;
    case NN_BIN_LT: return a < b ? 1.0f : 0.0f;
    default: return a < b ? a : b;
    }
}

/* Innermost loop of a broadcast binary op, specialised by kind so it vectorises. */
#define BIN_LOOP(OP) \
    if (sa == 1 && sb == 1) { for (size_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (OP); } } \
    else if (sa == 1 && sb == 0) { float y = b[0]; for (size_t i = 0; i < n; i++) { float x = a[i]; o[i] = (OP); } } \
    else if (sa == 0 && sb == 1) { float x = a[0]; for (size_t i = 0; i < n; i++) { float y = b[i]; o[i] = (OP); } } \
    else { for (size_t i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i] = (OP); } }
static void binary_row(int kind, const float *restrict a, size_t sa, const float *restrict b, size_t sb,
                       float *restrict o, size_t n)
{
    switch (kind) {
    case NN_BIN_ADD: BIN_LOOP(x + y) break;
    case NN_BIN_SUB: BIN_LOOP(x - y) break;
    case NN_BIN_MUL: BIN_LOOP(x * y) break;
    case NN_BIN_DIV: BIN_LOOP(x / y) break;
    case NN_BIN_MAX: BIN_LOOP(x > y ? x : y) break;
    case NN_BIN_GE: BIN_LOOP(x >= y ? 1.0f : 0.0f) break;
    case NN_BIN_LT: BIN_LOOP(x < y ? 1.0f : 0.0f) break;
    default: BIN_LOOP(x < y ? x : y) break;
    }
}

/* Locals and restrict let this vectorise (fmaxf would be a libm call). */
static void clamp_rows(float *restrict o, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        float v = o[i] < lo ? lo : o[i];
        o[i] = v > hi ? hi : v;
    }
}

static void run_binary(const nn_graph *g, const nn_node *n, const float *a, const float *b, float *o)
{
    const nn_shape *so = &g->tensors[n->out].shape;
    const nn_shape *s0 = &g->tensors[n->in[0]].shape, *s1 = &g->tensors[n->in[1]].shape;
    int r = so->rank;
    size_t sa[NN_MAX_RANK] = {0}, sb[NN_MAX_RANK] = {0}, ta[NN_MAX_RANK], tb[NN_MAX_RANK];
    nn_shape a4 = {.rank = r}, b4 = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = i - (r - s0->rank), ib = i - (r - s1->rank);
        a4.dims[i] = ia >= 0 ? s0->dims[ia] : 1;
        b4.dims[i] = ib >= 0 ? s1->dims[ib] : 1;
    }
    strides_of(&a4, ta);
    strides_of(&b4, tb);
    for (int i = 0; i < r; i++) {
        sa[i] = a4.dims[i] == 1 ? 0 : ta[i];
        sb[i] = b4.dims[i] == 1 ? 0 : tb[i];
    }
    size_t total = nn_shape_size(so);
    if (r == 0) { o[0] = binary_apply(n->kind, a[0], b[0]); total = 1; goto clamp; }
    size_t na = nn_shape_size(s0), nb = nn_shape_size(s1);
    if ((na == total || na == 1) && (nb == total || nb == 1)) {   /* no real broadcasting: one flat loop */
        binary_row(n->kind, a, na == 1 ? 0 : 1, b, nb == 1 ? 0 : 1, o, total);
        goto clamp;
    }
    size_t inner = (size_t)so->dims[r - 1];
    if (inner == 0) return;
    int idx[NN_MAX_RANK] = {0};
    for (size_t done = 0; done < total; done += inner) {
        size_t oa = 0, ob = 0;
        for (int i = 0; i < r - 1; i++) { oa += (size_t)idx[i] * sa[i]; ob += (size_t)idx[i] * sb[i]; }
        binary_row(n->kind, a + oa, sa[r - 1], b + ob, sb[r - 1], o + done, inner);
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < so->dims[i]) break;
            idx[i] = 0;
        }
    }
clamp:   /* activation fused from a following Relu/Clamp */
    if (!isinf(n->fmin) || !isinf(n->fmax))
        clamp_rows(o, total, n->fmin, n->fmax);
}

/* out[b][j][i] = in[b][i][j] for rows x cols matrices, in cache-sized tiles. */
static void transpose_2d(const float *x, float *o, size_t batch, size_t rows, size_t cols)
{
    for (size_t b = 0; b < batch; b++, x += rows * cols, o += rows * cols)
        for (size_t i0 = 0; i0 < rows; i0 += 32)
            for (size_t j0 = 0; j0 < cols; j0 += 32)
                for (size_t i = i0; i < rows && i < i0 + 32; i++)
                    for (size_t j = j0; j < cols && j < j0 + 32; j++)
                        o[j * rows + i] = x[i * cols + j];
}

static void run_transpose(const nn_graph *g, const nn_node *n, const float *x, float *o)
{
    const nn_shape *s4 = &g->tensors[n->in[0]].shape;
    if (s4->rank == 4 && n->perm[0] == 0) {
        size_t N = (size_t)s4->dims[0], a = (size_t)s4->dims[1], b = (size_t)s4->dims[2], c = (size_t)s4->dims[3];
        if (n->perm[1] == 2 && n->perm[2] == 3 && n->perm[3] == 1) { transpose_2d(x, o, N, a, b * c); return; }
        if (n->perm[1] == 3 && n->perm[2] == 1 && n->perm[3] == 2) { transpose_2d(x, o, N, a * b, c); return; }
    }
    const nn_shape *si = &g->tensors[n->in[0]].shape, *so = &g->tensors[n->out].shape;
    size_t st[NN_MAX_RANK], ps[NN_MAX_RANK];
    strides_of(si, st);
    int r = so->rank;
    for (int i = 0; i < r; i++) ps[i] = st[n->perm[i]];
    size_t total = nn_shape_size(so);
    if (!total) return;
    int idx[NN_MAX_RANK] = {0};
    size_t inner = (size_t)so->dims[r - 1], sin = ps[r - 1];
    for (size_t done = 0; done < total; done += inner) {
        size_t off = 0;
        for (int i = 0; i < r - 1; i++) off += (size_t)idx[i] * ps[i];
        const float *src = x + off;
        float *dst = o + done;
        for (size_t j = 0; j < inner; j++) dst[j] = src[j * sin];
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < so->dims[i]) break;
            idx[i] = 0;
        }
    }
}

/* Copies short blocks with a loop: fr_detect concatenates 4420 rows of 2 floats, and
 * a memcpy call per row cost more than the data (29 us a run for 17,680 floats). */
static void copy_floats(float *o, const float *x, size_t n)
{
    if (n > 16) memcpy(o, x, n * sizeof *o);
    else for (size_t i = 0; i < n; i++) o[i] = x[i];
}

static void run_concat(const nn_graph *g, const nn_node *n, const float *const *in, float *o)
{
    const nn_shape *so = &g->tensors[n->out].shape;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < n->axis; i++) outer *= (size_t)so->dims[i];
    for (int i = n->axis + 1; i < so->rank; i++) inner *= (size_t)so->dims[i];
    /* Input by input, each length looked up once: the detector's box outputs
     * concatenate thousands of rows of 2 values, where the lookups per row cost more
     * than the copies. */
    size_t row = (size_t)so->dims[n->axis] * inner, at = 0;
    for (int k = 0; k < n->n_in; k++) {
        size_t len = (size_t)g->tensors[n->in[k]].shape.dims[n->axis] * inner;
        for (size_t b = 0; b < outer; b++) copy_floats(o + b * row + at, in[k] + b * len, len);
        at += len;
    }
}

/* Row by row of the last axis, the source offset kept up to date as the index moves
 * rather than recomputed per element (fr_detect's six box slices: 23.5 -> 8.9 us each). */
static void run_slice(const nn_graph *g, const nn_node *n, const float *x, float *o)
{
    const nn_shape *si = &g->tensors[n->in[0]].shape, *so = &g->tensors[n->out].shape;
    size_t st[NN_MAX_RANK];
    strides_of(si, st);
    size_t total = nn_shape_size(so);
    int r = so->rank, idx[NN_MAX_RANK] = {0};
    if (total == 0) return;
    if (r == 0) {
        o[0] = x[0];
        return;
    }
    ptrdiff_t off = 0, step[NN_MAX_RANK];
    for (int i = 0; i < r; i++) {
        off += (ptrdiff_t)n->starts[i] * (ptrdiff_t)st[i];
        step[i] = (ptrdiff_t)n->steps[i] * (ptrdiff_t)st[i];
    }
    size_t inner = (size_t)so->dims[r - 1];
    int plane = r >= 2; /* every output dim before the last two is 1: rows of a plane */
    for (int i = 0; i + 2 < r; i++) plane &= so->dims[i] == 1;
    if (plane) { /* the detector's [1, 4420, 4] -> [1, 4420, 2]: no index bookkeeping per row */
        for (size_t row = 0, k = 0; row < (size_t)so->dims[r - 2]; row++, off += step[r - 2])
            for (size_t j = 0; j < inner; j++) o[k++] = x[off + (ptrdiff_t)j * step[r - 1]];
        return;
    }
    for (size_t k = 0; k < total; k += inner) {
        for (size_t j = 0; j < inner; j++) o[k + j] = x[off + (ptrdiff_t)j * step[r - 1]];
        for (int i = r - 2; i >= 0; i--) {
            off += step[i];
            if (++idx[i] < so->dims[i]) break;
            off -= step[i] * so->dims[i];
            idx[i] = 0;
        }
    }
}

static void run_softmax(const nn_graph *g, const nn_node *n, const float *x, float *o)
{
    const nn_shape *s = &g->tensors[n->out].shape;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < n->axis; i++) outer *= (size_t)s->dims[i];
    for (int i = n->axis; i < s->rank; i++) inner *= (size_t)s->dims[i];
    for (size_t b = 0; b < outer; b++, x += inner, o += inner) {
        float m = -INFINITY, sum = 0;
        for (size_t i = 0; i < inner; i++) if (x[i] > m) m = x[i];
        /* exp(0) is 1 exactly: the maximum's term without the call (half the calls
         * for the detector's 2-way softmax) */
        for (size_t i = 0; i < inner; i++) {
            float d = x[i] - m;
            o[i] = d == 0.0f ? 1.0f : exp_or_zero(d);
            sum += o[i];
        }
        for (size_t i = 0; i < inner; i++) o[i] /= sum;
    }
}

static void run_gather(const nn_graph *g, const nn_node *n, const float *x, const float *ind, float *o)
{
    const nn_shape *s = &g->tensors[n->in[0]].shape;
    size_t outer = 1, inner = 1, count = nn_shape_size(&g->tensors[n->in[1]].shape);
    for (int i = 0; i < n->axis; i++) outer *= (size_t)s->dims[i];
    for (int i = n->axis + 1; i < s->rank; i++) inner *= (size_t)s->dims[i];
    int d = s->dims[n->axis];
    for (size_t b = 0; b < outer; b++)
        for (size_t k = 0; k < count; k++) {
            int v = (int)ind[k];
            if (v < 0) v += d;
            memcpy(o, x + (b * (size_t)d + (size_t)v) * inner, inner * sizeof *o);
            o += inner;
        }
}

/* Fills with the pad value, then copies the input one innermost row at a time. */
static void run_pad(const nn_graph *g, const nn_node *n, const float *x, float *o)
{
    const nn_shape *si = &g->tensors[n->in[0]].shape, *so = &g->tensors[n->out].shape;
    size_t st[NN_MAX_RANK], total = nn_shape_size(so), rows = 1;
    strides_of(so, st);
    int r = si->rank;
    for (size_t k = 0; k < total; k++) o[k] = n->fmin;
    if (r == 0 || nn_shape_size(si) == 0) return;
    size_t row = (size_t)si->dims[r - 1];
    for (int i = 0; i < r - 1; i++) rows *= (size_t)si->dims[i];
    int idx[NN_MAX_RANK] = {0};
    for (size_t k = 0; k < rows; k++, x += row) {
        size_t off = (size_t)n->pads[r - 1];
        for (int i = 0; i < r - 1; i++) off += (size_t)(idx[i] + n->pads[i]) * st[i];
        memcpy(o + off, x, row * sizeof *o);
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < si->dims[i]) break;
            idx[i] = 0;
        }
    }
}

static void run_reduce(const nn_graph *g, const nn_node *n, const float *x, float *o)
{
    const nn_shape *si = &g->tensors[n->in[0]].shape;
    nn_shape kept = *si;
    size_t count = 1;
    for (int i = 0; i < si->rank; i++)
        if (n->axes_mask & (1 << i)) { count *= (size_t)kept.dims[i]; kept.dims[i] = 1; }
    size_t ko[NN_MAX_RANK], total = nn_shape_size(si), out_n = nn_shape_size(&kept);
    strides_of(&kept, ko);
    for (size_t k = 0; k < out_n; k++) o[k] = n->kind == NN_RED_MAX ? -INFINITY : 0;
    int idx[NN_MAX_RANK] = {0}, r = si->rank;
    for (size_t k = 0; k < total; k++) {
        size_t off = 0;
        for (int i = 0; i < r; i++) if (!(n->axes_mask & (1 << i))) off += (size_t)idx[i] * ko[i];
        if (n->kind == NN_RED_MAX) { if (x[k] > o[off]) o[off] = x[k]; }
        else o[off] += x[k];
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < si->dims[i]) break;
            idx[i] = 0;
        }
    }
    if (n->kind == NN_RED_MEAN && count)
        for (size_t k = 0; k < out_n; k++) o[k] /= (float)count;
}

void nn_glue_run(const nn_graph *g, const nn_node *n, const float *const *in, float *out)
{
    size_t total = nn_shape_size(&g->tensors[n->out].shape);
    switch (n->op) {
    case NN_OP_UNARY:
        if (n->kind == NN_UN_RELU) {
            for (size_t i = 0; i < total; i++) out[i] = in[0][i] > 0 ? in[0][i] : 0;
        } else {
            for (size_t i = 0; i < total; i++) out[i] = unary_apply(n->kind, in[0][i], n->fmin, n->fmax);
        }
        break;
    case NN_OP_PRELU: {
        size_t c = nn_shape_size(&g->tensors[n->in[1]].shape);
        for (size_t i = 0; i < total; i += c)
            for (size_t j = 0; j < c; j++) {
                float v = in[0][i + j];   /* branch-free: signs are unpredictable */
                out[i + j] = (v > 0 ? v : 0.0f) + in[1][j] * (v < 0 ? v : 0.0f);
            }
        break;
    }
    case NN_OP_BINARY: run_binary(g, n, in[0], in[1], out); break;
    case NN_OP_TRANSPOSE: run_transpose(g, n, in[0], out); break;
    case NN_OP_RESHAPE: if (out != in[0]) memmove(out, in[0], total * sizeof *out); break;
    case NN_OP_CONCAT: run_concat(g, n, in, out); break;
    case NN_OP_SLICE: run_slice(g, n, in[0], out); break;
    case NN_OP_SOFTMAX: run_softmax(g, n, in[0], out); break;
    case NN_OP_GATHER: run_gather(g, n, in[0], in[1], out); break;
    case NN_OP_PAD: run_pad(g, n, in[0], out); break;
    case NN_OP_REDUCE: run_reduce(g, n, in[0], out); break;
    default: break;   /* XNNPACK ops never reach here */
    }
}

/* ---- fusion and clean-up -------------------------------------------- */

static int is_output(const nn_graph *g, int t)
{
    for (int i = 0; i < g->n_outputs; i++) if (g->outputs[i] == t) return 1;
    return 0;
}

/* The single node reading tensor t, or -1. */
static int sole_consumer(const nn_graph *g, int t)
{
    if (g->tensors[t].consumers != 1 || is_output(g, t)) return -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == t) return i;
    return -1;
}

/* Per-output-channel constant of a binary node (size 1 or cout), or NULL. */
static const float *channel_const(const nn_graph *g, const nn_node *c, int t, int cout, size_t *len, int *const_is_b)
{
    int other = c->in[0] == t ? c->in[1] : c->in[0];
    if (c->in[0] == c->in[1]) return NULL;
    const nn_tensor *ot = &g->tensors[other];
    if (!ot->data) return NULL;
    size_t n = nn_shape_size(&ot->shape);
    if (n != 1 && n != (size_t)cout) return NULL;
    if (n != 1 && (ot->shape.rank < 1 || ot->shape.dims[ot->shape.rank - 1] != cout)) return NULL;
    /* the constant must not widen the output */
    const nn_shape *a = &g->tensors[t].shape, *o = &g->tensors[c->out].shape;
    if (a->rank != o->rank || nn_shape_size(a) != nn_shape_size(o)) return NULL;
    *len = n;
    *const_is_b = c->in[1] == other;
    return ot->data;
}

/* Tries to absorb consumer node c of heavy node h; 1 if absorbed. */
static int absorb(nn_graph *g, nn_node *h, nn_node *c)
{
    int is_conv = h->op == NN_OP_CONV;
    float *w = is_conv ? h->conv.weights : h->fc.weights;
    float *b = is_conv ? h->conv.bias : h->fc.bias;
    float *lo = is_conv ? &h->conv.out_min : &h->fc.out_min;
    float *hi = is_conv ? &h->conv.out_max : &h->fc.out_max;
    int cout = is_conv ? h->conv.cout : h->fc.m;
    size_t per = is_conv ? (size_t)h->conv.kh * h->conv.kw * (h->conv.cin / h->conv.groups) : (size_t)h->fc.k;
    int linear = isinf(*lo) && isinf(*hi);
    if (c->op == NN_OP_UNARY && c->kind == NN_UN_RELU) { if (*lo < 0) *lo = 0; if (*hi < 0) *hi = 0; return 1; }
    if (c->op == NN_OP_UNARY && c->kind == NN_UN_CLAMP) {
        *lo = fmaxf(*lo, c->fmin); *hi = fminf(*hi, c->fmax);
        if (*lo > *hi) *lo = *hi;
        return 1;
    }
    if (c->op != NN_OP_BINARY) return 0;
    size_t n;
    int const_is_b;
    const float *k = channel_const(g, c, h->out, cout, &n, &const_is_b);
    if (!k) return 0;
    if (c->kind == NN_BIN_MAX && n == 1) { *lo = fmaxf(*lo, k[0]); *hi = fmaxf(*hi, k[0]); return 1; }
    if (c->kind == NN_BIN_MIN && n == 1) { *lo = fminf(*lo, k[0]); *hi = fminf(*hi, k[0]); return 1; }
    if (!linear) return 0;
    if (c->kind == NN_BIN_ADD || (c->kind == NN_BIN_SUB && const_is_b)) {
        float sign = c->kind == NN_BIN_ADD ? 1.0f : -1.0f;
        for (int o = 0; o < cout; o++) b[o] += sign * k[n == 1 ? 0 : o];
        return 1;
    }
    if (c->kind == NN_BIN_MUL) {
        for (int o = 0; o < cout; o++) {
            float s = k[n == 1 ? 0 : o];
            for (size_t j = 0; j < per; j++) w[(size_t)o * per + j] *= s;
            b[o] *= s;
        }
        return 1;
    }
    return 0;
}

static void fuse_into_heavy(nn_graph *g, int hi)
{
    for (;;) {
        nn_node *h = &g->nodes[hi];
        int ci = sole_consumer(g, h->out);
        if (ci < 0) return;
        nn_node *c = &g->nodes[ci];
        if (!absorb(g, h, c)) return;
        /* h now produces c's output; c disappears. */
        for (int k = 0; k < c->n_in; k++) g->tensors[c->in[k]].consumers--;
        g->tensors[h->out].producer = -1;
        h->out = c->out;
        g->tensors[c->out].producer = hi;
        c->n_in = 0;
        c->out = -1;      /* marks dead */
    }
}

/* A Relu/Clamp reading only a binary op's output becomes that op's clamp. */
static void fuse_activation_into_binary(nn_graph *g, int bi)
{
    nn_node *b = &g->nodes[bi];
    int ci = sole_consumer(g, b->out);
    if (ci < 0) return;
    nn_node *c = &g->nodes[ci];
    if (c->op != NN_OP_UNARY || (c->kind != NN_UN_RELU && c->kind != NN_UN_CLAMP)) return;
    float lo = c->kind == NN_UN_RELU ? 0.0f : c->fmin, hi = c->kind == NN_UN_RELU ? INFINITY : c->fmax;
    b->fmin = fmaxf(b->fmin, lo);
    b->fmax = fminf(b->fmax, hi);
    g->tensors[b->out].consumers--;
    g->tensors[b->out].producer = -1;
    b->out = c->out;
    g->tensors[c->out].producer = bi;
    c->n_in = 0;
    c->out = -1;
}

static void remove_dead_nodes(nn_graph *g)
{
    /* live = reaches an output; walk backwards since nodes are topological. */
    char *live = calloc((size_t)g->n_nodes + 1, 1);
    char *needed = calloc((size_t)g->n_tensors + 1, 1);
    if (!live || !needed) { free(live); free(needed); return; }
    for (int i = 0; i < g->n_outputs; i++) needed[g->outputs[i]] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        nn_node *n = &g->nodes[i];
        if (n->out < 0 || !needed[n->out]) continue;
        live[i] = 1;
        for (int k = 0; k < n->n_in; k++) needed[n->in[k]] = 1;
        if (g->tensors[n->out].alias >= 0) needed[g->tensors[n->out].alias] = 1;
    }
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (live[i]) { g->nodes[w++] = g->nodes[i]; continue; }
        for (int k = 0; k < g->nodes[i].n_in; k++) g->tensors[g->nodes[i].in[k]].consumers--;
        node_release(&g->nodes[i]);
    }
    g->n_nodes = w;
    for (int i = 0; i < g->n_tensors; i++) g->tensors[i].producer = -1;
    for (int i = 0; i < g->n_nodes; i++) g->tensors[g->nodes[i].out].producer = i;
    free(live);
    free(needed);
}

int nn_graph_finish(nn_graph *g)
{
    if (g->failed) return -1;
    for (int i = 0; i < g->n_outputs; i++) g->tensors[g->outputs[i]].consumers++;
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].op == NN_OP_CONV || g->nodes[i].op == NN_OP_FC) && g->nodes[i].out >= 0)
            fuse_into_heavy(g, i);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == NN_OP_BINARY && g->nodes[i].out >= 0) fuse_activation_into_binary(g, i);
    remove_dead_nodes(g);
    /* Constants nobody reads any more (weights copied into conv params). */
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].data && g->tensors[i].consumers <= 0) {
            free(g->tensors[i].data);
            g->tensors[i].data = NULL;
            g->tensors[i].shape.rank = -1;    /* mark unusable */
        }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->tensors[g->outputs[i]].shape.rank < 0)
            return nn_fail(g, "output %s is a dropped constant", g->tensors[g->outputs[i]].name);
    return 0;
}

double nn_graph_macs(const nn_graph *g)
{
    double macs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node *n = &g->nodes[i];
        const nn_shape *o = &g->tensors[n->out].shape;
        if (n->op == NN_OP_CONV)
            macs += (double)nn_shape_size(o) * n->conv.kh * n->conv.kw * (n->conv.cin / n->conv.groups);
        else if (n->op == NN_OP_FC)
            macs += (double)nn_shape_size(o) * n->fc.k;
    }
    return macs;
}
