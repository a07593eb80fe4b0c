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
} face_options;

typedef struct {
    int faces_found;        /* 0: no usable face; >1: the most prominent was used */
    float box[4];           /* x, y, width, height in original image pixels */
    float eyes[4];          /* x1, y1 (subject's right eye, image left), x2, y2 */
    float detection_score;  /* 0..1 */
    float quality;          /* spec semantics: > 100 good, negative = send again */
    int rotation;           /* degrees clockwise applied to find the face */
    int image_width, image_height; /* after EXIF orientation */
    int embedding_dim;
    float embedding[FACE_EMBEDDING_MAX]; /* L2-normalised */
    bool has_age;
    float age;
} face_result;

enum {
    FACE_OK = 0,
    FACE_ERR_IMAGE = -1,   /* undecodable/unsupported image: message says why (400) */
    FACE_ERR_TOO_LARGE = -2, /* pixel limit (413) */
    FACE_ERR_MODEL = -3,   /* inference failure (500) */
    FACE_ERR_NOMEM = -4,
};

/* Loads every model from models_dir (models/faceplugin, models/human). */
face_engine *face_engine_load(const char *models_dir, char *err, size_t err_len);
void face_engine_free(face_engine *e);
const char *face_engine_describe(const face_engine *e); /* e.g. "fr_detect+fr_landmark+fr_feature(512)" */
int face_engine_embedding_dim(const face_engine *e);

face_worker *face_worker_create(const face_engine *e, char *err, size_t err_len);
void face_worker_free(face_worker *w);

/* A session of another model m (the liveness models) that runs in the worker's
 * activation arena, so it costs the worker no memory of its own: created on first
 * use, then kept by the worker. Only on the worker's thread, like face_analyze;
 * the session's output is valid until the worker runs anything else, and m must
 * outlive the worker. NULL when m needs a larger arena than the worker's models
 * or memory is short. */
nn_session *face_worker_session(face_worker *w, const nn_model *m);

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

/* True when the age model loaded (faceres-deep); without it has_age stays false. */
bool face_engine_has_age(const face_engine *e);
/* The linear age calibration in use (age = a * raw + b), for the refit tool. */
void face_age_calibration(float *a, float *b);


#endif
