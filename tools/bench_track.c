/* bench_track - the capture stream's per-frame tracker (face_track) against what it
 * replaced, face_analyze without embedding or age (decode at the analysis scale,
 * detection, landmarks, alignment, quality), on the same webcam frames in one run,
 * one thread: milliseconds per frame (p50, p99), the ratio, and how far the two
 * agree (box IoU, eye positions in eye distances), since guidance reads those.
 *
 *   bench_track [DATA_DIR [MODELS_DIR [ROUNDS]]]   (defaults ../shared/data, models, 5)
 * Frames: every NUAA frame (spoof/nuaa, live and spoof folders, 640x480 webcam). */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/util.h"
#include "face/pipeline.h"

#define MAX_FRAMES 4096

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[(int)(p / 100 * (n - 1) + 0.5)];
}

static float iou(const float *a, const float *b) {
    float x0 = fmaxf(a[0], b[0]), y0 = fmaxf(a[1], b[1]);
    float x1 = fminf(a[0] + a[2], b[0] + b[2]), y1 = fminf(a[1] + a[3], b[1] + b[3]);
    float inter = fmaxf(0, x1 - x0) * fmaxf(0, y1 - y0);
    return inter / (a[2] * a[3] + b[2] * b[3] - inter);
}

int main(int argc, char **argv) {
    const char *data_dir = argc > 1 ? argv[1] : "../shared/data", *models = argc > 2 ? argv[2] : "models";
    int rounds = argc > 3 ? atoi(argv[3]) : 5;
    char pattern[600], err[256];
    snprintf(pattern, sizeof pattern, "%s/spoof/nuaa/*/*/*.jpg", data_dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "bench_track: no frames under %s\n", pattern);
        return 1;
    }
    int n = g.gl_pathc < MAX_FRAMES ? (int)g.gl_pathc : MAX_FRAMES;
    uint8_t **data = calloc((size_t)n, sizeof *data);
    size_t *len = calloc((size_t)n, sizeof *len);
    for (int i = 0; i < n; i++) data[i] = file_read_all(g.gl_pathv[i], (size_t)16 << 20, &len[i]);
    face_engine *e = face_engine_load(models, err, sizeof err);
    face_worker *w = e ? face_worker_create(e, err, sizeof err) : NULL;
    if (!w) {
        fprintf(stderr, "bench_track: %s\n", err);
        return 1;
    }
    double *t_full = calloc((size_t)(n * rounds), sizeof(double)), *t_track = calloc((size_t)(n * rounds), sizeof(double));
    face_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    face_options opt = {.max_pixels = 40L * 1000 * 1000};
    double iou_sum = 0, eye_sum = 0, eye_max = 0;
    int agree = 0, both = 0, only_full = 0, only_track = 0, k = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++, k++) {
            double t0 = time_monotonic_s();
            face_analyze(w, data[i], len[i], &opt, a, err, sizeof err);
            double t1 = time_monotonic_s();
            face_track(w, data[i], len[i], opt.max_pixels, b, err, sizeof err);
            double t2 = time_monotonic_s();
            t_full[k] = (t1 - t0) * 1000, t_track[k] = (t2 - t1) * 1000;
            if (r) continue;
            bool fa = a->faces_found > 0, fb = b->faces_found > 0;
            both += fa && fb, only_full += fa && !fb, only_track += fb && !fa;
            if (!(fa && fb)) continue;
            float ed = hypotf(a->eyes[2] - a->eyes[0], a->eyes[3] - a->eyes[1]);
            float d = fmaxf(hypotf(a->eyes[0] - b->eyes[0], a->eyes[1] - b->eyes[1]),
                            hypotf(a->eyes[2] - b->eyes[2], a->eyes[3] - b->eyes[3])) / ed;
            float o = iou(a->box, b->box);
            iou_sum += o, eye_sum += d, eye_max = fmax(eye_max, d), agree += o > 0.8f;
        }
    printf("bench_track: %d NUAA webcam frames (640x480) x %d rounds, one thread (machine shared)\n", n, rounds);
    double pf = pct(t_full, k, 50), pt = pct(t_track, k, 50);
    printf("  face_analyze, no embedding/age (baseline): p50 %.2f ms  p99 %.2f ms\n", pf, pct(t_full, k, 99));
    printf("  face_track (capture stream tracker):       p50 %.2f ms  p99 %.2f ms\n", pt, pct(t_track, k, 99));
    printf("  speed-up p50: %.2fx\n", pf / pt);
    printf("  faces: both %d, baseline only %d, tracker only %d; box IoU mean %.3f (%d of %d > 0.8); "
           "eye offset mean %.3f, max %.3f eye distances\n", both, only_full, only_track, both ? iou_sum / both : 0,
           agree, both, both ? eye_sum / both : 0, eye_max);
    for (int i = 0; i < n; i++) free(data[i]);
    free(data), free(len), free(t_full), free(t_track), free(a), free(b);
    face_worker_free(w);
    face_engine_free(e);
    globfree(&g);
    return 0;
}
