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
#define LMK_SIZE 64
#define LMK_POINTS 68
#define FEAT_SIZE 112
#define AGE_SIZE 224
#define AGE_BINS 100

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

/* A model file of dir by name; the message says "missing" for a set-up problem. */
nn_model *face_load_model(const char *dir, const char *name, char *err, size_t err_len);
/* The DCT scale (1, 2, 4 or 8) of the coarsest decode whose long side stays >= min_side. */
int face_decode_denom(image_format fmt, int W, int H, int min_side);
/* Maps an IMAGE_ERR_* to the FACE_ERR_* the caller returns. */
int face_image_error(int rc);

/* ---- detect.c ---- */
typedef struct {
    int faces, rot;
    float evidence; /* what decided the rotation (see detect.c) */
    det_box best;   /* its most prominent face */
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
/* The L2-normalised embedding of w->aligned (plus its mirror when asked) into out. */
int face_embed(face_worker *w, bool mirror, face_result *out);
/* Box (edges, in a raster decoded at 1/denom and rotated by rot) -> x, y, w, h of the
 * W x H upright image; a point (pixel centre) likewise. */
void face_box_to_original(const det_box *b, int denom, int rot, int W, int H, float *box);
void face_point_to_original(float x, float y, int denom, int rot, int W, int H, float *out);

/* ---- quality.c (pure: no model) ---- */
/* The spec's quality (> 100 good, negative = send again) of the aligned 112x112 face
 * tensor (fr_feature's input layout), its detection score, the inter-eye distance in
 * original pixels and the five points. */
float face_quality(const float *aligned, float det_score, float eye_dist_px, const float *five);

/* ---- age.c ---- */
/* Loads faceres-deep into e->age. -1 (why set) when the file is missing; 0 otherwise,
 * with e->age NULL and why set when it is present but unusable. */
int face_load_age_model(face_engine *e, const char *models_dir, char *why, size_t why_len);
/* The calibrated age of the face with these five points in img into *age. */
int face_estimate_age(face_worker *w, const image_rgb *img, const float *five, float *age);

#endif
