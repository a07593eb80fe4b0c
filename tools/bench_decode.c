/* bench_decode - our scaled JPEG decoder (src/face/jpeg_scaled.c) against
 * libjpeg-turbo's tjDecompress2(TJPF_RGB) on the same files, same run, one thread.
 *
 *   bench_decode [BLOCKS [ITERS]] FILE...      (defaults 7 blocks of 20 decodes)
 *
 * For each file at 1/2, 1/4 and 1/8 the two decoders run in alternating blocks
 * (which one goes first alternates too), because this VM's speed drifts 10-20 %
 * within a minute: a block each would read that drift as a difference. Each figure
 * is the median over blocks of the block's median decode time. Both decode into a
 * buffer allocated once; libjpeg-turbo's handle is created once (image.c creates one
 * per fallback decode, so this favours libjpeg-turbo slightly). The bytes are
 * compared once per case, and a declined file is reported as such. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/file.h"
#include "core/util.h"
#include "face/jpeg_scaled.h"

#define MAX_BLOCKS 101
#define MAX_ITERS 10000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct {
    const uint8_t *data;
    size_t len;
    int denom, w, h;
    uint8_t *out;
    tjhandle tj;
} decode_case;

static int decode_ours(const decode_case *c)
{
    return jpeg_scaled_decode(c->data, c->len, c->denom, c->out, c->w, c->h);
}

static int decode_turbo(const decode_case *c)
{
    return tjDecompress2(c->tj, c->data, (unsigned long)c->len, c->out, c->w, 0, c->h, TJPF_RGB, 0);
}

/* Median time of iters decodes. */
static double time_block(int (*decode)(const decode_case *), const decode_case *c, int iters)
{
    double t[MAX_ITERS];
    for (int i = 0; i < iters; i++) {
        double t0 = time_monotonic_s();
        decode(c);
        t[i] = (time_monotonic_s() - t0) * 1e3;
    }
    return median(t, iters);
}

/* 1 when both decoders give the same bytes, 0 when they differ, -1 when ours declines. */
static int compare_outputs(decode_case *c)
{
    size_t n = (size_t)c->w * c->h * 3;
    uint8_t *ours = malloc(n);
    if (!ours) exit(1);
    uint8_t *keep = c->out;
    c->out = ours;
    int rc = decode_ours(c);
    c->out = keep;
    decode_turbo(c);
    int same = rc != JPEG_SCALED_OK ? -1 : memcmp(ours, c->out, n) == 0;
    free(ours);
    return same;
}

int main(int argc, char **argv)
{
    int blocks = 7, iters = 20, first = 1;
    if (argc > 3 && atoi(argv[1]) > 0 && atoi(argv[2]) > 0) {
        blocks = atoi(argv[1]);
        iters = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc || blocks > MAX_BLOCKS || iters > MAX_ITERS) {
        fprintf(stderr, "usage: bench_decode [BLOCKS<=%d ITERS<=%d] FILE...\n", MAX_BLOCKS, MAX_ITERS);
        return 2;
    }
    printf("bench_decode: median of %d alternating blocks of %d decodes, one thread, ms per decode\n",
           blocks, iters);
    printf("%-28s %9s %5s %14s %10s %8s  %s\n", "file", "size", "scale", "libjpeg-turbo", "ours",
           "ratio", "bytes");
    double log_sum = 0, worst = 0, best = 1e9;
    int cases = 0, declined = 0, different = 0;
    tjhandle tj = tjInitDecompress();
    for (int f = first; f < argc; f++) {
        size_t len;
        uint8_t *data = file_read_all(argv[f], (size_t)1 << 28, &len);
        int w, h, ss, cs;
        if (!data || !tj || tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &ss, &cs)) {
            fprintf(stderr, "%s: cannot read a JPEG header\n", argv[f]);
            return 1;
        }
        const char *name = strrchr(argv[f], '/') ? strrchr(argv[f], '/') + 1 : argv[f];
        for (int denom = 2; denom <= 8; denom *= 2) {
            decode_case c = {data, len, denom, (w + denom - 1) / denom, (h + denom - 1) / denom, NULL, tj};
            c.out = malloc((size_t)c.w * c.h * 3);
            if (!c.out) return 1;
            int same = compare_outputs(&c);
            double ours[MAX_BLOCKS], turbo[MAX_BLOCKS];
            for (int b = 0; b < blocks; b++) {
                if (b % 2 == 0) {
                    ours[b] = time_block(decode_ours, &c, iters);
                    turbo[b] = time_block(decode_turbo, &c, iters);
                } else {
                    turbo[b] = time_block(decode_turbo, &c, iters);
                    ours[b] = time_block(decode_ours, &c, iters);
                }
            }
            double t_ours = median(ours, blocks), t_turbo = median(turbo, blocks);
            double ratio = t_ours / t_turbo;
            char size[24];
            snprintf(size, sizeof size, "%dx%d", w, h);
            printf("%-28s %9s   1/%d %11.3f ms %7.3f ms %8.3f  %s\n", name, size, denom, t_turbo, t_ours,
                   ratio, same < 0 ? "DECLINED (time to decline)" : same ? "identical" : "DIFFERENT");
            fflush(stdout);
            if (same < 0) {
                declined++;
            } else {
                different += !same;
                log_sum += log(ratio);
                worst = ratio > worst ? ratio : worst;
                best = ratio < best ? ratio : best;
                cases++;
            }
            free(c.out);
        }
        free(data);
    }
    tjDestroy(tj);
    if (cases)
        printf("summary: ours/libjpeg-turbo geometric mean %.3f (best %.3f, worst %.3f) over %d cases, "
               "%d declined, %d with different bytes\n",
               exp(log_sum / cases), best, worst, cases, declined, different);
    return different ? 1 : 0;
}
