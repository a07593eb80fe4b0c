/* The face pipeline: image bytes in, the most prominent face out with its
 * landmarks, quality, embedding and age. Models are loaded once into a shared
 * engine; each worker thread owns a face_worker (its inference sessions and
 * scratch buffers), so analysing needs no locks. */
#ifndef FACE_PIPELINE_H
#define FACE_PIPELINE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "face/image.h"
#include "nn/nn.h"

#define FACE_EMBEDDING_MAX 1024

typedef struct face_engine face_engine;
typedef struct face_worker face_worker;

typedef struct {
    bool rotation_enabled; /* also try 90/180/270 degrees, keep the best detection */
    bool want_embedding;
    bool want_age;
    long max_pixels;       /* decompression-bomb guard */
    bool mirror_embedding; /* add the mirrored face's embedding: LFW 99.08% vs 99.02%, +5 ms;
                            * off in the server, which must meet its latency target */
    bool accurate;         /* the accurate mode's fused embedding (embed_accurate.c), dimension
                            * face_accurate_dim; mirror_embedding is implied */
    bool age_baseline;     /* benchmarks only: the superseded age method (docs/age.md), so
                            * tools/bench_age.c measures old and new on the same faces */
} face_options;

/* The factors of face_result.quality, each in [0, 1] (src/face/quality.c says how each
 * is measured and how they combine). */
enum {
    FACE_QF_DETECTION, /* detector score */
    FACE_QF_EYES,      /* inter-eye distance against the spec's 60 px */
    FACE_QF_SHARPNESS, /* Laplacian variance of the aligned face */
    FACE_QF_EXPOSURE,  /* mean luma of the aligned face */
    FACE_QF_POSE,      /* yaw and roll from the landmarks */
    FACE_QF_LIKENESS,  /* the embedding norm: how clearly the recognition model sees a face */
    FACE_QF_COUNT
};

typedef struct {
    int faces_found;        /* 0: no usable face; >1: the most prominent was used */
    bool implausible;       /* a detection was found but failed the plausibility check
                             * (not a face to fr_feature: docs/negatives.md); faces_found is 0 */
    float box[4];           /* x, y, width, height in original image pixels */
    float eyes[4];          /* x1, y1 (subject's right eye, image left), x2, y2 */
    float detection_score;  /* 0..1 */
    float quality;          /* spec semantics: > 100 good, negative = send again */
    float quality_factors[FACE_QF_COUNT]; /* what quality is made of */
    float embedding_norm;   /* fr_feature's output norm before normalisation (no mirror) */
    int rotation;           /* degrees clockwise applied to find the face */
    int image_width, image_height; /* after EXIF orientation */
    int embedding_dim;
    float embedding[FACE_EMBEDDING_MAX]; /* L2-normalised */
    bool has_age;
    float age;              /* calibrated years */
    float age_raw[2];       /* the models' own estimates: faceres-deep, face-api */
} face_result;

enum {
    FACE_OK = 0,
    FACE_ERR_IMAGE = -1,   /* undecodable/unsupported image: message says why (400) */
    FACE_ERR_TOO_LARGE = -2, /* pixel limit (413) */
    FACE_ERR_MODEL = -3,   /* inference failure (500) */
    FACE_ERR_NOMEM = -4,
};

/* A model file of dir by name, in the precision measured for it (face_model_int8);
 * the message says "missing" for a set-up problem. The liveness models load here too. */
nn_model *face_load_model(const char *dir, const char *name, char *err, size_t err_len);
/* The same with a .tflite model's fixed batch replaced (nn_model_load_batch). */
nn_model *face_load_model_batch(const char *dir, const char *name, int batch, char *err, size_t err_len);
/* Whether the model file runs its dense convolutions in int8 (table in pipeline.c). */
bool face_model_int8(const char *file);

/* Loads every model from models_dir (models/faceplugin, models/human). */
face_engine *face_engine_load(const char *models_dir, char *err, size_t err_len);
void face_engine_free(face_engine *e);
const char *face_engine_describe(const face_engine *e); /* e.g. "fr_detect+fr_landmark+fr_feature(512)" */
int face_engine_embedding_dim(const face_engine *e);
/* The dimension of the accurate mode's fused embedding (face_options.accurate). */
int face_accurate_dim(const face_engine *e);

face_worker *face_worker_create(const face_engine *e, char *err, size_t err_len);
void face_worker_free(face_worker *w);

/* A session of another model m (the liveness models) that runs in the worker's
 * activation arena, so it costs the worker no memory of its own: created on first
 * use, then kept by the worker. Only on the worker's thread, like face_analyze;
 * the session's output is valid until the worker runs anything else, and m must
 * outlive the worker. NULL when m needs a larger arena than the worker's models
 * or memory is short. */
nn_session *face_worker_session(face_worker *w, const nn_model *m);

/* The face the last face_analyze aligned (when it embedded one): fr_feature's input,
 * 3 x 112 x 112 planes (NCHW) of RGB (x - 127) / 128, for other 112x112 models. */
const float *face_worker_aligned(const face_worker *w);

/* Decodes and analyses one image. faces_found == 0 is not an error. */
int face_analyze(face_worker *w, const uint8_t *data, size_t len, const face_options *opt,
                 face_result *out, char *err, size_t err_len);

/* The light tracker of the capture stream (api/capture_stream.c): the most
 * prominent face's box, eyes and detection score only (no alignment, quality,
 * embedding or age; quality stays negative), upright only, on a JPEG decoded at the
 * coarsest DCT scale that still fills the detector's input. faces_found == 0 is not
 * an error. Same threading rules as face_analyze. */
int face_track(face_worker *w, const uint8_t *data, size_t len, long max_pixels, face_result *out, char *err,
               size_t err_len);

/* True when the age models loaded (faceres-deep, face-api's age_gender_model); without
 * them has_age stays false. */
bool face_engine_has_age(const face_engine *e);
/* The age calibration in use, age = c[0] + c[1] d + c[2] d^2 + c[3] f with d and f
 * the two models' estimates (face_result.age_raw), for the refit in tools/bench_age.c. */
#define FACE_AGE_TERMS 4
void face_age_calibration(float c[FACE_AGE_TERMS]);


#endif
