/*
 * depthwise.c - depthwise convolutions (one filter per channel) in fp32, NHWC,
 * for channel counts that are a multiple of 16, on AVX-512.
 *
 * Why not XNNPACK's: Debian 12's XNNPACK computes one output pixel's 16 channels
 * at a time, each a chain of kh * kw dependent multiply-adds, so with few channels
 * the core mostly waits on the adder's latency: fr_detect's 160x120 maps of 16 and
 * 32 channels made its depthwise convolutions a third of the model. Here
 * DW_PIXELS output pixels of a row go together (or, at the edges, up to DW_PIXELS
 * blocks of 16 channels of one pixel), each an independent chain; at 3x3 and
 * stride 1 the input vectors are loaded once for the three taps that use them.
 * fr_detect's 17 depthwise convolutions took 1.0 ms on XNNPACK and 0.6-0.7 ms with
 * the groups of pixels, timed in the model; each alone, best of 300: 0.67 ms with
 * the groups, 0.46 ms with the loads shared (fr_feature's: 0.59, 0.39 ms).
 *
 * Each chain is XNNPACK's, step by step, so the output is the same to the bit: the
 * bias, then one fused multiply-add per tap in XNNPACK's order, then the clamp. A
 * tap in the padding adds 0 * w there and nothing here. XNNPACK's order depends
 * on the kernel size: its depthwise kernels (3, 4, 9 or 25 taps) take the taps
 * column by column (kernel x outer, y inner: its indirection order); other sizes
 * (fr_feature's 7x7 over a 7x7 map) run as a grouped GEMM over the filter in its
 * [kh][kw] order, row by row.
 *
 * Strided convolutions with 128 channels or more stay on XNNPACK: there its chains
 * are many per pixel already, and ours were slower (fr_feature's 28x28x128 at
 * stride 2: 80 us vs XNNPACK's 64; 14x14x256: 33 vs 26). So do CPUs without
 * AVX-512 and channel counts that are not a multiple of 16.
 */
#include "nn/nn_internal.h"

#include <stddef.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Output pixels (or channel blocks) computed together: enough independent chains
 * to cover the multiply-add latency; the loops over them are unrolled so that the
 * accumulators stay in registers. 4 beat 8 (fewer cache lines per group). */
#define DW_PIXELS 4

struct nn_depthwise {
    int taps;
    int *dx, *dy;   /* [taps]: the kernel column and row of each tap, in XNNPACK's order */
    ptrdiff_t *off; /* [taps]: the tap's distance in the input, (dy * W + dx) * C floats */
    float *w;       /* [taps][C] */
    float *bias;    /* [C] */
};

#if defined(__x86_64__)
#define DW_AVX512 __attribute__((target("avx512f")))

static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* One image's geometry: input H x W, output OH x OW, C channels; and the running
 * minimum and maximum of the outputs (from 0, as quantize.c's value_range). */
typedef struct {
    int H, W, OH, OW, C;
    __m512 mn, mx;
} dw_shape;

static inline DW_AVX512 __attribute__((always_inline)) void dw_store(dw_shape *d, float *out, __m512 v)
{
    d->mn = _mm512_min_ps(d->mn, v);
    d->mx = _mm512_max_ps(d->mx, v);
    _mm512_storeu_ps(out, v);
}

/* Output row oy, channels [c, c + 16), pixels [ox0, ox0 + DW_PIXELS), every tap of
 * them within the row's columns (rows may still fall in the padding). */
static inline DW_AVX512 __attribute__((always_inline)) void dw_pixels(const nn_conv_params *p,
                                                                      const nn_depthwise *k, dw_shape *d,
                                                                      const float *x, int oy, int ox0, int c,
                                                                      __m512 lo, __m512 hi, float *y)
{
    __m512 acc[DW_PIXELS];
    __m512 b = _mm512_loadu_ps(k->bias + c);
#pragma GCC unroll 8
    for (int j = 0; j < DW_PIXELS; j++) acc[j] = b;
    int iy0 = oy * p->sh - p->pad_top, ix0 = ox0 * p->sw - p->pad_left;
    /* an index, not a pointer: in the top padding it lies before x */
    ptrdiff_t origin = ((ptrdiff_t)iy0 * d->W + ix0) * d->C + c;
    const float *w = k->w + c;
    size_t step = (size_t)p->sw * d->C;
    for (int t = 0; t < k->taps; t++, w += d->C) {
        int iy = iy0 + k->dy[t];
        if (iy < 0 || iy >= d->H) continue;
        __m512 wv = _mm512_loadu_ps(w);
        const float *in = x + (origin + k->off[t]);
#pragma GCC unroll 8
        for (int j = 0; j < DW_PIXELS; j++) acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(in + j * step), wv, acc[j]);
    }
    float *out = y + ((size_t)oy * d->OW + ox0) * d->C + c;
#pragma GCC unroll 8
    for (int j = 0; j < DW_PIXELS; j++) dw_store(d, out + (size_t)j * d->C, _mm512_min_ps(_mm512_max_ps(acc[j], lo), hi));
}

/* dw_pixels for a 3x3 kernel at stride 1: the three input rows' DW_PIXELS + 2
 * vectors are loaded once, each used by up to three taps (45 loads for 4 pixels
 * become 27); the chains and their order are dw_pixels'. */
static inline DW_AVX512 __attribute__((always_inline)) void dw_pixels_3x3(const nn_conv_params *p,
                                                                          const nn_depthwise *k, dw_shape *d,
                                                                          const float *x, int oy, int ox0, int c,
                                                                          __m512 lo, __m512 hi, float *y)
{
    __m512 acc[DW_PIXELS], in[3][DW_PIXELS + 2];
    __m512 b = _mm512_loadu_ps(k->bias + c);
#pragma GCC unroll 8
    for (int j = 0; j < DW_PIXELS; j++) acc[j] = b;
    int iy0 = oy - p->pad_top, ix0 = ox0 - p->pad_left, valid[3];
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++) {
        int iy = iy0 + ky;
        valid[ky] = iy >= 0 && iy < d->H;
        const float *row = x + ((ptrdiff_t)(valid[ky] ? iy : 0) * d->W + ix0) * d->C + c;
#pragma GCC unroll 8
        for (int q = 0; q < DW_PIXELS + 2; q++) in[ky][q] = _mm512_loadu_ps(row + (size_t)q * d->C);
    }
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; kx++)
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++) {
            if (!valid[ky]) continue;
            __m512 wv = _mm512_loadu_ps(k->w + (size_t)(3 * kx + ky) * d->C + c); /* tap order: x outer */
#pragma GCC unroll 8
            for (int j = 0; j < DW_PIXELS; j++) acc[j] = _mm512_fmadd_ps(in[ky][j + kx], wv, acc[j]);
        }
    float *out = y + ((size_t)oy * d->OW + ox0) * d->C + c;
#pragma GCC unroll 8
    for (int j = 0; j < DW_PIXELS; j++) dw_store(d, out + (size_t)j * d->C, _mm512_min_ps(_mm512_max_ps(acc[j], lo), hi));
}

/* Output pixel (oy, ox), channel blocks [c, c + 16 * blocks), blocks <= DW_PIXELS,
 * the blocks being the independent chains: the edge pixels, whose taps may fall in
 * the padding, and those left over after the groups of DW_PIXELS. */
static inline DW_AVX512 void dw_pixel(const nn_conv_params *p, const nn_depthwise *k, dw_shape *d,
                                      const float *x, int oy, int ox, int c, int blocks, __m512 lo, __m512 hi,
                                      float *y)
{
    __m512 acc[DW_PIXELS];
#pragma GCC unroll 8
    for (int b = 0; b < DW_PIXELS; b++) acc[b] = b < blocks ? _mm512_loadu_ps(k->bias + c + 16 * b) : _mm512_setzero_ps();
    int iy0 = oy * p->sh - p->pad_top, ix0 = ox * p->sw - p->pad_left;
    for (int t = 0; t < k->taps; t++) {
        int iy = iy0 + k->dy[t], ix = ix0 + k->dx[t];
        if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;
        const float *in = x + ((size_t)iy * d->W + ix) * d->C + c, *wt = k->w + (size_t)t * d->C + c;
#pragma GCC unroll 8
        for (int b = 0; b < DW_PIXELS; b++)
            if (b < blocks) acc[b] = _mm512_fmadd_ps(_mm512_loadu_ps(in + 16 * b), _mm512_loadu_ps(wt + 16 * b), acc[b]);
    }
    float *out = y + ((size_t)oy * d->OW + ox) * d->C + c;
#pragma GCC unroll 8
    for (int b = 0; b < DW_PIXELS; b++)
        if (b < blocks) dw_store(d, out + 16 * b, _mm512_min_ps(_mm512_max_ps(acc[b], lo), hi));
}

DW_AVX512 static void dw_pixel_all_channels(const nn_conv_params *p, const nn_depthwise *k, dw_shape *d,
                                  const float *x, int oy, int ox, __m512 lo, __m512 hi, float *y)
{
    for (int c = 0; c < d->C; c += 16 * DW_PIXELS) {
        int blocks = (d->C - c) / 16 < DW_PIXELS ? (d->C - c) / 16 : DW_PIXELS;
        dw_pixel(p, k, d, x, oy, ox, c, blocks, lo, hi, y);
    }
}

/* A row: its inside columns (every tap within the row) in groups of DW_PIXELS, the
 * other columns one at a time. */
DW_AVX512 static void dw_image(const nn_conv_params *p, const nn_depthwise *k, dw_shape *d, const float *x,
                               float *y)
{
    __m512 lo = _mm512_set1_ps(p->out_min), hi = _mm512_set1_ps(p->out_max);
    /* inside: ox * sw >= pad_left and ox * sw - pad_left + kw - 1 < W */
    int first = (p->pad_left + p->sw - 1) / p->sw;
    int end = d->W - p->kw + p->pad_left < 0 ? 0 : (d->W - p->kw + p->pad_left) / p->sw + 1;
    if (end > d->OW) end = d->OW;
    int three_by_three = p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 && k->taps == 9;
    for (int oy = 0; oy < d->OH; oy++) {
        int ox = 0;
        for (; ox < first && ox < d->OW; ox++) dw_pixel_all_channels(p, k, d, x, oy, ox, lo, hi, y);
        if (three_by_three)
            for (; ox + DW_PIXELS <= end; ox += DW_PIXELS)
                for (int c = 0; c < d->C; c += 16) dw_pixels_3x3(p, k, d, x, oy, ox, c, lo, hi, y);
        for (; ox + DW_PIXELS <= end; ox += DW_PIXELS)
            for (int c = 0; c < d->C; c += 16) dw_pixels(p, k, d, x, oy, ox, c, lo, hi, y);
        for (; ox < d->OW; ox++) dw_pixel_all_channels(p, k, d, x, oy, ox, lo, hi, y);
    }
}
DW_AVX512 static void dw_run(const nn_graph *g, const nn_node *n, const nn_depthwise *k, const float *x, float *y,
                             float *range)
{
    const nn_shape *s = &g->tensors[n->in[0]].shape, *o = &g->tensors[n->out].shape;
    dw_shape d = {s->dims[1], s->dims[2], o->dims[1], o->dims[2], n->conv.cout, _mm512_setzero_ps(),
                  _mm512_setzero_ps()};
    size_t in_len = (size_t)d.H * d.W * d.C, out_len = (size_t)d.OH * d.OW * d.C;
    for (int b = 0; b < s->dims[0]; b++) dw_image(&n->conv, k, &d, x + b * in_len, y + b * out_len);
    if (range) range[0] = _mm512_reduce_min_ps(d.mn), range[1] = _mm512_reduce_max_ps(d.mx);
}
#else
static int cpu_has_avx512(void) { return 0; }
#endif

int nn_depthwise_supported(const nn_node *n)
{
    const nn_conv_params *c = &n->conv;
    return n->op == NN_OP_CONV && c->groups > 1 && c->groups == c->cin && c->cin == c->cout && c->cout % 16 == 0 &&
           c->dh == 1 && c->dw == 1 && (c->sh * c->sw == 1 || c->cout < 128) && c->weights && cpu_has_avx512();
}

nn_depthwise *nn_depthwise_create(const nn_graph *g, const nn_node *n)
{
    const nn_conv_params *c = &n->conv;
    int taps = c->kh * c->kw, W = g->tensors[n->in[0]].shape.dims[2];
    size_t C = (size_t)c->cout;
    nn_depthwise *k = calloc(1, sizeof *k);
    if (!k || !(k->dx = malloc((size_t)taps * sizeof *k->dx)) || !(k->dy = malloc((size_t)taps * sizeof *k->dy)) ||
        !(k->off = malloc((size_t)taps * sizeof *k->off)) || !(k->w = malloc((size_t)taps * C * sizeof *k->w)) ||
        !(k->bias = malloc(C * sizeof *k->bias))) {
        nn_depthwise_free(k);
        return NULL;
    }
    k->taps = taps;
    int column_major = taps == 3 || taps == 4 || taps == 9 || taps == 25; /* XNNPACK's kernel sizes */
    for (int t = 0; t < taps; t++) {
        k->dx[t] = column_major ? t / c->kh : t % c->kw;
        k->dy[t] = column_major ? t % c->kh : t / c->kw;
        k->off[t] = ((ptrdiff_t)k->dy[t] * W + k->dx[t]) * (ptrdiff_t)C;
        for (size_t ch = 0; ch < C; ch++)
            k->w[(size_t)t * C + ch] = c->weights[ch * (size_t)taps + (size_t)k->dy[t] * c->kw + k->dx[t]];
    }
    for (size_t ch = 0; ch < C; ch++) k->bias[ch] = c->bias ? c->bias[ch] : 0.0f;
    return k;
}

void nn_depthwise_free(nn_depthwise *k)
{
    if (!k) return;
    free(k->dx);
    free(k->dy);
    free(k->off);
    free(k->w);
    free(k->bias);
    free(k);
}

void nn_depthwise_run(const nn_graph *g, const nn_node *n, const nn_depthwise *k, const float *x, float *y,
                      float *range)
{
#if defined(__x86_64__)
    dw_run(g, n, k, x, y, range);
#else
    (void)g, (void)n, (void)k, (void)x, (void)y, (void)range;
#endif
}
