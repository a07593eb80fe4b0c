/* Unit tests for our scaled JPEG decoder (src/face/jpeg_scaled.c) against its
 * contract: at 1/2, 1/4 and 1/8 it gives exactly the bytes libjpeg-turbo's
 * tjDecompress2(TJPF_RGB, flags 0) gives, or declines. It must never accept a file
 * libjpeg-turbo refuses or warns about (other than "extraneous bytes", which image.c
 * lets through), and it must not decline the files phones and browsers write.
 *
 * libjpeg-turbo is the reference throughout: real files from ../shared/data (every one
 * outside lfw/, every 20th LFW image), and files encoded here with the libjpeg API
 * (the only way to get restart intervals, progressive or arithmetic coding, 4:4:0 and
 * 4:1:1, Adobe markers, 16-bit quantisation tables or chosen DCT coefficients). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <jpeglib.h>
#include <turbojpeg.h>

#include "data_file.h"
#include "face/image.h"
#include "face/jpeg_scaled.h"

#define DATA_DIR "../shared/data"
#define PHOTO_JPEG DATA_DIR "/photos/sample1.jpg"
#define LFW_JPEG DATA_DIR "/lfw/lfw_deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"
#define DOCUMENT_DIR DATA_DIR "/documents"
#define LFW_EVERY 20

static const int DENOMS[] = {2, 4, 8};
#define N_DENOMS 3

/* ---- the reference: libjpeg-turbo ------------------------------------------------ */

enum { REF_OK, REF_BENIGN_WARNING, REF_REFUSED };

typedef struct {
    int status;        /* REF_* */
    int w, h;          /* scaled size from the header; 0 when the header is unreadable */
    int subsamp, colorspace;
    uint8_t *rgb;
    char msg[200];
} reference;

/* tjDecompress2 exactly as the contract names it, and image.c's reading of its
 * verdict: a warning other than "extraneous bytes" is a refusal. */
static reference reference_decode(const uint8_t *d, size_t len, int denom)
{
    reference r = {.status = REF_REFUSED};
    tjhandle tj = tjInitDecompress();
    assert_non_null(tj);
    int w = 0, h = 0;
    if (tjDecompressHeader3(tj, d, (unsigned long)len, &w, &h, &r.subsamp, &r.colorspace) != 0 ||
        w <= 0 || h <= 0) {
        snprintf(r.msg, sizeof r.msg, "header: %s", tjGetErrorStr2(tj));
        tjDestroy(tj);
        return r;
    }
    tjscalingfactor sf = {1, denom};
    r.w = TJSCALED(w, sf);
    r.h = TJSCALED(h, sf);
    r.rgb = malloc((size_t)r.w * r.h * 3);
    assert_non_null(r.rgb);
    if (tjDecompress2(tj, d, (unsigned long)len, r.rgb, r.w, 0, r.h, TJPF_RGB, 0) == 0) {
        r.status = REF_OK;
    } else {
        snprintf(r.msg, sizeof r.msg, "%s", tjGetErrorStr2(tj));
        if (tjGetErrorCode(tj) == TJERR_WARNING && strstr(r.msg, "extraneous bytes"))
            r.status = REF_BENIGN_WARNING;
    }
    tjDestroy(tj);
    return r;
}

/* When set, a contract violation is printed and counted instead of ending the test,
 * so one run lists every failing case (the test then fails on the count). */
static int keep_going, violations;

#define VIOLATION(...)                                                                 \
    do {                                                                               \
        if (!keep_going) fail_msg(__VA_ARGS__);                                        \
        print_error(__VA_ARGS__);                                                      \
        print_error("\n");                                                             \
        violations++;                                                                  \
    } while (0)

/* Decodes d at 1/denom with both decoders and returns our code. Fails the test when
 * we accept what libjpeg-turbo refuses, or when our bytes differ from its bytes. */
static int check_against_reference(const uint8_t *d, size_t len, int denom, const char *what)
{
    reference ref = reference_decode(d, len, denom);
    int rc = JPEG_SCALED_DECLINED;
    if (ref.w > 0) {
        size_t n = (size_t)ref.w * ref.h * 3;
        uint8_t *ours = malloc(n);
        assert_non_null(ours);
        rc = jpeg_scaled_decode(d, len, denom, ours, ref.w, ref.h);
        if (rc == JPEG_SCALED_OK && ref.status == REF_REFUSED)
            VIOLATION("%s at 1/%d: accepted by us, refused by libjpeg-turbo (%s)", what, denom, ref.msg);
        else if (rc == JPEG_SCALED_OK) {
            size_t i = 0;
            while (i < n && ours[i] == ref.rgb[i]) i++;
            if (i < n)
                VIOLATION("%s at 1/%d (%dx%d): pixel (%zu,%zu) channel %zu is %d, libjpeg-turbo %d",
                         what, denom, ref.w, ref.h, i / 3 % ref.w, i / 3 / ref.w, i % 3, ours[i], ref.rgb[i]);
        }
        free(ours);
    }
    free(ref.rgb);
    return rc;
}

/* ---- encoding test files with the libjpeg API --------------------------------------- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf env;
} quiet_error;

static void quiet_error_exit(j_common_ptr c) { longjmp(((quiet_error *)c->err)->env, 1); }
static void quiet_output(j_common_ptr c) { (void)c; }

/* SAMP_444_1X2: 4:4:4 written with every component sampled 1x2 (an 8x16 MCU). */
typedef enum { SAMP_444, SAMP_422, SAMP_420, SAMP_GREY, SAMP_440, SAMP_411, SAMP_CMYK, SAMP_444_1X2 } sampling;

static const char *const SAMP_NAME[] = {"4:4:4", "4:2:2", "4:2:0", "grey", "4:4:0", "4:1:1", "CMYK",
                                        "4:4:4 as 1x2"};

typedef struct {
    int w, h, quality;
    sampling samp;
    int restart_mcus, restart_rows;
    int progressive, arithmetic;
    int adobe;       /* write an Adobe APP14 marker (and no JFIF) */
    int adobe_rgb;   /* RGB untransformed, Adobe transform 0, component ids 1, 2, 3 */
    int rgb_ids;     /* store R, G, B untransformed with component ids 'R','G','B', no JFIF, no Adobe */
    int sixteen_bit; /* quality 1 without force_baseline: 16-bit quantisation tables (SOF1) */
} encode_opts;

/* A deterministic picture with hard edges, gradients and noise (so every coefficient
 * position gets used), channel c of pixel (x, y). */
static uint8_t pattern(int x, int y, int c)
{
    uint32_t hsh = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)c * 83492791u;
    hsh ^= hsh >> 13;
    hsh *= 0x5bd1e995u;
    hsh ^= hsh >> 15;
    int v = ((x / 6 + y / 5 + c) & 1) ? 190 : 50;    /* checkerboard edges */
    v += (x * (c + 1) + y * (3 - c)) % 40 - 20;      /* gradients */
    v += (int)(hsh % 49) - 24;                        /* noise */
    if ((x - y * 2) % 23 == 0) v = 255 - v;           /* thin diagonal lines */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* A JPEG of pattern() with o's settings; NULL when libjpeg cannot write it (for
 * example arithmetic coding in a build without it). free() the result. */
static uint8_t *encode_pattern(const encode_opts *o, size_t *len)
{
    struct jpeg_compress_struct c;
    quiet_error err;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    int comps = o->samp == SAMP_GREY ? 1 : o->samp == SAMP_CMYK ? 4 : 3;
    uint8_t *row = malloc((size_t)o->w * comps);
    assert_non_null(row);
    c.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = quiet_error_exit;
    err.mgr.output_message = quiet_output;
    if (setjmp(err.env)) {
        jpeg_destroy_compress(&c);
        free(buf);
        free(row);
        return NULL;
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = (JDIMENSION)o->w;
    c.image_height = (JDIMENSION)o->h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    if (o->rgb_ids || o->adobe_rgb) {
        jpeg_set_colorspace(&c, JCS_RGB); /* ids 'R','G','B', Adobe marker with transform 0 */
        c.write_Adobe_marker = o->adobe_rgb ? TRUE : FALSE;
        for (int i = 0; o->adobe_rgb && i < 3; i++) c.comp_info[i].component_id = i + 1;
    }
    jpeg_set_quality(&c, o->sixteen_bit ? 1 : o->quality, !o->sixteen_bit);
    if (comps == 3) {
        static const int hv[][2] = {[SAMP_444] = {1, 1}, [SAMP_422] = {2, 1}, [SAMP_420] = {2, 2},
                                    [SAMP_440] = {1, 2}, [SAMP_411] = {4, 1}, [SAMP_444_1X2] = {1, 2}};
        for (int i = 0; i < 3; i++) {
            int own = i == 0 || o->samp == SAMP_444_1X2;
            c.comp_info[i].h_samp_factor = own ? hv[o->samp][0] : 1;
            c.comp_info[i].v_samp_factor = own ? hv[o->samp][1] : 1;
        }
    }
    if (o->adobe) {
        c.write_Adobe_marker = TRUE;
        c.write_JFIF_header = FALSE;
    }
    c.restart_interval = (unsigned)o->restart_mcus;
    c.restart_in_rows = o->restart_rows;
    if (o->progressive) jpeg_simple_progression(&c);
    c.arith_code = o->arithmetic ? TRUE : FALSE;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        int y = (int)c.next_scanline;
        for (int x = 0; x < o->w; x++)
            for (int k = 0; k < comps; k++) row[(size_t)x * comps + k] = pattern(x, y, k);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&c, rows, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    uint8_t *out = malloc(size);
    assert_non_null(out);
    memcpy(out, buf, size);
    free(buf);
    *len = size;
    return out;
}

static uint8_t *encode_or_fail(const encode_opts *o, size_t *len)
{
    uint8_t *d = encode_pattern(o, len);
    if (!d) fail_msg("libjpeg could not encode a %dx%d %s file", o->w, o->h, SAMP_NAME[o->samp]);
    return d;
}

/* ---- finding places in a file -------------------------------------------------------- */

/* Offset of the first byte after the SOS segment, or 0. */
static size_t scan_start(const uint8_t *d, size_t len)
{
    size_t pos = 2;
    while (pos + 4 <= len && d[pos] == 0xFF) {
        int marker = d[pos + 1];
        size_t seg = (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (marker == 0xDA) return pos + 2 + seg <= len ? pos + 2 + seg : 0;
        pos += 2 + seg;
    }
    return 0;
}

/* Offset of the last EOI marker, or len when there is none. */
static size_t eoi_offset(const uint8_t *d, size_t len)
{
    for (size_t i = len; i >= 2; i--)
        if (d[i - 2] == 0xFF && d[i - 1] == 0xD9) return i - 2;
    return len;
}

/* Offset of the first marker (FF xx) with lo <= xx <= hi at or after from, or 0. */
static size_t find_marker(const uint8_t *d, size_t len, size_t from, int lo, int hi)
{
    for (size_t i = from; i + 1 < len; i++)
        if (d[i] == 0xFF && d[i + 1] >= lo && d[i + 1] <= hi) return i;
    return 0;
}

/* The SOFn marker code of the frame (0xC0 baseline, 0xC1, 0xC2 progressive...), or 0. */
static int frame_marker(const uint8_t *d, size_t len)
{
    size_t pos = 2;
    while (pos + 4 <= len && d[pos] == 0xFF) {
        int marker = d[pos + 1];
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
            return marker;
        if (marker == 0xDA) return 0;
        pos += 2 + ((size_t)d[pos + 2] << 8 | d[pos + 3]);
    }
    return 0;
}

/* A copy of d with n bytes inserted at offset at. */
static blob splice(const uint8_t *d, size_t len, size_t at, const void *ins, size_t n)
{
    blob b = {malloc(len + n), len + n};
    assert_non_null(b.data);
    memcpy(b.data, d, at);
    memcpy(b.data + at, ins, n);
    memcpy(b.data + at + n, d + at, len - at);
    return b;
}

/* ---- real files ---------------------------------------------------------------------- */

typedef struct {
    char **paths;
    size_t n, cap;
} path_list;

static int has_jpeg_suffix(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcasecmp(name + n - 4, ".jpg") == 0) ||
           (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

static void collect_jpegs(const char *dir, int skip_lfw, path_list *out)
{
    DIR *dh = opendir(dir);
    if (!dh) return;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.') continue;
        if (skip_lfw && strcmp(e->d_name, "lfw") == 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR) {
            collect_jpegs(path, skip_lfw, out);
        } else if (has_jpeg_suffix(e->d_name)) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 256;
                out->paths = realloc(out->paths, out->cap * sizeof *out->paths);
                assert_non_null(out->paths);
            }
            out->paths[out->n++] = strdup(path);
        }
    }
    closedir(dh);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_paths(path_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

/* What phones, browsers and scanners write, and what our decoder exists for. */
static int is_common_baseline(const uint8_t *d, size_t len)
{
    reference hdr = reference_decode(d, len, 8);
    int marker = frame_marker(d, len);
    int ok = hdr.w > 0 && (marker == 0xC0 || marker == 0xC1) &&
             (hdr.subsamp == TJSAMP_444 || hdr.subsamp == TJSAMP_422 || hdr.subsamp == TJSAMP_420 ||
              hdr.subsamp == TJSAMP_GRAY) &&
             (hdr.colorspace == TJCS_YCbCr || hdr.colorspace == TJCS_GRAY);
    free(hdr.rgb);
    return ok;
}

static void test_real_files_match_libjpeg_turbo(void **state)
{
    (void)state;
    path_list all = {0}, lfw = {0};
    collect_jpegs(DATA_DIR, 1, &all);
    collect_jpegs(DATA_DIR "/lfw", 0, &lfw);
    if (!all.n || !lfw.n) {
        free_paths(&all);
        free_paths(&lfw);
        print_message("no JPEGs under %s, skipping\n", DATA_DIR);
        skip();
    }
    /* readdir's order is the file system's; sorting makes "every 20th" the same set. */
    qsort(lfw.paths, lfw.n, sizeof *lfw.paths, compare_strings);
    for (size_t i = 0; i < lfw.n; i++)
        if (i % LFW_EVERY == 0) {
            all.paths = realloc(all.paths, (all.n + 1) * sizeof *all.paths);
            assert_non_null(all.paths);
            all.paths[all.n++] = lfw.paths[i];
            lfw.paths[i] = NULL;
        }
    int files = 0, decodes = 0, declined = 0, common_declined = 0;
    keep_going = 1;
    violations = 0;
    for (size_t i = 0; i < all.n; i++) {
        blob b = read_blob(all.paths[i]);
        assert_true(b.len > 0);
        int common = is_common_baseline(b.data, b.len);
        for (int k = 0; k < N_DENOMS; k++) {
            int rc = check_against_reference(b.data, b.len, DENOMS[k], all.paths[i]);
            assert_true(rc == JPEG_SCALED_OK || rc == JPEG_SCALED_DECLINED);
            decodes++;
            if (rc == JPEG_SCALED_DECLINED) {
                declined++;
                if (common) {
                    common_declined++;
                    print_error("declined a baseline 4:2:0/4:2:2/4:4:4/grey file: %s at 1/%d\n",
                                all.paths[i], DENOMS[k]);
                }
            }
        }
        files++;
        free(b.data);
    }
    print_message("%d files (every %dth LFW image), %d decodes, %d declined, "
                  "%d of them baseline 4:2:0/4:2:2/4:4:4/grey\n",
                  files, LFW_EVERY, decodes, declined, common_declined);
    free_paths(&all);
    free_paths(&lfw);
    keep_going = 0;
    assert_true(files > 600);
    assert_int_equal(violations, 0);
    assert_int_equal(common_declined, 0);
}

/* ---- synthetic files that must be ours --------------------------------------------- */

static void expect_ours_and_identical(const uint8_t *d, size_t len, const char *what)
{
    for (int k = 0; k < N_DENOMS; k++) {
        int rc = check_against_reference(d, len, DENOMS[k], what);
        if (rc != JPEG_SCALED_OK) fail_msg("%s at 1/%d: declined (%d)", what, DENOMS[k], rc);
    }
}

static void test_synthetic_files_identical_and_ours(void **state)
{
    (void)state;
    static const int sizes[][2] = {{1, 1}, {7, 9}, {16, 16}, {17, 33}, {63, 65}, {257, 129}, {1000, 701}};
    static const sampling samps[] = {SAMP_444, SAMP_422, SAMP_420, SAMP_GREY};
    static const int qualities[] = {30, 75, 95, 100};
    /* Restart markers every MCU, every 3 MCUs, none, and every MCU row. */
    static const int restarts[][2] = {{1, 0}, {3, 0}, {0, 0}, {0, 1}};
    int files = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t p = 0; p < sizeof samps / sizeof *samps; p++)
            for (size_t q = 0; q < sizeof qualities / sizeof *qualities; q++)
                for (size_t r = 0; r < sizeof restarts / sizeof *restarts; r++) {
                    encode_opts o = {.w = sizes[s][0], .h = sizes[s][1], .quality = qualities[q],
                                     .samp = samps[p], .restart_mcus = restarts[r][0],
                                     .restart_rows = restarts[r][1]};
                    size_t len;
                    uint8_t *d = encode_or_fail(&o, &len);
                    char what[128];
                    snprintf(what, sizeof what, "%dx%d %s q%d restart %d MCUs / %d rows", o.w, o.h,
                             SAMP_NAME[o.samp], o.quality, o.restart_mcus, o.restart_rows);
                    expect_ours_and_identical(d, len, what);
                    free(d);
                    files++;
                }
    print_message("%d synthetic files, each identical at 1/2, 1/4, 1/8\n", files);
}

/* Quality 1 without force_baseline: quantisation tables with values over 255, written
 * as 16-bit tables in an SOF1 (extended sequential) file. */
static void test_sixteen_bit_quant_tables(void **state)
{
    (void)state;
    static const sampling samps[] = {SAMP_444, SAMP_422, SAMP_420, SAMP_GREY};
    for (size_t p = 0; p < sizeof samps / sizeof *samps; p++) {
        encode_opts o = {.w = 131, .h = 77, .samp = samps[p], .sixteen_bit = 1};
        size_t len;
        uint8_t *d = encode_or_fail(&o, &len);
        assert_int_equal(frame_marker(d, len), 0xC1);
        char what[64];
        snprintf(what, sizeof what, "%s with 16-bit quantisation tables", SAMP_NAME[o.samp]);
        expect_ours_and_identical(d, len, what);
        free(d);
    }
}

/* DCT coefficients at the edge of what baseline Huffman coding can carry (|AC| up to
 * 1023) with large quantisation steps: products that overflow 16 bits, where a SIMD
 * IDCT and a wide-integer one could part ways. Written with jpeg_write_coefficients
 * over a real file's coefficient arrays. Either declined or identical. */
static uint8_t *with_extreme_coefficients(const uint8_t *src, size_t src_len, int quant, size_t *len)
{
    struct jpeg_decompress_struct in;
    struct jpeg_compress_struct out;
    quiet_error in_err, out_err;
    in.err = jpeg_std_error(&in_err.mgr);
    out.err = jpeg_std_error(&out_err.mgr);
    in_err.mgr.error_exit = out_err.mgr.error_exit = quiet_error_exit;
    in_err.mgr.output_message = out_err.mgr.output_message = quiet_output;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    if (setjmp(in_err.env) || setjmp(out_err.env)) fail_msg("libjpeg could not transcode");
    jpeg_create_decompress(&in);
    jpeg_create_compress(&out);
    jpeg_mem_src(&in, src, (unsigned long)src_len);
    jpeg_read_header(&in, TRUE);
    jvirt_barray_ptr *coefs = jpeg_read_coefficients(&in);
    jpeg_copy_critical_parameters(&in, &out);
    for (int t = 0; t < NUM_QUANT_TBLS; t++)
        if (out.quant_tbl_ptrs[t])
            for (int k = 0; k < DCTSIZE2; k++) out.quant_tbl_ptrs[t]->quantval[k] = (UINT16)quant;
    uint32_t seed = 12345;
    for (int ci = 0; ci < out.num_components; ci++) {
        jpeg_component_info *cp = &in.comp_info[ci];
        for (JDIMENSION by = 0; by < cp->height_in_blocks; by++) {
            JBLOCKARRAY row = in.mem->access_virt_barray((j_common_ptr)&in, coefs[ci], by, 1, TRUE);
            for (JDIMENSION bx = 0; bx < cp->width_in_blocks; bx++) {
                JCOEF *blk = row[0][bx];
                /* Half the blocks get a few extreme AC terms; DC stays within 11 bits. */
                seed = seed * 1103515245u + 12345u;
                if (seed >> 31) continue;
                blk[0] = (JCOEF)((int)(seed >> 8) % 2000 - 1000);
                for (int j = 0; j < 4; j++) {
                    seed = seed * 1103515245u + 12345u;
                    int pos = 1 + (int)(seed >> 10) % 63;
                    blk[pos] = (JCOEF)((seed >> 20) & 1 ? 1023 : -1023);
                }
            }
        }
    }
    jpeg_mem_dest(&out, &buf, &size);
    jpeg_write_coefficients(&out, coefs);
    jpeg_finish_compress(&out);
    jpeg_destroy_compress(&out);
    jpeg_finish_decompress(&in);
    jpeg_destroy_decompress(&in);
    uint8_t *d = malloc(size);
    assert_non_null(d);
    memcpy(d, buf, size);
    free(buf);
    *len = size;
    return d;
}

static void test_extreme_coefficients_declined_or_identical(void **state)
{
    (void)state;
    static const sampling samps[] = {SAMP_444, SAMP_422, SAMP_420, SAMP_GREY};
    static const int quants[] = {1, 16, 255};
    keep_going = 1;
    violations = 0;
    for (size_t p = 0; p < sizeof samps / sizeof *samps; p++)
        for (size_t q = 0; q < sizeof quants / sizeof *quants; q++) {
            encode_opts o = {.w = 64, .h = 48, .quality = 90, .samp = samps[p]};
            size_t src_len, len;
            uint8_t *src = encode_or_fail(&o, &src_len);
            uint8_t *d = with_extreme_coefficients(src, src_len, quants[q], &len);
            char what[96];
            snprintf(what, sizeof what, "%s, AC terms of +-1023, every quantiser %d", SAMP_NAME[o.samp],
                     quants[q]);
            for (int k = 0; k < N_DENOMS; k++) check_against_reference(d, len, DENOMS[k], what);
            free(src);
            free(d);
        }
    keep_going = 0;
    assert_int_equal(violations, 0);
}

/* An AC symbol of size 0 other than ZRL (0xF0) ends the block in libjpeg (jdhuff.c:
 * "if (r != 15) break"), whatever its run. Renaming the EOB symbol 0x00 to 0x10, 0x30 or
 * 0xE0 in every AC table leaves the file's meaning unchanged for libjpeg-turbo, which
 * decodes it without a warning. Declining would keep the contract, but here it would
 * only mean the symbol was misread, so the test asks for the file to be ours. */
static void test_ac_size_zero_symbols_end_the_block(void **state)
{
    (void)state;
    static const sampling samps[] = {SAMP_444, SAMP_420, SAMP_GREY};
    static const uint8_t eob_names[] = {0x10, 0x30, 0xE0};
    for (size_t p = 0; p < sizeof samps / sizeof *samps; p++)
        for (size_t e = 0; e < sizeof eob_names; e++) {
            encode_opts o = {.w = 64, .h = 48, .quality = 75, .samp = samps[p]};
            size_t len;
            uint8_t *d = encode_or_fail(&o, &len);
            int renamed = 0;
            for (size_t at = 2; (at = find_marker(d, len, at, 0xC4, 0xC4)) != 0; at += 2) {
                size_t q = at + 4, end = at + 2 + ((size_t)d[at + 2] << 8 | d[at + 3]);
                while (q + 17 <= end) {
                    size_t n = 0;
                    for (int i = 1; i <= 16; i++) n += d[q + i];
                    for (size_t i = 0; (d[q] >> 4) == 1 && i < n; i++)
                        if (d[q + 17 + i] == 0x00) d[q + 17 + i] = eob_names[e], renamed++;
                    q += 17 + n;
                }
            }
            assert_true(renamed > 0);
            char what[96];
            snprintf(what, sizeof what, "%s with EOB renamed 0x%02X", SAMP_NAME[o.samp], eob_names[e]);
            for (int k = 0; k < N_DENOMS; k++) {
                reference ref = reference_decode(d, len, DENOMS[k]);
                assert_int_equal(ref.status, REF_OK);
                free(ref.rgb);
            }
            expect_ours_and_identical(d, len, what);
            free(d);
        }
}

/* ---- files that are not ours: declined, and libjpeg-turbo decodes them ------------- */

/* libjpeg-turbo decodes the file to RGB (CMYK excepted: it cannot convert CMYK to
 * RGB, and image.c refuses CMYK before decoding), and we decline it. */
static void expect_declined(const encode_opts *o, const char *what)
{
    size_t len;
    uint8_t *d = encode_or_fail(o, &len);
    for (int k = 0; k < N_DENOMS; k++) {
        reference ref = reference_decode(d, len, DENOMS[k]);
        if (ref.status != (o->samp == SAMP_CMYK ? REF_REFUSED : REF_OK))
            fail_msg("%s: libjpeg-turbo's verdict is not the expected one (%s)", what, ref.msg);
        if (ref.w == 0) fail_msg("%s: libjpeg-turbo cannot read the header (%s)", what, ref.msg);
        free(ref.rgb);
        int rc = check_against_reference(d, len, DENOMS[k], what);
        if (rc != JPEG_SCALED_DECLINED) fail_msg("%s at 1/%d: not declined (%d)", what, DENOMS[k], rc);
    }
    free(d);
}

static void test_other_codings_and_samplings_declined(void **state)
{
    (void)state;
    encode_opts base = {.w = 67, .h = 45, .quality = 85, .samp = SAMP_420};
    encode_opts o = base;
    o.progressive = 1;
    expect_declined(&o, "progressive 4:2:0");
    o = base;
    o.samp = SAMP_440;
    expect_declined(&o, "4:4:0");
    o = base;
    o.samp = SAMP_411;
    expect_declined(&o, "4:1:1");
    o = base;
    o.samp = SAMP_444;
    o.adobe_rgb = 1;
    expect_declined(&o, "RGB with an Adobe APP14 marker (transform 0), ids 1, 2, 3");
    o = base;
    o.samp = SAMP_444;
    o.rgb_ids = 1;
    expect_declined(&o, "components 'R','G','B' without JFIF");
    o = base;
    o.samp = SAMP_CMYK;
    expect_declined(&o, "CMYK");

    o = base;
    o.arithmetic = 1;
    size_t len;
    uint8_t *d = encode_pattern(&o, &len);
    if (!d) {
        print_message("this libjpeg-turbo cannot write arithmetic coding: that case is not run\n");
        return;
    }
    free(d);
    expect_declined(&o, "arithmetic-coded 4:2:0");
}

/* Valid YCbCr files outside the decoder's usual shape: Photoshop's Adobe marker with
 * transform 1 (YCbCr, as JFIF), and 4:4:4 with every component sampled 1x2. Either
 * declined or identical here; test_real_files_match_libjpeg_turbo asks for the real
 * files of these kinds in ../shared/data to be ours. */
static void test_unusual_valid_files_declined_or_identical(void **state)
{
    (void)state;
    encode_opts adobe = {.w = 67, .h = 45, .quality = 85, .samp = SAMP_420, .adobe = 1};
    encode_opts tall = {.w = 67, .h = 45, .quality = 85, .samp = SAMP_444_1X2};
    const encode_opts *cases[] = {&adobe, &tall};
    const char *names[] = {"YCbCr with an Adobe APP14 marker (transform 1)", "4:4:4 sampled 1x2"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *d = encode_or_fail(cases[i], &len);
        for (int k = 0; k < N_DENOMS; k++) {
            int rc = check_against_reference(d, len, DENOMS[k], names[i]);
            print_message("%s at 1/%d: %s\n", names[i], DENOMS[k], rc == JPEG_SCALED_OK ? "ours, identical" : "declined");
        }
        free(d);
    }
}

/* ---- corrupt files ------------------------------------------------------------------- */

/* Each variant, at each scale: declined, or accepted by libjpeg-turbo without a
 * warning (or only "extraneous bytes") and identical. */
static int corrupt_checks, corrupt_accepted;

static void check_variant(const blob *v, const char *what)
{
    for (int k = 0; k < N_DENOMS; k++) {
        int rc = check_against_reference(v->data, v->len, DENOMS[k], what);
        assert_true(rc == JPEG_SCALED_OK || rc == JPEG_SCALED_DECLINED);
        corrupt_checks++;
        corrupt_accepted += rc == JPEG_SCALED_OK;
    }
}

static void corrupt_one_file(const blob *b, const char *name)
{
    size_t start = scan_start(b->data, b->len), eoi = eoi_offset(b->data, b->len);
    assert_true(start > 0 && eoi > start + 20);
    size_t scan = eoi - start;
    char what[256];
    /* Truncated at ten places in the scan, with and without an EOI put back. */
    for (int i = 0; i < 10; i++) {
        size_t cut = start + scan * (size_t)(i + 1) / 11;
        blob t = {b->data, cut};
        snprintf(what, sizeof what, "%s truncated at %zu", name, cut);
        check_variant(&t, what);
        blob e = splice(b->data, cut, cut, "\xFF\xD9", 2);
        snprintf(what, sizeof what, "%s truncated at %zu + EOI", name, cut);
        check_variant(&e, what);
        free(e.data);
    }
    /* One byte changed at 50 places over the whole file, headers included. */
    blob m = {malloc(b->len), b->len};
    assert_non_null(m.data);
    for (int i = 0; i < 50; i++) {
        size_t at = 2 + (b->len - 2) * (size_t)i / 50 + (size_t)i % 7;
        if (at >= b->len) at = b->len - 1;
        memcpy(m.data, b->data, b->len);
        m.data[at] ^= (uint8_t)(i % 3 == 0 ? 0xFF : 1u << (i % 8));
        snprintf(what, sizeof what, "%s byte %zu changed to %02x", name, at, m.data[at]);
        check_variant(&m, what);
    }
    free(m.data);
    /* Markers spliced into the scan data, at three places. */
    static const char *const markers[] = {"\xFF\xD9", "\xFF\xD0", "\xFF\xC4"};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            size_t at = start + scan * (size_t)(j + 1) / 4;
            blob s = splice(b->data, b->len, at, markers[i], 2);
            snprintf(what, sizeof what, "%s with FF %02X spliced in at %zu", name, (uint8_t)markers[i][1], at);
            check_variant(&s, what);
            free(s.data);
        }
    /* Garbage before EOI, and between two header segments. */
    blob g = splice(b->data, b->len, eoi, "\x12\x34\x56\x78\x9A", 5);
    snprintf(what, sizeof what, "%s with 5 bytes before EOI", name);
    check_variant(&g, what);
    free(g.data);
    size_t second = 4 + ((size_t)b->data[4] << 8 | b->data[5]); /* after the first segment */
    g = splice(b->data, b->len, second, "\x00\x11", 2);
    snprintf(what, sizeof what, "%s with 2 bytes between header segments", name);
    check_variant(&g, what);
    free(g.data);
}

static void test_corrupt_real_files(void **state)
{
    (void)state;
    READ_OR_SKIP(photo, PHOTO_JPEG);
    READ_OR_SKIP(face, LFW_JPEG);
    corrupt_checks = corrupt_accepted = violations = 0;
    keep_going = 1;
    corrupt_one_file(&photo, "photos/sample1.jpg");
    corrupt_one_file(&face, "AJ_Cook_0001.jpg");
    path_list docs = {0};
    collect_jpegs(DOCUMENT_DIR, 0, &docs);
    qsort(docs.paths, docs.n, sizeof *docs.paths, compare_strings);
    for (size_t i = 0; i < docs.n; i++) { /* the first document that is ours intact */
        blob doc = read_blob(docs.paths[i]);
        int ours = check_against_reference(doc.data, doc.len, 2, docs.paths[i]) == JPEG_SCALED_OK;
        if (ours) corrupt_one_file(&doc, docs.paths[i]);
        free(doc.data);
        if (ours) break;
    }
    free_paths(&docs);
    print_message("%d corrupt variants x scales checked, %d accepted by us, %d violations\n",
                  corrupt_checks, corrupt_accepted, violations);
    free(photo.data);
    free(face.data);
    keep_going = 0;
    assert_int_equal(violations, 0);
}

/* Restart markers out of sequence: libjpeg-turbo resynchronises with a warning, so the
 * file is corrupt to image.c and must not be ours. */
static void test_wrong_restart_number(void **state)
{
    (void)state;
    static const sampling samps[] = {SAMP_444, SAMP_420, SAMP_GREY};
    for (size_t p = 0; p < sizeof samps / sizeof *samps; p++) {
        encode_opts o = {.w = 96, .h = 64, .quality = 80, .samp = samps[p], .restart_mcus = 2};
        size_t len;
        uint8_t *d = encode_or_fail(&o, &len);
        size_t start = scan_start(d, len);
        for (int which = 0; which < 3; which++) { /* the first, second and fourth RST */
            blob v = {malloc(len), len};
            assert_non_null(v.data);
            memcpy(v.data, d, len);
            size_t at = start;
            for (int i = 0; i <= (which == 2 ? 3 : which); i++) at = find_marker(v.data, len, at + 1, 0xD0, 0xD7);
            assert_true(at > 0);
            v.data[at + 1] = (uint8_t)(0xD0 + ((v.data[at + 1] - 0xD0 + 3) & 7));
            char what[96];
            snprintf(what, sizeof what, "%s with RST at %zu renumbered", SAMP_NAME[o.samp], at);
            for (int k = 0; k < N_DENOMS; k++) {
                reference ref = reference_decode(v.data, len, DENOMS[k]);
                assert_int_equal(ref.status, REF_REFUSED); /* "found marker ... instead of RST" */
                free(ref.rgb);
                assert_int_equal(check_against_reference(v.data, len, DENOMS[k], what), JPEG_SCALED_DECLINED);
            }
            free(v.data);
        }
        free(d);
    }
}

/* A JFIF APP0 whose major version is not 1: libjpeg warns "unknown JFIF revision
 * number" (from tjDecompressHeader3 as well as tjDecompress2), a refusal for image.c.
 * image.c asks for the header first and so never gets here, but the contract is the
 * decoder's own: it must decline. */
static void test_unknown_jfif_version(void **state)
{
    (void)state;
    encode_opts o = {.w = 40, .h = 30, .quality = 80, .samp = SAMP_420};
    size_t len;
    uint8_t *d = encode_or_fail(&o, &len);
    assert_true(len > 20 && d[2] == 0xFF && d[3] == 0xE0 && memcmp(d + 6, "JFIF", 5) == 0);
    d[11] = 3; /* major version */
    uint8_t rgb[20 * 15 * 3];
    tjhandle tj = tjInitDecompress();
    assert_non_null(tj);
    for (int k = 0; k < N_DENOMS; k++) {
        int w = (40 + DENOMS[k] - 1) / DENOMS[k], h = (30 + DENOMS[k] - 1) / DENOMS[k];
        assert_int_equal(tjDecompress2(tj, d, (unsigned long)len, rgb, w, 0, h, TJPF_RGB, 0), -1);
        assert_non_null(strstr(tjGetErrorStr2(tj), "JFIF revision"));
        int rc = jpeg_scaled_decode(d, len, DENOMS[k], rgb, w, h);
        if (rc != JPEG_SCALED_DECLINED)
            fail_msg("JFIF 3.01 at 1/%d: accepted (%d), libjpeg-turbo warns \"%s\"", DENOMS[k], rc,
                     tjGetErrorStr2(tj));
    }
    tjDestroy(tj);
    free(d);
}

/* ---- the caller's side of the contract ---------------------------------------------- */

static void test_wrong_size_or_scale_declined(void **state)
{
    (void)state;
    encode_opts o = {.w = 100, .h = 75, .quality = 80, .samp = SAMP_420};
    size_t len;
    uint8_t *d = encode_or_fail(&o, &len);
    uint8_t *rgb = malloc(200 * 200 * 3);
    assert_non_null(rgb);
    assert_int_equal(jpeg_scaled_decode(d, len, 2, rgb, 50, 38), JPEG_SCALED_OK);
    assert_int_equal(jpeg_scaled_decode(d, len, 2, rgb, 51, 38), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 2, rgb, 50, 37), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 2, rgb, 100, 75), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 4, rgb, 25, 18), JPEG_SCALED_DECLINED); /* 19 */
    assert_int_equal(jpeg_scaled_decode(d, len, 3, rgb, 34, 25), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 1, rgb, 100, 75), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 16, rgb, 7, 5), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 0, rgb, 50, 38), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, 0, 2, rgb, 50, 38), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, 3, 2, rgb, 50, 38), JPEG_SCALED_DECLINED);
    free(rgb);
    free(d);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A 16x16 file whose frame header claims 60000x60000: the decoder's own memory is a
 * strip of MCU rows (its size grows with the width only), and the file ends after
 * the first MCUs, so the result is a decline. Measured by the growth of the process's
 * peak RSS, an upper bound (earlier tests may have raised the peak already). It runs
 * last: under UBSan an overflow in it ends the whole binary. */
static void test_huge_header_declined_without_huge_allocation(void **state)
{
    (void)state;
    encode_opts o = {.w = 16, .h = 16, .quality = 80, .samp = SAMP_420};
    size_t len;
    uint8_t *d = encode_or_fail(&o, &len);
    size_t sof = find_marker(d, len, 2, 0xC0, 0xC0);
    assert_true(sof > 0);
    d[sof + 5] = d[sof + 7] = 60000 >> 8; /* height, width */
    d[sof + 6] = d[sof + 8] = 60000 & 0xFF;
    int out = 60000 / 8;
    size_t rgb_bytes = (size_t)out * out * 3; /* 169 MB: the caller's buffer */
    uint8_t *rgb = malloc(rgb_bytes);
    assert_non_null(rgb);
    long before = max_rss_kib();
    /* At 1/2 and 1/4 the caller's buffer alone would be 2.7 GB and 675 MB; a wrong
     * size is declined before anything is read. */
    assert_int_equal(jpeg_scaled_decode(d, len, 2, rgb, out, out), JPEG_SCALED_DECLINED);
    assert_int_equal(jpeg_scaled_decode(d, len, 8, rgb, out, out), JPEG_SCALED_DECLINED);
    long grown_mib = (max_rss_kib() - before) / 1024;
    print_message("60000x60000 header at 1/8: declined; peak RSS grew %ld MiB (caller's buffer %zu MiB)\n",
                  grown_mib, rgb_bytes >> 20);
    assert_true(grown_mib < (long)(rgb_bytes >> 20) + 64);
    free(rgb);
    free(d);
}

/* ---- through image_decode ------------------------------------------------------------ */

static void test_image_decode_uses_it_with_same_pixels(void **state)
{
    (void)state;
    READ_OR_SKIP(photo, PHOTO_JPEG);
    int w, h, orientation;
    assert_int_equal(image_probe(photo.data, photo.len, &w, &h, &orientation), IMAGE_OK);
    assert_int_equal(orientation, 1);
    assert_true((long)w * h > 2000000);
    image_rgb img;
    char err[256];
    assert_int_equal(image_decode(photo.data, photo.len, NULL, 2, &img, err, sizeof err), IMAGE_OK);
    reference ref = reference_decode(photo.data, photo.len, 2);
    assert_int_equal(ref.status, REF_OK);
    assert_int_equal(img.width, ref.w);
    assert_int_equal(img.height, ref.h);
    assert_memory_equal(img.pixels, ref.rgb, (size_t)ref.w * ref.h * 3);
    /* ...and that decode was ours, not the fallback. */
    assert_int_equal(jpeg_scaled_decode(photo.data, photo.len, 2, img.pixels, img.width, img.height),
                     JPEG_SCALED_OK);
    assert_memory_equal(img.pixels, ref.rgb, (size_t)ref.w * ref.h * 3);
    image_rgb_free(&img);
    free(ref.rgb);
    free(photo.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_files_match_libjpeg_turbo),
        cmocka_unit_test(test_synthetic_files_identical_and_ours),
        cmocka_unit_test(test_sixteen_bit_quant_tables),
        cmocka_unit_test(test_extreme_coefficients_declined_or_identical),
        cmocka_unit_test(test_ac_size_zero_symbols_end_the_block),
        cmocka_unit_test(test_other_codings_and_samplings_declined),
        cmocka_unit_test(test_unusual_valid_files_declined_or_identical),
        cmocka_unit_test(test_corrupt_real_files),
        cmocka_unit_test(test_wrong_restart_number),
        cmocka_unit_test(test_unknown_jfif_version),
        cmocka_unit_test(test_wrong_size_or_scale_declined),
        cmocka_unit_test(test_image_decode_uses_it_with_same_pixels),
        cmocka_unit_test(test_huge_header_declined_without_huge_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
