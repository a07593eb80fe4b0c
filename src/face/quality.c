/* Face quality on the spec's scale from the aligned face and the landmarks. Pure
 * functions (no model), so they are testable on any tensor. */
#include <math.h>

#include "face/pipeline_internal.h"

/* Variance of the 4-neighbour Laplacian of luma (0-255) over the inner face of the
 * aligned 112x112 tensor (eyes to chin). Measuring the aligned face rather than the
 * photo makes the number independent of image resolution, and a small face that had
 * to be upsampled correctly counts as blurred. */
static double aligned_sharpness(const float *t)
{
    const int n = FEAT_SIZE * FEAT_SIZE;
    double sum = 0, sum2 = 0;
    int count = 0;
    for (int y = 36; y < 100; y++)
        for (int x = 28; x < 84; x++) {
            double l[5];
            const int off[5][2] = {{0, 0}, {-1, 0}, {1, 0}, {0, -1}, {0, 1}};
            for (int k = 0; k < 5; k++) {
                int i = (y + off[k][1]) * FEAT_SIZE + x + off[k][0];
                l[k] = 128.0 * (0.299 * t[i] + 0.587 * t[n + i] + 0.114 * t[2 * n + i]) + 127.0;
            }
            double lap = l[1] + l[2] + l[3] + l[4] - 4 * l[0];
            sum += lap, sum2 += lap * lap, count++;
        }
    double mean = sum / count;
    return sum2 / count - mean * mean;
}

static float clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* Mean luma (0-255) of the same inner face region. */
static double aligned_brightness(const float *t)
{
    const int n = FEAT_SIZE * FEAT_SIZE;
    double sum = 0;
    int count = 0;
    for (int y = 36; y < 100; y++)
        for (int x = 28; x < 84; x++) {
            int i = y * FEAT_SIZE + x;
            sum += 128.0 * (0.299 * t[i] + 0.587 * t[n + i] + 0.114 * t[2 * n + i]) + 127.0;
            count++;
        }
    return sum / count;
}

/* Quality on the spec's scale (> 100 good, negative = send again):
 *   quality = 330 * det * eyes * sharp * exposure * pose - 30
 * each factor in [0, 1]:
 *   det      detection score, 0 at 0.5 rising to 1 at 0.9;
 *   eyes     inter-eye distance in original pixels / 60 (the spec's requirement);
 *   sharp    Laplacian variance of the aligned face / QUALITY_SHARP_GOOD;
 *   exposure 1 for a face mean luma in 70..190, falling to 0 at 20 and 245;
 *   pose     yaw (nose offset from the eye midpoint along the eye line, in eye
 *            distances): 1 up to 0.15 (LFW's 90th percentile is 0.2), 0 at 0.75
 *            (profile); times roll (eye-line angle): 1 up to 30 degrees, 0 at 75.
 *            Alignment removes roll, so only an extreme tilt, which the landmark
 *            model handles badly, costs quality.
 * A frontal, sharp, well-lit face with 60+ px between the eyes scores 300; a factor
 * near 0 (eyes under ~6 px, dark, blurred, profile) makes it negative. The sharpness
 * reference (60) is about the 10th percentile of LFW's aligned faces (median 150),
 * so ordinary photos are not penalised and only clearly blurred ones are. A typical
 * LFW image (40 px between the eyes) scores about 190. */
#define QUALITY_SHARP_GOOD 60.0
float face_quality(const float *aligned, float det_score, float eye_dist_px, const float *five)
{
    float det = clamp01((det_score - 0.5f) / 0.4f);
    float eyes = clamp01(eye_dist_px / 60.0f);
    float sharp = clamp01((float)(aligned_sharpness(aligned) / QUALITY_SHARP_GOOD));
    double b = aligned_brightness(aligned);
    float expo = b < 70 ? clamp01((float)(b - 20) / 50.0f)
                        : b > 190 ? clamp01((float)(245 - b) / 55.0f) : 1.0f;
    float ex = five[2] - five[0], ey = five[3] - five[1];
    float d = sqrtf(ex * ex + ey * ey);
    float roll = fabsf(atan2f(ey, ex)) * 57.2958f;
    float mid_x = 0.5f * (five[0] + five[2]), mid_y = 0.5f * (five[1] + five[3]);
    /* Nose offset along the eye line, so roll does not read as yaw. */
    float yaw = d > 0 ? fabsf(((five[4] - mid_x) * ex + (five[5] - mid_y) * ey) / d) / d : 1;
    float pose = clamp01(1.0f - (yaw - 0.15f) / 0.6f) * clamp01(1.0f - (roll - 30.0f) / 45.0f);
    return 330.0f * det * eyes * sharp * expo * pose - 30.0f;
}
