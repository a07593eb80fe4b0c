/* The face pipeline behind pipeline.h: decode -> detect (fr_detect, RFB-320) -> pick
 * the most prominent face -> 68 landmarks (fr_landmark) -> 5-point similarity
 * alignment to the ArcFace 112x112 template -> embedding (fr_feature, plus the
 * mirrored face) -> quality, and optionally age (faceres-deep's age head).
 *
 * Speed: a large JPEG is decoded once with DCT scaling so the detector's source is
 * no bigger than it needs, and that same raster is used for alignment whenever the
 * face in it is large enough; only a small face in a big photo costs a second,
 * finer decode. A worker owns its sessions and a few fixed scratch arrays, so
 * analysing an image allocates only the decoded raster(s). Its sessions share one
 * activation arena: each step copies what it needs out of a model's output before
 * the next model runs.
 *
 * Choices measured on LFW (tools/bench_accuracy.c, 10-fold) are noted where made. */
#include "face/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/geometry.h"
#include "nn/nn.h"

/* ---- tuning (each value is a measured choice, see the comments) ---------------- */

#define DET_W 320
#define DET_H 240
#define DET_MAX_PRIORS 8192    /* RFB-320 has 4420; anything bigger is not our model */
#define DET_MAX_CANDIDATES 512 /* boxes entering NMS */
#define DET_SCORE_MIN 0.70f    /* RFB default; 0.6 let 4 of 13 no_face images through, 0.7 two */
#define DET_NMS_IOU 0.30f      /* hard NMS, as the RFB reference code */
/* DCT-scaled decode keeps the long side >= this. 480 would suffice for the
 * detector, but then a 2-megapixel photo is decoded at 1/4 and again at 1/2 for
 * alignment (faces under 320 px); at 640 one 1/2 decode serves both (-2.6 ms). */
#define DET_MIN_SIDE 640
/* Face box width (px) below which alignment decodes finer: fr_feature's 112x112
 * crop holds a detector box at about 80 px, so 80 px of source avoids upsampling. */
#define ALIGN_MIN_BOX 80.0f
#define LMK_SIZE 64
#define LMK_POINTS 68
#define FEAT_SIZE 112
#define AGE_SIZE 224
#define AGE_BINS 100

/* ---- engine and worker ----------------------------------------------------------- */

struct face_engine {
    nn_model *detect, *landmark, *feature, *age;
    int det_scores, det_boxes; /* output indices of fr_detect */
    int embedding_dim;
    int age_output;            /* output index of the age head, -1 without age */
    char describe[256];
};

typedef struct {
    float x0, y0, x1, y1, score;
} det_box;

#define WORKER_EXTRA_SESSIONS 4

struct face_worker {
    const face_engine *e;
    void *arena; /* activations of every session, sized for the largest engine model */
    size_t arena_bytes;
    nn_session *detect, *landmark, *feature, *age;
    struct {
        const nn_model *model;
        nn_session *session;
    } extra[WORKER_EXTRA_SESSIONS]; /* face_worker_session */
    int n_extra;
    det_box cand[DET_MAX_PRIORS]; /* candidates above threshold, then NMS survivors */
    float aligned[3 * FEAT_SIZE * FEAT_SIZE]; /* the aligned face, kept for the mirror */
};

/* The model file must exist before we try to parse it, so the message says "missing"
 * (a set-up problem) rather than a parse error. */
static nn_model *load_model(const char *dir, const char *name, char *err, size_t err_len)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, err_len, "model path too long: %s/%s", dir, name);
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        snprintf(err, err_len, "model file missing: %s (run `make models`)", path);
        return NULL;
    }
    char nn_err[512];
    nn_model *m = nn_model_load(path, nn_err, sizeof nn_err);
    if (!m) snprintf(err, err_len, "cannot load %s: %s", path, nn_err);
    return m;
}

static int check_engine_shapes(face_engine *e, char *err, size_t err_len)
{
    e->det_scores = nn_model_output_index(e->detect, "scores");
    e->det_boxes = nn_model_output_index(e->detect, "boxes");
    nn_shape in = nn_model_input_shape(e->detect, 0);
    if (e->det_scores < 0 || e->det_boxes < 0 || in.rank != 4 || in.dims[2] != DET_H ||
        in.dims[3] != DET_W) {
        snprintf(err, err_len, "fr_detect.onnx: unexpected inputs/outputs");
        return -1;
    }
    nn_shape s = nn_model_output_shape(e->detect, e->det_scores);
    if (s.rank != 3 || s.dims[1] > DET_MAX_PRIORS || s.dims[2] != 2) {
        snprintf(err, err_len, "fr_detect.onnx: unexpected scores shape");
        return -1;
    }
    nn_shape l = nn_model_output_shape(e->landmark, 0);
    if (l.rank < 2 || l.dims[l.rank - 1] != 2 * LMK_POINTS) {
        snprintf(err, err_len, "fr_landmark.onnx: expected %d outputs", 2 * LMK_POINTS);
        return -1;
    }
    nn_shape f = nn_model_output_shape(e->feature, 0);
    e->embedding_dim = f.dims[f.rank - 1];
    if (e->embedding_dim <= 0 || e->embedding_dim > FACE_EMBEDDING_MAX) {
        snprintf(err, err_len, "fr_feature.onnx: embedding size %d unsupported", e->embedding_dim);
        return -1;
    }
    return 0;
}

/* A missing faceres-deep is a set-up error like any other model; one that is present
 * but does not load (the TF.js loader is young) leaves the engine working without
 * age, and describe() says why. */
static int load_age_model(face_engine *e, const char *models_dir, char *why, size_t why_len)
{
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/human", models_dir);
    snprintf(path, sizeof path, "%s/faceres-deep.json", dir);
    e->age_output = -1;
    if (access(path, R_OK) != 0) {
        snprintf(why, why_len, "model file missing: %.400s (run `make models`)", path);
        return -1;
    }
    e->age = load_model(dir, "faceres-deep.json", why, why_len);
    if (!e->age) return 0;
    nn_shape in = nn_model_input_shape(e->age, 0);
    if (in.rank != 4 || in.dims[1] != AGE_SIZE || in.dims[2] != AGE_SIZE || in.dims[3] != 3) {
        snprintf(why, why_len, "faceres-deep: unexpected input shape");
        nn_model_free(e->age);
        e->age = NULL;
        return 0;
    }
    /* The age head is a softmax over AGE_BINS one-year bins (model.json signature). */
    int idx = nn_model_output_index(e->age, "age_pred/Softmax");
    if (idx < 0) idx = nn_model_output_index(e->age, "age_pred/Softmax:0");
    if (idx >= 0) {
        nn_shape s = nn_model_output_shape(e->age, idx);
        if (s.dims[s.rank - 1] == AGE_BINS) e->age_output = idx;
    }
    if (e->age_output < 0) {
        snprintf(why, why_len, "faceres-deep: no age output");
        nn_model_free(e->age);
        e->age = NULL;
    }
    return 0;
}

face_engine *face_engine_load(const char *models_dir, char *err, size_t err_len)
{
    char dir[1024];
    face_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s/faceplugin", models_dir);
    if (!(e->detect = load_model(dir, "fr_detect.onnx", err, err_len)) ||
        !(e->landmark = load_model(dir, "fr_landmark.onnx", err, err_len)) ||
        !(e->feature = load_model(dir, "fr_feature.onnx", err, err_len)) ||
        check_engine_shapes(e, err, err_len) != 0) {
        face_engine_free(e);
        return NULL;
    }
    char age_why[512] = "";
    if (load_age_model(e, models_dir, age_why, sizeof age_why) != 0) {
        snprintf(err, err_len, "%s", age_why);
        face_engine_free(e);
        return NULL;
    }
    if (e->age)
        snprintf(e->describe, sizeof e->describe,
                 "fr_detect+fr_landmark+fr_feature(%d)+faceres-deep(age)", e->embedding_dim);
    else
        snprintf(e->describe, sizeof e->describe,
                 "fr_detect+fr_landmark+fr_feature(%d); no age: %.150s", e->embedding_dim,
                 age_why);
    return e;
}

void face_engine_free(face_engine *e)
{
    if (!e) return;
    nn_model_free(e->detect);
    nn_model_free(e->landmark);
    nn_model_free(e->feature);
    nn_model_free(e->age);
    free(e);
}

const char *face_engine_describe(const face_engine *e) { return e->describe; }
int face_engine_embedding_dim(const face_engine *e) { return e->embedding_dim; }
bool face_engine_has_age(const face_engine *e) { return e->age != NULL; }

face_worker *face_worker_create(const face_engine *e, char *err, size_t err_len)
{
    face_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    w->e = e;
    const nn_model *models[] = {e->detect, e->landmark, e->feature, e->age};
    for (int i = 0; i < 4; i++)
        if (nn_model_arena_bytes(models[i]) > w->arena_bytes) w->arena_bytes = nn_model_arena_bytes(models[i]);
    if (!(w->arena = nn_arena_for(models, 4))) {
        snprintf(err, err_len, "out of memory");
        free(w);
        return NULL;
    }
    if (!(w->detect = nn_session_create_in(e->detect, w->arena, err, err_len)) ||
        !(w->landmark = nn_session_create_in(e->landmark, w->arena, err, err_len)) ||
        !(w->feature = nn_session_create_in(e->feature, w->arena, err, err_len)) ||
        (e->age && !(w->age = nn_session_create_in(e->age, w->arena, err, err_len)))) {
        face_worker_free(w);
        return NULL;
    }
    return w;
}

void face_worker_free(face_worker *w)
{
    if (!w) return;
    nn_session_free(w->detect);
    nn_session_free(w->landmark);
    nn_session_free(w->feature);
    nn_session_free(w->age);
    for (int i = 0; i < w->n_extra; i++) nn_session_free(w->extra[i].session);
    free(w->arena);
    free(w);
}

nn_session *face_worker_session(face_worker *w, const nn_model *m)
{
    for (int i = 0; i < w->n_extra; i++)
        if (w->extra[i].model == m) return w->extra[i].session;
    if (w->n_extra == WORKER_EXTRA_SESSIONS || nn_model_arena_bytes(m) > w->arena_bytes) return NULL;
    char err[256];
    nn_session *s = nn_session_create_in(m, w->arena, err, sizeof err);
    if (!s) return NULL;
    w->extra[w->n_extra].model = m;
    w->extra[w->n_extra++].session = s;
    return s;
}


/* ---- detection ------------------------------------------------------------------- */

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
    float *in = nn_session_input(w->detect, 0);
    image_crop_resize_to_tensor(img, x0, y0, x1, y1, DET_W, DET_H, 127.0f, 1.0f / 128.0f, 1, in);
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

/* The most prominent face: largest area weighted by score, so a big, clear face
 * wins over a small one in the background. */
static int most_prominent(const det_box *boxes, int n)
{
    int best = 0;
    float best_v = -1;
    for (int i = 0; i < n; i++) {
        float v = (boxes[i].x1 - boxes[i].x0) * (boxes[i].y1 - boxes[i].y0) * boxes[i].score;
        if (v > best_v) best_v = v, best = i;
    }
    return best;
}

/* ---- landmarks and alignment ----------------------------------------------------- */

/* 68 landmarks (point coordinates in img) from a grey crop around the box. The
 * crop is the detector box scaled by LMK_EXPAND about its centre (a little margin
 * helps the model; values measured on LFW below). */
/* Measured on LFW 10-fold (bench_accuracy, mirrored embeddings): crop = the box
 * scaled by 1.0: 98.92%, 1.1: 99.08%, 1.2: 98.92%; a square crop of the larger
 * side x 1.1: 98.97%. Tried and dropped: x1.05 99.07%, x1.15 98.98%, x0.9 98.97%,
 * a second pass on a crop re-centred on the first pass's landmark centroid 98.92%,
 * averaging with the landmarks of the mirrored crop 99.02%. */
#define LMK_EXPAND 1.1f
static int landmarks_68(face_worker *w, const image_rgb *img, const det_box *b, float *pts)
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

/* The five ArcFace points: eye centres (image-left first), nose tip, mouth corners. */
static void five_points(const float *pts, float *five)
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
static int align_face(face_worker *w, const image_rgb *img, const float *five)
{
    float m[6];
    if (similarity_estimate(five, geometry_arcface_template_112, 5, m) != 0) return -1;
    image_warp_affine_to_tensor(img, m, FEAT_SIZE, FEAT_SIZE, 127.0f, 1.0f / 128.0f, 1,
                                w->aligned);
    return 0;
}

/* Embedding of the aligned face plus that of its mirror image, summed then
 * normalised: LFW 10-fold +0.1 points for one extra fr_feature run (guide §3);
 * it costs a second fr_feature run (about 5 ms), so the server leaves it off
 * (opt->mirror_embedding) to stay within its latency target. */
static int embed(face_worker *w, bool mirror, face_result *out)
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

/* ---- quality ---------------------------------------------------------------------- */

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
static float face_quality(const face_worker *w, float det_score, float eye_dist_px,
                          const float *five)
{
    float det = clamp01((det_score - 0.5f) / 0.4f);
    float eyes = clamp01(eye_dist_px / 60.0f);
    float sharp = clamp01((float)(aligned_sharpness(w->aligned) / QUALITY_SHARP_GOOD));
    double b = aligned_brightness(w->aligned);
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

/* ---- age ---------------------------------------------------------------------------- */

/* Age from faceres-deep's age head, a softmax over AGE_BINS one-year bins; the raw
 * age is its mean. Input: the face aligned like fr_feature's (same five points)
 * but on a 224x224 canvas with AGE_ALIGN_ZOOM times the context, raw 0-255, BGR.
 * Measured on data/age (linear calibration fitted on the even rows, MAE on the odd
 * rows): box crop x1.4 RGB 9.1, box crop x1.4 BGR 8.9, aligned BGR with context
 * 1.0: 9.1, 1.2: 8.7, 1.4: 8.6 years; averaging the mirrored face did not help.
 *
 * Calibration age = AGE_CAL_A * raw + AGE_CAL_B: least squares on the even rows of
 * data/age/MANIFEST.tsv. To refit, run `build/tools/bench_accuracy` (BENCH_ONLY=age):
 * it fits truth against the ages reported with the current constants and prints
 * the composed new constants. */
#define AGE_ALIGN_ZOOM 1.4f
#define AGE_CAL_A 1.2788f
#define AGE_CAL_B (-9.2117f)

/* Swaps R and B of an interleaved tensor in place (the model measured better on
 * BGR, uncalibrated MAE 9.7 vs 11.2 years). */
static void swap_rb(float *t, int pixels)
{
    for (int i = 0; i < pixels; i++) {
        float tmp = t[3 * i];
        t[3 * i] = t[3 * i + 2];
        t[3 * i + 2] = tmp;
    }
}

void face_age_calibration(float *a, float *b)
{
    *a = AGE_CAL_A;
    *b = AGE_CAL_B;
}

static int estimate_age(face_worker *w, const image_rgb *img, const float *five, float *age)
{
    float tpl[10], m[6];
    for (int i = 0; i < 10; i++)
        tpl[i] = (geometry_arcface_template_112[i] - 56.0f) * (AGE_SIZE / 112.0f) / AGE_ALIGN_ZOOM +
                 AGE_SIZE / 2.0f;
    if (similarity_estimate(five, tpl, 5, m) != 0) return FACE_OK; /* caught by align_face */
    float *in = nn_session_input(w->age, 0);
    image_warp_affine_to_tensor(img, m, AGE_SIZE, AGE_SIZE, 0.0f, 1.0f, 0, in);
    swap_rb(in, AGE_SIZE * AGE_SIZE);
    if (nn_run(w->age) != NN_OK) return FACE_ERR_MODEL;
    const float *p = nn_session_output(w->age, w->e->age_output);
    double mean = 0, total = 0;
    for (int i = 0; i < AGE_BINS; i++) mean += (double)i * p[i], total += p[i];
    float raw = total > 0 ? (float)(mean / total) : 0.0f;
    *age = fmaxf(0.0f, AGE_CAL_A * raw + AGE_CAL_B);
    return FACE_OK;
}

/* ---- coordinates -------------------------------------------------------------------- */

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

/* Box (edges, in a raster decoded at 1/denom and rotated by rot) -> x, y, w, h. */
static void box_to_original(const det_box *b, int denom, int rot, int W, int H, float *box)
{
    float xa = b->x0 * denom, ya = b->y0 * denom, xb = b->x1 * denom, yb = b->y1 * denom;
    unrotate(rot, W, H, 0, &xa, &ya);
    unrotate(rot, W, H, 0, &xb, &yb);
    box[0] = fminf(xa, xb), box[1] = fminf(ya, yb);
    box[2] = fabsf(xb - xa), box[3] = fabsf(yb - ya);
}

static void point_to_original(float x, float y, int denom, int rot, int W, int H, float *out)
{
    x = (x + 0.5f) * denom - 0.5f;
    y = (y + 0.5f) * denom - 0.5f;
    unrotate(rot, W, H, 1, &x, &y);
    out[0] = x, out[1] = y;
}

/* ---- the whole analysis ------------------------------------------------------------- */

static int image_error_to_face(int rc)
{
    switch (rc) {
    case IMAGE_ERR_TOO_LARGE: return FACE_ERR_TOO_LARGE;
    case IMAGE_ERR_NOMEM: return FACE_ERR_NOMEM;
    default: return FACE_ERR_IMAGE;
    }
}

/* DCT scaling for the detection decode: the coarsest of 1/2, 1/4, 1/8 that keeps the
 * long side >= DET_MIN_SIDE (the detector sees 320x240; more is wasted decode).
 * PNG and WebP decode in full anyway, so they are decoded once at full size. */
static int detection_denom(image_format fmt, int W, int H)
{
    int side = W > H ? W : H, d = 1;
    if (fmt != IMAGE_FORMAT_JPEG) return 1;
    while (d < 8 && side / (2 * d) >= DET_MIN_SIDE) d *= 2;
    return d;
}

/* A decoded view of the image: its raster, the DCT scale and the rotation applied. */
typedef struct {
    image_rgb img;
    int denom, rot;
} view;

static int make_rotated(const image_rgb *src, int rot, image_rgb *out)
{
    return image_rgb_rotate(src, rot, out);
}

typedef struct {
    int faces, rot;
    float evidence; /* what decided the rotation (see orientation_evidence) */
    det_box best;   /* its most prominent face */
} detection;

/* How strongly the recognition network sees a face in this orientation: the norm of
 * its raw (unnormalised) embedding of the aligned face. The detector scores a face
 * turned upside down almost as high as an upright one, and the landmark model then
 * places upright-looking points on it; the embedding norm of such an alignment
 * collapses, so it tells the orientations apart where detection scores cannot. */
static int orientation_evidence(face_worker *w, const image_rgb *img, const det_box *b, float *out)
{
    float pts[2 * LMK_POINTS], five[10];
    int rc = landmarks_68(w, img, b, pts);
    if (rc) return rc;
    five_points(pts, five);
    *out = 0;
    if (align_face(w, img, five) != 0) return FACE_OK;
    memcpy(nn_session_input(w->feature, 0), w->aligned, sizeof w->aligned);
    if (nn_run(w->feature) != NN_OK) return FACE_ERR_MODEL;
    const float *o = nn_session_output(w->feature, 0);
    double sum = 0;
    for (int i = 0; i < w->e->embedding_dim; i++) sum += (double)o[i] * o[i];
    *out = (float)sqrt(sum) * b->score;
    return FACE_OK;
}

/* Detects on det (upright) and, when asked, on its 90/180/270 rotations; keeps the
 * rotation with the strongest orientation evidence. */
static int detect_all_rotations(face_worker *w, const image_rgb *det, bool rotations,
                                detection *out)
{
    memset(out, 0, sizeof *out);
    for (int rot = 0; rot < 360; rot += 90) {
        image_rgb rotated = {0};
        const image_rgb *src = det;
        if (rot) {
            int rc = make_rotated(det, rot, &rotated);
            if (rc) return image_error_to_face(rc);
            src = &rotated;
        }
        int n = detect_with_retry(w, src), rc = FACE_OK;
        float evidence = 0;
        det_box best = {0};
        if (n > 0) {
            best = w->cand[most_prominent(w->cand, n)];
            evidence = best.score;
            if (rotations) rc = orientation_evidence(w, src, &best, &evidence);
        }
        image_rgb_free(&rotated);
        if (n < 0) return n;
        if (rc) return rc;
        if (n > 0 && (out->faces == 0 || evidence > out->evidence)) {
            out->faces = n;
            out->rot = rot;
            out->evidence = evidence;
            out->best = best;
        }
        if (!rotations) break;
    }
    return FACE_OK;
}

/* The raster to align on: the detection raster when the face is large enough in it,
 * else a finer DCT-scaled decode (rotated the same way). *box gets the face box in
 * the chosen raster. Returns 1 to reuse det as is, 0 when out->img was made (the
 * caller frees it), or a negative FACE_ERR_*. */
static int alignment_view(const uint8_t *data, size_t len, const image_limits *lim,
                          const view *det, const detection *d, view *out, det_box *box,
                          char *err, size_t err_len)
{
    float bw = d->best.x1 - d->best.x0;
    int denom = det->denom;
    while (denom > 1 && bw * ((float)det->denom / (float)denom) < ALIGN_MIN_BOX) denom /= 2;
    float k = (float)det->denom / (float)denom;
    *box = (det_box){d->best.x0 * k, d->best.y0 * k, d->best.x1 * k, d->best.y1 * k,
                     d->best.score};
    out->denom = denom;
    out->rot = d->rot;
    if (denom == det->denom && d->rot == 0) return 1; /* reuse the detection raster */
    if (denom == det->denom) return make_rotated(&det->img, d->rot, &out->img) ? FACE_ERR_NOMEM : 0;
    image_rgb up = {0};
    int rc = image_decode(data, len, lim, denom, &up, err, err_len);
    if (rc) return image_error_to_face(rc);
    if (d->rot == 0) {
        out->img = up;
        return 0;
    }
    rc = make_rotated(&up, d->rot, &out->img);
    image_rgb_free(&up);
    return rc ? image_error_to_face(rc) : 0;
}

/* Landmarks, alignment, quality, embedding and age on the chosen face. */
static int analyse_face(face_worker *w, const view *v, const det_box *box,
                        const face_options *opt, face_result *out)
{
    float pts[2 * LMK_POINTS], five[10];
    int rc = landmarks_68(w, &v->img, box, pts);
    if (rc) return rc;
    five_points(pts, five);
    if (align_face(w, &v->img, five) != 0) {
        out->faces_found = 0; /* degenerate landmarks: treat as no usable face */
        return FACE_OK;
    }
    int W = out->image_width, H = out->image_height;
    box_to_original(box, v->denom, v->rot, W, H, out->box);
    point_to_original(five[0], five[1], v->denom, v->rot, W, H, out->eyes);
    point_to_original(five[2], five[3], v->denom, v->rot, W, H, out->eyes + 2);
    float dx = out->eyes[2] - out->eyes[0], dy = out->eyes[3] - out->eyes[1];
    out->quality = face_quality(w, box->score, sqrtf(dx * dx + dy * dy), five);
    if (opt->want_embedding && (rc = embed(w, opt->mirror_embedding, out)) != FACE_OK) return rc;
    if (opt->want_age && w->age) {
        if ((rc = estimate_age(w, &v->img, five, &out->age)) != FACE_OK) return rc;
        out->has_age = true;
    }
    return FACE_OK;
}

int face_analyze(face_worker *w, const uint8_t *data, size_t len, const face_options *opt,
                 face_result *out, char *err, size_t err_len)
{
    static const face_options defaults = {.want_embedding = true};
    if (!opt) opt = &defaults;
    memset(out, 0, offsetof(face_result, embedding));
    out->has_age = false, out->age = 0;
    out->quality = -10000.0f;
    int W, H;
    int probe = image_probe(data, len, &W, &H, NULL);
    if (probe != 0) {
        snprintf(err, err_len, "%s", probe == IMAGE_ERR_FORMAT
                                         ? "unsupported image format (expected JPEG, PNG or WebP)"
                                         : "corrupt or truncated image header");
        return FACE_ERR_IMAGE;
    }
    out->image_width = W, out->image_height = H;
    image_limits lim = {0, opt->max_pixels};
    view det = {.denom = detection_denom(image_sniff(data, len), W, H)};
    int rc = image_decode(data, len, &lim, det.denom, &det.img, err, err_len);
    if (rc) return image_error_to_face(rc);
    detection d;
    rc = detect_all_rotations(w, &det.img, opt->rotation_enabled, &d);
    if (rc == FACE_OK && d.faces > 0) {
        view al = {0};
        det_box box;
        int reuse = alignment_view(data, len, &lim, &det, &d, &al, &box, err, err_len);
        if (reuse < 0) {
            rc = reuse;
        } else {
            out->faces_found = d.faces;
            out->detection_score = d.best.score;
            out->rotation = d.rot;
            rc = analyse_face(w, reuse ? &det : &al, &box, opt, out);
            if (!reuse) image_rgb_free(&al.img);
        }
    }
    image_rgb_free(&det.img);
    if (rc == FACE_OK && out->faces_found == 0) out->quality = -10000.0f;
    if (rc == FACE_ERR_MODEL) snprintf(err, err_len, "inference failed");
    return rc;
}
