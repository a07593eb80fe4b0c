/* Detection: fr_detect (RFB-320) on the whole image with a padded retry, hard NMS,
 * the most prominent face, and the search over 90/180/270-degree rotations. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/geometry.h"
#include "face/pipeline_internal.h"

static float box_iou(const det_box *a, const det_box *b)
{
    float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy;
    float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return ua > 0 ? inter / ua : 0;
}

static int by_score_desc(const void *pa, const void *pb)
{
    const det_box *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

/* Greedy hard NMS in place over the n boxes; returns the survivors, best first.
 * Only the DET_MAX_CANDIDATES best enter it, which bounds its quadratic cost on a
 * pathological image where every prior fires. */
static int nms(det_box *boxes, int n)
{
    qsort(boxes, (size_t)n, sizeof *boxes, by_score_desc);
    if (n > DET_MAX_CANDIDATES) n = DET_MAX_CANDIDATES;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int keep = 1;
        for (int k = 0; k < kept && keep; k++)
            if (box_iou(&boxes[i], &boxes[k]) > DET_NMS_IOU) keep = 0;
        if (keep) boxes[kept++] = boxes[i];
    }
    return kept;
}

/* Runs fr_detect on the rectangle [x0, x1) x [y0, y1) of img (edge coordinates;
 * parts outside the image are black padding) and leaves the NMS survivors (image
 * pixels) in w->cand. The rectangle is stretched to 320x240 rather than letterboxed:
 * LFW 10-fold 99.08% stretched vs 98.87% letterboxed, and it uses every detector
 * pixel. Returns the count or a negative FACE_ERR_*. */
static int detect_faces(face_worker *w, const image_rgb *img, float x0, float y0, float x1,
                        float y1)
{
    const face_engine *e = w->e;
    /* Straight into the detector's NHWC layout when it offers it (no transpose). */
    float *in = nn_session_input_nhwc(w->detect, 0);
    int nchw = in == NULL;
    if (nchw) in = nn_session_input(w->detect, 0);
    image_crop_resize_to_tensor(img, x0, y0, x1, y1, DET_W, DET_H, 127.0f, 1.0f / 128.0f, nchw, in);
    if (nn_run(w->detect) != NN_OK) return FACE_ERR_MODEL;
    const float *scores = nn_session_output(w->detect, e->det_scores);
    const float *boxes = nn_session_output(w->detect, e->det_boxes);
    int priors = nn_model_output_shape(e->detect, e->det_scores).dims[1];
    float sx = x1 - x0, sy = y1 - y0;
    int n = 0;
    for (int i = 0; i < priors; i++) {
        float s = scores[2 * i + 1];
        if (!(s >= DET_SCORE_MIN)) continue;
        const float *b = boxes + 4 * i;
        w->cand[n++] = (det_box){x0 + b[0] * sx, y0 + b[1] * sy, x0 + b[2] * sx,
                                 y0 + b[3] * sy, s};
    }
    return nms(w->cand, n);
}

/* Detection on the whole image, and when that finds nothing, once more with a
 * margin of DET_PAD_RETRY x the size on every side: the detector was trained on
 * faces with context and misses faces that fill the frame (tight portrait crops,
 * e.g. 10 of 461 UTKFace crops; the retry recovers them). */
#define DET_PAD_RETRY 0.25f
static int detect_with_retry(face_worker *w, const image_rgb *img)
{
    float W = (float)img->width, H = (float)img->height;
    int n = detect_faces(w, img, 0, 0, W, H);
    if (n != 0) return n;
    float px = DET_PAD_RETRY * W, py = DET_PAD_RETRY * H;
    return detect_faces(w, img, -px, -py, W + px, H + py);
}

/* Prominence: area weighted by score, so a big, clear face wins over a small one in
 * the background, and by closeness to the centre of the picture (from 1 there to 1/2
 * in a corner), so that of two faces of about the same size the one the picture was
 * taken of wins over a bystander at its edge. */
static float prominence(const det_box *b, const image_rgb *img)
{
    float cx = 0.5f * img->width, cy = 0.5f * img->height;
    float dx = 0.5f * (b->x0 + b->x1) - cx, dy = 0.5f * (b->y0 + b->y1) - cy;
    float off_centre = (dx * dx + dy * dy) / (cx * cx + cy * cy);
    if (off_centre > 1.0f) off_centre = 1.0f;
    return (b->x1 - b->x0) * (b->y1 - b->y0) * b->score * (1.0f - 0.5f * off_centre);
}

static int by_prominence_desc(const void *pa, const void *pb, void *img)
{
    float a = prominence(pa, img), b = prominence(pb, img);
    return (a < b) - (a > b);
}

/* How strongly the recognition network sees a face in this orientation: the norm of
 * its raw (unnormalised) embedding of the aligned face. The detector scores a face
 * turned upside down almost as high as an upright one, and the landmark model then
 * places upright-looking points on it; the embedding norm of such an alignment
 * collapses, so it tells the orientations apart where detection scores cannot. */
static int orientation_evidence(face_worker *w, const image_rgb *img, const det_box *b, float *out)
{
    float pts[2 * LMK_POINTS], five[10];
    int rc = face_landmarks_68(w, img, b, pts);
    if (rc) return rc;
    face_five_points(pts, five);
    *out = 0;
    if (face_align(w, img, five) != 0) return FACE_OK;
    float norm;
    if ((rc = face_feature_run(w, &norm)) != FACE_OK) return rc;
    *out = norm * b->score;
    return FACE_OK;
}

int face_detect_all_rotations(face_worker *w, const image_rgb *det, bool rotations,
                                detection *out)
{
    memset(out, 0, sizeof *out);
    for (int rot = 0; rot < 360; rot += 90) {
        image_rgb rotated = {0};
        const image_rgb *src = det;
        if (rot) {
            int rc = image_rgb_rotate(det, rot, &rotated);
            if (rc) return face_image_error(rc);
            src = &rotated;
        }
        int n = detect_with_retry(w, src), rc = FACE_OK;
        float evidence = 0;
        if (n > 0) {
            qsort_r(w->cand, (size_t)n, sizeof *w->cand, by_prominence_desc, (void *)src);
            evidence = w->cand[0].score;
            if (rotations) rc = orientation_evidence(w, src, &w->cand[0], &evidence);
        }
        image_rgb_free(&rotated);
        if (n < 0) return n;
        if (rc) return rc;
        if (n > 0 && (out->faces == 0 || evidence > out->evidence)) {
            out->faces = n;
            out->rot = rot;
            out->evidence = evidence;
            memcpy(out->top, w->cand, (size_t)(n < FACE_TRIES ? n : FACE_TRIES) * sizeof *out->top);
        }
        if (!rotations) break;
    }
    return FACE_OK;
}

/* The capture stream's light tracker (pipeline.h). A webcam frame (640x480) decodes
 * at 1/2, exactly the detector's input size, so neither a full decode nor a resize
 * is paid; the landmarks come from that raster too (a face there is about 75 px,
 * enough for eye positions; the analysis keeps its finer alignment view). */
int face_track(face_worker *w, const uint8_t *data, size_t len, long max_pixels, face_result *out, char *err,
               size_t err_len)
{
    memset(out, 0, offsetof(face_result, embedding));
    out->quality = -10000.0f;
    int W, H;
    if (image_probe(data, len, &W, &H, NULL) != 0) {
        snprintf(err, err_len, "not a JPEG, PNG or WebP image, or a corrupt one");
        return FACE_ERR_IMAGE;
    }
    out->image_width = W, out->image_height = H;
    image_limits lim = {0, max_pixels};
    int denom = face_decode_denom(image_sniff(data, len), W, H, DET_W);
    image_rgb img = {0};
    int rc = image_decode(data, len, &lim, denom, &img, err, err_len);
    if (rc) return face_image_error(rc);
    detection d;
    rc = face_detect_all_rotations(w, &img, false, &d);
    float pts[2 * LMK_POINTS], five[10];
    if (rc == FACE_OK && d.faces > 0 && (rc = face_landmarks_68(w, &img, &d.top[0], pts)) == FACE_OK) {
        face_five_points(pts, five);
        out->faces_found = d.faces;
        out->detection_score = d.top[0].score;
        face_box_to_original(&d.top[0], denom, 0, W, H, out->box);
        face_point_to_original(five[0], five[1], denom, 0, W, H, out->eyes);
        face_point_to_original(five[2], five[3], denom, 0, W, H, out->eyes + 2);
    }
    image_rgb_free(&img);
    if (rc == FACE_ERR_MODEL) snprintf(err, err_len, "inference failed");
    return rc;
}
