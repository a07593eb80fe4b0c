/* Image layer of the face pipeline: turns untrusted bytes (JPEG, PNG, WebP) into an
 * upright RGB8 raster, and encodes rasters back to JPEG.
 *
 * Everything a client sends passes through image_decode() once, at the edge: it sniffs
 * the format from magic bytes, rejects decompression bombs from the header before the
 * pixel buffer is allocated, decodes, and applies the EXIF orientation so every later
 * stage (detection, alignment, quality) sees the picture the way a person would.
 *
 * No global state: every call creates and frees its own decoder handles, so the
 * functions are safe to call from any number of worker threads at once. */
#ifndef FACE_IMAGE_H
#define FACE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Negative error codes; 0 is success. */
enum image_error {
    IMAGE_OK = 0,
    IMAGE_ERR_FORMAT = -1,    /* not JPEG/PNG/WebP, or a variant we do not decode */
    IMAGE_ERR_CORRUPT = -2,   /* corrupt or truncated data */
    IMAGE_ERR_TOO_LARGE = -3, /* bytes, pixels or a side over the limits */
    IMAGE_ERR_NOMEM = -4,     /* allocation failed */
    IMAGE_ERR_INVALID = -5,   /* bad argument from the caller (a bug, not bad input) */
};

typedef enum {
    IMAGE_FORMAT_UNKNOWN = 0,
    IMAGE_FORMAT_JPEG,
    IMAGE_FORMAT_PNG,
    IMAGE_FORMAT_WEBP,
} image_format;

/* Interleaved RGB8, row-major, stride = 3 * width, top row first. */
typedef struct {
    int width, height;
    uint8_t *pixels;
} image_rgb;

/* One byte per pixel (luma, BT.601 weights), stride = width. */
typedef struct {
    int width, height;
    uint8_t *pixels;
} image_grey;

/* Limits on untrusted input. A zero field means the default below. max_pixels is
 * checked against the dimensions in the header, before any scaling, because that is
 * what bounds the decoder's work. */
typedef struct {
    size_t max_bytes;
    long max_pixels;
} image_limits;

#define IMAGE_DEFAULT_MAX_BYTES ((size_t)32 << 20) /* 32 MiB */
#define IMAGE_DEFAULT_MAX_PIXELS 50000000L         /* 50 megapixels */
#define IMAGE_MAX_SIDE 65535                       /* JPEG's own limit, for all */

/* Allocates an uninitialised width x height raster. Returns 0 or IMAGE_ERR_*. */
int image_rgb_alloc(image_rgb *img, int width, int height);
/* Frees the pixels and zeroes the struct; safe on a zeroed or already freed image. */
void image_rgb_free(image_rgb *img);

int image_grey_alloc(image_grey *img, int width, int height);
void image_grey_free(image_grey *img);

/* Luma (0.299 R + 0.587 G + 0.114 B, rounded), as libjpeg computes it. */
int image_rgb_to_grey(const image_rgb *in, image_grey *out);

/* Format from the magic bytes alone. */
image_format image_sniff(const uint8_t *data, size_t len);
const char *image_format_name(image_format fmt);
/* Static English text for an IMAGE_ERR_* code. */
const char *image_strerror(int code);

/* Reads only the headers: width and height as displayed (i.e. swapped when the EXIF
 * orientation is 5-8) and the EXIF orientation (1-8, 1 when absent). Any out pointer
 * may be NULL. Returns 0 or IMAGE_ERR_FORMAT / IMAGE_ERR_CORRUPT. */
int image_probe(const uint8_t *data, size_t len, int *w, int *h, int *orientation);

/* Decodes data into out (which the caller frees with image_rgb_free), upright.
 *
 * lim may be NULL for the defaults. scale_denom is 1, 2, 4 or 8 and shrinks each side
 * to ceil(side / scale_denom): JPEG uses libjpeg-turbo's DCT scaling (for the common
 * files through our decoder, src/face/jpeg_scaled.c, which gives libjpeg-turbo's exact
 * pixels in 0.70-0.94 of its time), so a 1/4 decode of a large photo does a fraction of
 * the work; PNG and WebP are decoded in full and
 * then box-filtered (each output pixel is the mean of the scale_denom^2 block, or of
 * the part of it inside the image at the right and bottom edges). Either way a pixel
 * edge coordinate in the result times scale_denom is the same place in the full
 * image (only the last, partial row/column is narrower). Measured here on a
 * 1920x1280 photo with libjpeg-turbo alone: 5.1 ms full, 3.1 ms at 1/2, 2.6 ms at 1/4,
 * 2.1 ms at 1/8 (make bench-decode for ours).
 *
 * Alpha, when present, is composited onto white. Animated WebP and CMYK JPEG are
 * rejected (IMAGE_ERR_FORMAT). JPEG warnings other than stray bytes between segments
 * (premature end, bad Huffman code...) are IMAGE_ERR_CORRUPT, because libjpeg would
 * otherwise invent the missing pixels; progressive JPEGs are limited to 500 scans.
 * On error out is zeroed and err (if not NULL) gets a one-line reason, e.g.
 * "corrupt or truncated JPEG data: Premature end of JPEG file". */
int image_decode(const uint8_t *data, size_t len, const image_limits *lim,
                 int scale_denom, image_rgb *out, char *err, size_t err_len);

/* The same, into luma (for one-channel models and quality checks). */
int image_decode_grey(const uint8_t *data, size_t len, const image_limits *lim,
                      int scale_denom, image_grey *out, char *err, size_t err_len);

/* Encodes img as a baseline 4:2:0 JPEG of quality 1-100. On success *out is memory
 * from malloc() (release it with free()) holding *out_len bytes. */
int image_encode_jpeg(const image_rgb *img, int quality, uint8_t **out, size_t *out_len);

#endif
