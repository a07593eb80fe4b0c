/* Server-side replay of a liveness capture: from timestamped frames to a verdict.
 *
 * Per frame: the face pipeline (box, eyes, embedding, quality), the 68-point
 * landmarks again for the nose tip (head yaw), and the presentation-attack score
 * of the server's PAD fusion (liveness/pad.h, chosen in evaluate.c by `make
 * bench-pad`: fr_liveness alone, on the face box scaled 2.7x around its centre,
 * clipped to the frame, raw 0-255 BGR; see docs/liveness.md).
 *
 * Then per type:
 *   PASSIVE        the live score of the best-quality frame;
 *   PASSIVE_VIDEO  >= 3 face frames: mean live score, plus temporal checks (one
 *                  person by embedding, some natural motion, no identical/looping
 *                  frames, no jumps);
 *   ACTIVE         the seed's head turns performed in order (centre -> turn), plus
 *                  the video checks on the frontal frames.
 * Security levels move the live-score threshold (and the turn angle for ACTIVE).
 *
 * Models load once (liveness_engine); their sessions belong to the face_worker of
 * the thread that evaluates (face_worker_session), in that worker's activation arena. */
#ifndef LIVENESS_EVALUATE_H
#define LIVENESS_EVALUATE_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "face/pipeline.h"
#include "liveness/challenge.h"

#define LIVENESS_MAX_FRAMES 100 /* enough for CHALLENGE_MAX turns at a few frames each */

typedef enum { LIVENESS_PASSIVE = 0, LIVENESS_PASSIVE_VIDEO, LIVENESS_ACTIVE } liveness_type;
typedef enum { LEVEL_LOW = 0, LEVEL_MEDIUM, LEVEL_HIGH } liveness_level;
typedef enum { VERDICT_SUCCESS = 0, VERDICT_FAILED, VERDICT_SPOOF, VERDICT_ERROR } liveness_verdict;

/* Operating points, measured on data/spoof by `make bench-pad`. */
typedef struct {
    float live_min;      /* the PAD fusion's 0-1 live score needed (liveness/pad.h) */
    float turn_min;      /* |yaw| a head turn must reach (ACTIVE) */
} liveness_thresholds;

liveness_thresholds liveness_level_thresholds(liveness_level level);

typedef struct liveness_engine liveness_engine;

/* Loads fr_landmark and the PAD models of the server's fusion (liveness/pad.h)
 * from models_dir. Their sessions belong to the face_workers that run them, which
 * must be freed first. */
liveness_engine *liveness_engine_load(const char *models_dir, char *err, size_t err_len);
void liveness_engine_free(liveness_engine *e);
/* The PAD fusion whose 0-1 live score the level thresholds apply to. */
const struct pad_fusion *liveness_engine_fusion(const liveness_engine *e);

typedef struct {
    int64_t timestamp_ms;
    const uint8_t *data;
    size_t len;
} liveness_frame;

typedef struct {
    liveness_type type;
    liveness_level level;
    uint32_t seed;
    int nb_challenge;
    long max_pixels;
} liveness_request;

/* What one frame measured (also used by the benchmark). */
typedef struct {
    bool face;
    float box[4];      /* x, y, w, h */
    float eyes[4];
    float nose[2];
    float yaw;         /* nose offset from the eye midpoint along the eye line / eye distance;
                        * > 0: nose towards the image right = the user's left */
    float live;        /* the PAD fusion's 0-1 live score */
    float quality;
    float embedding[FACE_EMBEDDING_MAX];
    int embedding_dim;
    float thumb[16 * 16]; /* grey thumbnail of the whole frame: identical frames */
} liveness_frame_info;

typedef struct {
    liveness_verdict verdict;
    char reason[200];
    int best_frame; /* index into the frames, -1 when no face */
    float box[4], eyes[4];
    float live_score; /* the aggregate the threshold was applied to */
    int frames_with_face;
    int challenges_done;
} liveness_outcome;

/* Analyses one frame with the worker's face sessions, the liveness models included.
 * Returns 0 (info->face false when no face) or -1 with err for undecodable input. */
int liveness_analyze_frame(liveness_engine *e, face_worker *fw, const liveness_frame *f, long max_pixels,
                           liveness_frame_info *info, char *err, size_t err_len);

/* The verdict for frames already analysed (pure; unit-testable without models). */
void liveness_decide(const liveness_request *rq, const liveness_frame *frames, const liveness_frame_info *infos,
                     int n, liveness_outcome *out);

/* Both steps for a whole capture; infos scratch is allocated internally. */
void liveness_evaluate(liveness_engine *e, face_worker *fw, const liveness_request *rq,
                       const liveness_frame *frames, int n, liveness_outcome *out);

const char *liveness_verdict_name(liveness_verdict v);
const char *liveness_type_name(liveness_type t);
const char *liveness_level_name(liveness_level l);

#endif
