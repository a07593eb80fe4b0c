/* bench_face - latency of the whole face pipeline (decode + detect + landmarks +
 * alignment + mirrored embedding, i.e. the work of CreateDirectFace) on one image,
 * one worker thread. bench/bench_face.py runs it next to the OpenCV-DNN reference.
 *
 *   bench_face IMAGE [ITERS [MODELS_DIR [mirror]]]   prints one JSON line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "face/pipeline.h"

#define MAX_ITERS 100000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: on a shared machine it shows the cost without the time
 * spent waiting for a core, next to the wall-clock latency. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_face IMAGE [ITERS [MODELS_DIR]]\n");
        return 2;
    }
    int iters = argc > 2 ? atoi(argv[2]) : 100;
    if (iters < 1 || iters > MAX_ITERS) iters = 100;
    char err[512];
    size_t len = 0;
    uint8_t *data = file_read_all(argv[1], (size_t)1 << 28, &len);
    face_engine *e = face_engine_load(argc > 3 ? argv[3] : "models", err, sizeof err);
    face_worker *w = e ? face_worker_create(e, err, sizeof err) : NULL;
    face_result *r = malloc(sizeof *r);
    double *t = malloc(sizeof *t * (size_t)iters), *c = malloc(sizeof *c * (size_t)iters);
    if (!data || !w || !r || !t || !c) {
        fprintf(stderr, "bench_face: %s\n", data ? err : "cannot read image");
        return 1;
    }
    face_options opt = {.want_embedding = true,
                        .mirror_embedding = argc > 4 && strcmp(argv[4], "mirror") == 0};
    for (int i = 0; i < 3; i++) face_analyze(w, data, len, &opt, r, err, sizeof err); /* warm-up */
    for (int i = 0; i < iters; i++) {
        double t0 = now_ms(), c0 = cpu_ms();
        if (face_analyze(w, data, len, &opt, r, err, sizeof err) != FACE_OK) {
            fprintf(stderr, "bench_face: %s\n", err);
            return 1;
        }
        t[i] = now_ms() - t0;
        c[i] = cpu_ms() - c0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    qsort(c, (size_t)iters, sizeof *c, cmp_double);
    double sum = 0;
    for (int i = 0; i < iters; i++) sum += t[i];
    printf("{\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"cpu_p50_ms\": %.3f, \"mean_ms\": %.3f, "
           "\"faces_per_s\": %.1f, "
           "\"width\": %d, \"height\": %d, \"faces_found\": %d, \"box\": [%.1f, %.1f, %.1f, %.1f], "
           "\"quality\": %.1f, \"score\": %.4f}\n",
           t[iters / 2], t[(iters * 99) / 100 < iters ? (iters * 99) / 100 : iters - 1],
           c[iters / 2], sum / iters, 1000.0 * iters / sum, r->image_width, r->image_height, r->faces_found,
           r->box[0], r->box[1], r->box[2], r->box[3], r->quality, r->detection_score);
    free(t);
    free(c);
    free(r);
    free(data);
    face_worker_free(w);
    face_engine_free(e);
    return 0;
}
