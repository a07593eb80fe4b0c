/* Unit tests for the image layer (src/face/image.c) and pixel geometry
 * (src/face/geometry.c). Real photos are read from ../shared/data at run time (tests
 * run from the repository root); PNG, WebP and EXIF variants are built here from
 * them with the libraries' own encoders, so every decoder path sees genuine files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libexif/exif-data.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

#include "face/geometry.h"
#include "core/file.h"
#include "face/image.h"
#include "data_file.h"

#define LFW_JPEG "../shared/data/lfw/lfw_deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"
#define PHOTO_JPEG "../shared/data/photos/sample1.jpg"

/* ---- helpers --------------------------------------------------------------- */

static void decode_ok(const blob *b, int denom, image_rgb *img)
{
    char err[256];
    int rc = image_decode(b->data, b->len, NULL, denom, img, err, sizeof err);
    if (rc) print_error("decode failed: %d %s\n", rc, err);
    assert_int_equal(rc, IMAGE_OK);
}

static double mean_abs_diff(const image_rgb *a, const image_rgb *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    size_t n = (size_t)a->width * a->height * 3;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += abs((int)a->pixels[i] - (int)b->pixels[i]);
    return sum / n;
}

static const uint8_t *px(const image_rgb *img, int x, int y)
{
    return img->pixels + ((size_t)y * img->width + x) * 3;
}

/* A small image whose every pixel is distinct, for exact geometry checks. */
static void make_pattern(image_rgb *img, int w, int h)
{
    assert_int_equal(image_rgb_alloc(img, w, h), IMAGE_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img->pixels + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(10 * x + 1);
            p[1] = (uint8_t)(10 * y + 2);
            p[2] = (uint8_t)(x * 7 + y * 13);
        }
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends one PNG chunk (length, type, data, CRC) at dst; returns bytes written. */
static size_t png_chunk(uint8_t *dst, const char *type, const uint8_t *data, size_t n)
{
    put_be32(dst, (uint32_t)n);
    memcpy(dst + 4, type, 4);
    if (n) memcpy(dst + 8, data, n);
    put_be32(dst + 8 + n, crc32_png(dst + 4, n + 4));
    return 12 + n;
}

static blob encode_png(const image_rgb *img, int with_alpha_zero)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->width;
    pi.height = (png_uint_32)img->height;
    pi.format = with_alpha_zero ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    size_t n = (size_t)img->width * img->height;
    uint8_t *src = img->pixels;
    if (with_alpha_zero) { /* fully transparent left half */
        src = malloc(n * 4);
        assert_non_null(src);
        for (size_t i = 0; i < n; i++) {
            memcpy(src + 4 * i, img->pixels + 3 * i, 3);
            src[4 * i + 3] = (i % img->width) < (size_t)img->width / 2 ? 0 : 255;
        }
    }
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&pi, NULL, &size, 0, src, 0, NULL));
    blob b = {malloc(size), size};
    assert_true(png_image_write_to_memory(&pi, b.data, &size, 0, src, 0, NULL));
    if (src != img->pixels) free(src);
    return b;
}

/* libwebp allocates its output; copy into malloc memory so every blob frees alike. */
static blob encode_webp(const image_rgb *img, int lossless)
{
    uint8_t *out = NULL;
    size_t n = lossless
        ? WebPEncodeLosslessRGB(img->pixels, img->width, img->height, img->width * 3, &out)
        : WebPEncodeRGB(img->pixels, img->width, img->height, img->width * 3, 90.0f, &out);
    assert_true(n > 0);
    blob b = {malloc(n), n};
    memcpy(b.data, out, n);
    WebPFree(out);
    return b;
}

/* An "Exif\0\0"-prefixed block holding only IFD0 Orientation = o. */
static void make_exif_block(int o, uint8_t **buf, unsigned int *len)
{
    ExifData *ed = exif_data_new();
    assert_non_null(ed);
    exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_MOTOROLA);
    ExifEntry *e = exif_entry_new();
    exif_content_add_entry(ed->ifd[EXIF_IFD_0], e);
    exif_entry_initialize(e, EXIF_TAG_ORIENTATION);
    exif_set_short(e->data, EXIF_BYTE_ORDER_MOTOROLA, (ExifShort)o);
    exif_entry_unref(e);
    exif_data_save_data(ed, buf, len);
    exif_data_unref(ed);
    assert_non_null(*buf);
    assert_memory_equal(*buf, "Exif\0\0", 6);
}

/* The JPEG with an APP1 Exif segment spliced in right after SOI. */
static blob jpeg_with_orientation(const blob *jpeg, int o)
{
    uint8_t *exif = NULL;
    unsigned int n = 0;
    make_exif_block(o, &exif, &n);
    blob b = {malloc(jpeg->len + n + 4), jpeg->len + n + 4};
    uint8_t *p = b.data;
    memcpy(p, jpeg->data, 2);
    p[2] = 0xff, p[3] = 0xe1, p[4] = (uint8_t)((n + 2) >> 8), p[5] = (uint8_t)(n + 2);
    memcpy(p + 6, exif, n);
    memcpy(p + 6 + n, jpeg->data + 2, jpeg->len - 2);
    free(exif);
    return b;
}

/* The PNG with an eXIf chunk (bare TIFF data) inserted after IHDR. */
static blob png_with_orientation(const blob *png, int o)
{
    uint8_t *exif = NULL;
    unsigned int n = 0;
    make_exif_block(o, &exif, &n);
    size_t tiff_len = n - 6, ihdr_end = 8 + 12 + 13;
    blob b = {malloc(png->len + tiff_len + 12), png->len + tiff_len + 12};
    memcpy(b.data, png->data, ihdr_end);
    size_t w = png_chunk(b.data + ihdr_end, "eXIf", exif + 6, tiff_len);
    memcpy(b.data + ihdr_end + w, png->data + ihdr_end, png->len - ihdr_end);
    free(exif);
    return b;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* Rewraps a simple WebP (RIFF WEBP + one VP8/VP8L chunk) as an extended VP8X file
 * with an EXIF chunk, the layout phones and libwebpmux produce. */
static blob webp_with_orientation(const blob *webp, int o, int w, int h)
{
    uint8_t *exif = NULL;
    unsigned int n = 0;
    make_exif_block(o, &exif, &n);
    size_t tiff_len = n - 6, image_len = webp->len - 12;
    size_t exif_chunk = 8 + tiff_len + (tiff_len & 1);
    size_t total = 12 + 18 + image_len + exif_chunk;
    blob b = {calloc(1, total), total};
    uint8_t *p = b.data;
    memcpy(p, "RIFF", 4);
    put_le32(p + 4, (uint32_t)(total - 8));
    memcpy(p + 8, "WEBPVP8X", 8);
    put_le32(p + 16, 10);
    p[20] = 0x08; /* EXIF present */
    for (int k = 0; k < 3; k++) { /* 24-bit little-endian canvas sizes minus one */
        p[24 + k] = (uint8_t)((w - 1) >> (8 * k));
        p[27 + k] = (uint8_t)((h - 1) >> (8 * k));
    }
    memcpy(p + 30, webp->data + 12, image_len);
    uint8_t *e = p + 30 + image_len;
    memcpy(e, "EXIF", 4);
    put_le32(e + 4, (uint32_t)tiff_len);
    memcpy(e + 8, exif + 6, tiff_len);
    free(exif);
    return b;
}

/* Source pixel shown at display position (x, y) for EXIF orientation o, written out
 * independently of the implementation's table. */
static void exif_source(int o, int x, int y, int w, int h, int *sx, int *sy)
{
    switch (o) {
    case 1: *sx = x, *sy = y; break;
    case 2: *sx = w - 1 - x, *sy = y; break;
    case 3: *sx = w - 1 - x, *sy = h - 1 - y; break;
    case 4: *sx = x, *sy = h - 1 - y; break;
    case 5: *sx = y, *sy = x; break;
    case 6: *sx = y, *sy = h - 1 - x; break;
    case 7: *sx = w - 1 - y, *sy = h - 1 - x; break;
    default: *sx = w - 1 - y, *sy = x; break;
    }
}

static void assert_oriented(const image_rgb *stored, const image_rgb *shown, int o)
{
    int swap = o >= 5;
    assert_int_equal(shown->width, swap ? stored->height : stored->width);
    assert_int_equal(shown->height, swap ? stored->width : stored->height);
    for (int y = 0; y < shown->height; y++)
        for (int x = 0; x < shown->width; x++) {
            int sx, sy;
            exif_source(o, x, y, stored->width, stored->height, &sx, &sy);
            assert_memory_equal(px(shown, x, y), px(stored, sx, sy), 3);
        }
}

/* ---- decoding ---------------------------------------------------------------- */

static void test_decode_lfw_jpeg(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    assert_int_equal(image_sniff(jpg.data, jpg.len), IMAGE_FORMAT_JPEG);
    int w = 0, h = 0, o = 0;
    assert_int_equal(image_probe(jpg.data, jpg.len, &w, &h, &o), IMAGE_OK);
    assert_int_equal(w, 250);
    assert_int_equal(h, 250);
    assert_int_equal(o, 1);

    image_rgb img;
    decode_ok(&jpg, 1, &img);
    assert_int_equal(img.width, 250);
    assert_int_equal(img.height, 250);
    /* A real face photo: mid-range brightness and plenty of texture. */
    double bright = image_mean_brightness(&img, 0, 0, 250, 250);
    assert_true(bright > 40 && bright < 220);
    assert_true(image_laplacian_variance(&img, 60, 60, 190, 190) > 20);

    image_grey grey, converted;
    char err[128];
    assert_int_equal(image_decode_grey(jpg.data, jpg.len, NULL, 1, &grey, err, sizeof err), 0);
    assert_int_equal(image_rgb_to_grey(&img, &converted), IMAGE_OK);
    assert_int_equal(grey.width, 250);
    assert_memory_equal(grey.pixels, converted.pixels, 250 * 250);
    image_grey_free(&grey);
    image_grey_free(&converted);
    image_rgb_free(&img);
    image_rgb_free(&img); /* idempotent */
    free(jpg.data);
}

static void test_decode_png_and_webp(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    image_rgb ref;
    decode_ok(&jpg, 1, &ref);

    blob png = encode_png(&ref, 0);
    assert_int_equal(image_sniff(png.data, png.len), IMAGE_FORMAT_PNG);
    int w = 0, h = 0;
    assert_int_equal(image_probe(png.data, png.len, &w, &h, NULL), IMAGE_OK);
    assert_int_equal(w, 250);
    image_rgb img;
    decode_ok(&png, 1, &img);
    assert_memory_equal(img.pixels, ref.pixels, 250 * 250 * 3); /* lossless */
    image_rgb_free(&img);

    blob webp = encode_webp(&ref, 1);
    assert_int_equal(image_sniff(webp.data, webp.len), IMAGE_FORMAT_WEBP);
    assert_int_equal(image_probe(webp.data, webp.len, &w, &h, NULL), IMAGE_OK);
    assert_int_equal(h, 250);
    decode_ok(&webp, 1, &img);
    assert_memory_equal(img.pixels, ref.pixels, 250 * 250 * 3);
    image_rgb_free(&img);

    blob lossy = encode_webp(&ref, 0);
    decode_ok(&lossy, 1, &img);
    assert_true(mean_abs_diff(&img, &ref) < 4.0);
    image_rgb_free(&img);

    image_rgb_free(&ref);
    free(png.data);
    free(webp.data);
    free(lossy.data);
    free(jpg.data);
}

static void test_png_alpha_composites_on_white(void **state)
{
    (void)state;
    image_rgb ref, img;
    make_pattern(&ref, 6, 4);
    blob png = encode_png(&ref, 1);
    decode_ok(&png, 1, &img);
    for (int y = 0; y < 4; y++) {
        assert_memory_equal(px(&img, 0, y), "\xff\xff\xff", 3); /* transparent half */
        assert_memory_equal(px(&img, 5, y), px(&ref, 5, y), 3); /* opaque half */
    }
    image_rgb_free(&img);
    image_rgb_free(&ref);
    free(png.data);
}

static void test_box_downscale_for_png(void **state)
{
    (void)state;
    image_rgb ref, img;
    make_pattern(&ref, 5, 3);
    blob png = encode_png(&ref, 0);
    decode_ok(&png, 2, &img);
    assert_int_equal(img.width, 3); /* ceil(5/2) */
    assert_int_equal(img.height, 2);
    /* Block (0..1, 0..1): red 1,11,1,11 -> 6; green 2,2,12,12 -> 7. */
    assert_int_equal(px(&img, 0, 0)[0], 6);
    assert_int_equal(px(&img, 0, 0)[1], 7);
    /* Corner block holds the single pixel (4, 2). */
    assert_memory_equal(px(&img, 2, 1), px(&ref, 4, 2), 3);
    image_rgb_free(&img);
    image_rgb_free(&ref);
    free(png.data);
}

static void test_dct_scaled_decode(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, PHOTO_JPEG);
    int w = 0, h = 0;
    assert_int_equal(image_probe(jpg.data, jpg.len, &w, &h, NULL), IMAGE_OK);
    assert_true(w > 1000 && h > 1000);
    image_rgb full;
    decode_ok(&jpg, 1, &full);
    assert_int_equal(full.width, w);
    assert_int_equal(full.height, h);
    for (int denom = 2; denom <= 8; denom *= 2) {
        image_rgb small;
        decode_ok(&jpg, denom, &small);
        assert_int_equal(small.width, (w + denom - 1) / denom);
        assert_int_equal(small.height, (h + denom - 1) / denom);
        /* DCT scaling is an approximate box filter: compare brightness of regions. */
        double a = image_mean_brightness(&full, 0, 0, w, h);
        double b = image_mean_brightness(&small, 0, 0, small.width, small.height);
        assert_true(fabs(a - b) < 1.0);
        image_rgb_free(&small);
    }
    image_rgb_free(&full);
    free(jpg.data);
}

static void test_exif_orientation_jpeg(void **state)
{
    (void)state;
    READ_OR_SKIP(photo, PHOTO_JPEG);
    /* A small, non-square JPEG so that swapped sides are visible. */
    image_rgb small;
    decode_ok(&photo, 8, &small);
    blob plain = {NULL, 0};
    assert_int_equal(image_encode_jpeg(&small, 90, &plain.data, &plain.len), IMAGE_OK);
    image_rgb stored;
    decode_ok(&plain, 1, &stored);
    assert_int_not_equal(stored.width, stored.height);

    for (int o = 1; o <= 8; o++) {
        blob tagged = jpeg_with_orientation(&plain, o);
        int w = 0, h = 0, got = 0;
        assert_int_equal(image_probe(tagged.data, tagged.len, &w, &h, &got), IMAGE_OK);
        assert_int_equal(got, o);
        assert_int_equal(w, o >= 5 ? stored.height : stored.width);
        assert_int_equal(h, o >= 5 ? stored.width : stored.height);
        image_rgb shown;
        decode_ok(&tagged, 1, &shown);
        assert_oriented(&stored, &shown, o);
        image_rgb_free(&shown);
        free(tagged.data);
    }
    /* Orientation 6 with DCT scaling: scaled, then rotated. */
    blob tagged = jpeg_with_orientation(&plain, 6);
    image_rgb half;
    decode_ok(&tagged, 2, &half);
    assert_int_equal(half.width, (stored.height + 1) / 2);
    assert_int_equal(half.height, (stored.width + 1) / 2);
    image_rgb_free(&half);
    free(tagged.data);

    /* The real camera photos carry Exif without a rotation. */
    int o = 0;
    assert_int_equal(image_probe(photo.data, photo.len, NULL, NULL, &o), IMAGE_OK);
    assert_int_equal(o, 1);

    image_rgb_free(&stored);
    image_rgb_free(&small);
    free(plain.data);
    free(photo.data);
}

static void test_exif_orientation_png(void **state)
{
    (void)state;
    image_rgb ref;
    make_pattern(&ref, 7, 4);
    blob png = encode_png(&ref, 0);
    blob tagged = png_with_orientation(&png, 6);
    int w = 0, h = 0, o = 0;
    assert_int_equal(image_probe(tagged.data, tagged.len, &w, &h, &o), IMAGE_OK);
    assert_int_equal(o, 6);
    assert_int_equal(w, 4);
    assert_int_equal(h, 7);
    image_rgb shown;
    decode_ok(&tagged, 1, &shown);
    assert_oriented(&ref, &shown, 6);
    image_rgb_free(&shown);
    image_rgb_free(&ref);
    free(png.data);
    free(tagged.data);
}

static void test_exif_orientation_webp(void **state)
{
    (void)state;
    image_rgb ref;
    make_pattern(&ref, 7, 4);
    blob plain = encode_webp(&ref, 1);
    blob tagged = webp_with_orientation(&plain, 8, 7, 4);
    int w = 0, h = 0, o = 0;
    assert_int_equal(image_probe(tagged.data, tagged.len, &w, &h, &o), IMAGE_OK);
    assert_int_equal(o, 8);
    assert_int_equal(w, 4);
    assert_int_equal(h, 7);
    image_rgb shown;
    decode_ok(&tagged, 1, &shown);
    assert_oriented(&ref, &shown, 8);
    image_rgb_free(&shown);
    image_rgb_free(&ref);
    free(plain.data);
    free(tagged.data);
}

/* Every prefix length class and many single-byte corruptions of real files must end
 * in a clean return code: no crash, no leak, no sanitizer report, and a success must
 * come with a properly sized raster. */
static void test_mutations_fail_cleanly(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    image_rgb ref;
    decode_ok(&jpg, 1, &ref);
    blob files[3] = {jpg, encode_png(&ref, 0), encode_webp(&ref, 0)};
    uint32_t seed = 777;
    for (int f = 0; f < 3; f++) {
        blob b = files[f];
        uint8_t *copy = malloc(b.len);
        for (int trial = 0; trial < 120; trial++) {
            memcpy(copy, b.data, b.len);
            size_t len = b.len;
            seed = seed * 1103515245u + 12345u;
            if (trial % 2) {
                len = (seed >> 8) % b.len; /* truncation */
            } else {
                for (int k = 0; k < 4; k++) { /* a few byte flips, headers included */
                    seed = seed * 1103515245u + 12345u;
                    size_t at = (seed >> 8) % (trial % 4 ? 200 : b.len);
                    copy[at] ^= (uint8_t)(seed >> 3 | 1);
                }
            }
            image_rgb img;
            char err[256];
            int rc = image_decode(copy, len, NULL, 1 << (trial % 4), &img, err, sizeof err);
            if (rc == IMAGE_OK) {
                assert_non_null(img.pixels);
                assert_true(img.width > 0 && img.height > 0);
                image_rgb_free(&img);
            } else {
                assert_true(rc == IMAGE_ERR_CORRUPT || rc == IMAGE_ERR_FORMAT ||
                            rc == IMAGE_ERR_TOO_LARGE);
                assert_null(img.pixels);
                assert_true(err[0] != '\0');
            }
            image_probe(copy, len, NULL, NULL, NULL);
        }
        free(copy);
    }
    for (int f = 0; f < 3; f++) free(files[f].data);
    image_rgb_free(&ref);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    char err[256];
    image_rgb img = {1, 1, NULL};

    /* Cut in the entropy-coded data: headers parse, pixels would be invented. */
    int rc = image_decode(jpg.data, jpg.len / 2, NULL, 1, &img, err, sizeof err);
    assert_int_equal(rc, IMAGE_ERR_CORRUPT);
    assert_null(img.pixels);
    assert_int_equal(strncmp(err, "corrupt or truncated JPEG data: ", 32), 0);
    print_message("truncated JPEG: %s\n", err);
    /* Cut inside the headers. */
    rc = image_decode(jpg.data, 40, NULL, 1, &img, err, sizeof err);
    assert_int_equal(rc, IMAGE_ERR_CORRUPT);
    assert_int_equal(image_probe(jpg.data, 40, NULL, NULL, NULL), IMAGE_ERR_CORRUPT);

    image_rgb ref;
    decode_ok(&jpg, 1, &ref);
    blob png = encode_png(&ref, 0), webp = encode_webp(&ref, 0);
    rc = image_decode(png.data, png.len / 2, NULL, 1, &img, err, sizeof err);
    assert_int_equal(rc, IMAGE_ERR_CORRUPT);
    assert_int_equal(strncmp(err, "corrupt or truncated PNG data: ", 31), 0);
    rc = image_decode(webp.data, webp.len / 2, NULL, 1, &img, err, sizeof err);
    assert_int_equal(rc, IMAGE_ERR_CORRUPT);
    assert_int_equal(strncmp(err, "corrupt or truncated WebP data: ", 32), 0);

    /* Random bytes (fixed seed, so the test is repeatable). */
    uint8_t noise[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
    noise[0] = 0x00;
    rc = image_decode(noise, sizeof noise, NULL, 1, &img, err, sizeof err);
    assert_int_equal(rc, IMAGE_ERR_FORMAT);
    assert_string_equal(err, "unsupported image format (expected JPEG, PNG or WebP)");
    assert_int_equal(image_probe(noise, sizeof noise, NULL, NULL, NULL), IMAGE_ERR_FORMAT);
    /* Noise behind a JPEG magic number is corrupt, not unsupported. */
    noise[0] = 0xff, noise[1] = 0xd8, noise[2] = 0xff;
    assert_int_equal(image_decode(noise, sizeof noise, NULL, 1, &img, err, sizeof err),
                     IMAGE_ERR_CORRUPT);
    assert_int_equal(image_decode(noise, 0, NULL, 1, &img, err, sizeof err), IMAGE_ERR_FORMAT);
    /* Bad scale factor is the caller's bug. */
    assert_int_equal(image_decode(jpg.data, jpg.len, NULL, 3, &img, err, sizeof err),
                     IMAGE_ERR_INVALID);

    image_rgb_free(&ref);
    free(png.data);
    free(webp.data);
    free(jpg.data);
}

static void test_limits_reject_before_allocating(void **state)
{
    (void)state;
    char err[256];
    image_rgb img;

    /* A PNG that is nothing but a valid IHDR claiming 100000 x 100000. Allocating
     * 30 GB under ASan would abort the test, so TOO_LARGE proves we did not. */
    uint8_t png[8 + 25 + 12];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0};
    put_be32(ihdr, 100000);
    put_be32(ihdr + 4, 100000);
    ihdr[8] = 8, ihdr[9] = 2; /* 8-bit RGB */
    size_t n = 8 + png_chunk(png + 8, "IHDR", ihdr, 13);
    n += png_chunk(png + n, "IEND", NULL, 0);
    int w = 0, h = 0;
    assert_int_equal(image_probe(png, n, &w, &h, NULL), IMAGE_OK);
    assert_int_equal(w, 100000);
    assert_int_equal(image_decode(png, n, NULL, 1, &img, err, sizeof err), IMAGE_ERR_TOO_LARGE);
    assert_null(img.pixels);
    print_message("bomb: %s\n", err);

    READ_OR_SKIP(jpg, LFW_JPEG);
    /* The same lie in a JPEG's SOF0: patch height/width to 60000 x 60000. */
    size_t i = 2;
    while (i + 9 < jpg.len && jpg.data[i + 1] != 0xc0)
        i += 2 + ((size_t)jpg.data[i + 2] << 8 | jpg.data[i + 3]);
    assert_true(i + 9 < jpg.len);
    jpg.data[i + 5] = 0xea, jpg.data[i + 6] = 0x60; /* 60000 */
    jpg.data[i + 7] = 0xea, jpg.data[i + 8] = 0x60;
    assert_int_equal(image_decode(jpg.data, jpg.len, NULL, 1, &img, err, sizeof err),
                     IMAGE_ERR_TOO_LARGE);
    free(jpg.data);

    blob real = read_blob(LFW_JPEG);
    image_limits few_pixels = {0, 250 * 250 - 1}, few_bytes = {100, 0}, exact = {0, 250 * 250};
    assert_int_equal(image_decode(real.data, real.len, &few_pixels, 8, &img, err, sizeof err),
                     IMAGE_ERR_TOO_LARGE);
    assert_int_equal(image_decode(real.data, real.len, &few_bytes, 1, &img, err, sizeof err),
                     IMAGE_ERR_TOO_LARGE);
    assert_int_equal(image_decode(real.data, real.len, &exact, 1, &img, err, sizeof err),
                     IMAGE_OK);
    image_rgb_free(&img);
    free(real.data);
}

static void test_jpeg_encode_round_trip(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    image_rgb ref, back;
    decode_ok(&jpg, 1, &ref);
    blob out = {NULL, 0};
    assert_int_equal(image_encode_jpeg(&ref, 95, &out.data, &out.len), IMAGE_OK);
    assert_true(out.len > 1000);
    assert_int_equal(image_sniff(out.data, out.len), IMAGE_FORMAT_JPEG);
    decode_ok(&out, 1, &back);
    assert_true(mean_abs_diff(&ref, &back) < 3.0);
    free(out.data); /* plain malloc memory, as documented */
    assert_int_equal(image_encode_jpeg(&ref, 0, &out.data, &out.len), IMAGE_ERR_INVALID);
    assert_null(out.data);
    image_rgb_free(&back);
    image_rgb_free(&ref);
    free(jpg.data);
}

/* ---- geometry ---------------------------------------------------------------- */

static void test_similarity_recovers_transform(void **state)
{
    (void)state;
    const float *src = geometry_arcface_template_112;
    double theta = 0.3, s = 1.7, tx = 12.5, ty = -5.25;
    double a = s * cos(theta), b = s * sin(theta);
    float dst[10], m[6];
    for (int i = 0; i < 5; i++) {
        dst[2 * i] = (float)(a * src[2 * i] - b * src[2 * i + 1] + tx);
        dst[2 * i + 1] = (float)(b * src[2 * i] + a * src[2 * i + 1] + ty);
    }
    assert_int_equal(similarity_estimate(src, dst, 5, m), IMAGE_OK);
    const double want[6] = {a, -b, tx, b, a, ty};
    for (int k = 0; k < 6; k++) assert_true(fabs(m[k] - want[k]) < 1e-4);

    /* Inverse direction and the affine inverse agree. */
    float back[6], inv[6];
    assert_int_equal(similarity_estimate(dst, src, 5, back), IMAGE_OK);
    assert_int_equal(affine_invert(m, inv), IMAGE_OK);
    for (int k = 0; k < 6; k++) assert_true(fabs(back[k] - inv[k]) < 1e-4);

    /* Least squares: a small inconsistency moves the fit only a little. */
    float noisy[10];
    memcpy(noisy, dst, sizeof dst);
    noisy[0] += 1.0f, noisy[2] -= 1.0f; /* eyes moved 1 px towards each other */
    assert_int_equal(similarity_estimate(src, noisy, 5, m), IMAGE_OK);
    assert_true(fabs(m[0] - a) < 0.05 && fabs(m[3] - b) < 0.05);

    float same[4] = {3, 3, 3, 3};
    assert_int_equal(similarity_estimate(same, dst, 2, m), IMAGE_ERR_INVALID);
    assert_int_equal(similarity_estimate(src, dst, 1, m), IMAGE_ERR_INVALID);
    float singular[6] = {1, 2, 0, 2, 4, 0};
    assert_int_equal(affine_invert(singular, inv), IMAGE_ERR_INVALID);
}

static void test_warp_affine_values(void **state)
{
    (void)state;
    image_rgb img;
    make_pattern(&img, 4, 3);
    const float mean = 127.5f, scale = 1.0f / 128;
    /* m shifts the image right by half a pixel: out(x, y) = img(x - 0.5, y). */
    const float m[6] = {1, 0, 0.5f, 0, 1, 0};
    float nchw[3 * 4 * 3], nhwc[4 * 3 * 3];
    image_warp_affine_to_tensor(&img, m, 4, 3, mean, scale, 1, nchw);
    image_warp_affine_to_tensor(&img, m, 4, 3, mean, scale, 0, nhwc);
    /* out(2, 1) red = mean of red at x = 1 and 2 (11 and 21) = 16. */
    assert_float_equal(nchw[0 * 12 + 1 * 4 + 2], (16.0f - mean) * scale, 1e-6);
    /* out(2, 1) green: 12 everywhere on row 1. */
    assert_float_equal(nchw[1 * 12 + 1 * 4 + 2], (12.0f - mean) * scale, 1e-6);
    /* out(0, 0) straddles the left border: half of pixel (0,0), half black. */
    assert_float_equal(nchw[0], (0.5f * 1.0f - mean) * scale, 1e-6);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++)
                assert_float_equal(nhwc[(y * 4 + x) * 3 + c], nchw[c * 12 + y * 4 + x], 0);

    /* Far outside: pure padding, value 0 before normalisation. */
    const float away[6] = {1, 0, 100, 0, 1, 100};
    image_warp_affine_to_tensor(&img, away, 4, 3, mean, scale, 1, nchw);
    for (int i = 0; i < 36; i++) assert_float_equal(nchw[i], -mean * scale, 0);

    /* A rotation by 90 degrees about pixel centres is exact on the grid. */
    const float rot[6] = {0, -1, 2, 1, 0, 0}; /* (x, y) -> (2 - y, x) */
    image_rgb turned, rotated;
    assert_int_equal(image_warp_affine_rgb(&img, rot, 3, 4, &turned), IMAGE_OK);
    assert_int_equal(image_rgb_rotate(&img, 90, &rotated), IMAGE_OK);
    assert_memory_equal(turned.pixels, rotated.pixels, 3 * 4 * 3);
    image_rgb_free(&turned);
    image_rgb_free(&rotated);

    /* Identity warp is a copy. */
    const float id[6] = {1, 0, 0, 0, 1, 0};
    assert_int_equal(image_warp_affine_rgb(&img, id, 4, 3, &turned), IMAGE_OK);
    assert_memory_equal(turned.pixels, img.pixels, 4 * 3 * 3);
    image_rgb_free(&turned);
    image_rgb_free(&img);
}

/* Bilinear sample of img at output pixel (u, v) under the inverse map inv, taps
 * outside the image black: the warp's contract (geometry.h), channel c. */
static float warp_reference(const image_rgb *img, const float inv[6], int u, int v, int c)
{
    double sx = inv[0] * u + inv[1] * v + inv[2], sy = inv[3] * u + inv[4] * v + inv[5];
    double fx = floor(sx), fy = floor(sy), wx = sx - fx, wy = sy - fy, sum = 0;
    for (int k = 0; k < 4; k++) {
        int tx = (int)fx + (k & 1), ty = (int)fy + (k >> 1);
        if (tx < 0 || ty < 0 || tx >= img->width || ty >= img->height) continue;
        sum += ((k & 1) ? wx : 1 - wx) * ((k >> 1) ? wy : 1 - wy) * px(img, tx, ty)[c];
    }
    return (float)sum;
}

/* Wide warps go 16 pixels at a time where the CPU allows (geometry.c): every value,
 * NCHW and NHWC, is the contract's, for a rotation with a scale whose output runs
 * off the image on every side (padding, edge taps, and the last pixels of the
 * raster, whose words would end past it). */
static void test_warp_affine_wide_rows(void **state)
{
    (void)state;
    image_rgb img;
    assert_int_equal(image_rgb_alloc(&img, 53, 41), IMAGE_OK);
    for (size_t i = 0; i < (size_t)53 * 41 * 3; i++) img.pixels[i] = (uint8_t)((i * 2654435761u) >> 13);
    enum { W = 50, H = 37 };
    const float maps[][6] = {{0.93f, -0.31f, 9.2f, 0.31f, 0.93f, -4.7f}, /* rotated, scaled, shifted */
                             {1.05f, 0, -1.3f, 0, 1.12f, -1.6f},          /* over the whole image and beyond */
                             {1, 0, 3.25f, 0, 1, 4.5f}};                  /* down to the last row and column */
    float nchw[3 * W * H], nhwc[3 * W * H], inv[6];
    for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++) {
        assert_int_equal(affine_invert(maps[k], inv), IMAGE_OK);
        image_warp_affine_to_tensor(&img, maps[k], W, H, 127.0f, 1 / 128.0f, 1, nchw);
        image_warp_affine_to_tensor(&img, maps[k], W, H, 127.0f, 1 / 128.0f, 0, nhwc);
        for (int v = 0; v < H; v++)
            for (int u = 0; u < W; u++)
                for (int c = 0; c < 3; c++) {
                    float want = (warp_reference(&img, inv, u, v, c) - 127.0f) / 128.0f;
                    assert_float_equal(nchw[(c * H + v) * W + u], want, 1e-5);
                    assert_float_equal(nhwc[(v * W + u) * 3 + c], want, 1e-5);
                }
    }
    image_rgb_free(&img);
}

static void test_arcface_alignment_of_real_face(void **state)
{
    (void)state;
    READ_OR_SKIP(jpg, LFW_JPEG);
    image_rgb img;
    decode_ok(&jpg, 1, &img);
    /* LFW deep-funneled faces sit near a fixed place; map the template scaled about
     * the image centre and check that aligning undoes exactly that scaling. */
    float pts[10];
    for (int i = 0; i < 5; i++) {
        pts[2 * i] = 125 + (geometry_arcface_template_112[2 * i] - 56) * 1.5f;
        pts[2 * i + 1] = 125 + (geometry_arcface_template_112[2 * i + 1] - 56) * 1.5f;
    }
    float m[6];
    assert_int_equal(similarity_estimate(pts, geometry_arcface_template_112, 5, m), IMAGE_OK);
    assert_true(fabs(m[0] - 1 / 1.5) < 1e-5 && fabs(m[1]) < 1e-5);
    float *t = malloc(sizeof(float) * 3 * 112 * 112);
    image_warp_affine_to_tensor(&img, m, 112, 112, 127.5f, 1 / 128.0f, 1, t);
    /* out(56, 56) samples source (125, 125) exactly. */
    const uint8_t *c = px(&img, 125, 125);
    for (int ch = 0; ch < 3; ch++)
        assert_float_equal(t[ch * 112 * 112 + 56 * 112 + 56], (c[ch] - 127.5f) / 128.0f, 1e-4);
    free(t);
    image_rgb_free(&img);
    free(jpg.data);
}

/* Bilinear sample of the crop [x0, x1) x [y0, y1) at output pixel (u, v) of out_w x
 * out_h, written from the contract in geometry.h (edge replication inside, black
 * padding outside), channel c. */
static float crop_reference(const image_rgb *img, float x0, float y0, float x1, float y1, int out_w, int out_h,
                            int u, int v, int c)
{
    float cx = x0 + (u + 0.5f) * ((x1 - x0) / (float)out_w) - 0.5f;
    float cy = y0 + (v + 0.5f) * ((y1 - y0) / (float)out_h) - 0.5f;
    if (!(cx >= -0.5f && cx <= img->width - 0.5f && cy >= -0.5f && cy <= img->height - 0.5f)) return 0;
    int ix = (int)floorf(cx), iy = (int)floorf(cy);
    float wx = cx - floorf(cx), wy = cy - floorf(cy);
    int xa = ix < 0 ? 0 : ix, xb = ix + 1 > img->width - 1 ? img->width - 1 : ix + 1;
    int ya = iy < 0 ? 0 : iy, yb = iy + 1 > img->height - 1 ? img->height - 1 : iy + 1;
    if (xa > img->width - 1) xa = img->width - 1;
    if (ya > img->height - 1) ya = img->height - 1;
    float top = px(img, xa, ya)[c] + (px(img, xb, ya)[c] - px(img, xa, ya)[c]) * wx;
    float bottom = px(img, xa, yb)[c] + (px(img, xb, yb)[c] - px(img, xa, yb)[c]) * wx;
    return top + (bottom - top) * wy;
}

/* Wide outputs go 16 columns at a time where the CPU allows (geometry.c): every
 * value, in the three layouts, is the contract's, including the padded columns left and
 * right, the rows on the image's last row and the columns past the last 16; with
 * the taps read through 128-byte windows (downscaling up to 5x, image widths 97
 * and 200: up to 4.4x here) and by gathers (600: 13x), the windows of the last
 * rows reaching the raster's end. */
static void check_crop_wide_rows(int width)
{
    image_rgb img;
    assert_int_equal(image_rgb_alloc(&img, width, 61), IMAGE_OK);
    for (size_t i = 0; i < (size_t)width * 61 * 3; i++) img.pixels[i] = (uint8_t)((i * 2654435761u) >> 13);
    enum { W = 45, H = 23 };
    float x1 = (float)width;
    const float rects[][4] = {{0, 0, x1, 61}, {-9.5f, -3, x1 + 4, 66}, {13.3f, 7.7f, x1 - 16.9f, 40.9f},
                              {x1 - 60.2f, 50.5f, x1 - 0.3f, 61}};
    float nchw[3 * W * H], nhwc[3 * W * H], grey[W * H];
    for (size_t r = 0; r < sizeof rects / sizeof rects[0]; r++) {
        const float *q = rects[r];
        image_crop_resize_to_tensor(&img, q[0], q[1], q[2], q[3], W, H, 127.0f, 1 / 128.0f, 1, nchw);
        image_crop_resize_to_tensor(&img, q[0], q[1], q[2], q[3], W, H, 127.0f, 1 / 128.0f, 0, nhwc);
        image_crop_resize_to_tensor_grey(&img, q[0], q[1], q[2], q[3], W, H, 0.0f, 1 / 256.0f, grey);
        for (int v = 0; v < H; v++)
            for (int u = 0; u < W; u++) {
                float rgb[3];
                for (int c = 0; c < 3; c++) {
                    rgb[c] = crop_reference(&img, q[0], q[1], q[2], q[3], W, H, u, v, c);
                    float want = (rgb[c] - 127.0f) / 128.0f;
                    assert_float_equal(nchw[(c * H + v) * W + u], want, 1e-5);
                    assert_float_equal(nhwc[(v * W + u) * 3 + c], want, 1e-5);
                }
                float luma = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
                assert_float_equal(grey[v * W + u], luma / 256.0f, 1e-5);
            }
    }
    image_rgb_free(&img);
}

static void test_crop_resize_wide_rows(void **state)
{
    (void)state;
    check_crop_wide_rows(97);
    check_crop_wide_rows(200);
    check_crop_wide_rows(600);
}

static void test_crop_resize_values(void **state)
{
    (void)state;
    image_rgb img;
    assert_int_equal(image_rgb_alloc(&img, 2, 1), IMAGE_OK);
    memcpy(img.pixels, "\x28\x00\x00\x64\x00\x00", 6); /* red 40, 100 */
    float out[12];
    /* 2x upscale of the whole image: OpenCV INTER_LINEAR gives 40, 55, 85, 100. */
    image_crop_resize_to_tensor(&img, 0, 0, 2, 1, 4, 1, 0.0f, 1.0f, 1, out);
    assert_float_equal(out[0], 40, 1e-5);
    assert_float_equal(out[1], 55, 1e-5);
    assert_float_equal(out[2], 85, 1e-5);
    assert_float_equal(out[3], 100, 1e-5);
    /* Crop reaching left of the image: centres at x = -1.5, -0.5 | 0.5, 1.5 (edges). */
    image_crop_resize_to_tensor(&img, -2, 0, 2, 1, 4, 1, 127.5f, 1 / 128.0f, 0, out);
    assert_float_equal(out[0], -127.5f / 128, 1e-6);
    assert_float_equal(out[3], -127.5f / 128, 1e-6);
    assert_float_equal(out[6], (40 - 127.5f) / 128, 1e-6);
    assert_float_equal(out[9], (100 - 127.5f) / 128, 1e-6);
    assert_float_equal(out[10], -127.5f / 128, 1e-6); /* a real green 0, not padding */
    image_rgb_free(&img);

    /* Same-size resize of a pattern is an exact copy, in both layouts. */
    make_pattern(&img, 5, 4);
    float nchw[60], nhwc[60], grey[20];
    image_crop_resize_to_tensor(&img, 0, 0, 5, 4, 5, 4, 0.0f, 1.0f, 1, nchw);
    image_crop_resize_to_tensor(&img, 0, 0, 5, 4, 5, 4, 0.0f, 1.0f, 0, nhwc);
    image_crop_resize_to_tensor_grey(&img, 0, 0, 5, 4, 5, 4, 0.0f, 1 / 256.0f, grey);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++) {
            const uint8_t *p = px(&img, x, y);
            for (int c = 0; c < 3; c++) {
                assert_float_equal(nchw[c * 20 + y * 5 + x], p[c], 0);
                assert_float_equal(nhwc[(y * 5 + x) * 3 + c], p[c], 0);
            }
            float luma = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
            assert_float_equal(grey[y * 5 + x], luma / 256, 1e-5);
        }
    /* 2x2 -> 1x1 over the top-left block samples its centre: the 4-pixel mean. */
    image_crop_resize_to_tensor(&img, 0, 0, 2, 2, 1, 1, 0.0f, 1.0f, 1, out);
    assert_float_equal(out[0], (1 + 11 + 1 + 11) / 4.0f, 1e-5);
    /* Empty rectangle: all padding. */
    image_crop_resize_to_tensor(&img, 3, 3, 3, 3, 2, 1, 10.0f, 1.0f, 1, out);
    for (int i = 0; i < 6; i++) assert_float_equal(out[i], -10.0f, 0);
    image_rgb_free(&img);
}

static void test_rotate_flip(void **state)
{
    (void)state;
    image_rgb img, r, tmp;
    make_pattern(&img, 3, 2);
    assert_int_equal(image_rgb_rotate(&img, 90, &r), IMAGE_OK);
    assert_int_equal(r.width, 2);
    assert_int_equal(r.height, 3);
    /* Clockwise: the bottom-left pixel becomes the top-left. */
    assert_memory_equal(px(&r, 0, 0), px(&img, 0, 1), 3);
    assert_memory_equal(px(&r, 1, 0), px(&img, 0, 0), 3);
    for (int k = 0; k < 3; k++) { /* four quarter turns: back to the start */
        assert_int_equal(image_rgb_rotate(&r, 90, &tmp), IMAGE_OK);
        image_rgb_free(&r);
        r = tmp;
    }
    assert_memory_equal(r.pixels, img.pixels, 18);
    image_rgb_free(&r);

    assert_int_equal(image_rgb_rotate(&img, 180, &r), IMAGE_OK);
    assert_memory_equal(px(&r, 0, 0), px(&img, 2, 1), 3);
    image_rgb_free(&r);
    assert_int_equal(image_rgb_rotate(&img, 270, &r), IMAGE_OK);
    assert_memory_equal(px(&r, 0, 0), px(&img, 2, 0), 3);
    image_rgb_free(&r);
    assert_int_equal(image_rgb_rotate(&img, 45, &r), IMAGE_ERR_INVALID);

    assert_int_equal(image_rgb_flip_horizontal(&img, &r), IMAGE_OK);
    assert_memory_equal(px(&r, 0, 1), px(&img, 2, 1), 3);
    assert_int_equal(image_rgb_flip_horizontal(&r, &tmp), IMAGE_OK);
    assert_memory_equal(tmp.pixels, img.pixels, 18);
    image_rgb_free(&tmp);
    image_rgb_free(&r);

    for (int o = 1; o <= 8; o++) {
        assert_int_equal(image_rgb_orient(&img, o, &r), IMAGE_OK);
        assert_oriented(&img, &r, o);
        image_rgb_free(&r);
    }
    image_rgb_free(&img);
}

static void test_quality_measures(void **state)
{
    (void)state;
    image_rgb img;
    assert_int_equal(image_rgb_alloc(&img, 6, 6), IMAGE_OK);
    memset(img.pixels, 90, 6 * 6 * 3);
    assert_float_equal(image_laplacian_variance(&img, 0, 0, 6, 6), 0.0, 0);
    assert_float_equal(image_mean_brightness(&img, 0, 0, 6, 6), 90.0, 1e-9);
    /* One-pixel checkerboard: Laplacian is +-1020 on the 4x4 interior, 8 of each. */
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++) memset(img.pixels + (y * 6 + x) * 3, (x + y) % 2 ? 255 : 0, 3);
    assert_float_equal(image_laplacian_variance(&img, 0, 0, 6, 6), 1020.0 * 1020.0, 1e-6);
    assert_float_equal(image_mean_brightness(&img, 0, 0, 6, 6), 127.5, 1e-9);
    assert_float_equal(image_mean_brightness(&img, -10, -10, 1, 1), 0.0, 0); /* clipped */
    assert_float_equal(image_mean_brightness(&img, 4, 4, 2, 2), 0.0, 0);     /* empty */
    image_rgb_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_lfw_jpeg),
        cmocka_unit_test(test_decode_png_and_webp),
        cmocka_unit_test(test_png_alpha_composites_on_white),
        cmocka_unit_test(test_box_downscale_for_png),
        cmocka_unit_test(test_dct_scaled_decode),
        cmocka_unit_test(test_exif_orientation_jpeg),
        cmocka_unit_test(test_exif_orientation_png),
        cmocka_unit_test(test_exif_orientation_webp),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_mutations_fail_cleanly),
        cmocka_unit_test(test_limits_reject_before_allocating),
        cmocka_unit_test(test_jpeg_encode_round_trip),
        cmocka_unit_test(test_similarity_recovers_transform),
        cmocka_unit_test(test_warp_affine_values),
        cmocka_unit_test(test_warp_affine_wide_rows),
        cmocka_unit_test(test_arcface_alignment_of_real_face),
        cmocka_unit_test(test_crop_resize_values),
        cmocka_unit_test(test_crop_resize_wide_rows),
        cmocka_unit_test(test_rotate_flip),
        cmocka_unit_test(test_quality_measures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
