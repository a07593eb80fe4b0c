/*
 * bench_nn - drives the nn runtime for bench/bench_nn.py and for checking it
 * against a reference by hand.
 *
 *   bench_nn run   MODEL IN.f32 OUT.f32 [int8]  run once; outputs concatenated (native layout)
 *   bench_nn bench MODEL IN.f32 ITERS [int8]    time ITERS runs, print one JSON line
 *   bench_nn memory [int8] MODEL...        load all, one session each; print RSS vs weights
 *
 * IN.f32 holds the first input as raw little-endian float32 (missing = zeros).
 * With `int8` the model's dense convolutions run in int8 (nn_model_use_int8).
 */
#include "nn/nn.h"
#include "nn/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t shape_size(nn_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.rank; i++) n *= (size_t)s.dims[i];
    return n;
}

static void read_input(nn_session *s, const nn_model *m, const char *path)
{
    float *in = nn_session_input(s, 0);
    size_t n = shape_size(nn_model_input_shape(m, 0));
    memset(in, 0, n * sizeof *in);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    if (fread(in, sizeof *in, n, f) != n) fprintf(stderr, "warning: %s shorter than input\n", path);
    fclose(f);
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc >= 3 && strcmp(argv[1], "memory") == 0) {
        long before = rss_kb();
        size_t weights = 0;
        int int8 = strcmp(argv[2], "int8") == 0;
        for (int i = 2 + int8; i < argc; i++) {
            nn_model *m = nn_model_load(argv[i], err, sizeof err);
            if (!m) { fprintf(stderr, "%s\n", err); return 1; }
            if (int8 && nn_model_use_int8(m, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); return 1; }
            nn_session *s = nn_session_create(m, err, sizeof err);
            if (!s) { fprintf(stderr, "%s\n", err); return 1; }
            nn_run(s);
            weights += nn_model_weight_bytes(m);   /* models and sessions stay loaded on purpose */
        }
        long after = rss_kb();
        printf("{\"rss_kb\": %ld, \"weight_kb\": %zu}\n", after - before, weights / 1024);
        return 0;
    }
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "int8") == 0)) {
        fprintf(stderr, "usage: bench_nn run MODEL IN OUT [int8] | bench MODEL IN ITERS [int8] | memory [int8] MODEL...\n");
        return 2;
    }
    nn_model *m = nn_model_load(argv[2], err, sizeof err);
    if (!m) { fprintf(stderr, "load: %s\n", err); return 1; }
    int int8_convs = argc == 6 ? nn_model_use_int8(m, err, sizeof err) : 0;
    if (int8_convs < 0) { fprintf(stderr, "int8: %s\n", err); return 1; }
    nn_session *s = nn_session_create(m, err, sizeof err);
    if (!s) { fprintf(stderr, "session: %s\n", err); return 1; }
    read_input(s, m, argv[3]);
    if (strcmp(argv[1], "run") == 0) {
        if (nn_run(s)) { fprintf(stderr, "run failed\n"); return 1; }
        FILE *f = fopen(argv[4], "wb");
        if (!f) return 1;
        for (int i = 0; i < nn_model_output_count(m); i++)
            fwrite(nn_session_output(s, i), sizeof(float), shape_size(nn_model_output_shape(m, i)), f);
        fclose(f);
    } else {
        int iters = atoi(argv[4]);
        if (iters < 1) iters = 1;
        /* Wall time, and this thread's CPU time: on a shared machine the second
         * leaves out the time spent waiting for a core. */
        double *t = malloc((size_t)iters * sizeof *t), *cpu = malloc((size_t)iters * sizeof *cpu);
        for (int i = 0; i < 3; i++) nn_run(s);
        for (int i = 0; i < iters; i++) {
            double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
            nn_run(s);
            t[i] = clock_ms(CLOCK_MONOTONIC) - t0;
            cpu[i] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
        }
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        qsort(cpu, (size_t)iters, sizeof *cpu, cmp_double);
        printf("{\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"cpu_p50_ms\": %.4f, \"macs\": %.0f, \"weight_bytes\": %zu, "
               "\"int8_convs\": %d}\n",
               t[iters / 2], t[(iters * 99) / 100 < iters ? (iters * 99) / 100 : iters - 1], cpu[iters / 2],
               nn_model_macs(m), nn_model_weight_bytes(m), int8_convs);
        free(cpu);
        free(t);
    }
    nn_session_free(s);
    nn_model_free(m);
    return 0;
}
