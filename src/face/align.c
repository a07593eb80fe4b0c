/* Landmarks (fr_landmark, 68 points), the 5-point similarity alignment to the
 * ArcFace 112x112 template, the embedding (fr_feature, optionally with the mirrored
 * face), and the mapping of coordinates back to the original image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/geometry.h"
#include "face/pipeline_internal.h"

/* 68 landmarks (point coordinates in img) from a grey crop around the box. The
 * crop is the detector box scaled by LMK_EXPAND about its centre (a little margin
 * helps the model; values measured on LFW below). */
/* Measured on LFW 10-fold (bench_accuracy, mirrored embeddings): crop = the box
 * scaled by 1.0: 98.92%, 1.1: 99.08%, 1.2: 98.92%; a square crop of the larger
 * side x 1.1: 98.97%. Tried and dropped: x1.05 99.07%, x1.15 98.98%, x0.9 98.97%,
 * a second pass on a crop re-centred on the first pass's landmark centroid 98.92%,
 * averaging with the landmarks of the mirrored crop 99.02%. */
#define LMK_EXPAND 1.1f
int face_landmarks_68(face_worker *w, const image_rgb *img, const det_box *b, float *pts)
{
    float cx = 0.5f * (b->x0 + b->x1), cy = 0.5f * (b->y0 + b->y1);
    float bw = b->x1 - b->x0, bh = b->y1 - b->y0;
    float half_w = 0.5f * bw * LMK_EXPAND, half_h = 0.5f * bh * LMK_EXPAND;
    float x0 = cx - half_w, y0 = cy - half_h, cw = 2 * half_w, ch = 2 * half_h;
    float *in = nn_session_input(w->landmark, 0);
    image_crop_resize_to_tensor_grey(img, x0, y0, x0 + cw, y0 + ch, LMK_SIZE, LMK_SIZE, 0.0f,
                                     1.0f / 256.0f, in);
    if (nn_run(w->landmark) != NN_OK) return FACE_ERR_MODEL;
    const float *o = nn_session_output(w->landmark, 0);
    /* Outputs are fractions of the crop in edge coordinates; convert to points. */
    for (int i = 0; i < LMK_POINTS; i++) {
        pts[2 * i] = x0 + o[2 * i] * cw - 0.5f;
        pts[2 * i + 1] = y0 + o[2 * i + 1] * ch - 0.5f;
    }
    return FACE_OK;
}

static void mean_point(const float *pts, int from, int to, float *x, float *y)
{
    float sx = 0, sy = 0;
    for (int i = from; i <= to; i++) sx += pts[2 * i], sy += pts[2 * i + 1];
    *x = sx / (float)(to - from + 1);
    *y = sy / (float)(to - from + 1);
}

void face_five_points(const float *pts, float *five)
{
    mean_point(pts, 36, 41, &five[0], &five[1]);
    mean_point(pts, 42, 47, &five[2], &five[3]);
    five[4] = pts[2 * 30], five[5] = pts[2 * 30 + 1];
    five[6] = pts[2 * 48], five[7] = pts[2 * 48 + 1];
    five[8] = pts[2 * 54], five[9] = pts[2 * 54 + 1];
}

/* Mirrors a planar 3-channel square tensor left-right in place. */
static void mirror_tensor(float *t, int size)
{
    for (int row = 0; row < 3 * size; row++) {
        float *r = t + (size_t)row * size;
        for (int i = 0, j = size - 1; i < j; i++, j--) {
            float tmp = r[i];
            r[i] = r[j];
            r[j] = tmp;
        }
    }
}

static void l2_normalise(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < n; i++) v[i] *= inv;
}

/* Warps img into w->aligned (fr_feature's input: 112x112 RGB, (x-127)/128) with the
 * similarity that takes the five points onto the ArcFace template. */
int face_align(face_worker *w, const image_rgb *img, const float *five)
{
    float m[6];
    if (similarity_estimate(five, geometry_arcface_template_112, 5, m) != 0) return -1;
    image_warp_affine_to_tensor(img, m, FEAT_SIZE, FEAT_SIZE, 127.0f, 1.0f / 128.0f, 1,
                                w->aligned);
    return 0;
}

/* Embedding of the aligned face plus that of its mirror image, summed then
 * normalised: LFW 10-fold +0.06 points (99.08 vs 99.02 %, tools/bench_accuracy.c);
 * it costs a second fr_feature run (about 5 ms), so the server leaves it off
 * (opt->mirror_embedding) to stay within its latency target. */
int face_embed(face_worker *w, bool mirror, face_result *out)
{
    int dim = w->e->embedding_dim;
    float *in = nn_session_input(w->feature, 0);
    memcpy(in, w->aligned, sizeof w->aligned);
    if (nn_run(w->feature) != NN_OK) return FACE_ERR_MODEL;
    memcpy(out->embedding, nn_session_output(w->feature, 0), (size_t)dim * sizeof(float));
    out->embedding_dim = dim;
    if (!mirror) {
        l2_normalise(out->embedding, dim);
        return FACE_OK;
    }
    in = nn_session_input(w->feature, 0);
    memcpy(in, w->aligned, sizeof w->aligned);
    mirror_tensor(in, FEAT_SIZE);
    if (nn_run(w->feature) != NN_OK) return FACE_ERR_MODEL;
    const float *o = nn_session_output(w->feature, 0);
    for (int i = 0; i < dim; i++) out->embedding[i] += o[i];
    l2_normalise(out->embedding, dim);
    return FACE_OK;
}

/* Maps a position in the frame rotated clockwise by rot back to the upright image
 * of size W x H. off is 1 for points (pixel centres) and 0 for edge coordinates. */
static void unrotate(int rot, int W, int H, float off, float *x, float *y)
{
    float xr = *x, yr = *y;
    switch (rot) {
    case 90: *x = yr, *y = (float)H - off - xr; break;
    case 180: *x = (float)W - off - xr, *y = (float)H - off - yr; break;
    case 270: *x = (float)W - off - yr, *y = xr; break;
    default: break;
    }
}

void face_box_to_original(const det_box *b, int denom, int rot, int W, int H, float *box)
{
    float xa = b->x0 * denom, ya = b->y0 * denom, xb = b->x1 * denom, yb = b->y1 * denom;
    unrotate(rot, W, H, 0, &xa, &ya);
    unrotate(rot, W, H, 0, &xb, &yb);
    box[0] = fminf(xa, xb), box[1] = fminf(ya, yb);
    box[2] = fabsf(xb - xa), box[3] = fabsf(yb - ya);
}

void face_point_to_original(float x, float y, int denom, int rot, int W, int H, float *out)
{
    x = (x + 0.5f) * denom - 0.5f;
    y = (y + 0.5f) * denom - 0.5f;
    unrotate(rot, W, H, 1, &x, &y);
    out[0] = x, out[1] = y;
}
