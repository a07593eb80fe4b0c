/* make bench-gallery (part 2): a gallery of N faces (default 1,000,000) in the
 * embedded store, built through the gallery service exactly as the server enrols
 * (SQLite commit + 4-bit index per face), then searched.
 *
 * Faces: LFW embeddings (one photo per person, made by the server in part 1,
 * bench/bench_gallery.py) plus random unit vectors (isotropic Gaussian) up to N.
 * Probes: the same people's second photos. Prints the enrolment rate, the index's
 * memory (RSS growth), search p50/p99 on 1 and 2 threads, rank-1 of the LFW probes
 * among N-1 distractors, the time to rebuild the index from the database (restart),
 * and, as the baseline on the same gallery and probes in the same run, a naive scan
 * of every float embedding (which also checks that our top 10 are the exact ones).
 *
 * usage: bench_gallery EMBEDDINGS.bin DB_PATH [N]
 * EMBEDDINGS.bin: i32 count, i32 dim, then count pairs (enrolled, probe) of dim floats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "face/pipeline.h"
#include "gallery/gallery.h"
#include "gallery/gallery_index.h"
#include "match/similarity.h"

#define QUERIES 200
#define BASELINE_QUERIES 10

static long rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb / 1024;
}

/* Isotropic Gaussian direction (xorshift + Box-Muller), normalised. */
static void random_unit(uint64_t *s, float *v, int dim) {
    double n = 0;
    for (int i = 0; i < dim; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
            u[k] = ((*s >> 11) + 1.0) / 9007199254740993.0;
        }
        double r = sqrt(-2 * log(u[0]));
        v[i] = (float)(r * cos(2 * M_PI * u[1]));
        if (i + 1 < dim) v[i + 1] = (float)(r * sin(2 * M_PI * u[1]));
    }
    for (int i = 0; i < dim; i++) n += (double)v[i] * v[i];
    for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(n));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    int people, dim;
    float *enrolled, *probes;
} lfw_set;

static int load_lfw(const char *path, lfw_set *s) {
    FILE *f = fopen(path, "rb");
    int32_t hdr[2];
    if (!f || fread(hdr, sizeof hdr, 1, f) != 1) return -1;
    s->people = hdr[0], s->dim = hdr[1];
    s->enrolled = malloc((size_t)s->people * s->dim * sizeof(float));
    s->probes = malloc((size_t)s->people * s->dim * sizeof(float));
    for (int p = 0; p < s->people; p++) {
        if (fread(s->enrolled + (size_t)p * s->dim, sizeof(float), s->dim, f) != (size_t)s->dim ||
            fread(s->probes + (size_t)p * s->dim, sizeof(float), s->dim, f) != (size_t)s->dim)
            return -1;
    }
    fclose(f);
    return 0;
}

/* Face i of the gallery: LFW person i for i < people, else random (seeded by i). */
static void face_vector(const lfw_set *s, long i, float *v) {
    if (i < s->people) memcpy(v, s->enrolled + (size_t)i * s->dim, (size_t)s->dim * sizeof(float));
    else {
        uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        random_unit(&seed, v, s->dim);
    }
}

static char (*ids)[UUID_STR_LEN];

static void build(gallery_service *svc, const lfw_set *s, long n) {
    float v[FACE_EMBEDDING_MAX];
    char json[64];
    double t = time_monotonic_s(), last = t;
    for (long i = 0; i < n; i++) {
        face_vector(s, i, v);
        uuid_generate(ids[i]);
        snprintf(json, sizeof json, "{\"externalId\":\"%ld\"}", i);
        gallery_face f = {"bench", "g", ids[i], json + 15, json, v, s->dim};
        if (gallery_enrol(svc, &f, n + 1)) {
            fprintf(stderr, "enrolment %ld failed\n", i);
            exit(1);
        }
        if (time_monotonic_s() - last > 10) {
            last = time_monotonic_s();
            fprintf(stderr, "  %ld faces, %.0f/s\n", i + 1, (i + 1) / (last - t));
        }
    }
    double secs = time_monotonic_s() - t;
    printf("enrolment (store commit + index, one at a time, synchronous=NORMAL): %ld faces in %.1f s = %.0f faces/s\n",
           n, secs, n / secs);
}

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Search latencies (ms, wall clock) for every probe, and the CPU time of the calling
 * thread (all of the work on 1 thread: what the scan costs when other processes
 * take turns on the same cores); rank1: probes whose top hit is their person. */
static void run_searches(gallery_service *svc, const lfw_set *s, int queries, double *ms, double *cpu_ms, int *rank1) {
    gallery_hit hits[10];
    *rank1 = 0;
    for (int q = 0; q < queries; q++) {
        size_t n;
        long size;
        double t = time_monotonic_s(), c = thread_cpu();
        gallery_search(svc, "bench", "g", s->probes + (size_t)(q % s->people) * s->dim, s->dim, 10, -2.0f, hits, &n,
                       &size);
        ms[q] = (time_monotonic_s() - t) * 1e3;
        cpu_ms[q] = (thread_cpu() - c) * 1e3;
        *rank1 += n && !strcmp(hits[0].id, ids[q % s->people]);
        gallery_hits_free(hits, n);
    }
    qsort(ms, (size_t)queries, sizeof(double), cmp_double);
    qsort(cpu_ms, (size_t)queries, sizeof(double), cmp_double);
}

/* The exact top 10 of a float scan, best first (insertion into a sorted list). */
static void insert_top10(long *top, float *sims, long i, float sim) {
    if (sim <= sims[9]) return;
    int k = 9;
    for (; k > 0 && sims[k - 1] < sim; k--) top[k] = top[k - 1], sims[k] = sims[k - 1];
    top[k] = i, sims[k] = sim;
}

/* Naive float baseline: every float embedding (2 GB for 1M) against the probe,
 * keeping the top 10; our search must return the same 10 faces with the same
 * similarities. */
static void baseline(gallery_service *svc, const lfw_set *s, long n) {
    float *all = malloc((size_t)n * s->dim * sizeof(float));
    if (!all) {
        printf("baseline skipped: cannot allocate %ld MB of floats\n", n * s->dim * 4 / (1 << 20));
        return;
    }
    for (long i = 0; i < n; i++) face_vector(s, i, all + (size_t)i * s->dim);
    double ms[BASELINE_QUERIES];
    int same = 0;
    for (int q = 0; q < BASELINE_QUERIES; q++) {
        const float *probe = s->probes + (size_t)q * s->dim;
        long top[10] = {0};
        float sims[10];
        for (int k = 0; k < 10; k++) sims[k] = -2;
        double t = time_monotonic_s();
        for (long i = 0; i < n; i++) insert_top10(top, sims, i, embedding_similarity(probe, all + (size_t)i * s->dim, s->dim));
        ms[q] = (time_monotonic_s() - t) * 1e3;
        gallery_hit hits[10];
        size_t got;
        long size;
        gallery_search(svc, "bench", "g", probe, s->dim, 10, -2.0f, hits, &got, &size);
        bool equal = got == 10;
        for (size_t k = 0; equal && k < 10; k++) equal = !strcmp(hits[k].id, ids[top[k]]) && hits[k].similarity == sims[k];
        same += equal;
        gallery_hits_free(hits, got);
    }
    qsort(ms, BASELINE_QUERIES, sizeof(double), cmp_double);
    printf("baseline naive float scan (%ld MB of floats, 1 thread): p50 %.1f ms over %d probes; "
           "our top 10 = its exact top 10 (same faces, order and similarities) for %d/%d probes\n",
           n * s->dim * 4 / (1 << 20), ms[BASELINE_QUERIES / 2], BASELINE_QUERIES, same, BASELINE_QUERIES);
    free(all);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s EMBEDDINGS.bin DB_PATH [N]\n", argv[0]);
        return 2;
    }
    long n = argc > 3 ? atol(argv[3]) : 1000000;
    lfw_set s;
    if (load_lfw(argv[1], &s) || n < s.people) {
        fprintf(stderr, "cannot read %s (or N < its %d people)\n", argv[1], s.people);
        return 1;
    }
    ids = malloc((size_t)n * sizeof(*ids));
    char err[256];
    long rss0 = rss_mb();
    gallery_service_config cfg = {gallery_store_sqlite_open(argv[2], false, err, sizeof err), 1};
    gallery_service *svc = cfg.store ? gallery_service_open(&cfg, err, sizeof err) : NULL;
    if (!svc || gallery_service_store(svc)->ops->gallery_create(gallery_service_store(svc), "bench", "g", "{}", 10)) {
        fprintf(stderr, "gallery store: %s\n", err);
        return 1;
    }
    printf("gallery: %ld faces = %d LFW people + %ld random unit vectors, %d-d; probes: the LFW people's other photo\n",
           n, s.people, n - s.people, s.dim);
    build(svc, &s, n);
    printf("memory: process RSS %ld MB -> %ld MB with the gallery indexed (+%ld MB; 4-bit codes alone: %ld MB)\n", rss0,
           rss_mb(), rss_mb() - rss0, n * (long)gallery_code_bytes(s.dim) / (1 << 20));
    double ms[QUERIES], cpu_ms[QUERIES];
    int rank1;
    run_searches(svc, &s, QUERIES, ms, cpu_ms, &rank1); /* warm-up: page cache, rescoring rows */
    for (int threads = 1; threads <= 2; threads++) {
        gallery_service_close(svc);
        cfg = (gallery_service_config){gallery_store_sqlite_open(argv[2], false, err, sizeof err), threads};
        double t = time_monotonic_s();
        svc = gallery_service_open(&cfg, err, sizeof err);
        if (threads == 1) printf("restart: index rebuilt from the database in %.1f s\n", time_monotonic_s() - t);
        run_searches(svc, &s, QUERIES, ms, cpu_ms, &rank1);
        printf("search, %d thread%s: p50 %.1f ms  p99 %.1f ms", threads, threads > 1 ? "s" : "", ms[QUERIES / 2],
               ms[QUERIES * 99 / 100]);
        if (threads == 1) printf("  (CPU time of the one thread: p50 %.1f ms  p99 %.1f ms)", cpu_ms[QUERIES / 2], cpu_ms[QUERIES * 99 / 100]);
        printf("  %d probes, 4-bit scan + float rescoring of %d\n", QUERIES, 10 + GALLERY_RESCORE_EXTRA);
    }
    printf("rank-1 of %d LFW probes among %ld faces: %d/%d = %.3f\n", QUERIES, n, rank1, QUERIES, (double)rank1 / QUERIES);
    baseline(svc, &s, n);
    gallery_service_close(svc);
    free(ids);
    free(s.enrolled);
    free(s.probes);
    return 0;
}
