/* The accurate mode's embedding (algorithm fusion-v2, src/api/modes.c): three
 * networks, each with its mirrored face, fused into one unit vector:
 *   - fr_feature on the ArcFace alignment (align.c), 512-d;
 *   - dlib's ResNet on dlib's own 150x150 chip (embed_dlib.c), 128-d;
 *   - MobileFaceNet on the ArcFace alignment (embed_mobilefacenet.c), 192-d.
 *
 * Fusion: each part is L2-normalised and scaled by sqrt(weight), the weights summing
 * to 1, so the dot product of two fused unit vectors is the weighted sum of the
 * three cosines (score-level fusion: a sum of z-normalised cosines up to a constant
 * when each weight is proportional to 1 / its impostor standard deviation). Every
 * matcher (embedding_similarity, galleries) keeps comparing plain unit vectors;
 * the mode's own FAR calibration (calibration/far-accurate-v2.txt) maps the fused
 * value. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "face/pipeline_internal.h"

int face_accurate_dim(const face_engine *e) { return e->embedding_dim + DLIB_DIM + MFN_DIM; }

int face_load_accurate_models(face_engine *e, const char *models_dir, char *err, size_t err_len)
{
    if (face_load_dlib_model(e, models_dir, err, err_len) != 0 ||
        face_load_mobilefacenet(e, models_dir, err, err_len) != 0)
        return -1;
    if (face_accurate_dim(e) > FACE_EMBEDDING_MAX) {
        snprintf(err, err_len, "accurate embedding size %d unsupported", face_accurate_dim(e));
        return -1;
    }
    return 0;
}

static void scale_unit(float *v, int n, float weight)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    float k = s > 0 ? (float)(sqrt(weight) / sqrt(s)) : 0.0f;
    for (int i = 0; i < n; i++) v[i] *= k;
}

int face_embed_accurate(face_worker *w, const image_rgb *img, const float *pts, face_result *out)
{
    int rc = face_embed(w, true, out); /* fr_feature + mirror of w->aligned, unit length */
    if (rc != FACE_OK) return rc;
    int dim = out->embedding_dim;
    float *dlib = out->embedding + dim, *mfn = dlib + DLIB_DIM;
    if ((rc = face_dlib_descriptor(w, img, pts, dlib)) != FACE_OK ||
        (rc = face_mobilefacenet_descriptor(w, mfn)) != FACE_OK)
        return rc;
    scale_unit(out->embedding, dim, FUSION_W_FEATURE);
    scale_unit(dlib, DLIB_DIM, FUSION_W_DLIB);
    scale_unit(mfn, MFN_DIM, FUSION_W_MOBILEFACENET);
    out->embedding_dim = dim + DLIB_DIM + MFN_DIM;
    return FACE_OK;
}
