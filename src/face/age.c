/* Age estimation: faceres-deep's age head on a face aligned like the embedding's,
 * with a quadratic calibration (docs/age.md). */
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
 * but on a 224x224 canvas with `zoom` times the context, raw 0-255, BGR.
 *
 * Measured on data/age with tools/bench_age.c (`make bench-age`): the MANIFEST rows,
 * sorted by file name, alternate between the tuning half (even rows) and the
 * evaluation half (odd rows). Context 0.9: MAE 9.2, 1.0: 8.6, 1.1: 8.3, 1.2: 8.1,
 * 1.3: 8.3, 1.4: 8.4 years after a linear fit (tuning half, least squares);
 * averaging the mirrored face, several contexts, or adding human's `gear` age
 * classes (7 age bands) moved it by less than 0.1 year. What helped was the shape of
 * the calibration: the model underestimates older faces more than young ones, and
 * a quadratic fitted by least absolute deviations (the error we report) takes the
 * evaluation MAE to 7.5. fr_age (faceplugin's SSR-Net) answers about 37 for every
 * face, and human's `age` (SSR-Net) needs an operator our runtime lacks.
 *
 * Calibration: age = cal[0] + cal[1] raw + cal[2] raw^2, fitted on the tuning half
 * only; `make bench-age` prints the refit with the constants in use. */
typedef struct {
    float zoom;
    float cal[3];
} age_method;

static const age_method AGE_CURRENT = {1.2f, {1.2287f, 0.62441f, 0.008271f}};
/* Until 2026-12: context 1.4 and a least-squares line (MAE 8.4 on the evaluation half);
 * kept as the benchmark's baseline. */
static const age_method AGE_BASELINE = {1.4f, {-9.2117f, 1.2788f, 0.0f}};

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

void face_age_calibration(float c[3])
{
    for (int i = 0; i < 3; i++) c[i] = AGE_CURRENT.cal[i];
}

int face_estimate_age(face_worker *w, const image_rgb *img, const float *five, bool baseline,
                      float *age, float *raw)
{
    const age_method *m = baseline ? &AGE_BASELINE : &AGE_CURRENT;
    float tpl[10], t[6];
    for (int i = 0; i < 10; i++)
        tpl[i] = (geometry_arcface_template_112[i] - 56.0f) * (AGE_SIZE / 112.0f) / m->zoom +
                 AGE_SIZE / 2.0f;
    if (similarity_estimate(five, tpl, 5, t) != 0) return FACE_OK; /* caught by face_align */
    float *in = nn_session_input(w->age, 0);
    image_warp_affine_to_tensor(img, t, AGE_SIZE, AGE_SIZE, 0.0f, 1.0f, 0, in);
    swap_rb(in, AGE_SIZE * AGE_SIZE);
    if (nn_run(w->age) != NN_OK) return FACE_ERR_MODEL;
    const float *p = nn_session_output(w->age, w->e->age_output);
    double mean = 0, total = 0;
    for (int i = 0; i < AGE_BINS; i++) mean += (double)i * p[i], total += p[i];
    float r = total > 0 ? (float)(mean / total) : 0.0f;
    *raw = r;
    *age = fmaxf(0.0f, m->cal[0] + m->cal[1] * r + m->cal[2] * r * r);
    return FACE_OK;
}
