/* Age estimation: faceres-deep's age head on a face aligned like the embedding's,
 * with a linear calibration (docs/age.md). */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "face/geometry.h"
#include "face/pipeline_internal.h"

/* A missing faceres-deep is a set-up error like any other model; one that is present
 * but does not load (the TF.js loader is young) leaves the engine working without
 * age, and describe() says why. */
int face_load_age_model(face_engine *e, const char *models_dir, char *why, size_t why_len)
{
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/human", models_dir);
    snprintf(path, sizeof path, "%s/faceres-deep.json", dir);
    e->age_output = -1;
    if (access(path, R_OK) != 0) {
        snprintf(why, why_len, "model file missing: %.400s (run `make models`)", path);
        return -1;
    }
    e->age = face_load_model(dir, "faceres-deep.json", why, why_len);
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

int face_estimate_age(face_worker *w, const image_rgb *img, const float *five, float *age)
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
