/*
 * quantize.c - dense convolutions in int8 with oneDNN (nn_model_use_int8).
 *
 * Why oneDNN and not XNNPACK: Debian 12's XNNPACK (git 2022-02-16) has no VNNI
 * kernels. Timed one by one, fr_feature's convolutions took 4.41 ms in fp32 and
 * 4.10 ms as XNNPACK qc8 (avx512skx; its depthwise ones were slower in int8), but
 * 1.58 ms on oneDNN 2.6's avx512_core_vnni kernels (4.18 ms in its fp32). Whole
 * models, `make bench-nn`: fr_feature 1.74x, fr_detect 1.27x faster in CPU time.
 *
 * What is quantized: convolutions with groups == 1. Depthwise ones stay fp32 on
 * XNNPACK: in int8 they were no faster (oneDNN brdgmm_dw vnni vs XNNPACK fp32).
 * Weights: symmetric int8 per output channel (scale = max|w| / 127), quantized and
 * packed once per model and shared by every session. Activations: the range is
 * taken at every run, so no calibration file can go stale and an unusual image
 * cannot saturate. An input that the convolution does not pad, or that the graph
 * proves non-negative (after a ReLU or a clamp at 0), is uint8 over [min, max] with
 * a zero point; a padded signed input is int8 over [-max|x|, max|x|], because
 * oneDNN pads with 0, which under a zero point would not mean 0. fr_feature's 1x1
 * convolutions after PReLU gained most from the zero point: its embedding moved
 * from fp32 by 1-cos 2.8e-3 (int8 everywhere) and 2.0e-3 (with zero points), mean
 * of 40 LFW faces.
 *
 * A step: input range -> quantize into the session's int8 buffer -> oneDNN
 * convolution (per-channel weight scales applied, fp32 output) -> fp32 epilogue
 * (times the input scale, plus a bias that also takes out the zero point's share,
 * fused clamp). Bias and clamp stay out of oneDNN because they depend on the
 * per-run scale.
 *
 * Threading: the model's primitives and weights are read-only and executed
 * concurrently by sessions, each with its own stream and scratchpad (oneDNN's
 * user-scratchpad mode). This oneDNN runs on OpenMP, whose thread count belongs to
 * the calling thread: creating a kernel and every run ask for one thread, so a
 * session stays single-threaded as nn.h promises.
 */
#include "nn/nn_internal.h"

#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

struct nn_int8_conv {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t weights;       /* int8, in the layout the kernel wants */
    int unsigned_input;          /* uint8 input with a per-run zero point, else int8 symmetric */
    float *weight_sum;           /* [cout]: w_scale[c] * the sum of channel c's int8 weights */
    size_t in_elems, out_pixels; /* input elements, output pixels (N*H*W) */
    int cout;
    float *bias;                 /* [cout], zeros when the node has none */
    int avx512;                  /* the passes around the kernel use AVX-512 */
    float out_min, out_max;
    size_t scratch_bytes;        /* oneDNN's scratchpad */
};

struct nn_int8_step {
    const nn_int8_conv *conv;
    dnnl_stream_t stream;
    dnnl_memory_t src, dst, scratch;
    const float *in;
    float *out;
    void *qin;                   /* quantized input, in the session's int8 buffer */
    float *bias;                 /* [cout]: this run's bias, the zero point's share taken out */
    const float *in_range;       /* the input's [min, max] (with 0), left by its producer; NULL: measure it */
    float *out_range;            /* where to leave the output's, for an int8 reader; NULL: nobody asks */
};

/* ---- one engine per process ----------------------------------------------- */

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;

static void engine_init(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

static dnnl_engine_t cpu_engine(void)
{
    pthread_once(&engine_once, engine_init);
    return engine;
}

/* ---- the passes around the kernel ---------------------------------------------- */

/* The three passes around the kernel touch every input and output value, so they
 * have AVX-512 versions (this machine's oneDNN runs its VNNI kernels there); the
 * plain C ones are the reference and the fallback. Rounding is to nearest even in
 * both. */
static void value_range_c(const float *x, size_t n, float *lo, float *hi)
{
    float a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *lo = a;
    *hi = b;
}

/* uint8: round(x * inv) + zero_point in [0, 255]; int8: round(x * inv) in [-127, 127]. */
static void quantize_c(const float *x, void *q, size_t n, float inv, int zero_point, int is_unsigned)
{
    for (size_t i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv);
        if (is_unsigned) ((uint8_t *)q)[i] = (uint8_t)(v + zero_point < 0 ? 0 : v + zero_point > 255 ? 255 : v + zero_point);
        else ((int8_t *)q)[i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
}

/* y = y * scale + bias[c], clamped: what the kernel leaves for after the per-run
 * input scale. */
static void epilogue_c(float *y, size_t pixels, int cout, float scale, const float *bias, float lo, float hi)
{
    for (size_t p = 0; p < pixels; p++, y += cout)
        for (int c = 0; c < cout; c++) {
            float v = y[c] * scale + bias[c];
            y[c] = v < lo ? lo : v > hi ? hi : v;
        }
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw")))

static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1); }

AVX512 static void value_range_avx512(const float *x, size_t n, float *lo, float *hi)
{
    __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i); /* lanes past the end read 0 */
        a = _mm512_min_ps(a, v);
        b = _mm512_max_ps(b, v);
    }
    *lo = _mm512_reduce_min_ps(a);
    *hi = _mm512_reduce_max_ps(b);
}

static inline AVX512 __m512i quantize_16(const float *x, __m512 k, __m512i zp)
{
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), k)), zp);
}

/* 64 values a step go out in one store after two saturating packs (one narrowing
 * store per 16 values, vpmovusdb, took most of the pass: quantizing fell from 6.7 %
 * to 3.5 % of fr_detect's profile); the packs saturate exactly as the narrowing
 * stores do. */
AVX512 static void quantize_avx512(const float *x, void *q, size_t n, float inv, int zero_point, int is_unsigned)
{
    __m512 k = _mm512_set1_ps(inv);
    __m512i zp = _mm512_set1_epi32(is_unsigned ? zero_point : 0), zero = _mm512_setzero_si512();
    __m512i lo = _mm512_set1_epi32(-127), lo8 = _mm512_set1_epi8(-127);
    /* The packs interleave 128-bit lanes; this puts the four groups back in order. */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i a = _mm512_packs_epi32(quantize_16(x + i, k, zp), quantize_16(x + i + 16, k, zp));
        __m512i b = _mm512_packs_epi32(quantize_16(x + i + 32, k, zp), quantize_16(x + i + 48, k, zp));
        __m512i v = is_unsigned ? _mm512_packus_epi16(a, b) : _mm512_max_epi8(_mm512_packs_epi16(a, b), lo8);
        _mm512_storeu_si512((uint8_t *)q + i, _mm512_permutexvar_epi32(order, v));
    }
    for (; i < n; i += 16) {
        __mmask16 mask = tail_mask(n - i);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), k));
        if (is_unsigned)
            _mm512_mask_cvtusepi32_storeu_epi8((uint8_t *)q + i, mask, _mm512_max_epi32(_mm512_add_epi32(v, zp), zero));
        else _mm512_mask_cvtsepi32_storeu_epi8((int8_t *)q + i, mask, _mm512_max_epi32(v, lo));
    }
}

/* Also leaves the output's [min, max] with 0 in range[] (value_range's answer for
 * it) when range is not NULL: the next int8 step then skips its pass. */
AVX512 static void epilogue_avx512(float *y, size_t pixels, int cout, float scale, const float *bias, float lo,
                                   float hi, float *range)
{
    __m512 s = _mm512_set1_ps(scale), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __m512 mn = _mm512_setzero_ps(), mx = _mm512_setzero_ps();
    for (size_t p = 0; p < pixels; p++, y += cout)
        for (int c = 0; c < cout; c += 16) {
            __mmask16 mask = tail_mask((size_t)(cout - c));
            __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, y + c), s, _mm512_maskz_loadu_ps(mask, bias + c));
            v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
            mn = _mm512_mask_min_ps(mn, mask, mn, v);
            mx = _mm512_mask_max_ps(mx, mask, mx, v);
            _mm512_mask_storeu_ps(y + c, mask, v);
        }
    if (range) range[0] = _mm512_reduce_min_ps(mn), range[1] = _mm512_reduce_max_ps(mx);
}

static int has_avx512(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }
#else
#define value_range_avx512 value_range_c
#define quantize_avx512 quantize_c
#define epilogue_avx512(y, pixels, cout, scale, bias, lo, hi, range) epilogue_c(y, pixels, cout, scale, bias, lo, hi)
static int has_avx512(void) { return 0; }
#endif

/* ---- the per-model part ----------------------------------------------------- */

/* Non-negative by construction: raw-pixel model inputs are not assumed (a caller may
 * normalise them to [-1, 1]), only what an activation at 0 produced. */
static int produces_nonnegative(const nn_graph *g, int t)
{
    int p = g->tensors[t].producer;
    if (p < 0) return 0;
    const nn_node *n = &g->nodes[p];
    switch (n->op) {
    case NN_OP_CONV: return n->conv.out_min >= 0;
    case NN_OP_FC: return n->fc.out_min >= 0;
    case NN_OP_UNARY: return n->kind == NN_UN_RELU || (n->kind == NN_UN_CLAMP && n->fmin >= 0);
    case NN_OP_MAXPOOL:
    case NN_OP_AVGPOOL:
    case NN_OP_RESHAPE: return produces_nonnegative(g, n->in[0]);
    default: return 0;
    }
}

/* Symmetric per-output-channel int8 weights, [cout][kh][kw][cin] (ohwi). */
static void quantize_weights(const nn_conv_params *c, int8_t *q, float *scale)
{
    size_t per = (size_t)c->kh * c->kw * c->cin;
    for (int o = 0; o < c->cout; o++) {
        const float *w = c->weights + (size_t)o * per;
        float m = 0;
        for (size_t i = 0; i < per; i++) m = fmaxf(m, fabsf(w[i]));
        scale[o] = m > 0 ? m / 127.f : 1.f;
        for (size_t i = 0; i < per; i++) q[(size_t)o * per + i] = (int8_t)lrintf(w[i] / scale[o]);
    }
}

static int make_primitive(nn_int8_conv *ic, const nn_graph *g, const nn_node *n, const float *w_scale)
{
    const nn_conv_params *c = &n->conv;
    const nn_shape *is = &g->tensors[n->in[0]].shape, *os = &g->tensors[n->out].shape;
    dnnl_dims_t src_dims = {is->dims[0], c->cin, is->dims[1], is->dims[2]};
    dnnl_dims_t dst_dims = {os->dims[0], c->cout, os->dims[1], os->dims[2]};
    dnnl_dims_t w_dims = {c->cout, c->cin, c->kh, c->kw};
    dnnl_dims_t strides = {c->sh, c->sw}, dilates = {c->dh - 1, c->dw - 1};
    dnnl_dims_t pad_l = {c->pad_top, c->pad_left}, pad_r = {c->pad_bottom, c->pad_right};
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    int ok = dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, ic->unsigned_input ? dnnl_u8 : dnnl_s8,
                                          dnnl_nhwc) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&w_md, 4, w_dims, dnnl_s8, dnnl_format_tag_any) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc) == dnnl_success &&
             dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                                        &src_md, &w_md, NULL, &dst_md, strides, dilates,
                                                        pad_l, pad_r) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
             dnnl_primitive_attr_set_output_scales(attr, c->cout, 1 << 1, w_scale) == dnnl_success &&
             dnnl_primitive_desc_create(&ic->pd, &cd, attr, cpu_engine(), NULL) == dnnl_success;
    dnnl_primitive_attr_destroy(attr);
    if (!ok) return -1;
    /* A reference kernel would be far slower than XNNPACK's fp32 one. */
    const char *impl = NULL;
    dnnl_primitive_desc_query(ic->pd, dnnl_query_impl_info_str, 0, &impl);
    if (!impl || strncmp(impl, "ref", 3) == 0) return -1;
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(ic->pd, dnnl_query_scratchpad_md, 0);
    ic->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    return dnnl_primitive_create(&ic->prim, ic->pd) == dnnl_success ? 0 : -1;
}

/* Reorders the plain ohwi int8 weights into the kernel's layout (which for a signed
 * input also carries oneDNN's compensation terms). */
static int pack_weights(nn_int8_conv *ic, const nn_conv_params *c, int8_t *plain)
{
    dnnl_dims_t w_dims = {c->cout, c->cin, c->kh, c->kw};
    dnnl_memory_desc_t plain_md;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(ic->pd, dnnl_query_weights_md, 0);
    dnnl_memory_t from = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    int ok = want && dnnl_memory_desc_init_by_tag(&plain_md, 4, w_dims, dnnl_s8, dnnl_ohwi) == dnnl_success &&
             dnnl_memory_create(&from, &plain_md, cpu_engine(), plain) == dnnl_success &&
             dnnl_memory_create(&ic->weights, want, cpu_engine(), DNNL_MEMORY_ALLOCATE) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &plain_md, cpu_engine(), want, cpu_engine(), NULL) ==
                 dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success &&
             dnnl_stream_create(&stream, cpu_engine(), dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, ic->weights}};
        ok = dnnl_primitive_execute(reorder, stream, 2, args) == dnnl_success &&
             dnnl_stream_wait(stream) == dnnl_success;
    }
    dnnl_stream_destroy(stream);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    return ok ? 0 : -1;
}

nn_int8_conv *nn_int8_conv_create(const nn_graph *g, const nn_node *n)
{
    const nn_conv_params *c = &n->conv;
    if (n->op != NN_OP_CONV || c->groups != 1 || !cpu_engine()) return NULL;
    /* oneDNN plans a kernel's work split for the thread count at creation. */
    omp_set_num_threads(1);
    nn_int8_conv *ic = calloc(1, sizeof *ic);
    size_t n_weights = (size_t)c->cout * c->kh * c->kw * c->cin;
    int8_t *plain = malloc(n_weights);
    float *w_scale = malloc((size_t)c->cout * sizeof *w_scale);
    if (!ic || !plain || !w_scale) goto fail;
    /* A zero point shifts the padding too (oneDNN pads the uint8 input with 0, which
     * would mean -zero_point): only unpadded or non-negative inputs take one. */
    ic->unsigned_input = produces_nonnegative(g, n->in[0]) ||
                         (c->pad_top == 0 && c->pad_left == 0 && c->pad_bottom == 0 && c->pad_right == 0);
    ic->in_elems = nn_shape_size(&g->tensors[n->in[0]].shape);
    ic->out_pixels = nn_shape_size(&g->tensors[n->out].shape) / (size_t)c->cout;
    ic->cout = c->cout;
    ic->avx512 = has_avx512();
    if (!(ic->bias = calloc((size_t)c->cout, sizeof *ic->bias)) ||
        !(ic->weight_sum = calloc((size_t)c->cout, sizeof *ic->weight_sum)))
        goto fail;
    if (c->bias) memcpy(ic->bias, c->bias, (size_t)c->cout * sizeof *ic->bias);
    ic->out_min = c->out_min;
    ic->out_max = c->out_max;
    quantize_weights(c, plain, w_scale);
    size_t per = n_weights / (size_t)c->cout;
    for (int o = 0; o < c->cout; o++) {
        long sum = 0;
        for (size_t i = 0; i < per; i++) sum += plain[(size_t)o * per + i];
        ic->weight_sum[o] = w_scale[o] * (float)sum;
    }
    if (make_primitive(ic, g, n, w_scale) != 0 || pack_weights(ic, c, plain) != 0) goto fail;
    free(plain);
    free(w_scale);
    return ic;
fail:
    free(plain);
    free(w_scale);
    nn_int8_conv_free(ic);
    return NULL;
}

void nn_int8_conv_free(nn_int8_conv *ic)
{
    if (!ic) return;
    dnnl_memory_destroy(ic->weights);
    dnnl_primitive_destroy(ic->prim);
    dnnl_primitive_desc_destroy(ic->pd);
    free(ic->bias);
    free(ic->weight_sum);
    free(ic);
}

size_t nn_int8_conv_input_bytes(const nn_int8_conv *ic) { return ic->in_elems; }
size_t nn_int8_conv_scratch_bytes(const nn_int8_conv *ic) { return ic->scratch_bytes; }

size_t nn_int8_conv_weight_bytes(const nn_int8_conv *ic)
{
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(ic->pd, dnnl_query_weights_md, 0));
}

/* ---- the per-session part ----------------------------------------------------- */

nn_int8_step *nn_int8_step_create(const nn_int8_conv *ic, const float *in, float *out, void *qin, void *scratch)
{
    nn_int8_step *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->conv = ic;
    st->in = in;
    st->out = out;
    st->qin = qin;
    if (!(st->bias = malloc((size_t)ic->cout * sizeof *st->bias))) {
        free(st);
        return NULL;
    }
    const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(ic->pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dst_md = dnnl_primitive_desc_query_md(ic->pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(ic->pd, dnnl_query_scratchpad_md, 0);
    if (dnnl_stream_create(&st->stream, cpu_engine(), dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_create(&st->src, src_md, cpu_engine(), qin) != dnnl_success ||
        dnnl_memory_create(&st->dst, dst_md, cpu_engine(), out) != dnnl_success ||
        (ic->scratch_bytes && dnnl_memory_create(&st->scratch, sp_md, cpu_engine(), scratch) != dnnl_success)) {
        nn_int8_step_free(st);
        return NULL;
    }
    return st;
}

int nn_int8_step_link_ranges(nn_int8_step *st, const float *in_range, float *out_range)
{
    if (!st->conv->avx512 && out_range) return -1; /* only the AVX-512 epilogue measures */
    if (in_range) st->in_range = in_range;
    if (out_range) st->out_range = out_range;
    return 0;
}

void nn_int8_step_free(nn_int8_step *st)
{
    if (!st) return;
    dnnl_memory_destroy(st->src);
    dnnl_memory_destroy(st->dst);
    dnnl_memory_destroy(st->scratch);
    dnnl_stream_destroy(st->stream);
    free(st->bias);
    free(st);
}

int nn_int8_step_run(nn_int8_step *st)
{
    const nn_int8_conv *ic = st->conv;
    int fast = ic->avx512, zero_point = 0;
    float lo, hi, scale;
    if (st->in_range) lo = st->in_range[0], hi = st->in_range[1];
    else if (fast) value_range_avx512(st->in, ic->in_elems, &lo, &hi);
    else value_range_c(st->in, ic->in_elems, &lo, &hi);
    /* uint8 spans [lo, hi] (0 included, so exactly representable); int8 [-max, max]. */
    scale = ic->unsigned_input ? (hi - lo) / 255.f : fmaxf(-lo, hi) / 127.f;
    if (!(scale > 0) || !isfinite(scale)) scale = 1.f;
    else if (ic->unsigned_input) zero_point = (int)lrintf(-lo / scale);
    if (fast) quantize_avx512(st->in, st->qin, ic->in_elems, 1.f / scale, zero_point, ic->unsigned_input);
    else quantize_c(st->in, st->qin, ic->in_elems, 1.f / scale, zero_point, ic->unsigned_input);
    /* conv(x) = scale * (kernel output - zero_point * weight_sum) + bias */
    for (int c = 0; c < ic->cout; c++) st->bias[c] = ic->bias[c] - (float)zero_point * scale * ic->weight_sum[c];
    /* OpenMP's thread count is per calling thread: ask for one on every run. */
    omp_set_num_threads(1);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, st->src}, {DNNL_ARG_WEIGHTS, ic->weights}, {DNNL_ARG_DST, st->dst},
                               {DNNL_ARG_SCRATCHPAD, st->scratch}};
    if (dnnl_primitive_execute(ic->prim, st->stream, st->scratch ? 4 : 3, args) != dnnl_success ||
        dnnl_stream_wait(st->stream) != dnnl_success)
        return -1;
    if (fast)
        epilogue_avx512(st->out, ic->out_pixels, ic->cout, scale, st->bias, ic->out_min, ic->out_max, st->out_range);
    else epilogue_c(st->out, ic->out_pixels, ic->cout, scale, st->bias, ic->out_min, ic->out_max);
    return 0;
}
