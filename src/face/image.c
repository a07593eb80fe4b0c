/* Image decoding and encoding for the face pipeline (see image.h for the contract).
 *
 * Order of work in image_decode, chosen so that hostile input costs little:
 *   1. byte limit, 2. magic-byte sniff, 3. header dimensions against the pixel limit,
 *   4. only then allocate and decode, 5. EXIF orientation on the (possibly scaled)
 *   result, which is the smallest raster we will ever hold.
 * Each format's library is driven through its in-memory API; none of them gets a
 * global handle, so the layer is thread-safe without locks. */
#include "face/image.h"
#include "face/jpeg_scaled.h"

#include "face/geometry.h"

#include <libexif/exif-data.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>

/* An EXIF block bigger than this is not a phone's metadata; we ignore it rather than
 * hand it to libexif. JPEG's APP1 cannot exceed 64 KiB anyway. */
#define EXIF_MAX_BYTES (256u << 10)

static const uint8_t EXIF_HEADER[6] = {'E', 'x', 'i', 'f', 0, 0};

/* ---- small helpers ----------------------------------------------------------- */

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int image_rgb_alloc(image_rgb *img, int width, int height)
{
    if (!img) return IMAGE_ERR_INVALID;
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0) return IMAGE_ERR_INVALID;
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE) return IMAGE_ERR_TOO_LARGE;
    img->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!img->pixels) return IMAGE_ERR_NOMEM;
    img->width = width;
    img->height = height;
    return IMAGE_OK;
}

void image_rgb_free(image_rgb *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

int image_grey_alloc(image_grey *img, int width, int height)
{
    if (!img) return IMAGE_ERR_INVALID;
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0) return IMAGE_ERR_INVALID;
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE) return IMAGE_ERR_TOO_LARGE;
    img->pixels = malloc((size_t)width * (size_t)height);
    if (!img->pixels) return IMAGE_ERR_NOMEM;
    img->width = width;
    img->height = height;
    return IMAGE_OK;
}

void image_grey_free(image_grey *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

int image_rgb_to_grey(const image_rgb *in, image_grey *out)
{
    if (!in || !in->pixels) return IMAGE_ERR_INVALID;
    int rc = image_grey_alloc(out, in->width, in->height);
    if (rc) return rc;
    size_t n = (size_t)in->width * (size_t)in->height;
    const uint8_t *s = in->pixels;
    /* libjpeg's fixed-point BT.601 weights (they sum to 65536), so a grey JPEG
     * decode and an RGB decode + this conversion agree. */
    for (size_t i = 0; i < n; i++, s += 3)
        out->pixels[i] = (uint8_t)((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 32768u) >> 16);
    return IMAGE_OK;
}

image_format image_sniff(const uint8_t *data, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!data) return IMAGE_FORMAT_UNKNOWN;
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return IMAGE_FORMAT_JPEG;
    if (len >= 8 && memcmp(data, png_sig, 8) == 0) return IMAGE_FORMAT_PNG;
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return IMAGE_FORMAT_WEBP;
    return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(image_format fmt)
{
    switch (fmt) {
    case IMAGE_FORMAT_JPEG: return "JPEG";
    case IMAGE_FORMAT_PNG: return "PNG";
    case IMAGE_FORMAT_WEBP: return "WebP";
    default: return "unknown";
    }
}

const char *image_strerror(int code)
{
    switch (code) {
    case IMAGE_OK: return "success";
    case IMAGE_ERR_FORMAT: return "unsupported image format";
    case IMAGE_ERR_CORRUPT: return "corrupt or truncated image data";
    case IMAGE_ERR_TOO_LARGE: return "image too large";
    case IMAGE_ERR_NOMEM: return "out of memory";
    case IMAGE_ERR_INVALID: return "invalid argument";
    default: return "unknown image error";
    }
}

/* ---- EXIF orientation ------------------------------------------------------------ */

/* Orientation (1-8) from an "Exif\0\0"-prefixed block; 1 when absent or unreadable,
 * because a photo with broken metadata is still a photo. */
static int exif_block_orientation(const uint8_t *block, size_t len)
{
    if (len < sizeof EXIF_HEADER + 8 || len > EXIF_MAX_BYTES) return 1;
    ExifData *ed = exif_data_new();
    if (!ed) return 1;
    /* Read-only use: do not let libexif "fix" (add or drop) entries. */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, block, (unsigned int)len);
    int orientation = 1;
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(ed));
        if (v >= 1 && v <= 8) orientation = v;
    }
    exif_data_unref(ed);
    return orientation;
}

/* PNG eXIf and WebP EXIF chunks hold bare TIFF data; libexif wants the JPEG-style
 * "Exif\0\0" prefix in front of it. */
static int exif_tiff_orientation(const uint8_t *tiff, size_t len)
{
    if (len >= sizeof EXIF_HEADER && memcmp(tiff, EXIF_HEADER, sizeof EXIF_HEADER) == 0)
        return exif_block_orientation(tiff, len);
    if (len + sizeof EXIF_HEADER > EXIF_MAX_BYTES) return 1;
    uint8_t *block = malloc(len + sizeof EXIF_HEADER);
    if (!block) return 1;
    memcpy(block, EXIF_HEADER, sizeof EXIF_HEADER);
    memcpy(block + sizeof EXIF_HEADER, tiff, len);
    int orientation = exif_block_orientation(block, len + sizeof EXIF_HEADER);
    free(block);
    return orientation;
}

/* Walks JPEG marker segments up to the first scan, looking for an Exif APP1. */
static int jpeg_orientation(const uint8_t *d, size_t len)
{
    size_t pos = 2;
    while (pos + 4 <= len) {
        if (d[pos] != 0xff) return 1;
        uint8_t marker = d[pos + 1];
        if (marker == 0xff) { pos++; continue; } /* fill byte */
        if (marker == 0xd9 || marker == 0xda) return 1; /* EOI / SOS: no more headers */
        if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { pos += 2; continue; }
        size_t seg = be16(d + pos + 2);
        if (seg < 2 || pos + 2 + seg > len) return 1;
        const uint8_t *payload = d + pos + 4;
        size_t plen = seg - 2;
        if (marker == 0xe1 && plen >= sizeof EXIF_HEADER &&
            memcmp(payload, EXIF_HEADER, sizeof EXIF_HEADER) == 0)
            return exif_block_orientation(payload, plen);
        pos += 2 + seg;
    }
    return 1;
}

static int png_orientation(const uint8_t *d, size_t len)
{
    size_t pos = 8;
    while (pos + 12 <= len) {
        size_t clen = be32(d + pos);
        if (clen > len - pos - 12) return 1;
        const uint8_t *type = d + pos + 4;
        if (memcmp(type, "eXIf", 4) == 0) return exif_tiff_orientation(d + pos + 8, clen);
        if (memcmp(type, "IEND", 4) == 0) return 1;
        pos += 12 + clen;
    }
    return 1;
}

static int webp_orientation(const uint8_t *d, size_t len)
{
    size_t pos = 12;
    while (pos + 8 <= len) {
        size_t clen = le32(d + pos + 4);
        if (clen > len - pos - 8) return 1;
        if (memcmp(d + pos, "EXIF", 4) == 0) return exif_tiff_orientation(d + pos + 8, clen);
        pos += 8 + clen + (clen & 1); /* RIFF chunks are padded to even sizes */
    }
    return 1;
}

static int orientation_of(image_format fmt, const uint8_t *d, size_t len)
{
    switch (fmt) {
    case IMAGE_FORMAT_JPEG: return jpeg_orientation(d, len);
    case IMAGE_FORMAT_PNG: return png_orientation(d, len);
    case IMAGE_FORMAT_WEBP: return webp_orientation(d, len);
    default: return 1;
    }
}

/* ---- header dimensions ---------------------------------------------------------- */

static int check_dims(int w, int h, long max_pixels, const char *fmt_name, char *err,
                      size_t err_len)
{
    if (w <= 0 || h <= 0) {
        set_err(err, err_len, "corrupt or truncated %s data: bad dimensions %dx%d",
                fmt_name, w, h);
        return IMAGE_ERR_CORRUPT;
    }
    long long pixels = (long long)w * h;
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || pixels > max_pixels) {
        set_err(err, err_len, "image is %dx%d (%lld pixels), over the limit of %ld pixels",
                w, h, pixels, max_pixels);
        return IMAGE_ERR_TOO_LARGE;
    }
    return IMAGE_OK;
}

static int jpeg_header(const uint8_t *d, size_t len, int *w, int *h, int *colorspace,
                       char *err, size_t err_len)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        set_err(err, err_len, "out of memory creating JPEG decoder");
        return IMAGE_ERR_NOMEM;
    }
    int subsamp = 0, rc = IMAGE_OK;
    if (tjDecompressHeader3(tj, d, (unsigned long)len, w, h, &subsamp, colorspace) != 0) {
        set_err(err, err_len, "corrupt or truncated JPEG data: %s", tjGetErrorStr2(tj));
        rc = IMAGE_ERR_CORRUPT;
    } else if (*w <= 0 || *h <= 0) {
        /* libjpeg's memory source fakes an EOI at the end of data, so a header cut
         * short "succeeds" with no frame. */
        set_err(err, err_len, "corrupt or truncated JPEG data: no frame header");
        rc = IMAGE_ERR_CORRUPT;
    }
    tjDestroy(tj);
    return rc;
}

/* PNG's IHDR is always the first chunk at a fixed offset. */
static int png_header(const uint8_t *d, size_t len, int *w, int *h)
{
    if (len < 24 || memcmp(d + 12, "IHDR", 4) != 0) return IMAGE_ERR_CORRUPT;
    uint32_t pw = be32(d + 16), ph = be32(d + 20);
    if (pw == 0 || ph == 0 || pw > 0x7fffffffu || ph > 0x7fffffffu) return IMAGE_ERR_CORRUPT;
    *w = (int)pw;
    *h = (int)ph;
    return IMAGE_OK;
}

int image_probe(const uint8_t *data, size_t len, int *w, int *h, int *orientation)
{
    image_format fmt = image_sniff(data, len);
    int pw = 0, ph = 0, cs = 0, rc;
    switch (fmt) {
    case IMAGE_FORMAT_JPEG: rc = jpeg_header(data, len, &pw, &ph, &cs, NULL, 0); break;
    case IMAGE_FORMAT_PNG: rc = png_header(data, len, &pw, &ph); break;
    case IMAGE_FORMAT_WEBP:
        rc = WebPGetInfo(data, len, &pw, &ph) ? IMAGE_OK : IMAGE_ERR_CORRUPT;
        break;
    default: return IMAGE_ERR_FORMAT;
    }
    if (rc) return rc;
    int o = orientation_of(fmt, data, len);
    int swap = o >= 5; /* orientations 5-8 turn the picture a quarter */
    if (w) *w = swap ? ph : pw;
    if (h) *h = swap ? pw : ph;
    if (orientation) *orientation = o;
    return IMAGE_OK;
}

/* ---- per-format decoders: full header check, then allocate, then decode --------- */

static int decode_jpeg(const uint8_t *d, size_t len, long max_pixels, int denom,
                       image_rgb *out, char *err, size_t err_len)
{
    int w = 0, h = 0, cs = 0;
    int rc = jpeg_header(d, len, &w, &h, &cs, err, err_len);
    if (rc) return rc;
    if ((rc = check_dims(w, h, max_pixels, "JPEG", err, err_len))) return rc;
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        set_err(err, err_len, "unsupported image format: CMYK JPEG");
        return IMAGE_ERR_FORMAT;
    }
    /* 1/denom is always among libjpeg-turbo's scaling factors (n/8 for n = 1..16). */
    tjscalingfactor sf = {1, denom};
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    if ((rc = image_rgb_alloc(out, sw, sh))) {
        set_err(err, err_len, "out of memory for a %dx%d image", sw, sh);
        return rc;
    }
    /* Our scaled decoder for the common files; anything it declines (including every
     * malformed file) goes to libjpeg-turbo, whose verdict stands. */
    if (denom > 1) {
        int fast = jpeg_scaled_decode(d, len, denom, out->pixels, sw, sh);
        if (fast == JPEG_SCALED_OK) return IMAGE_OK;
        if (fast == JPEG_SCALED_NOMEM) {
            image_rgb_free(out);
            set_err(err, err_len, "out of memory decoding a %dx%d image", sw, sh);
            return IMAGE_ERR_NOMEM;
        }
    }
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        image_rgb_free(out);
        set_err(err, err_len, "out of memory creating JPEG decoder");
        return IMAGE_ERR_NOMEM;
    }
    /* LIMITSCANS: a progressive JPEG with thousands of tiny scans is a CPU bomb that
     * the pixel limit cannot see. */
    if (tjDecompress2(tj, d, (unsigned long)len, out->pixels, sw, 0, sh, TJPF_RGB,
                      TJFLAG_LIMITSCANS) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        /* Stray bytes between segments are common from some encoders and harmless;
         * every other warning (premature end, bad Huffman code...) means some pixels
         * are invented, which a biometric template must not be built from. */
        int benign = tjGetErrorCode(tj) == TJERR_WARNING && strstr(msg, "extraneous bytes");
        if (!benign) {
            set_err(err, err_len, "corrupt or truncated JPEG data: %s", msg);
            rc = IMAGE_ERR_CORRUPT;
            image_rgb_free(out);
        }
    }
    tjDestroy(tj);
    return rc;
}

static int decode_png(const uint8_t *d, size_t len, long max_pixels, image_rgb *out,
                      char *err, size_t err_len)
{
    /* Our own IHDR check first: libpng reads on to the first IDAT before it reports
     * the size, and a bomb should cost us nothing beyond 24 bytes. */
    int w = 0, h = 0;
    if (png_header(d, len, &w, &h) != IMAGE_OK) {
        set_err(err, err_len, "corrupt or truncated PNG data: no IHDR chunk");
        return IMAGE_ERR_CORRUPT;
    }
    int rc = check_dims(w, h, max_pixels, "PNG", err, err_len);
    if (rc) return rc;
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, d, len)) {
        set_err(err, err_len, "corrupt or truncated PNG data: %s", pi.message);
        png_image_free(&pi);
        return IMAGE_ERR_CORRUPT;
    }
    rc = check_dims((int)pi.width, (int)pi.height, max_pixels, "PNG", err, err_len);
    if (!rc && (rc = image_rgb_alloc(out, (int)pi.width, (int)pi.height)))
        set_err(err, err_len, "out of memory for a %ux%u image", pi.width, pi.height);
    if (rc) {
        png_image_free(&pi);
        return rc;
    }
    pi.format = PNG_FORMAT_RGB;
    png_color white = {255, 255, 255};
    if (!png_image_finish_read(&pi, &white, out->pixels, 0, NULL)) {
        set_err(err, err_len, "corrupt or truncated PNG data: %s", pi.message);
        image_rgb_free(out);
        rc = IMAGE_ERR_CORRUPT;
    }
    png_image_free(&pi);
    return rc;
}

/* RGBA -> RGB over white, in place: the write index never passes the read index. */
static void composite_rgba_on_white(uint8_t *px, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = px + 4 * i;
        unsigned a = s[3];
        for (int c = 0; c < 3; c++)
            px[3 * i + c] = (uint8_t)((s[c] * a + 255u * (255u - a) + 127u) / 255u);
    }
}

static int decode_webp(const uint8_t *d, size_t len, long max_pixels, image_rgb *out,
                       char *err, size_t err_len)
{
    WebPBitstreamFeatures f;
    VP8StatusCode st = WebPGetFeatures(d, len, &f);
    if (st != VP8_STATUS_OK) {
        set_err(err, err_len, "corrupt or truncated WebP data: bad header (status %d)", st);
        return st == VP8_STATUS_UNSUPPORTED_FEATURE ? IMAGE_ERR_FORMAT : IMAGE_ERR_CORRUPT;
    }
    if (f.has_animation) {
        set_err(err, err_len, "unsupported image format: animated WebP");
        return IMAGE_ERR_FORMAT;
    }
    int rc = check_dims(f.width, f.height, max_pixels, "WebP", err, err_len);
    if (rc) return rc;
    size_t n = (size_t)f.width * (size_t)f.height;
    int bpp = f.has_alpha ? 4 : 3;
    uint8_t *px = malloc(n * bpp);
    if (!px) {
        set_err(err, err_len, "out of memory for a %dx%d image", f.width, f.height);
        return IMAGE_ERR_NOMEM;
    }
    uint8_t *ok = f.has_alpha
        ? WebPDecodeRGBAInto(d, len, px, n * 4, 4 * f.width)
        : WebPDecodeRGBInto(d, len, px, n * 3, 3 * f.width);
    if (!ok) {
        free(px);
        set_err(err, err_len, "corrupt or truncated WebP data: decoding failed");
        return IMAGE_ERR_CORRUPT;
    }
    if (f.has_alpha) {
        composite_rgba_on_white(px, n);
        uint8_t *shrunk = realloc(px, n * 3);
        if (shrunk) px = shrunk; /* keeping the larger block on failure is harmless */
    }
    out->width = f.width;
    out->height = f.height;
    out->pixels = px;
    return IMAGE_OK;
}

/* Mean of each denom x denom block (partial blocks at the right/bottom edges average
 * only the pixels they hold), giving the same ceil(side/denom) size as JPEG scaling. */
static int box_downscale(const image_rgb *in, int denom, image_rgb *out)
{
    int ow = (in->width + denom - 1) / denom, oh = (in->height + denom - 1) / denom;
    int rc = image_rgb_alloc(out, ow, oh);
    if (rc) return rc;
    for (int oy = 0; oy < oh; oy++) {
        int y0 = oy * denom, y1 = y0 + denom < in->height ? y0 + denom : in->height;
        for (int ox = 0; ox < ow; ox++) {
            int x0 = ox * denom, x1 = x0 + denom < in->width ? x0 + denom : in->width;
            unsigned sum[3] = {0, 0, 0}, count = (unsigned)((x1 - x0) * (y1 - y0));
            for (int y = y0; y < y1; y++) {
                const uint8_t *s = in->pixels + ((size_t)y * in->width + x0) * 3;
                for (int x = x0; x < x1; x++, s += 3) {
                    sum[0] += s[0];
                    sum[1] += s[1];
                    sum[2] += s[2];
                }
            }
            uint8_t *o = out->pixels + ((size_t)oy * ow + ox) * 3;
            for (int c = 0; c < 3; c++) o[c] = (uint8_t)((sum[c] + count / 2) / count);
        }
    }
    return IMAGE_OK;
}

/* Swap in a derived image only once it exists, so a failure leaves *img intact. */
static int replace_with_scaled(image_rgb *img, int denom)
{
    image_rgb scaled;
    int rc = box_downscale(img, denom, &scaled);
    if (rc) return rc;
    image_rgb_free(img);
    *img = scaled;
    return IMAGE_OK;
}

static int replace_with_oriented(image_rgb *img, int orientation)
{
    image_rgb upright;
    int rc = image_rgb_orient(img, orientation, &upright);
    if (rc) return rc;
    image_rgb_free(img);
    *img = upright;
    return IMAGE_OK;
}

int image_decode(const uint8_t *data, size_t len, const image_limits *lim,
                 int scale_denom, image_rgb *out, char *err, size_t err_len)
{
    if (err && err_len) err[0] = '\0';
    if (!out) return IMAGE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!data || (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 &&
                  scale_denom != 8)) {
        set_err(err, err_len, "invalid arguments to image_decode");
        return IMAGE_ERR_INVALID;
    }
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : IMAGE_DEFAULT_MAX_BYTES;
    long max_pixels = lim && lim->max_pixels > 0 ? lim->max_pixels : IMAGE_DEFAULT_MAX_PIXELS;
    if (len > max_bytes) {
        set_err(err, err_len, "image is %zu bytes, over the limit of %zu bytes", len,
                max_bytes);
        return IMAGE_ERR_TOO_LARGE;
    }
    image_format fmt = image_sniff(data, len);
    int rc;
    switch (fmt) {
    case IMAGE_FORMAT_JPEG:
        rc = decode_jpeg(data, len, max_pixels, scale_denom, out, err, err_len);
        break;
    case IMAGE_FORMAT_PNG: rc = decode_png(data, len, max_pixels, out, err, err_len); break;
    case IMAGE_FORMAT_WEBP: rc = decode_webp(data, len, max_pixels, out, err, err_len); break;
    default:
        set_err(err, err_len, "unsupported image format (expected JPEG, PNG or WebP)");
        return IMAGE_ERR_FORMAT;
    }
    if (rc) return rc;
    if (fmt != IMAGE_FORMAT_JPEG && scale_denom > 1)
        rc = replace_with_scaled(out, scale_denom);
    int orientation = orientation_of(fmt, data, len);
    if (!rc && orientation != 1) rc = replace_with_oriented(out, orientation);
    if (rc) {
        image_rgb_free(out);
        set_err(err, err_len, "out of memory while scaling or rotating the image");
    }
    return rc;
}

int image_decode_grey(const uint8_t *data, size_t len, const image_limits *lim,
                      int scale_denom, image_grey *out, char *err, size_t err_len)
{
    if (!out) return IMAGE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    image_rgb rgb;
    int rc = image_decode(data, len, lim, scale_denom, &rgb, err, err_len);
    if (rc) return rc;
    rc = image_rgb_to_grey(&rgb, out);
    if (rc) set_err(err, err_len, "out of memory converting to grey");
    image_rgb_free(&rgb);
    return rc;
}

/* ---- encoding -------------------------------------------------------------------- */

int image_encode_jpeg(const image_rgb *img, int quality, uint8_t **out, size_t *out_len)
{
    if (!out || !out_len) return IMAGE_ERR_INVALID;
    *out = NULL;
    *out_len = 0;
    if (!img || !img->pixels || img->width <= 0 || img->height <= 0 || quality < 1 ||
        quality > 100)
        return IMAGE_ERR_INVALID;
    tjhandle tj = tjInitCompress();
    if (!tj) return IMAGE_ERR_NOMEM;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    int rc = IMAGE_OK;
    if (tjCompress2(tj, img->pixels, img->width, 0, img->height, TJPF_RGB, &buf, &size,
                    TJSAMP_420, quality, 0) != 0) {
        rc = IMAGE_ERR_NOMEM; /* inputs were validated; what is left is allocation */
    } else {
        /* Hand back plain malloc memory so callers never need to know about tjFree. */
        *out = malloc(size);
        if (*out) {
            memcpy(*out, buf, size);
            *out_len = size;
        } else {
            rc = IMAGE_ERR_NOMEM;
        }
    }
    tjFree(buf);
    tjDestroy(tj);
    return rc;
}
