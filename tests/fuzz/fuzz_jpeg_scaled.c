/* Differential: our scaled JPEG decoder (src/face/jpeg_scaled.c) against
 * libjpeg-turbo. The first byte picks the scale (1/2, 1/4, 1/8), the rest is the
 * file. Whenever jpeg_scaled_decode accepts, tjDecompress2(TJPF_RGB, flags 0) must
 * succeed with no warning but "extraneous bytes" and give the same bytes; anything
 * else aborts. Frames over a megapixel are skipped so one input stays fast. */
#include "fuzz_util.h"
#include "face/jpeg_scaled.h"

#include <turbojpeg.h>

#define MAX_PIXELS 1000000L

/* Frame size from the first SOFn segment, for inputs whose header libjpeg-turbo
 * refuses (it may warn on a segment we skip): our decoder must decline those too. */
static int frame_size(const uint8_t *d, size_t len, int *w, int *h)
{
    for (size_t i = 2; i + 9 <= len; i++)
        if (d[i] == 0xFF && d[i + 1] >= 0xC0 && d[i + 1] <= 0xC3) {
            *h = d[i + 5] << 8 | d[i + 6];
            *w = d[i + 7] << 8 | d[i + 8];
            return *w > 0 && *h > 0;
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int denom = 2 << (data[0] % 3);
    const uint8_t *d = data + 1;
    size_t len = size - 1;
    tjhandle tj = tjInitDecompress();
    if (!tj) abort();
    int w = 0, h = 0, subsamp, colorspace;
    int header_ok = tjDecompressHeader3(tj, d, (unsigned long)len, &w, &h, &subsamp, &colorspace) == 0 &&
                    w > 0 && h > 0;
    if (!header_ok && !frame_size(d, len, &w, &h)) goto done;
    if ((long)w * h > MAX_PIXELS) goto done;
    int ow = (w + denom - 1) / denom, oh = (h + denom - 1) / denom;
    size_t n = (size_t)ow * oh * 3;
    uint8_t *ours = malloc(n), *theirs = malloc(n);
    if (!ours || !theirs) abort();
    if (jpeg_scaled_decode(d, len, denom, ours, ow, oh) == JPEG_SCALED_OK) {
        if (!header_ok) {
            fprintf(stderr, "accepted a file whose header libjpeg-turbo refuses: %s\n", tjGetErrorStr2(tj));
            abort();
        }
        if (tjDecompress2(tj, d, (unsigned long)len, theirs, ow, 0, oh, TJPF_RGB, 0) != 0 &&
            !(tjGetErrorCode(tj) == TJERR_WARNING && strstr(tjGetErrorStr2(tj), "extraneous bytes"))) {
            fprintf(stderr, "accepted at 1/%d, libjpeg-turbo: %s\n", denom, tjGetErrorStr2(tj));
            abort();
        }
        for (size_t i = 0; i < n; i++)
            if (ours[i] != theirs[i]) {
                fprintf(stderr, "1/%d %dx%d: byte %zu is %d, libjpeg-turbo %d\n", denom, ow, oh, i, ours[i],
                        theirs[i]);
                abort();
            }
    }
    free(ours);
    free(theirs);
done:
    tjDestroy(tj);
    return 0;
}
