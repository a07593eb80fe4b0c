/* Our own decoder for the JPEGs that phones and browsers write (baseline Huffman,
 * 8-bit, grey or YCbCr 4:2:0 / 4:2:2 / 4:4:4, one interleaved scan), at 1/2, 1/4 and
 * 1/8 scale, giving exactly the pixels libjpeg-turbo's tjDecompress2(TJPF_RGB) gives.
 *
 * Why not libjpeg-turbo alone: at these scales it zeroes and inverse-transforms every
 * block in full, most of which hold only a DC term, and walks its generic module chain
 * per MCU; on a 2-megapixel photo that is a third of CreateFace.
 *
 * It declines (JPEG_SCALED_DECLINED) anything else and anything the least unusual:
 * other codings or samplings, markers it does not expect, a bad Huffman code, data
 * that ends early, stray bytes. The caller then decodes with libjpeg-turbo, whose
 * answer (pixels, warning or error) is the reference. So this decoder never accepts
 * what libjpeg-turbo would refuse, and never refuses what it would accept. */
#ifndef FACE_JPEG_SCALED_H
#define FACE_JPEG_SCALED_H

#include <stddef.h>
#include <stdint.h>

enum {
    JPEG_SCALED_OK = 0,
    JPEG_SCALED_DECLINED = 1, /* not ours to decode: use libjpeg-turbo */
    JPEG_SCALED_NOMEM = -1,
};

/* Decodes data at 1/denom (2, 4 or 8) into rgb, out_w x out_h x 3 bytes, which must be
 * ceil(width / denom) x ceil(height / denom) of the JPEG's frame (else declined). The
 * EXIF orientation is not applied. Reads only data[0, len). Thread-safe. */
int jpeg_scaled_decode(const uint8_t *data, size_t len, int denom, uint8_t *rgb, int out_w,
                       int out_h);

#endif
