/* Scaled baseline JPEG decoding, bit-identical to libjpeg-turbo 2.1 (see jpeg_scaled.h).
 *
 * The arithmetic is libjpeg's, because "the same pixels" is the contract: the reduced
 * inverse DCTs of jidctred.c (1x1, 2x2, 4x4) and the islow 8x8 of jidctint.c with their
 * rounding, jdmaster.c's choice of a larger DCT for subsampled chroma (so 4:2:0 needs
 * no upsampling), jdsample.c's h2v1 upsampling for 4:2:2, and jdcolor.c's YCbCr->RGB
 * formulas. Where libjpeg-turbo's SIMD and C paths could disagree (coefficients or
 * pixels far out of range, which no real photo has), the file is declined instead.
 *
 * What differs is the work: one pass over the entropy-coded data, a code and its value
 * bits decoded in one table lookup, each block transformed while in cache and each MCU
 * row converted to RGB at once, and a block with no AC term (most blocks of a photo at
 * these scales) filled from its DC value without a transform, which libjpeg's own
 * zero-column and zero-row shortcuts make exactly equal. */
#include "face/jpeg_scaled.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HUFF_FAST_BITS 10
#define INLINE static inline __attribute__((always_inline))

/* The vector paths (the scan loop with its IDCTs, colour, upsampling) need AVX2, BMI2
 * and AVX-512 BW/VBMI, checked once per decode; each has a plain C path beside it. */
#if defined(__x86_64__)
#include <immintrin.h>
#define JPEG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vbmi")))
#define JPEG_AVX2 __attribute__((target("avx2")))
static int have_simd(void)
{
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
}
#else
static int have_simd(void) { return 0; }
#endif

typedef struct {
    uint16_t fast[1 << HUFF_FAST_BITS]; /* (length << 8) | symbol for short codes, else 0 */
    /* A code and its value bits that fit HUFF_FAST_BITS together, decoded at once:
     * value << 16 | end of block << 12 | run << 8 | bits used; 0 for the others. */
    int32_t value_fast[1 << HUFF_FAST_BITS];
    int32_t maxcode[17];                /* largest code of each length, -1 when none */
    int32_t valoffset[17];              /* symbol index of a code = code + valoffset[len] */
    uint8_t values[256];
    int defined;
} huff_table;

typedef struct {
    int id, h, v, tq, td, ta;
    int ssize;       /* side of a block after the scaled IDCT: 1, 2, 4 or 8 */
    int plane_w;     /* samples per row of this component's MCU-row strip */
    int ds_width;    /* libjpeg's downsampled_width: samples per row that are real */
    uint8_t *plane;  /* MCU-row strip, v * ssize rows of plane_w */
    int16_t q[64];   /* dequantisation table, natural order, as libjpeg's short table */
} component;

typedef struct {
    int width, height, ncomp, max_h, max_v, restart_interval;
    int saw_jfif, saw_adobe, adobe_transform; /* what decides the colour space */
    component comp[3];
    int32_t quant[4][64];
    int quant_defined[4];
    huff_table dc[4], ac[4];
    size_t scan_start;
} frame;

/* Zigzag position -> natural (row-major) position. */
static const uint8_t natural_order[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

/* ---- headers ------------------------------------------------------------------------ */

static int u16_at(const uint8_t *p) { return p[0] << 8 | p[1]; }

/* JPEG's sign extension of an s-bit magnitude category value. */
static int extend(unsigned v, int s) { return v < 1u << (s - 1) ? (int)v - (1 << s) + 1 : (int)v; }

/* jpeg_make_d_derived_tbl's checks, then our lookup: 0 or -1 where libjpeg would stop. */
static int build_huff_table(huff_table *t, const uint8_t counts[16], const uint8_t *values,
                            int nvalues, int is_dc)
{
    memset(t, 0, sizeof *t);
    memcpy(t->values, values, (size_t)nvalues);
    int code = 0, index = 0;
    for (int len = 1; len <= 16; len++) {
        int n = counts[len - 1];
        /* The codes must fit their length and none may be all ones (libjpeg's rule). */
        if (code + n >= 1 << len) return -1;
        t->valoffset[len] = index - code;
        t->maxcode[len] = n ? code + n - 1 : -1;
        for (int i = 0; i < n; i++, code++, index++) {
            if (len <= HUFF_FAST_BITS) {
                int shift = HUFF_FAST_BITS - len;
                for (int fill = 0; fill < 1 << shift; fill++)
                    t->fast[(code << shift) | fill] = (uint16_t)(len << 8 | values[index]);
            }
        }
        code <<= 1;
    }
    if (is_dc)
        for (int i = 0; i < nvalues; i++)
            if (values[i] > 15) return -1;
    for (int i = 0; i < 1 << HUFF_FAST_BITS; i++) {
        int len = t->fast[i] >> 8, sym = t->fast[i] & 0xFF;
        int size = is_dc ? sym : sym & 15, run = is_dc ? 0 : sym >> 4;
        if (!len || len + size > HUFF_FAST_BITS) continue;
        /* An AC symbol of size 0 ends the block (libjpeg reads any run but 15 so), except
         * 0xF0, sixteen zeros, which stores a zero here. */
        int value = 0, end = !is_dc && size == 0 && run != 15;
        if (size) value = extend((unsigned)(i >> (HUFF_FAST_BITS - len - size)) & ((1u << size) - 1), size);
        t->value_fast[i] = (int32_t)((uint32_t)value << 16) | end << 12 | run << 8 | (len + size);
    }
    t->defined = 1;
    return 0;
}

static int parse_dht(frame *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 17) return -1;
        int tc = p[0] >> 4, th = p[0] & 15, total = 0;
        if (tc > 1 || th > 3) return -1;
        for (int i = 0; i < 16; i++) total += p[1 + i];
        if (total > 256 || (size_t)total > n - 17) return -1;
        if (build_huff_table(tc ? &f->ac[th] : &f->dc[th], p + 1, p + 17, total, !tc)) return -1;
        p += 17 + total;
        n -= 17 + (size_t)total;
    }
    return 0;
}

static int parse_dqt(frame *f, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int pq = p[0] >> 4, tq = p[0] & 15;
        size_t size = 1 + 64 * (size_t)(pq + 1);
        if (pq > 1 || tq > 3 || n < size) return -1;
        for (int k = 0; k < 64; k++) {
            int v = pq ? u16_at(p + 1 + 2 * k) : p[1 + k];
            if (v > 32767) return -1; /* libjpeg keeps it in a short */
            f->quant[tq][natural_order[k]] = v;
        }
        f->quant_defined[tq] = 1;
        p += size;
        n -= size;
    }
    return 0;
}

static int parse_sof(frame *f, const uint8_t *p, size_t n)
{
    if (n < 6 || p[0] != 8) return -1;
    f->height = u16_at(p + 1);
    f->width = u16_at(p + 3);
    f->ncomp = p[5];
    if (f->height == 0 || f->width == 0 || f->height > 65500 || f->width > 65500 || (f->ncomp != 1 && f->ncomp != 3) ||
        n != 6 + 3 * (size_t)f->ncomp)
        return -1;
    for (int c = 0; c < f->ncomp; c++) {
        component *cp = &f->comp[c];
        cp->id = p[6 + 3 * c];
        cp->h = p[7 + 3 * c] >> 4;
        cp->v = p[7 + 3 * c] & 15;
        cp->tq = p[8 + 3 * c];
        if (cp->h < 1 || cp->h > 4 || cp->v < 1 || cp->v > 4 || cp->tq > 3) return -1;
        for (int o = 0; o < c; o++)
            if (f->comp[o].id == cp->id) return -1;
    }
    if (f->ncomp == 1) {
        f->comp[0].h = f->comp[0].v = 1; /* a lone component is never interleaved */
    } else {
        /* Luma 1x1, 2x1 or 2x2 with chroma 1x1 (4:4:4, 4:2:2, 4:2:0), or all three
         * sampled alike up to 2x2 (4:4:4 in bigger MCUs): no other upsampling here. */
        const component *y = &f->comp[0], *cb = &f->comp[1], *cr = &f->comp[2];
        int luma_ok = (y->h == 1 && y->v == 1) || (y->h == 2 && (y->v == 1 || y->v == 2));
        int chroma_single = cb->h == 1 && cb->v == 1 && cr->h == 1 && cr->v == 1;
        int alike = y->h <= 2 && y->v <= 2 && cb->h == y->h && cb->v == y->v && cr->h == y->h && cr->v == y->v;
        if (!(luma_ok && chroma_single) && !alike) return -1;
    }
    f->max_h = f->comp[0].h;
    f->max_v = f->comp[0].v;
    return 0;
}

static int parse_sos(frame *f, const uint8_t *p, size_t n)
{
    int ns = n ? p[0] : 0;
    if (ns != f->ncomp || n != 4 + 2 * (size_t)ns) return -1;
    for (int c = 0; c < ns; c++) {
        component *cp = &f->comp[c];
        if (p[1 + 2 * c] != cp->id) return -1; /* same order as the frame */
        cp->td = p[2 + 2 * c] >> 4;
        cp->ta = p[2 + 2 * c] & 15;
        if (cp->td > 3 || cp->ta > 3 || !f->dc[cp->td].defined || !f->ac[cp->ta].defined ||
            !f->quant_defined[cp->tq])
            return -1;
        for (int k = 0; k < 64; k++) cp->q[k] = (int16_t)f->quant[cp->tq][k];
    }
    const uint8_t *s = p + 1 + 2 * ns;
    if (s[0] != 0 || s[1] != 63 || s[2] != 0) return -1; /* sequential: Ss 0, Se 63, no approximation */
    /* jdapimin.c's colour space for three components: JFIF means YCbCr; else Adobe's
     * transform 1 does (0 is RGB, others warn); else components named R, G, B are RGB. */
    if (ns == 3 && !f->saw_jfif) {
        if (f->saw_adobe) return f->adobe_transform == 1 ? 0 : -1;
        if (f->comp[0].id == 'R' && f->comp[1].id == 'G' && f->comp[2].id == 'B') return -1;
    }
    return 0;
}

/* Reads markers up to the scan; -1 for anything but a plain baseline file. */
static int parse_headers(const uint8_t *d, size_t len, frame *f)
{
    memset(f, 0, sizeof *f);
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8) return -1;
    size_t pos = 2;
    int have_sof = 0;
    for (;;) {
        if (pos >= len || d[pos] != 0xFF) return -1; /* stray bytes: libjpeg's call */
        while (pos < len && d[pos] == 0xFF) pos++;
        if (pos + 3 > len) return -1;
        int marker = d[pos++];
        size_t seg = (size_t)u16_at(d + pos);
        if (seg < 2 || seg > len - pos) return -1;
        const uint8_t *p = d + pos + 2;
        size_t n = seg - 2;
        int rc = 0;
        switch (marker) {
        case 0xC0: /* SOF0 baseline */
        case 0xC1: /* SOF1 extended sequential, Huffman */
            rc = have_sof ? -1 : parse_sof(f, p, n);
            have_sof = 1;
            break;
        case 0xC4: rc = parse_dht(f, p, n); break;
        case 0xDB: rc = parse_dqt(f, p, n); break;
        case 0xDD: rc = n == 2 ? (f->restart_interval = u16_at(p), 0) : -1; break;
        case 0xE0:
            if (n >= 14 && memcmp(p, "JFIF", 5) == 0) {
                if (p[5] != 1) return -1; /* libjpeg warns on a JFIF major version but 1 */
                f->saw_jfif = 1;
            }
            break;
        case 0xEE: /* jdmarker.c's examine_app14 */
            if (n >= 12 && memcmp(p, "Adobe", 5) == 0) {
                f->saw_adobe = 1;
                f->adobe_transform = p[11];
            }
            break;
        case 0xDA:
            if (!have_sof || parse_sos(f, p, n)) return -1;
            f->scan_start = pos + seg;
            return 0;
        default:
            if ((marker >= 0xE1 && marker <= 0xEF) || marker == 0xFE) break; /* APPn, COM */
            return -1; /* progressive, arithmetic, lossless, DNL, stray RST/EOI... */
        }
        if (rc) return -1;
        pos += seg;
    }
}

/* ---- entropy-coded data ------------------------------------------------------------- */

typedef struct {
    const uint8_t *d;
    size_t pos, end;
    int pad_bits;  /* zero bits appended after a marker or the end of the data */
    int at_marker; /* pos is at a marker (or the end): only padding follows */
} bit_reader;

/* The bit buffer, apart from bit_reader and only ever passed to inlined functions or
 * by value, so the compiler keeps it in registers (in memory it would be stored and
 * reloaded at every symbol). */
typedef struct {
    uint64_t acc; /* next bits, most significant first */
    int nbits;    /* valid bits in acc, zero padding included */
} bits;

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* Nonzero when some byte of v is 0xFF. */
static int has_ff_byte(uint64_t v)
{
    uint64_t x = ~v;
    return ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) != 0;
}

/* One byte of entropy-coded data, unstuffing FF 00. At a marker it stops and, like
 * libjpeg, feeds zeros; the caller finds out whether any were used (pad_bits). */
static int next_byte(bit_reader *r)
{
    if (!r->at_marker && r->pos < r->end) {
        int c = r->d[r->pos];
        if (c != 0xFF) {
            r->pos++;
            return c;
        }
        if (r->pos + 1 < r->end && r->d[r->pos + 1] == 0x00) {
            r->pos += 2;
            return 0xFF;
        }
    }
    r->at_marker = 1;
    if (r->pad_bits <= 64) r->pad_bits += 8; /* past 64 some padding was used: declined */
    return 0;
}

/* Passed and returned by value, so the buffer never has an address to spill to. */
__attribute__((noinline)) static bits fill_bytewise(bit_reader *r, bits b)
{
    while (b.nbits <= 56) {
        b.acc |= (uint64_t)next_byte(r) << (56 - b.nbits);
        b.nbits += 8;
    }
    return b;
}

/* Tops the buffer up to at least 57 bits. */
static inline void fill(bit_reader *r, bits *b)
{
    if (!r->at_marker && r->end - r->pos >= 8) {
        uint64_t w = load_be64(r->d + r->pos);
        if (!has_ff_byte(w)) { /* eight plain bytes: take as many as fit at once */
            int k = (64 - b->nbits) >> 3;
            b->acc |= (w >> b->nbits) & (~0ull << (64 - b->nbits - 8 * k));
            b->nbits += 8 * k;
            r->pos += (size_t)k;
            return;
        }
    }
    *b = fill_bytewise(r, *b);
}

static inline void skip_bits(bits *b, int n)
{
    b->acc <<= n;
    b->nbits -= n;
}

static inline unsigned get_bits(bits *b, int n)
{
    unsigned v = (unsigned)(b->acc >> (64 - n));
    skip_bits(b, n);
    return v;
}

/* Codes longer than the lookup: (length << 8) | symbol, or 0 when the table has none. */
__attribute__((noinline)) static int long_code(const huff_table *t, uint64_t acc)
{
    unsigned top = (unsigned)(acc >> 48);
    for (int len = HUFF_FAST_BITS + 1; len <= 16; len++) {
        int code = (int)(top >> (16 - len));
        if (code <= t->maxcode[len]) return len << 8 | t->values[code + t->valoffset[len]];
    }
    return 0;
}

/* A symbol, or -1 for a code the table does not have. Needs 16 bits in the buffer. */
static inline int decode_symbol(bits *b, const huff_table *t)
{
    int e = t->fast[b->acc >> (64 - HUFF_FAST_BITS)];
    if (!e && !(e = long_code(t, b->acc))) return -1;
    skip_bits(b, e >> 8);
    return e & 0xFF;
}

/* One block's coefficients into blk (zero on entry), natural order, or only the DC
 * when the block's AC terms are not needed (a one-sample IDCT). Returns how many AC
 * values it stored, or -1 to decline. Mirrors jdhuff.c's decode_mcu, except that an AC
 * run past the block's end (which libjpeg silently piles onto coefficient 63) and a DC
 * sum outside a short are declined. */
static inline int decode_block(bit_reader *r, bits *b, const huff_table *dc, const huff_table *ac,
                               int store_ac, int *pred, int16_t blk[64])
{
    if (b->nbits < 32) fill(r, b);
    int32_t e = dc->value_fast[b->acc >> (64 - HUFF_FAST_BITS)];
    int diff;
    if (e) {
        skip_bits(b, e & 0xFF);
        diff = e >> 16;
    } else {
        int s = decode_symbol(b, dc);
        if (s < 0) return -1;
        diff = s ? extend(get_bits(b, s), s) : 0;
    }
    int dcv = *pred + diff;
    if (dcv < -32768 || dcv > 32767) return -1;
    *pred = dcv;
    blk[0] = (int16_t)dcv;
    int n = 0;
    for (int k = 1; k < 64; k++) {
        if (b->nbits < 32) fill(r, b);
        e = ac->value_fast[b->acc >> (64 - HUFF_FAST_BITS)];
        int value;
        if (e) { /* code and value bits in one lookup; 16 zeros store a zero */
            skip_bits(b, e & 0xFF);
            if (e & 1 << 12) break;
            k += (e >> 8) & 15;
            value = e >> 16;
        } else {
            int rs = decode_symbol(b, ac);
            if (rs < 0) return -1;
            int s = rs & 15;
            if (!s) {
                if (rs != 0xF0) break; /* end of block */
                k += 15;               /* sixteen zeros */
                continue;
            }
            k += rs >> 4;
            value = extend(get_bits(b, s), s);
        }
        if (k > 63) return -1;
        if (store_ac) {
            blk[natural_order[k]] = (int16_t)value;
            n++;
        }
    }
    return n;
}

/* Unused real bits left before a marker: fewer than 8 is the encoder's byte padding,
 * more is data libjpeg would skip with a warning; any padding used means it warned. */
static int ended_cleanly(const bit_reader *r, bits b)
{
    int real = b.nbits - r->pad_bits;
    return real >= 0 && real < 8;
}

/* Position of the marker code after the entropy-coded data ends cleanly, else 0. */
static size_t marker_after_data(const bit_reader *b, bits buffered)
{
    if (!ended_cleanly(b, buffered)) return 0;
    size_t pos = b->pos;
    if (pos >= b->end || b->d[pos] != 0xFF) return 0;
    while (pos < b->end && b->d[pos] == 0xFF) pos++;
    return pos < b->end ? pos : 0;
}

static int restart(bit_reader *b, bits *buffered, int *next_rst, int pred[3])
{
    size_t at = marker_after_data(b, *buffered);
    if (!at || b->d[at] != 0xD0 + *next_rst) return -1;
    b->pos = at + 1;
    b->pad_bits = b->at_marker = 0;
    *buffered = (bits){0, 0};
    *next_rst = (*next_rst + 1) & 7;
    pred[0] = pred[1] = pred[2] = 0;
    return 0;
}

/* ---- inverse DCTs (libjpeg's integer arithmetic) ------------------------------------ */

#define CONST_BITS 13
#define PASS1_BITS 2
#define DESCALE(x, n) (((x) + ((int64_t)1 << ((n) - 1))) >> (n))

/* After the IDCT libjpeg's C code wraps values beyond [-384, 383] through its range
 * table, while libjpeg-turbo's SIMD code saturates them: the two agree, and give
 * clamp(v + 128), only inside that range. A block with a value outside it (which no
 * real photo has) is declined, so the answer is libjpeg-turbo's whatever it runs. */
#define PIXEL_MIN (-384)
#define PIXEL_MAX 383

static void build_pass2_matrices(void);

INLINE int in_pixel_range(int64_t v) { return v >= PIXEL_MIN && v <= PIXEL_MAX; }

INLINE uint8_t to_pixel(int64_t v) { return (uint8_t)(v < -128 ? 0 : v > 127 ? 255 : v + 128); }

static int fill_dc(const int16_t *blk, const int16_t *q, int side, uint8_t *out, int stride)
{
    int64_t dc = DESCALE((int64_t)(blk[0] * q[0]), 3);
    if (!in_pixel_range(dc)) return -1;
    uint8_t v = to_pixel(dc);
    uint64_t row = v * 0x0101010101010101ull; /* fixed-size stores: memset would be a call */
    switch (side) {
    case 1: *out = v; break;
    case 2:
        for (int y = 0; y < 2; y++) memcpy(out + (size_t)y * stride, &row, 2);
        break;
    case 4:
        for (int y = 0; y < 4; y++) memcpy(out + (size_t)y * stride, &row, 4);
        break;
    default:
        for (int y = 0; y < 8; y++) memcpy(out + (size_t)y * stride, &row, 8);
        break;
    }
    return 0;
}

/* The reduced and full IDCTs in two passes, as jidctred.c / jidctint.c. Pass 1 runs on
 * whole rows of the block, one lane per column (GCC's vector extension); pass 2 is
 * linear in each row of pass 1's output, so it is a fixed integer matrix per size.
 *
 * In 32 bits both passes are exact while every dequantised coefficient is within
 * +-8191 and every pass-1 value within +-16383 (the multipliers of any output add up,
 * in absolute value, to less than 2^17). Real 8-bit JPEGs stay far below; a block that
 * does not is declined to libjpeg-turbo. libjpeg's zero-column and zero-row shortcuts
 * give the same values as the full sums. */
typedef int32_t lanes __attribute__((vector_size(32)));
typedef int16_t short_lanes __attribute__((vector_size(16)));

#define COEF_LIMIT 8191
#define PASS1_LIMIT 16383

/* Macros rather than functions: a 32-byte vector argument draws GCC's ABI note. */
#define ABS_LANES(v) (((v) ^ ((v) >> 31)) - ((v) >> 31))
#define DESCALE_LANES(v, n) (((v) + (1 << ((n) - 1))) >> (n))

/* Nonzero when some lane of *v (an OR of absolute values) is over limit. */
INLINE int any_over(const lanes *v, int limit)
{
    lanes big = *v & ~limit;
    int any = 0;
    for (int c = 0; c < 8; c++) any |= big[c];
    return any != 0;
}

/* Pass 1 of each size: z[k] is dequantised row k, ws[r] output row r. */
INLINE void columns_2x2(const lanes z[8], lanes ws[2])
{
    lanes t10 = z[0] * (1 << (CONST_BITS + 2));
    lanes t0 = z[7] * -5906 + z[5] * 6967 + z[3] * -10426 + z[1] * 29692;
    ws[0] = DESCALE_LANES(t10 + t0, CONST_BITS - PASS1_BITS + 2);
    ws[1] = DESCALE_LANES(t10 - t0, CONST_BITS - PASS1_BITS + 2);
}

/* The 4-point odd part of the 4x4 IDCT, both passes. */
#define ODD4(z1, z2, z3, z4, t0, t2)                                                          \
    do {                                                                                      \
        t0 = (z1) * -1730 + (z2) * 11893 + (z3) * -17799 + (z4) * 8697;                      \
        t2 = (z1) * -4176 + (z2) * -4926 + (z3) * 7373 + (z4) * 20995;                       \
    } while (0)

INLINE void columns_4x4(const lanes z[8], lanes ws[4])
{
    lanes t0 = z[0] * (1 << (CONST_BITS + 1)), t2 = z[2] * 15137 + z[6] * -6270;
    lanes t10 = t0 + t2, t12 = t0 - t2, o0, o2;
    ODD4(z[7], z[5], z[3], z[1], o0, o2);
    const int n = CONST_BITS - PASS1_BITS + 1;
    ws[0] = DESCALE_LANES(t10 + o2, n), ws[3] = DESCALE_LANES(t10 - o2, n);
    ws[1] = DESCALE_LANES(t12 + o0, n), ws[2] = DESCALE_LANES(t12 - o0, n);
}

/* jidctint.c's islow butterfly: even part e0..e3 from x0, x2, x4, x6 and odd part
 * o0..o3 from x7, x5, x3, x1 (its tmp10..tmp13 and tmp0..tmp3); T is the value type. */
#define ISLOW_1D(T, x0, x1, x2, x3, x4, x5, x6, x7, e, o)                                     \
    do {                                                                                      \
        T z1_ = ((x2) + (x6)) * 4433;                                                         \
        T t2_ = z1_ + (x6) * -15137, t3_ = z1_ + (x2) * 6270;                                 \
        T t0_ = ((x0) + (x4)) * (1 << CONST_BITS), t1_ = ((x0) - (x4)) * (1 << CONST_BITS);   \
        e[0] = t0_ + t3_, e[3] = t0_ - t3_, e[1] = t1_ + t2_, e[2] = t1_ - t2_;               \
        T a_ = (x7), b_ = (x5), c_ = (x3), d_ = (x1);                                         \
        T za_ = a_ + d_, zb_ = b_ + c_, zc_ = a_ + c_, zd_ = b_ + d_;                         \
        T z5_ = (zc_ + zd_) * 9633;                                                           \
        a_ *= 2446, b_ *= 16819, c_ *= 25172, d_ *= 12299;                                    \
        za_ *= -7373, zb_ *= -20995, zc_ *= -16069, zd_ *= -3196;                             \
        zc_ += z5_, zd_ += z5_;                                                               \
        o[0] = a_ + za_ + zc_, o[1] = b_ + zb_ + zd_, o[2] = c_ + zb_ + zc_, o[3] = d_ + za_ + zd_; \
    } while (0)

INLINE void columns_8x8(const lanes z[8], lanes ws[8])
{
    lanes e[4], o[4];
    ISLOW_1D(lanes, z[0], z[1], z[2], z[3], z[4], z[5], z[6], z[7], e, o);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        ws[r] = DESCALE_LANES(e[r] + o[3 - r], CONST_BITS - PASS1_BITS);
        ws[7 - r] = DESCALE_LANES(e[r] - o[3 - r], CONST_BITS - PASS1_BITS);
    }
}

/* Pass 2's sums for one row, before descaling: out[x] = sum over c of w[c] * m[x][c]. */
static void row_sums_2x2(const int64_t w[8], int64_t out[8])
{
    int64_t t10 = w[0] * (1 << (CONST_BITS + 2));
    int64_t t0 = w[7] * -5906 + w[5] * 6967 + w[3] * -10426 + w[1] * 29692;
    out[0] = t10 + t0, out[1] = t10 - t0;
}

static void row_sums_4x4(const int64_t w[8], int64_t out[8])
{
    int64_t t0 = w[0] * (1 << (CONST_BITS + 1)), t2 = w[2] * 15137 + w[6] * -6270;
    int64_t t10 = t0 + t2, t12 = t0 - t2, o0, o2;
    ODD4(w[7], w[5], w[3], w[1], o0, o2);
    out[0] = t10 + o2, out[3] = t10 - o2, out[1] = t12 + o0, out[2] = t12 - o0;
}

static void row_sums_8x8(const int64_t w[8], int64_t out[8])
{
    int64_t e[4], o[4];
    ISLOW_1D(int64_t, w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], e, o);
    for (int x = 0; x < 4; x++) out[x] = e[x] + o[3 - x], out[7 - x] = e[x] - o[3 - x];
}

/* Each size: pass 1, its row sums, and pass 2's final shift. */
typedef struct {
    int n;
    void (*row_sums)(const int64_t w[8], int64_t out[8]);
    int shift;
    int16_t matrix[8][8]; /* matrix[x][c]: built from row_sums, so both paths agree */
    int halve_column0;    /* column 0 is stored halved (2x2's 2^15 is not a 16-bit value) */
    int matrix_fits;      /* every entry, so stored, is a 16-bit value */
} idct_size;

static idct_size idct_sizes[3] = {
    {2, row_sums_2x2, CONST_BITS + PASS1_BITS + 3 + 2, {{0}}, 0, 0},
    {4, row_sums_4x4, CONST_BITS + PASS1_BITS + 3 + 1, {{0}}, 0, 0},
    {8, row_sums_8x8, CONST_BITS + PASS1_BITS + 3, {{0}}, 0, 0},
};

static void build_pass2_matrices(void)
{
    for (int k = 0; k < 3; k++) {
        idct_size *size = &idct_sizes[k];
        int64_t l1[8] = {0}, column0[8];
        int64_t unit0[8] = {1};
        size->row_sums(unit0, column0);
        size->halve_column0 = column0[0] > INT16_MAX && column0[0] % 2 == 0;
        size->matrix_fits = 1;
        for (int c = 0; c < 8; c++) {
            int64_t unit[8] = {0}, sums[8];
            unit[c] = 1;
            size->row_sums(unit, sums);
            for (int x = 0; x < size->n; x++) {
                l1[x] += sums[x] < 0 ? -sums[x] : sums[x];
                if (c == 0 && size->halve_column0) {
                    size->matrix_fits &= sums[x] % 2 == 0;
                    sums[x] /= 2;
                }
                size->matrix[x][c] = (int16_t)sums[x];
                size->matrix_fits &= sums[x] >= INT16_MIN && sums[x] <= INT16_MAX;
            }
        }
        for (int x = 0; x < size->n; x++) size->matrix_fits &= l1[x] < (1 << 17);
    }
}

INLINE void columns(int n, const lanes z[8], lanes ws[8])
{
    if (n == 2) columns_2x2(z, ws);
    else if (n == 4) columns_4x4(z, ws);
    else columns_8x8(z, ws);
}

/* Pass 2 per row in 64 bits. */
static int rows_plain(const lanes ws[8], const idct_size *size, uint8_t *out, int stride)
{
    for (int r = 0; r < size->n; r++) {
        int64_t w[8], sums[8];
        for (int c = 0; c < 8; c++) w[c] = ws[r][c];
        size->row_sums(w, sums);
        for (int x = 0; x < size->n; x++) {
            int64_t v = DESCALE(sums[x], size->shift);
            if (!in_pixel_range(v)) return -1;
            out[(size_t)r * stride + x] = to_pixel(v);
        }
    }
    return 0;
}

/* The plain path: pass 1 in lanes, pass 2 per row in 64 bits. */
static int idct_plain(const int16_t *in, const int16_t *q, const idct_size *size, uint8_t *out,
                      int stride)
{
    lanes z[8], all = {0}, ws[8];
    for (int r = 0; r < 8; r++) {
        short_lanes c, k;
        memcpy(&c, in + 8 * r, sizeof c);
        memcpy(&k, q + 8 * r, sizeof k);
        z[r] = __builtin_convertvector(c, lanes) * __builtin_convertvector(k, lanes);
        all |= ABS_LANES(z[r]);
    }
    if (any_over(&all, COEF_LIMIT)) return -1;
    columns(size->n, z, ws);
    lanes big = {0};
    for (int r = 0; r < size->n; r++) big |= ABS_LANES(ws[r]);
    if (any_over(&big, PASS1_LIMIT)) return -1; /* libjpeg-turbo's SIMD would saturate */
    return rows_plain(ws, size, out, stride);
}

#if defined(__x86_64__)
/* The same in registers: pass 2 as pmaddwd dot products, two rows per register. */
JPEG_AVX2 INLINE int idct_avx2(const int16_t *in, const int16_t *q, const idct_size *size,
                               const int n, const int shift, uint8_t *out, int stride)
{
    lanes z[8], ws[8];
    __m256i all = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if ((n == 2 && (r == 2 || r == 4 || r == 6)) || (n == 4 && r == 4)) { /* rows the size ignores */
            z[r] = (lanes){0};
            continue;
        }
        __m256i c = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(in + 8 * r)));
        __m256i k = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(q + 8 * r)));
        __m256i v = _mm256_mullo_epi32(c, k);
        all = _mm256_or_si256(all, _mm256_abs_epi32(v));
        z[r] = (lanes)v;
    }
    if (!_mm256_testz_si256(all, _mm256_set1_epi32(~COEF_LIMIT))) return -1;
    columns(n, z, ws);
    __m256i big = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int r = 0; r < n; r++) big = _mm256_or_si256(big, _mm256_abs_epi32((__m256i)ws[r]));
    if (!_mm256_testz_si256(big, _mm256_set1_epi32(~PASS1_LIMIT))) return -1; /* SIMD libjpeg-turbo saturates */
    if (!size->matrix_fits) return rows_plain(ws, size, out, stride);
    __m256i pairs[4];
    /* A halved column-0 multiplier takes a doubled w[0], still a 16-bit value. */
    const __m256i column0 = _mm256_setr_epi32(size->halve_column0 ? -1 : 0, 0, 0, 0, 0, 0, 0, 0);
#pragma GCC unroll 4
    for (int p = 0; p < n / 2; p++) {
        __m256i a = (__m256i)ws[2 * p], b = (__m256i)ws[2 * p + 1];
        a = _mm256_add_epi32(a, _mm256_and_si256(a, column0));
        b = _mm256_add_epi32(b, _mm256_and_si256(b, column0));
        pairs[p] = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8); /* row a | row b */
    }
    __m256i m[8];
#pragma GCC unroll 8
    for (int x = 0; x < 8; x++)
        m[x] = x < n ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)size->matrix[x]))
                     : _mm256_setzero_si256();
    const __m256i round = _mm256_set1_epi32(1 << (shift - 1)), centre = _mm256_set1_epi32(128);
    const __m256i low = _mm256_set1_epi32(PIXEL_MIN - 1), high = _mm256_set1_epi32(PIXEL_MAX + 1);
    __m256i outside = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int p = 0; p < n / 2; p++) {
        __m256i s[8], v[2];
#pragma GCC unroll 8
        for (int x = 0; x < 8; x++) s[x] = x < n ? _mm256_madd_epi16(pairs[p], m[x]) : _mm256_setzero_si256();
        /* Per 128-bit half (one row): outputs 0..3, then 4..7. */
        v[0] = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        v[1] = n == 8 ? _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7])) : v[0];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) { /* descaled, checked, + 128; the packs below clamp */
            __m256i t = _mm256_srai_epi32(_mm256_add_epi32(v[h], round), shift);
            outside = _mm256_or_si256(outside, _mm256_or_si256(_mm256_cmpgt_epi32(low, t), _mm256_cmpgt_epi32(t, high)));
            v[h] = _mm256_add_epi32(t, centre);
        }
        __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_setzero_si256());
        uint8_t *ra = out + (size_t)(2 * p) * stride, *rb = ra + stride;
        uint64_t a = (uint64_t)_mm256_extract_epi64(bytes, 0), b = (uint64_t)_mm256_extract_epi64(bytes, 2);
        /* Row bytes are outputs 0..3 then 4..7; only n of them are this block's. */
        if (n == 8) {
            memcpy(ra, &a, 8);
            memcpy(rb, &b, 8);
        } else if (n == 4) {
            uint32_t a4 = (uint32_t)a, b4 = (uint32_t)b;
            memcpy(ra, &a4, 4);
            memcpy(rb, &b4, 4);
        } else {
            uint16_t a2 = (uint16_t)a, b2 = (uint16_t)b;
            memcpy(ra, &a2, 2);
            memcpy(rb, &b2, 2);
        }
    }
    return _mm256_testz_si256(outside, outside) ? 0 : -1;
}

#endif

/* Zeroes a block for the next one in four vector stores (memset of 128 bytes
 * becomes rep stos, slow to start). */
INLINE void clear_block(int16_t blk[64])
{
    const lanes zero = {0};
    for (int i = 0; i < 4; i++) memcpy(blk + 16 * i, &zero, sizeof zero);
}

/* One block into out; -1 (decline) for a block outside the ranges above. */
INLINE int inverse_dct_plain(const int16_t *blk, int dc_only, const component *cp, uint8_t *out, int stride)
{
    if (dc_only || cp->ssize == 1) return fill_dc(blk, cp->q, cp->ssize, out, stride);
    return idct_plain(blk, cp->q, &idct_sizes[cp->ssize == 2 ? 0 : cp->ssize == 4 ? 1 : 2], out, stride);
}

#if defined(__x86_64__)
JPEG_AVX2 INLINE int inverse_dct_avx2(const int16_t *blk, int dc_only, const component *cp, uint8_t *out,
                                      int stride)
{
    if (dc_only || cp->ssize == 1) return fill_dc(blk, cp->q, cp->ssize, out, stride);
    return cp->ssize == 2 ? idct_avx2(blk, cp->q, &idct_sizes[0], 2, CONST_BITS + PASS1_BITS + 3 + 2, out, stride)
         : cp->ssize == 4 ? idct_avx2(blk, cp->q, &idct_sizes[1], 4, CONST_BITS + PASS1_BITS + 3 + 1, out, stride)
                          : idct_avx2(blk, cp->q, &idct_sizes[2], 8, CONST_BITS + PASS1_BITS + 3, out, stride);
}
#endif

/* ---- colour ------------------------------------------------------------------------- */

#define SCALEBITS 16
#define FIX16(x) ((int32_t)((x) * (1 << SCALEBITS) + 0.5))

typedef struct {
    int32_t cr_r[256], cb_b[256], cr_g[256], cb_g[256];
    int simd; /* the AVX-512 path can run */
} ycc_tables;

static void build_ycc_tables(ycc_tables *t)
{
    t->simd = have_simd();
    for (int i = 0; i < 256; i++) {
        int32_t x = i - 128;
        t->cr_r[i] = (FIX16(1.40200) * x + (1 << (SCALEBITS - 1))) >> SCALEBITS;
        t->cb_b[i] = (FIX16(1.77200) * x + (1 << (SCALEBITS - 1))) >> SCALEBITS;
        t->cr_g[i] = -FIX16(0.71414) * x;
        t->cb_g[i] = -FIX16(0.34414) * x + (1 << (SCALEBITS - 1));
    }
}

/* The colour tables and the IDCT matrices are constants: built once per process. */
static ycc_tables ycc_constants;

static void build_constant_tables(void)
{
    build_pass2_matrices();
    build_ycc_tables(&ycc_constants);
}

static uint8_t clamp255(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

#if defined(__x86_64__)

/* The tables' formulas on 16 pixels at a time (every product fits 32 bits, and the
 * shifts are arithmetic like libjpeg's RIGHT_SHIFT); returns the pixels done. */
JPEG_AVX512 static int ycc_to_rgb_avx512(const uint8_t *y, const uint8_t *cb, const uint8_t *cr,
                                        uint8_t *rgb, int n)
{
    const __m512i centre = _mm512_set1_epi32(128), half = _mm512_set1_epi32(1 << (SCALEBITS - 1));
    const __m512i k_cr_r = _mm512_set1_epi32(FIX16(1.40200)), k_cb_b = _mm512_set1_epi32(FIX16(1.77200));
    const __m512i k_cr_g = _mm512_set1_epi32(-FIX16(0.71414)), k_cb_g = _mm512_set1_epi32(-FIX16(0.34414));
    const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    /* Bytes 0-2 of each 32-bit pixel, 16 pixels -> 48 bytes. */
    uint8_t order[64];
    for (int i = 0; i < 64; i++) order[i] = (uint8_t)(i < 48 ? i / 3 * 4 + i % 3 : 0);
    const __m512i pack = _mm512_loadu_si512(order);
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        __m512i l = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(y + x)));
        __m512i u = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cb + x))), centre);
        __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(cr + x))), centre);
        __m512i r = _mm512_add_epi32(l, _mm512_srai_epi32(_mm512_add_epi32(_mm512_mullo_epi32(v, k_cr_r), half), SCALEBITS));
        __m512i g = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(u, k_cb_g), half), _mm512_mullo_epi32(v, k_cr_g));
        g = _mm512_add_epi32(l, _mm512_srai_epi32(g, SCALEBITS));
        __m512i b = _mm512_add_epi32(l, _mm512_srai_epi32(_mm512_add_epi32(_mm512_mullo_epi32(u, k_cb_b), half), SCALEBITS));
        r = _mm512_min_epi32(_mm512_max_epi32(r, zero), top);
        g = _mm512_min_epi32(_mm512_max_epi32(g, zero), top);
        b = _mm512_min_epi32(_mm512_max_epi32(b, zero), top);
        __m512i px = _mm512_or_si512(r, _mm512_or_si512(_mm512_slli_epi32(g, 8), _mm512_slli_epi32(b, 16)));
        _mm512_mask_storeu_epi8(rgb + 3 * (size_t)x, 0xFFFFFFFFFFFFull, _mm512_permutexvar_epi8(pack, px));
    }
    return x;
}

#else
static int ycc_to_rgb_avx512(const uint8_t *y, const uint8_t *cb, const uint8_t *cr, uint8_t *rgb, int n)
{
    (void)y, (void)cb, (void)cr, (void)rgb, (void)n;
    return 0;
}
#endif

static void ycc_row_to_rgb(const ycc_tables *t, const uint8_t *y, const uint8_t *cb,
                           const uint8_t *cr, uint8_t *rgb, int n)
{
    int x = t->simd ? ycc_to_rgb_avx512(y, cb, cr, rgb, n) : 0;
    for (rgb += 3 * (size_t)x; x < n; x++, rgb += 3) {
        int l = y[x];
        rgb[0] = clamp255(l + t->cr_r[cr[x]]);
        rgb[1] = clamp255(l + ((t->cb_g[cb[x]] + t->cr_g[cr[x]]) >> SCALEBITS));
        rgb[2] = clamp255(l + t->cb_b[cb[x]]);
    }
}

#if defined(__x86_64__)
/* The triangle filter's interior, 32 input samples (64 outputs) at a time: each 16-bit
 * lane holds the pair (near*3 + left + 1) >> 2, (near*3 + right + 2) >> 2, which stored
 * little-endian is the interleaved output. Returns the first input sample not done. */
JPEG_AVX512 static int upsample_h2v1_avx512(const uint8_t *in, int n, uint8_t *out)
{
    const __m512i one = _mm512_set1_epi16(1), two = _mm512_set1_epi16(2);
    int i = 1;
    for (; i + 33 <= n; i += 32) {
        __m512i left = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(in + i - 1)));
        __m512i near = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(in + i)));
        __m512i right = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(in + i + 1)));
        __m512i near3 = _mm512_add_epi16(near, _mm512_add_epi16(near, near));
        __m512i even = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(near3, left), one), 2);
        __m512i odd = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(near3, right), two), 2);
        _mm512_storeu_si512(out + 2 * i, _mm512_or_si512(even, _mm512_slli_epi16(odd, 8)));
    }
    return i;
}
#else
static int upsample_h2v1_avx512(const uint8_t *in, int n, uint8_t *out)
{
    (void)in, (void)n, (void)out;
    return 1;
}
#endif

/* jdsample.c's 2h1v upsampling of n real samples into 2n: the triangle filter when the
 * IDCT output is more than one sample a block, else plain doubling. */
static void upsample_h2v1(const uint8_t *in, int n, int fancy, int simd, uint8_t *out)
{
    if (!fancy || n <= 2) {
        for (int i = 0; i < n; i++) out[2 * i] = out[2 * i + 1] = in[i];
        return;
    }
    out[0] = in[0];
    out[1] = (uint8_t)((in[0] * 3 + in[1] + 2) >> 2);
    for (int i = simd ? upsample_h2v1_avx512(in, n, out) : 1; i < n - 1; i++) {
        int v = in[i] * 3;
        out[2 * i] = (uint8_t)((v + in[i - 1] + 1) >> 2);
        out[2 * i + 1] = (uint8_t)((v + in[i + 1] + 2) >> 2);
    }
    out[2 * n - 2] = (uint8_t)((in[n - 1] * 3 + in[n - 2] + 1) >> 2);
    out[2 * n - 1] = in[n - 1];
}

/* ---- driver ------------------------------------------------------------------------- */

static int64_t div_round_up(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* jdmaster.c: chroma takes a larger IDCT instead of being upsampled where the ratio allows. */
static void choose_scaled_sizes(frame *f, int min_size, int mcus_x)
{
    for (int c = 0; c < f->ncomp; c++) {
        component *cp = &f->comp[c];
        int s = min_size;
        while (s < 8 && (f->max_h * min_size) % (cp->h * s * 2) == 0 &&
               (f->max_v * min_size) % (cp->v * s * 2) == 0)
            s *= 2;
        cp->ssize = s;
        cp->plane_w = mcus_x * cp->h * s;
        cp->ds_width = (int)div_round_up((int64_t)f->width * cp->h * s, (int64_t)f->max_h * 8);
    }
}

/* Writes rows [0, rows) of the current MCU-row strips as RGB. */
static void emit_rows(const frame *f, const ycc_tables *t, uint8_t *upsampled, int rows,
                      int out_w, uint8_t *rgb)
{
    const component *y = &f->comp[0];
    for (int r = 0; r < rows; r++, rgb += (size_t)out_w * 3) {
        const uint8_t *luma = y->plane + (size_t)r * y->plane_w;
        if (f->ncomp == 1) {
            for (int x = 0; x < out_w; x++) rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = luma[x];
            continue;
        }
        const component *cb = &f->comp[1], *cr = &f->comp[2];
        const uint8_t *cbr = cb->plane + (size_t)r * cb->plane_w;
        const uint8_t *crr = cr->plane + (size_t)r * cr->plane_w;
        if (cb->h * cb->ssize * 2 == f->max_h * y->ssize) { /* 4:2:2: half as many chroma samples */
            int fancy = y->ssize > 1;
            upsample_h2v1(cbr, cb->ds_width, fancy, t->simd, upsampled);
            upsample_h2v1(crr, cr->ds_width, fancy, t->simd, upsampled + 2 * (size_t)cb->ds_width);
            cbr = upsampled;
            crr = upsampled + 2 * (size_t)cb->ds_width;
        }
        ycc_row_to_rgb(t, luma, cbr, crr, rgb, out_w);
    }
}

/* Where the scan's pixels go. */
typedef struct {
    frame *f;
    const ycc_tables *t;
    uint8_t *upsampled, *rgb;
    int mcus_x, mcus_y, out_w, out_h, rows_per_mcu;
} scan_output;

typedef int (*block_transform)(const int16_t *blk, int dc_only, const component *cp, uint8_t *out, int stride);

/* Every MCU: each block decoded, then transformed at once while in cache; each MCU row
 * then converted to RGB. Inlined into two flavours, so the vector one can use AVX2 and
 * BMI2 (shifts by a register in one instruction) in the entropy decoder too. */
INLINE int decode_scan(const scan_output *o, bit_reader *b, bits *buffered, block_transform transform)
{
    const frame *f = o->f;
    int pred[3] = {0, 0, 0}, next_rst = 0, until_restart = f->restart_interval;
    int16_t blk[64] __attribute__((aligned(32))) = {0};
    for (int my = 0; my < o->mcus_y; my++) {
        if (b->pad_bits > 64) return -1; /* the data ended rows ago: stop here */
        for (int mx = 0; mx < o->mcus_x; mx++) {
            if (f->restart_interval) {
                if (until_restart == 0) {
                    if (restart(b, buffered, &next_rst, pred)) return -1;
                    until_restart = f->restart_interval;
                }
                until_restart--;
            }
            for (int c = 0; c < f->ncomp; c++) {
                const component *cp = &f->comp[c];
                for (int by = 0; by < cp->v; by++)
                    for (int bx = 0; bx < cp->h; bx++) {
                        int ac = decode_block(b, buffered, &f->dc[cp->td], &f->ac[cp->ta], cp->ssize > 1,
                                              &pred[c], blk);
                        if (ac < 0) return -1;
                        uint8_t *out = cp->plane + (size_t)by * cp->ssize * cp->plane_w +
                                       (size_t)(mx * cp->h + bx) * cp->ssize;
                        if (transform(blk, ac == 0, cp, out, cp->plane_w)) return -1;
                        if (ac) clear_block(blk);
                    }
            }
        }
        int y0 = my * o->rows_per_mcu;
        int rows = o->out_h - y0 < o->rows_per_mcu ? o->out_h - y0 : o->rows_per_mcu;
        emit_rows(f, o->t, o->upsampled, rows, o->out_w, o->rgb + (size_t)y0 * o->out_w * 3);
    }
    return 0;
}

static int decode_scan_plain(const scan_output *o, bit_reader *b, bits *buffered)
{
    return decode_scan(o, b, buffered, inverse_dct_plain);
}

#if defined(__x86_64__)
__attribute__((target("avx2,bmi,bmi2"))) static int decode_scan_simd(const scan_output *o, bit_reader *b,
                                                                     bits *buffered)
{
    return decode_scan(o, b, buffered, inverse_dct_avx2);
}
#endif

int jpeg_scaled_decode(const uint8_t *data, size_t len, int denom, uint8_t *rgb, int out_w,
                       int out_h)
{
    if (denom != 2 && denom != 4 && denom != 8) return JPEG_SCALED_DECLINED;
    frame *f = malloc(sizeof *f);
    if (!f) return JPEG_SCALED_NOMEM;
    int rc = JPEG_SCALED_DECLINED;
    uint8_t *planes = NULL;
    if (parse_headers(data, len, f) || div_round_up(f->width, denom) != out_w ||
        div_round_up(f->height, denom) != out_h)
        goto done;
    int min_size = 8 / denom;
    int mcus_x = (int)div_round_up(f->width, 8 * f->max_h);
    int mcus_y = (int)div_round_up(f->height, 8 * f->max_v);
    choose_scaled_sizes(f, min_size, mcus_x);
    size_t plane_bytes = 0;
    for (int c = 0; c < f->ncomp; c++)
        plane_bytes += (size_t)f->comp[c].plane_w * f->comp[c].v * f->comp[c].ssize;
    size_t upsampled_bytes = 4 * (size_t)f->comp[f->ncomp - 1].plane_w + 16;
    planes = malloc(plane_bytes + upsampled_bytes);
    if (!planes) {
        rc = JPEG_SCALED_NOMEM;
        goto done;
    }
    uint8_t *next = planes;
    for (int c = 0; c < f->ncomp; c++) {
        f->comp[c].plane = next;
        next += (size_t)f->comp[c].plane_w * f->comp[c].v * f->comp[c].ssize;
    }
    static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
    pthread_once(&tables_once, build_constant_tables);
    const ycc_tables *tables = &ycc_constants;

    bit_reader b = {.d = data, .pos = f->scan_start, .end = len};
    bits buffered = {0, 0};
    scan_output o = {f, tables, next, rgb, mcus_x, mcus_y, out_w, out_h, f->max_v * min_size};
#if defined(__x86_64__)
    if (tables->simd ? decode_scan_simd(&o, &b, &buffered) : decode_scan_plain(&o, &b, &buffered)) goto done;
#else
    if (decode_scan_plain(&o, &b, &buffered)) goto done;
#endif
    /* The scan must end cleanly at EOI: anything after it is for libjpeg to judge. */
    size_t at = marker_after_data(&b, buffered);
    if (at && data[at] == 0xD9) rc = JPEG_SCALED_OK;
done:
    free(planes);
    free(f);
    return rc;
}
