/* image_probe + image_decode (JPEG, PNG, WebP, EXIF orientation) at the scales the
 * pipeline uses. Limits are smaller than the server's so one input stays fast. */
#include "fuzz_util.h"
#include "face/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    int w, h, orientation;
    image_probe(data, len, &w, &h, &orientation);
    image_limits lim = {.max_bytes = 1 << 20, .max_pixels = 4000000};
    char err[256];
    image_rgb rgb;
    int scale = len ? 1 << (data[len - 1] & 3) : 1;
    if (image_decode(data, len, &lim, scale, &rgb, err, sizeof err) == IMAGE_OK) {
        image_grey grey;
        if (image_rgb_to_grey(&rgb, &grey) == IMAGE_OK) image_grey_free(&grey);
        image_rgb_free(&rgb);
    }
    return 0;
}
