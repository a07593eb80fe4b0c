/* Pixel geometry for the face pipeline (see geometry.h): crop/resize and affine
 * warps into network tensors, lossless rotations, and quality measures.
 *
 * Every sampler produces float RGB triples and hands them to one small "sink" that
 * knows the output layout (NCHW, NHWC, one grey channel, or RGB8), so the sampling
 * arithmetic exists once and the layouts cannot drift apart. */
#include "face/geometry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

const float geometry_arcface_template_112[10] = {
    38.2946f, 51.6963f, 73.5318f, 51.5014f, 56.0252f,
    71.7366f, 41.5493f, 92.3655f, 70.7299f, 92.2041f,
};

/* ---- output sink --------------------------------------------------------------- */

typedef enum { OUT_NCHW, OUT_NHWC, OUT_GREY, OUT_RGB8 } out_layout;

typedef struct {
    out_layout layout;
    float mean, scale;
    size_t plane; /* out_w * out_h, the NCHW channel stride */
    float *f;
    uint8_t *u8;
} sink;

/* Always inlined into loops specialised per layout (see the *_rows dispatchers), so
 * the layout test leaves the per-pixel path (the 112x112 alignment warp: 0.29 ->
 * 0.18 ms with the all-taps-inside path of sample_constant_border). */
static inline __attribute__((always_inline)) void sink_put(const sink *s, out_layout layout, size_t idx,
                                                          const float rgb[3])
{
    switch (layout) {
    case OUT_NCHW:
        for (int c = 0; c < 3; c++) s->f[c * s->plane + idx] = (rgb[c] - s->mean) * s->scale;
        break;
    case OUT_NHWC:
        for (int c = 0; c < 3; c++) s->f[idx * 3 + c] = (rgb[c] - s->mean) * s->scale;
        break;
    case OUT_GREY: {
        float luma = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
        s->f[idx] = (luma - s->mean) * s->scale;
        break;
    }
    case OUT_RGB8:
        for (int c = 0; c < 3; c++) {
            float v = rgb[c] + 0.5f;
            s->u8[idx * 3 + c] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
        }
        break;
    }
}

/* Expands call(layout) once per layout, each with layout a compile-time constant. */
#define FOR_LAYOUT(layout_value, call)                                                                  \
    switch (layout_value) {                                                                             \
    case OUT_NCHW: call(OUT_NCHW); break;                                                               \
    case OUT_NHWC: call(OUT_NHWC); break;                                                               \
    case OUT_GREY: call(OUT_GREY); break;                                                               \
    case OUT_RGB8: call(OUT_RGB8); break;                                                               \
    }

static const uint8_t *pixel_at(const image_rgb *img, int x, int y)
{
    return img->pixels + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- crop + resize ------------------------------------------------------------- */

/* Where one output row/column samples the source along one axis. */
typedef struct {
    int inside; /* sample centre within the image's extent */
    int i0, i1; /* the two taps, already clamped to the image (edge replication) */
    float w1;   /* weight of i1 */
} axis_tap;

static axis_tap crop_tap(float edge_coord, int size)
{
    axis_tap t = {0, 0, 0, 0.0f};
    float c = edge_coord - 0.5f; /* edge coordinates -> pixel-centre coordinates */
    if (!(c >= -0.5f && c <= (float)size - 0.5f)) return t; /* also rejects NaN */
    float f = floorf(c);
    t.inside = 1;
    t.i0 = clampi((int)f, 0, size - 1);
    t.i1 = clampi((int)f + 1, 0, size - 1);
    t.w1 = c - f;
    return t;
}

static inline void sample_taps(const image_rgb *img, axis_tap tx, axis_tap ty, float rgb[3])
{
    const uint8_t *p00 = pixel_at(img, tx.i0, ty.i0), *p10 = pixel_at(img, tx.i1, ty.i0);
    const uint8_t *p01 = pixel_at(img, tx.i0, ty.i1), *p11 = pixel_at(img, tx.i1, ty.i1);
    for (int c = 0; c < 3; c++) {
        float top = p00[c] + (p10[c] - p00[c]) * tx.w1;
        float bottom = p01[c] + (p11[c] - p01[c]) * tx.w1;
        rgb[c] = top + (bottom - top) * ty.w1;
    }
}

/* Column taps are the same on every row: made once per block of TAP_BLOCK columns
 * (the per-pixel crop_tap took half the time of the detector's 320x240 resize). The
 * arithmetic per pixel is unchanged, so the output is bit-identical. */
#define TAP_BLOCK 512

/* ---- the same crop + resize, 16 output columns at a time (AVX-512) ---------------
 * The detector's 320x240 input took 0.63 ms in scalar code. Lanes are pixels, and
 * each lane does sample_taps' and sink_put's operations in their order (multiply
 * then add, never fused), so the output is bit-identical to the scalar path, which
 * stays the reference and the fallback. A tap is read as the 32-bit word at the
 * pixel (R, G, B and one byte beyond), so rows whose taps include the image's last
 * row go the scalar way: the byte beyond its last pixel is outside the raster. */
#if defined(__x86_64__)
#define GEOMETRY_AVX512 __attribute__((target("avx512f")))
#define GEOMETRY_VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))

/* Where gathers are slow (AMD's take ~13 cycles a pixel here: the detector's
 * 320x240 input cost 0.6 ms), a group of 16 columns whose taps lie within two
 * 128-byte windows of a row (8 columns each: up to 5x downscaling) is read as four
 * loads per row and byte permutes (AVX-512 VBMI) giving the same 32-bit words. */
#define GROUPS (TAP_BLOCK / 16)
typedef struct {
    int off0[TAP_BLOCK], off1[TAP_BLOCK]; /* byte offsets of the two column taps in a row */
    float w1[TAP_BLOCK];
    int windows;                          /* 1 when every group below has its windows */
    int window[GROUPS][2];                /* byte offsets of a group's windows: columns 0-7, 8-15 */
    uint8_t pick[2][GROUPS][64];          /* per tap: the bytes of each column's word in its window pair */
} column_taps;

/* The bilinear mix of 16 pixels from their taps' words (R, G, B and a byte beyond):
 * a0/a1 the left/right taps on the upper row, b0/b1 on the lower. */
GEOMETRY_AVX512 static inline void lerp16_words(__m512i a0, __m512i a1, __m512i b0, __m512i b1, __m512 wx, __m512 wy,
                                                __m512 rgb[3])
{
    __m512i byte = _mm512_set1_epi32(0xff);
    for (int c = 0; c < 3; c++) {
        __m512i p00 = _mm512_and_si512(_mm512_srli_epi32(a0, 8 * c), byte);
        __m512i p10 = _mm512_and_si512(_mm512_srli_epi32(a1, 8 * c), byte);
        __m512i p01 = _mm512_and_si512(_mm512_srli_epi32(b0, 8 * c), byte);
        __m512i p11 = _mm512_and_si512(_mm512_srli_epi32(b1, 8 * c), byte);
        __m512 top = _mm512_add_ps(_mm512_cvtepi32_ps(p00),
                                   _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p10, p00)), wx));
        __m512 bottom = _mm512_add_ps(_mm512_cvtepi32_ps(p01),
                                      _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p11, p01)), wx));
        rgb[c] = _mm512_add_ps(top, _mm512_mul_ps(_mm512_sub_ps(bottom, top), wy));
    }
}

GEOMETRY_AVX512 static inline void lerp16(const uint8_t *r0, const uint8_t *r1, __m512i o0, __m512i o1,
                                          __m512 wx, __m512 wy, __m512 rgb[3])
{
    lerp16_words(_mm512_i32gather_epi32(o0, r0, 1), _mm512_i32gather_epi32(o1, r0, 1),
                 _mm512_i32gather_epi32(o0, r1, 1), _mm512_i32gather_epi32(o1, r1, 1), wx, wy, rgb);
}

/* Writes 16 pixels r, g, b interleaved (NHWC) at out: output float 16 j + e is
 * channel (16 j + e) % 3 of pixel (16 j + e) / 3; r and g are picked first, then b
 * over the rest. */
GEOMETRY_AVX512 static inline void store_interleaved16(float *out, __m512 r, __m512 g, __m512 b)
{
    static const int32_t rg[3][16] = {
        {0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5},
        {21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26},
        {0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0}};
    static const int32_t then_b[3][16] = {
        {0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15},
        {0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15},
        {26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31}};
    for (int j = 0; j < 3; j++) {
        __m512 t = _mm512_permutex2var_ps(r, _mm512_loadu_si512(rg[j]), g);
        _mm512_storeu_ps(out + 16 * j, _mm512_permutex2var_ps(t, _mm512_loadu_si512(then_b[j]), b));
    }
}

/* Each column's 4 bytes at its two taps (off0[], off1[]) as lanes, read through
 * group g's windows, each loaded once for both taps: a window is 128 bytes of the
 * row (two loads masked at the raster's end, which the picked bytes never reach:
 * only a pixel's 4th byte may fall beyond it, and it is discarded). */
GEOMETRY_VBMI static inline void window_words(const uint8_t *row, const uint8_t *end, const column_taps *ct, int g,
                                              __m512i words[2])
{
    __m512i picked[2][2];
    for (int h = 0; h < 2; h++) {
        const uint8_t *w = row + ct->window[g][h];
        ptrdiff_t left = end - w;
        __mmask64 m0 = left >= 64 ? ~(__mmask64)0 : left <= 0 ? 0 : (((__mmask64)1 << left) - 1);
        __mmask64 m1 = left >= 128 ? ~(__mmask64)0 : left <= 64 ? 0 : (((__mmask64)1 << (left - 64)) - 1);
        __m512i lo = _mm512_maskz_loadu_epi8(m0, w), hi = _mm512_maskz_loadu_epi8(m1, w + 64);
        for (int tap = 0; tap < 2; tap++)
            picked[tap][h] = _mm512_permutex2var_epi8(lo, _mm512_loadu_si512(ct->pick[tap][g]), hi);
    }
    for (int tap = 0; tap < 2; tap++) words[tap] = _mm512_mask_blend_epi32(0xff00, picked[tap][0], picked[tap][1]);
}

/* 16 sampled pixels into the sink at output index at. */
GEOMETRY_AVX512 static inline void sink16(const sink *s, size_t at, __m512 rgb[3])
{
    __m512 mean = _mm512_set1_ps(s->mean), scale = _mm512_set1_ps(s->scale);
    if (s->layout == OUT_GREY) {
        __m512 luma = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(0.299f), rgb[0]),
                                                  _mm512_mul_ps(_mm512_set1_ps(0.587f), rgb[1])),
                                    _mm512_mul_ps(_mm512_set1_ps(0.114f), rgb[2]));
        _mm512_storeu_ps(s->f + at, _mm512_mul_ps(_mm512_sub_ps(luma, mean), scale));
        return;
    }
    for (int c = 0; c < 3; c++) rgb[c] = _mm512_mul_ps(_mm512_sub_ps(rgb[c], mean), scale);
    if (s->layout == OUT_NCHW)
        for (int c = 0; c < 3; c++) _mm512_storeu_ps(s->f + c * s->plane + at, rgb[c]);
    else store_interleaved16(s->f + 3 * at, rgb[0], rgb[1], rgb[2]);
}

/* Output row at index row, columns [0, n) of the block (n a multiple of 16): taps
 * by gathers, or through the windows (crop_row_windows). */
GEOMETRY_AVX512 static void crop_row_gather(const uint8_t *r0, const uint8_t *r1, const column_taps *ct, int n,
                                            float wy_scalar, const sink *s, size_t row)
{
    __m512 wy = _mm512_set1_ps(wy_scalar);
    for (int k = 0; k < n; k += 16) {
        __m512 rgb[3];
        lerp16(r0, r1, _mm512_loadu_si512(ct->off0 + k), _mm512_loadu_si512(ct->off1 + k),
               _mm512_loadu_ps(ct->w1 + k), wy, rgb);
        sink16(s, row + k, rgb);
    }
}

GEOMETRY_VBMI static void crop_row_windows(const uint8_t *r0, const uint8_t *r1, const uint8_t *end,
                                           const column_taps *ct, int n, float wy_scalar, const sink *s, size_t row)
{
    __m512 wy = _mm512_set1_ps(wy_scalar);
    for (int k = 0; k < n; k += 16) {
        __m512 rgb[3];
        __m512i a[2], b[2];
        window_words(r0, end, ct, k / 16, a);
        window_words(r1, end, ct, k / 16, b);
        lerp16_words(a[0], a[1], b[0], b[1], _mm512_loadu_ps(ct->w1 + k), wy, rgb);
        sink16(s, row + k, rgb);
    }
}

static int cpu_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* Fills ct's windows for its first simd columns; 0 when a group's taps do not fit
 * (or the CPU lacks VBMI): then the rows go through gathers. */
static int plan_windows(column_taps *ct, int simd)
{
    if (!__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512bw")) return 0;
    for (int g = 0; g < simd / 16; g++)
        for (int h = 0; h < 2; h++) {
            int first = 16 * g + 8 * h, start = ct->off0[first] < ct->off1[first] ? ct->off0[first] : ct->off1[first];
            for (int k = first; k < first + 8; k++) {
                int o0 = ct->off0[k] - start, o1 = ct->off1[k] - start;
                if (o0 < 0 || o1 < 0 || o0 + 4 > 128 || o1 + 4 > 128) return 0;
                for (int b = 0; b < 4; b++) {
                    ct->pick[0][g][4 * (k - 16 * g) + b] = (uint8_t)(o0 + b);
                    ct->pick[1][g][4 * (k - 16 * g) + b] = (uint8_t)(o1 + b);
                }
            }
            ct->window[g][h] = start;
        }
    return 1;
}
#endif

/* One block of n output columns (taps cols) over every output row. */
static inline __attribute__((always_inline)) void crop_resize_block(const image_rgb *img, int valid, float y0,
                                                                   float step_y, const axis_tap *cols, int u0,
                                                                   int n, int out_w, int out_h, const sink *s,
                                                                   out_layout layout)
{
    static const float pad[3] = {0.0f, 0.0f, 0.0f};
    int simd = 0, outside = 0; /* columns [0, simd) of the block go 16 at a time; some outside the image */
#if defined(__x86_64__)
    column_taps ct;
    if (valid && layout != OUT_RGB8 && cpu_has_avx512()) {
        simd = n & ~15;
        for (int k = 0; k < simd; k++) {
            ct.off0[k] = 3 * cols[k].i0;
            ct.off1[k] = 3 * cols[k].i1;
            ct.w1[k] = cols[k].w1;
            outside |= !cols[k].inside;
        }
        ct.windows = plan_windows(&ct, simd);
    }
#endif
    for (int v = 0; v < out_h; v++) {
        axis_tap ty = valid ? crop_tap(y0 + (v + 0.5f) * step_y, img->height) : (axis_tap){0};
        size_t row = (size_t)v * out_w + u0;
        int k = 0;
#if defined(__x86_64__)
        if (simd && ty.inside && ty.i1 < img->height - 1) {
            if (ct.windows)
                crop_row_windows(pixel_at(img, 0, ty.i0), pixel_at(img, 0, ty.i1),
                                 img->pixels + (size_t)img->width * img->height * 3, &ct, simd, ty.w1, s, row);
            else crop_row_gather(pixel_at(img, 0, ty.i0), pixel_at(img, 0, ty.i1), &ct, simd, ty.w1, s, row);
            for (k = outside ? 0 : simd; k < simd; k++) /* columns outside the image: padding, as below */
                if (!cols[k].inside) sink_put(s, layout, row + k, pad);
        }
#endif
        for (; k < n; k++) {
            if (cols[k].inside && ty.inside) {
                float rgb[3];
                sample_taps(img, cols[k], ty, rgb);
                sink_put(s, layout, row + k, rgb);
            } else {
                sink_put(s, layout, row + k, pad);
            }
        }
    }
}

static void crop_resize(const image_rgb *img, float x0, float y0, float x1, float y1,
                        int out_w, int out_h, const sink *s)
{
    int valid = img && img->pixels && x1 > x0 && y1 > y0;
    float step_x = (x1 - x0) / (float)out_w, step_y = (y1 - y0) / (float)out_h;
    axis_tap cols[TAP_BLOCK];
    for (int u0 = 0; u0 < out_w; u0 += TAP_BLOCK) {
        int n = out_w - u0 < TAP_BLOCK ? out_w - u0 : TAP_BLOCK;
        for (int k = 0; k < n; k++)
            cols[k] = valid ? crop_tap(x0 + (u0 + k + 0.5f) * step_x, img->width) : (axis_tap){0};
#define CROP_BLOCK(layout) crop_resize_block(img, valid, y0, step_y, cols, u0, n, out_w, out_h, s, layout)
        FOR_LAYOUT(s->layout, CROP_BLOCK)
#undef CROP_BLOCK
    }
}

void image_crop_resize_to_tensor(const image_rgb *img, float x0, float y0, float x1,
                                 float y1, int out_w, int out_h, float mean,
                                 float scale, int nchw, float *out)
{
    if (!out || out_w <= 0 || out_h <= 0) return;
    sink s = {nchw ? OUT_NCHW : OUT_NHWC, mean, scale, (size_t)out_w * out_h, out, NULL};
    crop_resize(img, x0, y0, x1, y1, out_w, out_h, &s);
}

void image_crop_resize_to_tensor_grey(const image_rgb *img, float x0, float y0,
                                      float x1, float y1, int out_w, int out_h,
                                      float mean, float scale, float *out)
{
    if (!out || out_w <= 0 || out_h <= 0) return;
    sink s = {OUT_GREY, mean, scale, (size_t)out_w * out_h, out, NULL};
    crop_resize(img, x0, y0, x1, y1, out_w, out_h, &s);
}

/* ---- similarity / affine ------------------------------------------------------- */

int similarity_estimate(const float *src_xy, const float *dst_xy, int n, float m[6])
{
    if (!src_xy || !dst_xy || !m || n < 2) return IMAGE_ERR_INVALID;
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (int i = 0; i < n; i++) {
        msx += src_xy[2 * i];
        msy += src_xy[2 * i + 1];
        mdx += dst_xy[2 * i];
        mdy += dst_xy[2 * i + 1];
    }
    msx /= n, msy /= n, mdx /= n, mdy /= n;
    /* With centred points p, q and the model q = [a -b; b a] p, the normal equations
     * decouple: a = sum(p.q) / sum|p|^2, b = sum(p x q) / sum|p|^2. Any (a, b) is a
     * scale >= 0 times a rotation, so this is exactly Umeyama's optimum in 2-D. */
    double dot = 0, cross = 0, var = 0;
    for (int i = 0; i < n; i++) {
        double px = src_xy[2 * i] - msx, py = src_xy[2 * i + 1] - msy;
        double qx = dst_xy[2 * i] - mdx, qy = dst_xy[2 * i + 1] - mdy;
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        var += px * px + py * py;
    }
    if (!(var > 1e-12)) return IMAGE_ERR_INVALID;
    double a = dot / var, b = cross / var;
    m[0] = (float)a;
    m[1] = (float)-b;
    m[2] = (float)(mdx - (a * msx - b * msy));
    m[3] = (float)b;
    m[4] = (float)a;
    m[5] = (float)(mdy - (b * msx + a * msy));
    return IMAGE_OK;
}

int affine_invert(const float m[6], float inv[6])
{
    double det = (double)m[0] * m[4] - (double)m[1] * m[3];
    if (!isfinite(det) || fabs(det) < 1e-12) return IMAGE_ERR_INVALID;
    double i0 = m[4] / det, i1 = -m[1] / det, i3 = -m[3] / det, i4 = m[0] / det;
    inv[0] = (float)i0;
    inv[1] = (float)i1;
    inv[2] = (float)(-(i0 * m[2] + i1 * m[5]));
    inv[3] = (float)i3;
    inv[4] = (float)i4;
    inv[5] = (float)(-(i3 * m[2] + i4 * m[5]));
    return IMAGE_OK;
}

/* Bilinear sample at pixel-centre coordinates with taps outside the image as 0. */
static inline void sample_constant_border(const image_rgb *img, float sx, float sy, float rgb[3])
{
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    /* Checked in float first: converting an out-of-range float to int is UB. */
    if (!(sx > -1.0f && sx < (float)img->width && sy > -1.0f && sy < (float)img->height))
        return;
    /* floorf without the libm call it is at -O2 on baseline x86-64: sx and sy are
     * above -1 here, so truncation is the floor but for (-1, 0). */
    int x = (int)sx - (sx < 0.0f), y = (int)sy - (sy < 0.0f);
    float wx = sx - (float)x, wy = sy - (float)y;
    float w[4] = {(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy};
    if (x >= 0 && y >= 0 && x + 1 < img->width && y + 1 < img->height) {
        /* All four taps inside (nearly every sample): the same sums in the same
         * order as below, without a test per tap. */
        const uint8_t *p = pixel_at(img, x, y), *q = p + (size_t)img->width * 3;
        for (int c = 0; c < 3; c++)
            rgb[c] = rgb[c] + w[0] * p[c] + w[1] * p[3 + c] + w[2] * q[c] + w[3] * q[3 + c];
        return;
    }
    for (int k = 0; k < 4; k++) {
        int tx = x + (k & 1), ty = y + (k >> 1);
        if (tx < 0 || ty < 0 || tx >= img->width || ty >= img->height) continue;
        const uint8_t *p = pixel_at(img, tx, ty);
        for (int c = 0; c < 3; c++) rgb[c] += w[k] * p[c];
    }
}

#if defined(__x86_64__)
/* 16 output pixels of row y from x0 with sample_constant_border's arithmetic in
 * lanes (the same operations in the same order, so the same values), when all
 * four taps of every one are inside the image and none reads past the raster's
 * end (a tap is read as the 32-bit word at the pixel); 0 when not, and nothing is
 * written. The 112x112 alignment warp took 0.24 ms a face in scalar code. */
GEOMETRY_AVX512 static int warp16(const image_rgb *img, const float inv[6], int y, int x0, const sink *s, size_t at)
{
    const __m512 one = _mm512_set1_ps(1.0f), yf = _mm512_set1_ps((float)y);
    __m512 xf = _mm512_add_ps(_mm512_set1_ps((float)x0),
                              _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512 sx = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(inv[0]), xf),
                                            _mm512_mul_ps(_mm512_set1_ps(inv[1]), yf)), _mm512_set1_ps(inv[2]));
    __m512 sy = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(inv[3]), xf),
                                            _mm512_mul_ps(_mm512_set1_ps(inv[4]), yf)), _mm512_set1_ps(inv[5]));
    /* every tap inside: 0 <= sx < W - 1 and 0 <= sy < H - 1 (then the floor is the
     * truncation); checked in float before any conversion */
    __mmask16 in = _mm512_cmp_ps_mask(sx, _mm512_setzero_ps(), _CMP_GE_OQ) &
                   _mm512_cmp_ps_mask(sx, _mm512_set1_ps((float)(img->width - 1)), _CMP_LT_OQ) &
                   _mm512_cmp_ps_mask(sy, _mm512_setzero_ps(), _CMP_GE_OQ) &
                   _mm512_cmp_ps_mask(sy, _mm512_set1_ps((float)(img->height - 1)), _CMP_LT_OQ);
    if (in != 0xffff) return 0;
    __m512i xi = _mm512_cvttps_epi32(sx), yi = _mm512_cvttps_epi32(sy);
    __m512i w3 = _mm512_set1_epi32(3 * img->width);
    __m512i off = _mm512_add_epi32(_mm512_mullo_epi32(yi, w3), _mm512_mullo_epi32(xi, _mm512_set1_epi32(3)));
    /* the lower right tap's word ends one byte past its pixel: not past the raster */
    int last = 3 * (img->width * img->height - 1);
    if (_mm512_cmpge_epi32_mask(_mm512_add_epi32(off, _mm512_add_epi32(w3, _mm512_set1_epi32(3))),
                                _mm512_set1_epi32(last)))
        return 0;
    __m512 wx = _mm512_sub_ps(sx, _mm512_cvtepi32_ps(xi)), wy = _mm512_sub_ps(sy, _mm512_cvtepi32_ps(yi));
    __m512 w[4] = {_mm512_mul_ps(_mm512_sub_ps(one, wx), _mm512_sub_ps(one, wy)),
                   _mm512_mul_ps(wx, _mm512_sub_ps(one, wy)), _mm512_mul_ps(_mm512_sub_ps(one, wx), wy),
                   _mm512_mul_ps(wx, wy)};
    __m512i tap[4] = {_mm512_i32gather_epi32(off, img->pixels, 1),
                      _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_set1_epi32(3)), img->pixels, 1),
                      _mm512_i32gather_epi32(_mm512_add_epi32(off, w3), img->pixels, 1),
                      _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_add_epi32(w3, _mm512_set1_epi32(3))),
                                             img->pixels, 1)};
    __m512 rgb[3];
    for (int c = 0; c < 3; c++) {
        __m512 v = _mm512_setzero_ps();
        for (int k = 0; k < 4; k++)
            v = _mm512_add_ps(v, _mm512_mul_ps(w[k], _mm512_cvtepi32_ps(_mm512_and_si512(
                                                         _mm512_srli_epi32(tap[k], 8 * c), _mm512_set1_epi32(0xff)))));
        rgb[c] = v;
    }
    sink16(s, at, rgb);
    return 1;
}
#endif

static inline __attribute__((always_inline)) void warp_affine_rows(const image_rgb *img, const float inv[6],
                                                                  int out_w, int out_h, const sink *s,
                                                                  out_layout layout)
{
#if defined(__x86_64__)
    int simd = layout != OUT_RGB8 && cpu_has_avx512() ? out_w & ~15 : 0;
#else
    int simd = 0;
#endif
    for (int y = 0; y < out_h; y++) {
        for (int x = 0; x < out_w; x++) {
#if defined(__x86_64__)
            if (x % 16 == 0 && x + 16 <= simd && warp16(img, inv, y, x, s, (size_t)y * out_w + x)) {
                x += 15;
                continue;
            }
#endif
            float rgb[3];
            sample_constant_border(img, inv[0] * x + inv[1] * y + inv[2],
                                   inv[3] * x + inv[4] * y + inv[5], rgb);
            sink_put(s, layout, (size_t)y * out_w + x, rgb);
        }
    }
}

static void warp_affine(const image_rgb *img, const float m[6], int out_w, int out_h,
                        const sink *s)
{
    static const float pad[3] = {0.0f, 0.0f, 0.0f};
    float inv[6];
    if (!img || !img->pixels || !m || affine_invert(m, inv) != IMAGE_OK) {
        for (size_t idx = 0; idx < (size_t)out_w * out_h; idx++) sink_put(s, s->layout, idx, pad);
        return;
    }
#define WARP_ROWS(layout) warp_affine_rows(img, inv, out_w, out_h, s, layout)
    FOR_LAYOUT(s->layout, WARP_ROWS)
#undef WARP_ROWS
}

void image_warp_affine_to_tensor(const image_rgb *img, const float m[6], int out_w,
                                 int out_h, float mean, float scale, int nchw,
                                 float *out)
{
    if (!out || out_w <= 0 || out_h <= 0) return;
    sink s = {nchw ? OUT_NCHW : OUT_NHWC, mean, scale, (size_t)out_w * out_h, out, NULL};
    warp_affine(img, m, out_w, out_h, &s);
}

int image_warp_affine_rgb(const image_rgb *img, const float m[6], int out_w, int out_h,
                          image_rgb *out)
{
    if (!img || !img->pixels || !m) return IMAGE_ERR_INVALID;
    int rc = image_rgb_alloc(out, out_w, out_h);
    if (rc) return rc;
    sink s = {OUT_RGB8, 0.0f, 1.0f, (size_t)out_w * out_h, NULL, out->pixels};
    warp_affine(img, m, out_w, out_h, &s);
    return IMAGE_OK;
}

/* ---- lossless orientation changes --------------------------------------------- */

int image_rgb_orient(const image_rgb *in, int o, image_rgb *out)
{
    if (!in || !in->pixels || o < 1 || o > 8) return IMAGE_ERR_INVALID;
    ptrdiff_t w = in->width, h = in->height;
    int swap = o >= 5;
    int rc = image_rgb_alloc(out, swap ? (int)h : (int)w, swap ? (int)w : (int)h);
    if (rc) return rc;
    /* Output (x, y) reads source pixel base + x * step_x + y * step_y: every EXIF
     * orientation is an affine map on pixel indices, so one loop serves all eight.
     * E.g. 6 (rotate clockwise): source (y, h-1-x). */
    static const struct { int bx, by, xx, xy, yx, yy; } t[9] = {
        {0, 0, 0, 0, 0, 0},
        {0, 0, 1, 0, 0, 1},   /* 1 identity */
        {1, 0, -1, 0, 0, 1},  /* 2 mirror left-right */
        {1, 1, -1, 0, 0, -1}, /* 3 rotate 180 */
        {0, 1, 1, 0, 0, -1},  /* 4 mirror top-bottom */
        {0, 0, 0, 1, 1, 0},   /* 5 transpose */
        {0, 1, 0, -1, 1, 0},  /* 6 rotate 90 clockwise */
        {1, 1, 0, -1, -1, 0}, /* 7 transverse */
        {1, 0, 0, 1, -1, 0},  /* 8 rotate 90 counter-clockwise */
    };
    /* bx/by select the last column/row as origin; xx,xy (yx,yy) are the source x and
     * y steps per output column (row). */
    ptrdiff_t base = t[o].bx * (w - 1) + t[o].by * (h - 1) * w;
    ptrdiff_t step_x = t[o].xx + t[o].xy * w, step_y = t[o].yx + t[o].yy * w;
    uint8_t *d = out->pixels;
    for (int y = 0; y < out->height; y++) {
        ptrdiff_t src = base + y * step_y;
        for (int x = 0; x < out->width; x++, src += step_x, d += 3)
            memcpy(d, in->pixels + src * 3, 3);
    }
    return IMAGE_OK;
}

int image_rgb_rotate(const image_rgb *in, int degrees_cw, image_rgb *out)
{
    switch (degrees_cw) {
    case 0: return image_rgb_orient(in, 1, out);
    case 90: return image_rgb_orient(in, 6, out);
    case 180: return image_rgb_orient(in, 3, out);
    case 270: return image_rgb_orient(in, 8, out);
    default: return IMAGE_ERR_INVALID;
    }
}

int image_rgb_flip_horizontal(const image_rgb *in, image_rgb *out)
{
    return image_rgb_orient(in, 2, out);
}

/* ---- quality measures ---------------------------------------------------------- */

/* The same rounded luma as image_rgb_to_grey, so measures match a grey decode. */
static int luma_at(const image_rgb *img, int x, int y)
{
    const uint8_t *p = pixel_at(img, x, y);
    return (int)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
}

double image_laplacian_variance(const image_rgb *img, int x0, int y0, int x1, int y1)
{
    if (!img || !img->pixels) return 0.0;
    /* The 3x3 kernel needs a neighbour on every side. */
    x0 = clampi(x0, 1, img->width - 1), x1 = clampi(x1, 1, img->width - 1);
    y0 = clampi(y0, 1, img->height - 1), y1 = clampi(y1, 1, img->height - 1);
    if (x1 <= x0 || y1 <= y0) return 0.0;
    double sum = 0, sum_sq = 0;
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            int lap = luma_at(img, x - 1, y) + luma_at(img, x + 1, y) +
                      luma_at(img, x, y - 1) + luma_at(img, x, y + 1) - 4 * luma_at(img, x, y);
            sum += lap;
            sum_sq += (double)lap * lap;
        }
    }
    double n = (double)(x1 - x0) * (y1 - y0), mean = sum / n;
    double var = sum_sq / n - mean * mean;
    return var > 0 ? var : 0.0;
}

double image_mean_brightness(const image_rgb *img, int x0, int y0, int x1, int y1)
{
    if (!img || !img->pixels) return 0.0;
    x0 = clampi(x0, 0, img->width), x1 = clampi(x1, 0, img->width);
    y0 = clampi(y0, 0, img->height), y1 = clampi(y1, 0, img->height);
    if (x1 <= x0 || y1 <= y0) return 0.0;
    double sum = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) sum += luma_at(img, x, y);
    return sum / ((double)(x1 - x0) * (y1 - y0));
}
