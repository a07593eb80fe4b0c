/* What the stages of the face pipeline share (pipeline.c, detect.c, align.c,
 * quality.c, age.c): the engine and worker structures and each stage's entry
 * point. Private to src/face/ (and its unit tests), as nn_internal.h is to nn/.
 * All functions run on the worker's thread; they return FACE_OK or a negative
 * FACE_ERR_* unless said otherwise. */
#ifndef FACE_PIPELINE_INTERNAL_H
#define FACE_PIPELINE_INTERNAL_H
#include "face/pipeline.h"

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
/* The plausibility check: a detection whose aligned face gives fr_feature an output
 * norm below this is not a face (docs/negatives.md). Measured with the pipeline
 * (make bench-negatives): the face-like patterns of data/negatives/no_face that pass
 * the detector reach 1.60 (a retina photo; printed text 1.43); real faces are above
 * 1.82 (LFW's lowest of 13,233; photos 1.94, documents 1.99). 1.70 is the middle. */
#define FACE_NORM_MIN 1.70f
/* Detections tried, most prominent first, until one passes the check: on LFW the most
 * prominent box is sometimes a raised arm or a shoulder beside the face (2 of 13,233
 * images, e.g. Mark_Gottfried_0003), and the real face comes next. */
#define FACE_TRIES 3
#define LMK_SIZE 64
#define LMK_POINTS 68
#define FEAT_SIZE 112
#define AGE_SIZE 224
#define AGE_BINS 100
#define AGE_FACEAPI_SIZE 112
#define DLIB_SIZE 150 /* dlib's face chip (embed_dlib.c) */
#define DLIB_DIM 128
#define MFN_DIM 192 /* MobileFaceNet's embedding (embed_mobilefacenet.c) */

struct face_engine {
    nn_model *detect, *landmark, *feature;
    nn_model *age, *age_faceapi; /* faceres-deep, face-api's age_gender_model: both or none */
    nn_model *dlib, *mobilefacenet; /* the accurate mode's other embeddings (embed_accurate.c) */
    int det_scores, det_boxes; /* output indices of fr_detect */
    int embedding_dim;
    int age_output, age_faceapi_output; /* output indices of the age heads, -1 without age */
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
    nn_session *detect, *landmark, *feature, *age, *age_faceapi, *dlib, *mobilefacenet;
    struct {
        const nn_model *model;
        nn_session *session;
    } extra[WORKER_EXTRA_SESSIONS]; /* face_worker_session */
    int n_extra;
    det_box cand[DET_MAX_PRIORS]; /* candidates above threshold, then NMS survivors */
    float aligned[3 * FEAT_SIZE * FEAT_SIZE]; /* the aligned face, kept for the mirror */
};

/* The DCT scale (1, 2, 4 or 8) of the coarsest decode whose long side stays >= min_side. */
int face_decode_denom(image_format fmt, int W, int H, int min_side);
/* Maps an IMAGE_ERR_* to the FACE_ERR_* the caller returns. */
int face_image_error(int rc);

/* ---- detect.c ---- */
typedef struct {
    int faces, rot;
    float evidence; /* what decided the rotation (see detect.c) */
    det_box top[FACE_TRIES]; /* its most prominent faces, best first (min(faces, FACE_TRIES)) */
} detection;
/* Detects on det (upright) and, when asked, on its 90/180/270 rotations; keeps the
 * rotation with the strongest evidence of an upright face. */
int face_detect_all_rotations(face_worker *w, const image_rgb *det, bool rotations, detection *out);

/* ---- align.c ---- */
/* 68 landmarks (points in img) of the face in box b. */
int face_landmarks_68(face_worker *w, const image_rgb *img, const det_box *b, float *pts);
/* The five ArcFace points from the 68: eye centres (image-left first), nose tip, mouth corners. */
void face_five_points(const float *pts, float *five);
/* Warps img into w->aligned; -1 when the five points are degenerate. */
int face_align(face_worker *w, const image_rgb *img, const float *five);
/* Runs fr_feature on w->aligned; *norm gets the norm of its raw output, which stays in
 * the feature session until the worker runs another model. */
int face_feature_run(face_worker *w, float *norm);
/* The L2-normalised embedding of w->aligned (plus its mirror when asked) into out, and
 * out->embedding_norm. */
int face_embed(face_worker *w, bool mirror, face_result *out);
/* Box (edges, in a raster decoded at 1/denom and rotated by rot) -> x, y, w, h of the
 * W x H upright image; a point (pixel centre) likewise. */
void face_box_to_original(const det_box *b, int denom, int rot, int W, int H, float *box);
void face_point_to_original(float x, float y, int denom, int rot, int W, int H, float *out);

/* ---- embed_accurate.c ---- */
/* Fusion weights (the squared norms of the three parts of the accurate embedding):
 * the z-normalised sum, each cosine weighed by 1 / its impostor standard deviation
 * on LFW DevTrain people only (scripts/fusion_weights.py, int8 pipeline): 0.098
 * (fr_feature), 0.034 (dlib), 0.144 (MobileFaceNet). A grid search on DevTrain was
 * flat within about one genuine pair and its optimum moved with the criterion, so
 * the weights come from the impostor statistics, not from a search. */
#define FUSION_W_FEATURE 0.22f
#define FUSION_W_DLIB 0.63f
#define FUSION_W_MOBILEFACENET 0.15f
/* Loads the accurate mode's other networks (dlib's ResNet, MobileFaceNet); -1 with
 * err set on failure. */
int face_load_accurate_models(face_engine *e, const char *models_dir, char *err, size_t err_len);
/* The accurate mode's fused embedding into out: fr_feature and MobileFaceNet of
 * w->aligned and dlib's ResNet on its own chip of img, located by the 68 points pts,
 * each with its mirror. */
int face_embed_accurate(face_worker *w, const image_rgb *img, const float *pts, face_result *out);

/* ---- embed_dlib.c ---- */
/* Loads dlib's ResNet (models/faceapi) into e->dlib; -1 with err set on failure. */
int face_load_dlib_model(face_engine *e, const char *models_dir, char *err, size_t err_len);
/* dlib's descriptor of its chip of img (located by the 68 points pts) plus that of
 * the chip's mirror, summed into out[DLIB_DIM]. */
int face_dlib_descriptor(face_worker *w, const image_rgb *img, const float *pts, float *out);

/* ---- embed_mobilefacenet.c ---- */
/* Loads MobileFaceNet (models/expo) into e->mobilefacenet; -1 with err set on failure. */
int face_load_mobilefacenet(face_engine *e, const char *models_dir, char *err, size_t err_len);
/* MobileFaceNet's output for w->aligned plus that for its mirror, summed into
 * out[MFN_DIM]. */
int face_mobilefacenet_descriptor(face_worker *w, float *out);

/* ---- quality.c (pure: no model) ---- */
/* The spec's quality (> 100 good, negative = send again) of the aligned 112x112 face
 * tensor (fr_feature's input layout), its detection score, the inter-eye distance in
 * original pixels and the five points. */
float face_quality(const float *aligned, float det_score, float eye_dist_px, const float *five,
                   float embedding_norm, float factors[FACE_QF_COUNT]);

/* ---- age.c ---- */
/* Loads faceres-deep and face-api's age_gender_model into e->age and e->age_faceapi.
 * -1 (why set) when a file is missing; 0 otherwise, with both NULL and why set when
 * one is present but unusable. */
int face_load_age_model(face_engine *e, const char *models_dir, char *why, size_t why_len);
/* The calibrated age of the face with these five points in img into *age, the models'
 * own into raw; baseline selects the superseded method (face_options.age_baseline). */
int face_estimate_age(face_worker *w, const image_rgb *img, const float *five, bool baseline,
                      float *age, float raw[2]);

#endif
