/* The face pipeline behind pipeline.h: decode -> detect (fr_detect, RFB-320) -> pick
 * the most prominent face -> 68 landmarks (fr_landmark) -> 5-point similarity
 * alignment to the ArcFace 112x112 template -> embedding (fr_feature; the mirrored
 * face's too when face_options ask; in the accurate mode fused with dlib's ResNet
 * and MobileFaceNet, embed_accurate.c) -> quality, and optionally age
 * (faceres-deep's age head with face-api's age_gender_model).
 *
 * Speed: a large JPEG is decoded once with DCT scaling so the detector's source is
 * no bigger than it needs, and that same raster is used for alignment whenever the
 * face in it is large enough; only a small face in a big photo costs a second,
 * finer decode. A worker owns its sessions and a few fixed scratch arrays, so
 * analysing an image allocates only the decoded raster(s). Its sessions share one
 * activation arena: each step copies what it needs out of a model's output before
 * the next model runs.
 *
 * Stages: detect.c, align.c (landmarks, alignment, embedding), embed_accurate.c with
 * embed_dlib.c and embed_mobilefacenet.c (the accurate mode), quality.c, age.c;
 * pipeline_internal.h holds what they share. Choices measured on LFW
 * (tools/bench_accuracy.c, 10-fold) are noted where made. */
#include "face/pipeline_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/geometry.h"

/* Models whose dense convolutions run in int8 (nn_model_use_int8, src/nn/quantize.c).
 * Measured on this machine (AMD EPYC, AVX-512 VNNI) against fp32
 * (BIOSERVER_NN_PRECISION=fp32): CPU time per run from `make bench-nn`, LFW 10-fold
 * (fp32 99.02%, TAR 97.57% / 94.50% at FAR 1e-3 / 1e-4) and age MAE (fp32 8.42
 * years) from `make bench-accuracy`, APCER/BPCER from `make bench-pad`; each model
 * alone in int8 unless said. The rule: int8 where LFW 10-fold drops by at most 0.05
 * points and PAD and age by nothing measurable. A model absent runs in fp32. */
static const struct {
    const char *file;
    bool int8;
} model_precision[] = {
    /* 3.32 -> 2.63 ms; LFW 99.00%, TAR 97.37% / 94.47%. */
    {"fr_detect.onnx", true},
    /* fp32: with fr_detect, int8 took LFW to 98.98% and TAR at 1e-3 to 97.20%
     * (-0.37), for 0.15 ms (0.40 -> 0.25 ms): it moves the alignment. */
    {"fr_landmark.onnx", false},
    /* 5.25 -> 3.02 ms; LFW 99.03%, TAR 97.60% / 94.33%. */
    {"fr_feature.onnx", true},
    /* 3.08 -> 2.17 ms; APCER and BPCER unchanged (0.0% at every level), though
     * data/spoof is too easy to show a small shift. */
    {"fr_liveness.onnx", true},
    /* fp32: with every model in int8, age MAE 8.42 -> 8.46 years and the
     * under-18s called >= 18 went from 12 to 8 of 42, a measurable change
     * (12.36 -> 4.71 ms would have been the largest saving). */
    {"faceres-deep.json", false},
    /* The accurate mode's dlib ResNet: LFW (accurate mode) 99.15% vs 99.12% in fp32,
     * 16.95 vs 28.27 ms CPU a face, and its 22 MB float copy is dropped. */
    {"face_recognition_model-weights_manifest.json", true},
    /* The accurate mode's MobileFaceNet: 12.0 -> 6.4 ms CPU for a face and its mirror
     * (`bench_nn bench` of the file's batch of two, 200 runs, twice each); LFW
     * 10-fold accurate mode 99.27% in both (first weights 0.2 / 0.6 / 0.2),
     * MobileFaceNet part alone 99.00% in both; 25.4 vs 29.4 ms CPU a face (two
     * runs at different loads, not one); weights 5.2 -> 1.5 MB. */
    {"MobileFaceNet.tflite", true},
};

/* BIOSERVER_NN_PRECISION overrides the table, to measure: "fp32" runs every model
 * in fp32 (the accuracy benchmarks' baseline, or a CPU where int8 does not pay), a
 * comma-separated list of files ("fr_detect.onnx,fr_landmark.onnx") exactly those
 * in int8. Unset or empty, the table decides. */
bool face_model_int8(const char *file)
{
    const char *force = getenv("BIOSERVER_NN_PRECISION");
    if (force && *force) {
        size_t len = strlen(file);
        for (const char *p = strstr(force, file); p; p = strstr(p + 1, file))
            if ((p == force || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) return true;
        return false;
    }
    for (size_t i = 0; i < sizeof model_precision / sizeof model_precision[0]; i++)
        if (strcmp(model_precision[i].file, file) == 0) return model_precision[i].int8;
    return false;
}

/* The model file must exist before we try to parse it, so the message says "missing"
 * (a set-up problem) rather than a parse error. */
nn_model *face_load_model(const char *dir, const char *name, char *err, size_t err_len)
{
    return face_load_model_batch(dir, name, 0, err, err_len);
}

nn_model *face_load_model_batch(const char *dir, const char *name, int batch, char *err, size_t err_len)
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
    nn_model *m = nn_model_load_batch(path, batch, nn_err, sizeof nn_err);
    if (!m) snprintf(err, err_len, "cannot load %s: %s", path, nn_err);
    else if (face_model_int8(name) && nn_model_use_int8(m, nn_err, sizeof nn_err) < 0) {
        snprintf(err, err_len, "cannot load %s in int8: %s", path, nn_err);
        nn_model_free(m);
        return NULL;
    }
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

face_engine *face_engine_load(const char *models_dir, char *err, size_t err_len)
{
    char dir[1024];
    face_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s/faceplugin", models_dir);
    if (!(e->detect = face_load_model(dir, "fr_detect.onnx", err, err_len)) ||
        !(e->landmark = face_load_model(dir, "fr_landmark.onnx", err, err_len)) ||
        !(e->feature = face_load_model(dir, "fr_feature.onnx", err, err_len)) ||
        check_engine_shapes(e, err, err_len) != 0 ||
        face_load_accurate_models(e, models_dir, err, err_len) != 0) {
        face_engine_free(e);
        return NULL;
    }
    char age_why[512] = "";
    if (face_load_age_model(e, models_dir, age_why, sizeof age_why) != 0) {
        snprintf(err, err_len, "%s", age_why);
        face_engine_free(e);
        return NULL;
    }
    snprintf(e->describe, sizeof e->describe, "fr_detect+fr_landmark+fr_feature(%d)+dlib(%d)+mobilefacenet(%d)%s%.150s",
             e->embedding_dim, DLIB_DIM, MFN_DIM, e->age ? "+faceres-deep,age_gender_model(age)" : "; no age: ",
             e->age ? "" : age_why);
    return e;
}

void face_engine_free(face_engine *e)
{
    if (!e) return;
    nn_model_free(e->detect);
    nn_model_free(e->landmark);
    nn_model_free(e->feature);
    nn_model_free(e->age);
    nn_model_free(e->dlib);
    nn_model_free(e->mobilefacenet);
    nn_model_free(e->age_faceapi);
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
    const nn_model *models[] = {e->detect, e->landmark, e->feature, e->age, e->age_faceapi, e->dlib,
                                e->mobilefacenet};
    const int n_models = (int)(sizeof models / sizeof *models);
    for (int i = 0; i < n_models; i++)
        if (nn_model_arena_bytes(models[i]) > w->arena_bytes) w->arena_bytes = nn_model_arena_bytes(models[i]);
    if (!(w->arena = nn_arena_for(models, n_models))) {
        snprintf(err, err_len, "out of memory");
        free(w);
        return NULL;
    }
    if (!(w->detect = nn_session_create_in(e->detect, w->arena, err, err_len)) ||
        !(w->landmark = nn_session_create_in(e->landmark, w->arena, err, err_len)) ||
        !(w->feature = nn_session_create_in(e->feature, w->arena, err, err_len)) ||
        !(w->dlib = nn_session_create_in(e->dlib, w->arena, err, err_len)) ||
        !(w->mobilefacenet = nn_session_create_in(e->mobilefacenet, w->arena, err, err_len)) ||
        (e->age && !(w->age = nn_session_create_in(e->age, w->arena, err, err_len))) ||
        (e->age_faceapi &&
         !(w->age_faceapi = nn_session_create_in(e->age_faceapi, w->arena, err, err_len)))) {
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
    nn_session_free(w->dlib);
    nn_session_free(w->mobilefacenet);
    nn_session_free(w->age_faceapi);
    for (int i = 0; i < w->n_extra; i++) nn_session_free(w->extra[i].session);
    free(w->arena);
    free(w);
}

const float *face_worker_aligned(const face_worker *w) { return w->aligned; }

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

/* ---- the whole analysis ------------------------------------------------------------- */

int face_image_error(int rc)
{
    switch (rc) {
    case IMAGE_ERR_TOO_LARGE: return FACE_ERR_TOO_LARGE;
    case IMAGE_ERR_NOMEM: return FACE_ERR_NOMEM;
    default: return FACE_ERR_IMAGE;
    }
}

/* DCT scaling for a decode: the coarsest of 1/2, 1/4, 1/8 that keeps the long side
 * >= min_side (DET_MIN_SIDE for the analysis: the detector sees 320x240, more is
 * wasted decode). PNG and WebP decode in full anyway, so they are decoded once at
 * full size. */
int face_decode_denom(image_format fmt, int W, int H, int min_side)
{
    int side = W > H ? W : H, d = 1;
    if (fmt != IMAGE_FORMAT_JPEG) return 1;
    while (d < 8 && side / (2 * d) >= min_side) d *= 2;
    return d;
}

/* A decoded view of the image: its raster, the DCT scale and the rotation applied. */
typedef struct {
    image_rgb img;
    int denom, rot;
} view;

/* The raster to align on: the detection raster when the face is large enough in it,
 * else a finer DCT-scaled decode (rotated the same way). *box gets the face box in
 * the chosen raster. Returns 1 to reuse det as is, 0 when out->img was made (the
 * caller frees it), or a negative FACE_ERR_*. */
static int alignment_view(const uint8_t *data, size_t len, const image_limits *lim,
                          const view *det, const detection *d, const det_box *face, view *out,
                          det_box *box, char *err, size_t err_len)
{
    float bw = face->x1 - face->x0;
    int denom = det->denom;
    while (denom > 1 && bw * ((float)det->denom / (float)denom) < ALIGN_MIN_BOX) denom /= 2;
    float k = (float)det->denom / (float)denom;
    *box = (det_box){face->x0 * k, face->y0 * k, face->x1 * k, face->y1 * k, face->score};
    out->denom = denom;
    out->rot = d->rot;
    if (denom == det->denom && d->rot == 0) return 1; /* reuse the detection raster */
    if (denom == det->denom) return image_rgb_rotate(&det->img, d->rot, &out->img) ? FACE_ERR_NOMEM : 0;
    image_rgb up = {0};
    int rc = image_decode(data, len, lim, denom, &up, err, err_len);
    if (rc) return face_image_error(rc);
    if (d->rot == 0) {
        out->img = up;
        return 0;
    }
    rc = image_rgb_rotate(&up, d->rot, &out->img);
    image_rgb_free(&up);
    return rc ? face_image_error(rc) : 0;
}

/* Landmarks, alignment, embedding, the plausibility check, quality and age on the
 * chosen face. fr_feature runs even when no embedding is wanted: its output norm is
 * what tells a face from a face-like pattern (FACE_NORM_MIN). */
static int analyse_face(face_worker *w, const view *v, const det_box *box,
                        const face_options *opt, face_result *out)
{
    float pts[2 * LMK_POINTS], five[10];
    int rc = face_landmarks_68(w, &v->img, box, pts);
    if (rc) return rc;
    face_five_points(pts, five);
    if (face_align(w, &v->img, five) != 0) {
        out->faces_found = 0; /* degenerate landmarks: treat as no usable face */
        return FACE_OK;
    }
    /* The embedding runs even when not asked for: its norm is the plausibility check. */
    rc = opt->want_embedding && opt->accurate ? face_embed_accurate(w, &v->img, pts, out)
                                              : face_embed(w, opt->want_embedding && opt->mirror_embedding, out);
    if (rc != FACE_OK) return rc;
    if (!opt->want_embedding) out->embedding_dim = 0;
    if (out->embedding_norm < FACE_NORM_MIN) {
        out->faces_found = 0;
        out->implausible = true;
        return FACE_OK;
    }
    int W = out->image_width, H = out->image_height;
    face_box_to_original(box, v->denom, v->rot, W, H, out->box);
    face_point_to_original(five[0], five[1], v->denom, v->rot, W, H, out->eyes);
    face_point_to_original(five[2], five[3], v->denom, v->rot, W, H, out->eyes + 2);
    float dx = out->eyes[2] - out->eyes[0], dy = out->eyes[3] - out->eyes[1];
    out->quality = face_quality(w->aligned, box->score, sqrtf(dx * dx + dy * dy), five,
                                out->embedding_norm, out->quality_factors);
    if (opt->want_age && w->age) {
        rc = face_estimate_age(w, &v->img, five, opt->age_baseline, &out->age, out->age_raw);
        if (rc != FACE_OK) return rc;
        out->has_age = true;
    }
    return FACE_OK;
}

/* The most prominent detection that passes the plausibility check, of the first
 * FACE_TRIES; faces_found counts the detections less those found implausible. */
static int analyse_detections(face_worker *w, const uint8_t *data, size_t len,
                              const image_limits *lim, const view *det, const detection *d,
                              const face_options *opt, face_result *out, char *err, size_t err_len)
{
    int tries = d->faces < FACE_TRIES ? d->faces : FACE_TRIES, rejected = 0;
    for (int t = 0; t < tries; t++) {
        view al = {0};
        det_box box;
        int reuse = alignment_view(data, len, lim, det, d, &d->top[t], &al, &box, err, err_len);
        if (reuse < 0) return reuse;
        out->faces_found = d->faces - rejected;
        out->detection_score = d->top[t].score;
        out->rotation = d->rot;
        out->implausible = false;
        int rc = analyse_face(w, reuse ? det : &al, &box, opt, out);
        if (!reuse) image_rgb_free(&al.img);
        if (rc != FACE_OK || !out->implausible) return rc;
        rejected++;
    }
    return FACE_OK;
}

int face_analyze(face_worker *w, const uint8_t *data, size_t len, const face_options *opt,
                 face_result *out, char *err, size_t err_len)
{
    static const face_options defaults = {.want_embedding = true};
    if (!opt) opt = &defaults;
    memset(out, 0, offsetof(face_result, embedding));
    out->has_age = false, out->age = 0, out->age_raw[0] = out->age_raw[1] = 0;
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
    view det = {.denom = face_decode_denom(image_sniff(data, len), W, H, DET_MIN_SIDE)};
    int rc = image_decode(data, len, &lim, det.denom, &det.img, err, err_len);
    if (rc) return face_image_error(rc);
    detection d;
    rc = face_detect_all_rotations(w, &det.img, opt->rotation_enabled, &d);
    if (rc == FACE_OK) rc = analyse_detections(w, data, len, &lim, &det, &d, opt, out, err, err_len);
    image_rgb_free(&det.img);
    if (rc == FACE_OK && out->faces_found == 0) out->quality = -10000.0f;
    if (rc == FACE_ERR_MODEL) snprintf(err, err_len, "inference failed");
    return rc;
}
