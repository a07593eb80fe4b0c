/*
 * nn.c - the public face of the runtime: model loading (dispatch by file
 * type), sessions (per-thread XNNPACK operators and one activation arena),
 * and nn_run.
 *
 * A model plans its memory once: every activation gets a fixed offset in an
 * arena, reusing space between tensors whose lifetimes do not overlap. A session
 * owns an arena or borrows one. Because the pointers never change, XNNPACK
 * operators are set up once at session creation and nn_run only executes them:
 * no allocation per run. Sessions share the model's packed weights and their
 * convolutions' indirection buffers (create_shared_op, shared_weights.c).
 * After nn_model_use_int8, the dense convolutions run as int8 steps (quantize.c)
 * instead of XNNPACK operators; depthwise convolutions run on depthwise.c's
 * kernels where it has one for them.
 */
#include "nn/nn.h"
#include "nn/graph.h"
#include "nn/nn_internal.h"

#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xnnpack.h>

struct nn_session {
    const nn_model *model;
    void *own_arena;              /* NULL when the caller lends the arena */
    float **ptr;                  /* per tensor: where its data lives */
    const float **in_ptrs;        /* per node input pointer arrays, flattened */
    int *in_offset;               /* node i's inputs start at in_ptrs[in_offset[i]] */
    xnn_operator_t *ops;          /* per node, NULL for glue nodes */
    nn_int8_step **int8;          /* per node, its int8 convolution (quantize.c) or NULL */
    void *int8_buf;               /* quantized input, then oneDNN's scratchpad */
    float *ranges;                /* per node: [min, max] of its output, left for an int8 reader */
    unsigned char *dw_range;      /* per node: a depthwise node that leaves it */
    size_t shared_bytes;          /* packed weights taken from the model's cache */
    int first_node;               /* 1 once the caller writes the input in NHWC (nn_session_input_nhwc) */
};

/* ---- one-time XNNPACK initialisation ------------------------------- */

static pthread_once_t xnn_once = PTHREAD_ONCE_INIT;
static enum xnn_status xnn_init_status = xnn_status_uninitialized;

/* Our allocator lets sessions share packed weights (shared_weights.c). */
static void xnn_init_once(void) { xnn_init_status = xnn_initialize(nn_xnn_allocator()); }

static int ensure_xnnpack(char *err, size_t err_len)
{
    pthread_once(&xnn_once, xnn_init_once);
    if (xnn_init_status != xnn_status_success) {
        if (err && err_len) snprintf(err, err_len, "XNNPACK initialisation failed (status %d)", (int)xnn_init_status);
        return -1;
    }
    return 0;
}

/* ---- memory plan --------------------------------------------------- */

static int root_of(const nn_graph *g, int t)
{
    while (g->tensors[t].alias >= 0) t = g->tensors[t].alias;
    return t;
}

typedef struct { int t, first, last; size_t bytes, offset; } slot;

static int slot_by_size_desc(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : x->t - y->t;
}

/* Assigns arena offsets; returns the arena size in bytes (0 on failure). */
static size_t plan_memory(const nn_graph *g, size_t *offset_of_root, int *is_root)
{
    int n = g->n_tensors;
    int *first = malloc((size_t)n * sizeof *first), *last = malloc((size_t)n * sizeof *last);
    slot *slots = malloc((size_t)n * sizeof *slots);
    size_t arena = 0;
    if (!first || !last || !slots) goto out;
    for (int t = 0; t < n; t++) { first[t] = INT32_MAX; last[t] = -2; is_root[t] = 0; }
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node *nd = &g->nodes[i];
        int r = root_of(g, nd->out);
        if (first[r] > i) first[r] = i;
        if (last[r] < i) last[r] = i;
        for (int k = 0; k < nd->n_in; k++) {
            int ri = root_of(g, nd->in[k]);
            if (last[ri] < i) last[ri] = i;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) last[root_of(g, g->outputs[i])] = g->n_nodes;
    /* Inputs live throughout, so a caller may run again without rewriting them. */
    for (int i = 0; i < g->n_inputs; i++) { int r = root_of(g, g->inputs[i]); first[r] = -1; last[r] = g->n_nodes; }
    int ns = 0;
    for (int t = 0; t < n; t++) {
        if (g->tensors[t].data || g->tensors[t].alias >= 0 || last[t] < -1) continue;
        if (first[t] == INT32_MAX) first[t] = -1;
        size_t bytes = nn_shape_size(&g->tensors[t].shape) * sizeof(float) + XNN_EXTRA_BYTES;
        bytes = (bytes + 63) & ~(size_t)63;
        slots[ns++] = (slot){t, first[t], last[t], bytes, 0};
        is_root[t] = 1;
    }
    qsort(slots, (size_t)ns, sizeof *slots, slot_by_size_desc);
    for (int i = 0; i < ns; i++) {
        /* first fit: lowest offset clear of every placed, overlapping slot */
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                if (slots[j].last < slots[i].first || slots[i].last < slots[j].first) continue;
                if (off < slots[j].offset + slots[j].bytes && slots[j].offset < off + slots[i].bytes) {
                    off = slots[j].offset + slots[j].bytes;
                    moved = 1;
                }
            }
        }
        slots[i].offset = off;
        if (off + slots[i].bytes > arena) arena = off + slots[i].bytes;
        offset_of_root[slots[i].t] = off;
    }
    if (arena == 0) arena = 64;
out:
    free(first);
    free(last);
    free(slots);
    return arena;
}

/* Whether node i may write its output over tensor x, its input: x has a buffer of
 * its own (no constant, no alias either way) that no other node reads and the caller
 * neither reads (an output) nor keeps (an input: a caller may run again on it), and
 * it is big enough. */
static int can_write_over(const nn_graph *g, int i, int x)
{
    const nn_tensor *t = &g->tensors[x];
    if (t->data || t->alias >= 0 || t->consumers != 1 || g->tensors[g->nodes[i].out].alias >= 0 ||
        nn_shape_size(&g->tensors[g->nodes[i].out].shape) > nn_shape_size(&t->shape))
        return 0;
    for (int k = 0; k < g->n_inputs; k++)
        if (g->inputs[k] == x) return 0;
    for (int k = 0; k < g->n_tensors; k++)
        if (g->tensors[k].alias == x) return 0;
    return 1;
}

/* PReLUs write their output over their input, element by element (aliased as a
 * reshape shares its input's buffer): in place they touch no new memory and the
 * arena shrinks (fr_feature: 3.36 -> 2.56 MB, 5-8 % faster in-process A/B, the same
 * values). int8 convolutions could too (their fp32 input is done with once
 * quantized), but that changed neither fr_detect's arena nor its time. */
static void write_in_place(nn_graph *g)
{
    for (int i = 0; i < g->n_nodes && nn_tuning.in_place; i++) {
        const nn_node *n = &g->nodes[i];
        if (n->op == NN_OP_PRELU && can_write_over(g, i, n->in[0])) g->tensors[n->out].alias = n->in[0];
    }
}

/* Every session of a model uses the same plan: a tensor's data lives at the model
 * (a constant), at arena_offset[root] in the arena, or nowhere (SIZE_MAX). */
static int plan_model_memory(nn_model *m)
{
    const nn_graph *g = &m->g;
    int *is_root = calloc((size_t)g->n_tensors + 1, sizeof *is_root);
    m->arena_offset = calloc((size_t)g->n_tensors + 1, sizeof *m->arena_offset);
    if (!is_root || !m->arena_offset) {
        free(is_root);
        return -1;
    }
    write_in_place(&m->g);
    m->arena_bytes = plan_memory(g, m->arena_offset, is_root);
    for (int t = 0; t < g->n_tensors; t++)
        if (!is_root[t]) m->arena_offset[t] = SIZE_MAX;
    free(is_root);
    return m->arena_bytes ? 0 : -1;
}

/* ---- models -------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

nn_tuning_t nn_tuning = {1, 1, 1};

/* Depthwise convolutions that depthwise.c runs: their weights in its layout, the
 * originals dropped (the same size). */
static int take_depthwise(nn_model *m)
{
    if (!(m->dw = calloc((size_t)m->g.n_nodes + 1, sizeof *m->dw))) return -1;
    for (int i = 0; i < m->g.n_nodes && nn_tuning.own_depthwise; i++) {
        nn_conv_params *c = &m->g.nodes[i].conv;
        if (!nn_depthwise_supported(&m->g.nodes[i])) continue;
        if (!(m->dw[i] = nn_depthwise_create(&m->g, &m->g.nodes[i]))) return -1;
        free(c->weights);
        c->weights = NULL;
    }
    return 0;
}

nn_model *nn_model_load(const char *path, char *err, size_t err_len)
{
    return nn_model_load_batch(path, 0, err, err_len);
}

nn_model *nn_model_load_batch(const char *path, int batch, char *err, size_t err_len)
{
    if (err && err_len) err[0] = 0;
    if (!path || batch < 0 || (batch > 0 && !ends_with(path, ".tflite"))) {
        if (err && err_len)
            snprintf(err, err_len, "%s", !path ? "no model path" : "a batch can be set for .tflite models only");
        return NULL;
    }
    nn_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    nn_graph_init(&m->g, err, err_len);
    int rc = ends_with(path, "-weights_manifest.json") ? nn_faceapi_load(&m->g, path)
             : ends_with(path, ".json")                ? nn_tfjs_load(&m->g, path)
             : ends_with(path, ".tflite")              ? nn_tflite_load(&m->g, path, batch)
                                                       : nn_onnx_load(&m->g, path);
    if (rc == 0) rc = nn_graph_finish(&m->g);
    if (rc == 0 && !m->g.failed &&
        (!(m->packed = nn_packed_cache_create(2 * m->g.n_nodes)) || plan_model_memory(m) != 0 ||
         take_depthwise(m) != 0))
        nn_fail(&m->g, "%s: out of memory", path);
    if (rc != 0 || m->g.failed) {
        if (!m->g.failed) nn_fail(&m->g, "%s: load failed", path);
        nn_model_free(m);
        return NULL;
    }
    m->g.err = NULL;
    m->g.err_len = 0;
    /* Parsing freed far more than the model keeps (the protobuf tree, the raw
     * file): give those pages back (glibc keeps them otherwise). */
    malloc_trim(0);
    return m;
}

/* The fp32 weights of a converted node are dropped: only the int8 copy runs. */
int nn_model_use_int8(nn_model *m, char *err, size_t err_len)
{
    if (!m) return 0;
    if (!m->int8 && !(m->int8 = calloc((size_t)m->g.n_nodes + 1, sizeof *m->int8))) {
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return -1;
    }
    int converted = 0;
    for (int i = 0; i < m->g.n_nodes; i++) {
        nn_node *n = &m->g.nodes[i];
        if (m->int8[i] || !(m->int8[i] = nn_int8_conv_create(&m->g, n))) continue;
        converted++;
        if (nn_int8_conv_input_bytes(m->int8[i]) > m->int8_in_bytes)
            m->int8_in_bytes = nn_int8_conv_input_bytes(m->int8[i]);
        if (nn_int8_conv_scratch_bytes(m->int8[i]) > m->int8_scratch_bytes)
            m->int8_scratch_bytes = nn_int8_conv_scratch_bytes(m->int8[i]);
        free(n->conv.weights);
        n->conv.weights = NULL;
    }
    return converted;
}

void nn_model_free(nn_model *model)
{
    if (!model) return;
    if (model->int8)
        for (int i = 0; i < model->g.n_nodes; i++) nn_int8_conv_free(model->int8[i]);
    free(model->int8);
    if (model->dw)
        for (int i = 0; i < model->g.n_nodes; i++) nn_depthwise_free(model->dw[i]);
    free(model->dw);
    nn_packed_cache_free(model->packed);
    free(model->arena_offset);
    nn_graph_free(&model->g);
    free(model);
}

int nn_model_input_count(const nn_model *m) { return m ? m->g.n_inputs : 0; }
int nn_model_output_count(const nn_model *m) { return m ? m->g.n_outputs : 0; }

int nn_model_output_index(const nn_model *m, const char *name)
{
    if (!m || !name) return -1;
    for (int i = 0; i < m->g.n_outputs; i++) {
        if (m->g.output_names && m->g.output_names[i] && strcmp(m->g.output_names[i], name) == 0) return i;
        if (strcmp(m->g.tensors[m->g.outputs[i]].name, name) == 0) return i;
    }
    return -1;
}

nn_shape nn_model_input_shape(const nn_model *m, int index)
{
    nn_shape none = {0};
    if (!m || index < 0 || index >= m->g.n_inputs) return none;
    return m->g.tensors[m->g.inputs[index]].shape;
}

nn_shape nn_model_output_shape(const nn_model *m, int index)
{
    nn_shape none = {0};
    if (!m || index < 0 || index >= m->g.n_outputs) return none;
    return m->g.tensors[m->g.outputs[index]].shape;
}

size_t nn_model_weight_bytes(const nn_model *m)
{
    size_t bytes = 0;
    const nn_graph *g = &m->g;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].data) bytes += nn_shape_size(&g->tensors[i].shape) * sizeof(float);
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node *n = &g->nodes[i];
        if (m->int8 && m->int8[i])
            bytes += nn_int8_conv_weight_bytes(m->int8[i]) + (size_t)n->conv.cout * sizeof(float);
        else if (n->op == NN_OP_CONV)
            bytes += ((size_t)n->conv.cout * n->conv.kh * n->conv.kw * (n->conv.cin / n->conv.groups) + n->conv.cout) * sizeof(float);
        if (n->op == NN_OP_FC) bytes += ((size_t)n->fc.m * n->fc.k + n->fc.m) * sizeof(float);
    }
    return bytes;
}

double nn_model_macs(const nn_model *m) { return nn_graph_macs(&m->g); }

/* ---- sessions ------------------------------------------------------ */

static enum xnn_status create_op(const nn_graph *g, const nn_node *n, xnn_operator_t *op)
{
    const nn_conv_params *c = &n->conv;
    switch (n->op) {
    case NN_OP_CONV:
        return xnn_create_convolution2d_nhwc_f32(
            c->pad_top, c->pad_right, c->pad_bottom, c->pad_left, c->kh, c->kw, c->sh, c->sw,
            c->dh, c->dw, c->groups, c->cin / c->groups, c->cout / c->groups, c->cin, c->cout,
            c->weights, c->bias, c->out_min, c->out_max, 0, op);
    case NN_OP_FC:
        return xnn_create_fully_connected_nc_f32(n->fc.k, n->fc.m, n->fc.k, n->fc.m, n->fc.weights,
                                                 n->fc.bias, n->fc.out_min, n->fc.out_max, 0, op);
    case NN_OP_MAXPOOL:
        return xnn_create_max_pooling2d_nhwc_f32(c->pad_top, c->pad_right, c->pad_bottom, c->pad_left,
                                                 c->kh, c->kw, c->sh, c->sw, 1, 1, c->cin, c->cin, c->cin,
                                                 -INFINITY, INFINITY, 0, op);
    case NN_OP_AVGPOOL:
        return xnn_create_average_pooling2d_nhwc_f32(c->pad_top, c->pad_right, c->pad_bottom, c->pad_left,
                                                     c->kh, c->kw, c->sh, c->sw, c->cin, c->cin, c->cin,
                                                     -INFINITY, INFINITY, 0, op);
    case NN_OP_GAP: {
        int ch = g->tensors[n->out].shape.dims[3];
        return xnn_create_global_average_pooling_nwc_f32(ch, ch, ch, -INFINITY, INFINITY, 0, op);
    }
    case NN_OP_PRELU: {
        /* XNNPACK's kernel is branch-free SIMD; worth it on big feature maps. */
        const nn_shape *s = &g->tensors[n->out].shape;
        size_t ch = nn_shape_size(&g->tensors[n->in[1]].shape);
        if (ch < 2 || s->rank < 1 || (size_t)s->dims[s->rank - 1] != ch) { *op = NULL; return xnn_status_success; }
        return xnn_create_prelu_nc_f32(ch, ch, ch, g->tensors[n->in[1]].data, 0, op);
    }
    default:
        *op = NULL;
        return xnn_status_success;
    }
}

static enum xnn_status setup_op(const nn_graph *g, const nn_node *n, xnn_operator_t op, const float *in, float *out)
{
    const nn_shape *s = &g->tensors[n->in[0]].shape;
    switch (n->op) {
    case NN_OP_CONV:
        return xnn_setup_convolution2d_nhwc_f32(op, s->dims[0], s->dims[1], s->dims[2], in, out, NULL);
    case NN_OP_FC:
        return xnn_setup_fully_connected_nc_f32(op, nn_shape_size(s) / (size_t)n->fc.k, in, out, NULL);
    case NN_OP_MAXPOOL:
        return xnn_setup_max_pooling2d_nhwc_f32(op, s->dims[0], s->dims[1], s->dims[2], in, out, NULL);
    case NN_OP_AVGPOOL:
        return xnn_setup_average_pooling2d_nhwc_f32(op, s->dims[0], s->dims[1], s->dims[2], in, out, NULL);
    case NN_OP_GAP:
        return xnn_setup_global_average_pooling_nwc_f32(op, s->dims[0], (size_t)s->dims[1] * s->dims[2], in, out, NULL);
    case NN_OP_PRELU:
        return xnn_setup_prelu_nc_f32(op, nn_shape_size(s) / (size_t)s->dims[s->rank - 1], in, out, NULL);
    default:
        return xnn_status_success;
    }
}

/* The session's int8 buffer: the largest quantized input, then (64-byte aligned)
 * the largest scratchpad; steps run one at a time so they share it. */
static size_t int8_in_part(const nn_model *m) { return (m->int8_in_bytes + 63) & ~(size_t)63; }

/* An int8 step whose input a depthwise or int8 step writes takes its range from
 * there (nodes run in order, so the writer has always run first). */
static int link_ranges(nn_session *s)
{
    const nn_model *m = s->model;
    const nn_graph *g = &m->g;
    if (!(s->ranges = calloc(2 * (size_t)g->n_nodes + 2, sizeof *s->ranges)) ||
        !(s->dw_range = calloc((size_t)g->n_nodes + 1, 1)))
        return -1;
    for (int i = 0; i < g->n_nodes; i++) {
        int p = s->int8[i] ? g->tensors[g->nodes[i].in[0]].producer : -1;
        if (p < 0 || (!m->dw[p] && !s->int8[p])) continue;
        if (s->int8[p] && nn_int8_step_link_ranges(s->int8[p], NULL, s->ranges + 2 * p) != 0) continue;
        s->dw_range[p] = m->dw[p] != NULL;
        nn_int8_step_link_ranges(s->int8[i], s->ranges + 2 * p, NULL);
    }
    return 0;
}

static int create_int8_steps(nn_session *s)
{
    const nn_model *m = s->model;
    if (!m->int8) return 0;
    s->int8 = calloc((size_t)m->g.n_nodes + 1, sizeof *s->int8);
    s->int8_buf = aligned_alloc(64, int8_in_part(m) + ((m->int8_scratch_bytes + 63) & ~(size_t)63) + 64);
    if (!s->int8 || !s->int8_buf) return -1;
    char *scratch = (char *)s->int8_buf + int8_in_part(m);
    for (int i = 0; i < m->g.n_nodes; i++) {
        const nn_node *n = &m->g.nodes[i];
        if (m->int8[i] &&
            !(s->int8[i] = nn_int8_step_create(m->int8[i], s->ptr[n->in[0]], s->ptr[n->out], s->int8_buf, scratch)))
            return -1;
    }
    return nn_tuning.shared_ranges ? link_ranges(s) : 0;
}

/* Frees the half-built session s and says why; returns NULL for the caller to return. */
static nn_session *session_fail(nn_session *s, char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nn_session *session_fail(nn_session *s, char *err, size_t err_len, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    nn_session_free(s);
    return NULL;
}

/* Points every tensor at its storage: constants at the model, others into the arena. */
static void bind_tensors(nn_session *s, char *arena)
{
    const nn_model *m = s->model;
    for (int t = 0; t < m->g.n_tensors; t++) {
        int r = root_of(&m->g, t);
        if (m->g.tensors[r].data) s->ptr[t] = m->g.tensors[r].data;
        else s->ptr[t] = m->arena_offset[r] != SIZE_MAX ? (float *)(arena + m->arena_offset[r]) : NULL;
    }
}

size_t nn_model_arena_bytes(const nn_model *m) { return m ? m->arena_bytes : 0; }
size_t nn_session_shared_bytes(const nn_session *s) { return s ? s->shared_bytes : 0; }

void *nn_arena_for(const nn_model *const *models, int n)
{
    size_t bytes = 64;
    for (int i = 0; i < n; i++)
        if (nn_model_arena_bytes(models[i]) > bytes) bytes = nn_model_arena_bytes(models[i]);
    bytes = (bytes + 63) & ~(size_t)63;
    void *arena = aligned_alloc(64, bytes);
    if (arena) memset(arena, 0, bytes);
    return arena;
}

nn_session *nn_session_create(const nn_model *m, char *err, size_t err_len)
{
    return nn_session_create_in(m, NULL, err, err_len);
}

/* Where p, a pointer into this session's arena, would be in the canonical arena. */
static const float *canonical_ptr(const nn_model *m, const void *arena, const void *canonical, const float *p)
{
    uintptr_t a = (uintptr_t)arena, q = (uintptr_t)p;
    if (q < a || q >= a + m->arena_bytes) return p;
    return (const float *)((uintptr_t)canonical + (q - a));
}

/* Creates and sets up node i's operator, sharing what the model's first session
 * made for it (shared_weights.c): the packed weights, and for a convolution its
 * indirection buffer. XNNPACK builds that buffer from the input address at the
 * first setup and later only adds the distance to a new input, so every session
 * sets a convolution up at the model's canonical arena address first (equal
 * buffers), then at its own. */
static enum xnn_status create_shared_op(nn_session *s, int i, void *arena)
{
    const nn_model *m = s->model;
    const nn_node *n = &m->g.nodes[i];
    nn_alloc_capture cap;
    nn_capture_begin(&cap);
    enum xnn_status st = create_op(&m->g, n, &s->ops[i]);
    nn_capture_end();
    if (st != xnn_status_success || !s->ops[i]) return st;
    /* Before setup: setup copies the packed-weights pointer into the run context. */
    s->shared_bytes += nn_packed_cache_adopt(m->packed, 2 * i, s->ops[i], &cap);
    float *in = s->ptr[n->in[0]], *out = s->ptr[n->out];
    if (n->op == NN_OP_CONV) {
        const void *canonical = nn_packed_cache_canonical(m->packed, arena);
        nn_capture_begin(&cap);
        st = setup_op(&m->g, n, s->ops[i], canonical_ptr(m, arena, canonical, in),
                      (float *)canonical_ptr(m, arena, canonical, out));
        nn_capture_end();
        if (st != xnn_status_success) return st;
        s->shared_bytes += nn_packed_cache_adopt(m->packed, 2 * i + 1, s->ops[i], &cap);
    }
    return setup_op(&m->g, n, s->ops[i], in, out);
}

nn_session *nn_session_create_in(const nn_model *m, void *arena, char *err, size_t err_len)
{
    if (!m) {
        if (err && err_len) snprintf(err, err_len, "no model");
        return NULL;
    }
    if (ensure_xnnpack(err, err_len)) return NULL;
    const nn_graph *g = &m->g;
    nn_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = m;
    int total_in = 0;
    for (int i = 0; i < g->n_nodes; i++) total_in += g->nodes[i].n_in;
    s->ptr = calloc((size_t)g->n_tensors + 1, sizeof *s->ptr);
    s->in_ptrs = calloc((size_t)total_in + 1, sizeof *s->in_ptrs);
    s->in_offset = calloc((size_t)g->n_nodes + 1, sizeof *s->in_offset);
    s->ops = calloc((size_t)g->n_nodes + 1, sizeof *s->ops);
    if (!s->ptr || !s->in_ptrs || !s->in_offset || !s->ops) return session_fail(s, err, err_len, "out of memory");
    if (!arena && !(arena = s->own_arena = nn_arena_for(&m, 1)))
        return session_fail(s, err, err_len, "out of memory for arena");
    bind_tensors(s, arena);
    if (create_int8_steps(s) != 0)
        return session_fail(s, err, err_len, "cannot create the int8 convolutions' buffers");
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node *n = &g->nodes[i];
        s->in_offset[i] = k;
        for (int j = 0; j < n->n_in; j++) s->in_ptrs[k++] = s->ptr[n->in[j]];
        if ((s->int8 && s->int8[i]) || m->dw[i]) continue;
        enum xnn_status st = create_shared_op(s, i, arena);
        if (st != xnn_status_success)
            return session_fail(s, err, err_len, "%s %s: XNNPACK operator rejected (status %d)", n->source_op,
                                g->tensors[n->out].name, (int)st);
    }
    return s;
}

void nn_session_free(nn_session *s)
{
    if (!s) return;
    if (s->ops && s->model)
        for (int i = 0; i < s->model->g.n_nodes; i++)
            if (s->ops[i]) xnn_delete_operator(s->ops[i]);
    if (s->int8 && s->model)
        for (int i = 0; i < s->model->g.n_nodes; i++) nn_int8_step_free(s->int8[i]);
    free(s->int8);
    free(s->int8_buf);
    free(s->ranges);
    free(s->dw_range);
    free(s->ops);
    free(s->in_ptrs);
    free(s->in_offset);
    free(s->ptr);
    free(s->own_arena);
    free(s);
}

float *nn_session_input(nn_session *s, int index)
{
    if (!s || index < 0 || index >= s->model->g.n_inputs) return NULL;
    return s->ptr[s->model->g.inputs[index]];
}

float *nn_session_input_nhwc(nn_session *s, int index)
{
    if (!s || index < 0 || index >= s->model->g.n_inputs || s->model->g.n_nodes < 1) return NULL;
    const nn_graph *g = &s->model->g;
    const nn_node *n = &g->nodes[0];
    int t = g->inputs[index];
    static const int to_nhwc[4] = {0, 2, 3, 1};
    /* Only node 0: no earlier node can reuse the arena slot of its output. */
    if (n->op != NN_OP_TRANSPOSE || n->in[0] != t || g->tensors[t].consumers != 1 ||
        g->tensors[t].shape.rank != 4 || memcmp(n->perm, to_nhwc, sizeof to_nhwc) != 0 || !s->ptr[n->out])
        return NULL;
    s->first_node = 1;
    return s->ptr[n->out];
}

const float *nn_session_output(const nn_session *s, int index)
{
    if (!s || index < 0 || index >= s->model->g.n_outputs) return NULL;
    return s->ptr[s->model->g.outputs[index]];
}

int nn_run(nn_session *s)
{
    if (!s) return NN_ERR_ARG;
    const nn_graph *g = &s->model->g;
    for (int i = s->first_node; i < g->n_nodes; i++) {
        const nn_node *n = &g->nodes[i];
        if (s->int8 && s->int8[i]) {
            if (nn_int8_step_run(s->int8[i]) != 0) return NN_ERR_KERNEL;
        } else if (s->model->dw[i]) {
            nn_depthwise_run(g, n, s->model->dw[i], s->ptr[n->in[0]], s->ptr[n->out],
                             s->dw_range && s->dw_range[i] ? s->ranges + 2 * i : NULL);
        } else if (s->ops[i]) {
            if (xnn_run_operator(s->ops[i], NULL) != xnn_status_success) return NN_ERR_KERNEL;
        } else if (n->op != NN_OP_RESHAPE || s->ptr[n->out] != s->ptr[n->in[0]]) {
            nn_glue_run(g, n, s->in_ptrs + s->in_offset[i], s->ptr[n->out]);
        }
    }
    return NN_OK;
}
