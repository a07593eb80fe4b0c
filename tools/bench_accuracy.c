/* bench_accuracy - biometric accuracy of the real face pipeline (face_analyze):
 *
 *  - LFW verification on pairs_lfw/pairs.txt, once per algorithm the modes use (fast:
 *    F5_1_VID60 and its aliases, the baseline; accurate: F5_2_VID75, embed_accurate.c),
 *    each with its CPU milliseconds a face (thread CPU time of face_analyze, so
 *    other load on the machine does not count): 10-fold accuracy (threshold chosen on
 *    9 folds, tested on the 10th), TAR at FAR 1e-3 / 1e-4 with the genuine pairs of
 *    pairs.txt against every impostor pair that the embedded images can form. An
 *    image without a usable face is a failure to enrol: its pairs always count as
 *    wrong (genuine rejected, impostor accepted), never skipped.
 *  Age: tools/bench_age.c (`make bench-age`).
 *
 * Every image is analysed once a mode, by two threads each owning a face_worker. The
 * LFW embeddings go to build/lfw_embeddings[_accurate].{tsv,f32} for the matching and
 * calibration work.
 *
 *   bench_accuracy [DATA_DIR [MODELS_DIR]]   (defaults ../shared/data, models)
 *   environment: BENCH_MODES=fast,accurate (default both),
 *   BENCH_NO_TAR=1 (skip the 30M impostor pairs), BENCH_PAIRS=N (only the first N pairs:
 *   a quick speed comparison),
 *   BENCH_MIRROR=1 (also embed the mirrored face in the fast mode). The accurate
 *   mode's embeddings hold each network's part (embed_accurate.c), which
 *   scripts/fusion_weights.py weighs on DevTrain people. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/util.h"
#include "face/pipeline.h"
#include "match/similarity.h"

#define MAX_IMAGES 20000
#define MAX_PAIRS 6000
#define MAX_PATH 512
#define THREADS 2

typedef struct {
    char path[MAX_PATH];
    char person[128];
    int ok;          /* 1 = a face was embedded */
    float *emb;
} item;

typedef struct {
    int a, b;        /* item indices */
    int same;
    int fold;
    float sim;
} pair;

typedef struct {
    item *items;
    int n, next, mirror, accurate;
    int dim;
    double cpu_s;   /* thread CPU time of every face_analyze call */
    const face_engine *engine;
    pthread_mutex_t lock;
} job_queue;

/* Returns the CPU seconds face_analyze took. */
static double analyse_item(face_worker *w, job_queue *q, item *it, face_result *r)
{
    char err[256];
    size_t len;
    uint8_t *data = file_read_all(it->path, (size_t)1 << 28, &len);
    face_options opt = {.want_embedding = true,
                        .mirror_embedding = q->mirror, .accurate = q->accurate};
    double t0 = time_thread_cpu_s();
    int rc = data ? face_analyze(w, data, len, &opt, r, err, sizeof err) : FACE_ERR_IMAGE;
    double spent = time_thread_cpu_s() - t0;
    if (rc == FACE_OK && r->faces_found > 0) {
        it->ok = 1;
        memcpy(it->emb, r->embedding, sizeof(float) * (size_t)q->dim);
    }
    free(data);
    return spent;
}

static void *worker_main(void *arg)
{
    job_queue *q = arg;
    char err[256];
    face_worker *w = face_worker_create(q->engine, err, sizeof err);
    face_result *r = malloc(sizeof *r);
    if (!w || !r) {
        fprintf(stderr, "worker: %s\n", err);
        exit(1);
    }
    for (;;) {
        pthread_mutex_lock(&q->lock);
        int i = q->next++;
        pthread_mutex_unlock(&q->lock);
        if (i >= q->n) break;
        double spent = analyse_item(w, q, &q->items[i], r);
        pthread_mutex_lock(&q->lock);
        q->cpu_s += spent;
        pthread_mutex_unlock(&q->lock);
    }
    free(r);
    face_worker_free(w);
    return NULL;
}

static void run_all(job_queue *q)
{
    pthread_t t[THREADS];
    pthread_mutex_init(&q->lock, NULL);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker_main, q);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_mutex_destroy(&q->lock);
}

/* ---- LFW -------------------------------------------------------------------------- */

static int find_or_add(item *items, int *n, const char *dir, const char *name, int idx)
{
    char path[MAX_PATH];
    snprintf(path, sizeof path, "%s/lfw/lfw_deepfunneled/%s/%s_%04d.jpg", dir, name, name, idx);
    for (int i = *n - 1; i >= 0 && i >= *n - 4000; i--)
        if (strcmp(items[i].path, path) == 0) return i;
    for (int i = 0; i < *n; i++)   /* slow path, only for repeats far apart */
        if (strcmp(items[i].path, path) == 0) return i;
    if (*n >= MAX_IMAGES) return -1;
    snprintf(items[*n].path, MAX_PATH, "%s", path);
    snprintf(items[*n].person, sizeof items[*n].person, "%s", name);
    return (*n)++;
}

static int load_pairs(const char *dir, item *items, int *n_items, pair *pairs)
{
    char path[MAX_PATH], line[512];
    snprintf(path, sizeof path, "%s/lfw/pairs_lfw/pairs.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int folds = 0, per = 0, n = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "%d %d", &folds, &per) != 2) folds = 0;
    /* BENCH_PAIRS=N keeps the first N pairs: a quick speed comparison of the modes
     * (accuracy needs all of them: the folds are consecutive blocks). */
    int max = getenv("BENCH_PAIRS") ? atoi(getenv("BENCH_PAIRS")) : MAX_PAIRS;
    if (max < 1 || max > MAX_PAIRS) max = MAX_PAIRS;
    while (n < max && fgets(line, sizeof line, f)) {
        char a[128], b[128];
        int i, j;
        pair *p = &pairs[n];
        if (sscanf(line, "%127s %d %127s %d", a, &i, b, &j) == 4) {
            p->same = 0;
        } else if (sscanf(line, "%127s %d %d", a, &i, &j) == 3) {
            snprintf(b, sizeof b, "%s", a);
            p->same = 1;
        } else {
            continue;
        }
        p->a = find_or_add(items, n_items, dir, a, i);
        p->b = find_or_add(items, n_items, dir, b, j);
        if (p->a < 0 || p->b < 0) break;
        p->fold = per > 0 ? n / (2 * per) : 0;
        n++;
    }
    fclose(f);
    return n;
}

/* Accuracy of "sim >= t means same" over the pairs of the selected folds. A pair
 * with a failed enrolment has sim = NaN, which no comparison accepts: genuine pairs
 * are rejected (wrong) and impostor pairs are counted wrong explicitly. */
static double fold_accuracy(const pair *p, int n, int fold, int in_fold, float t)
{
    int right = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if ((p[i].fold == fold) != in_fold) continue;
        total++;
        if (isnan(p[i].sim)) continue;
        right += (p[i].sim >= t) == p[i].same;
    }
    return total ? (double)right / total : 0;
}

static void ten_fold(const pair *p, int n)
{
    double sum = 0, acc[10];
    for (int fold = 0; fold < 10; fold++) {
        float best_t = 0;
        double best = -1;
        for (int i = 0; i < n; i++) {   /* candidate thresholds: training similarities */
            if (p[i].fold == fold || isnan(p[i].sim)) continue;
            double a = fold_accuracy(p, n, fold, 0, p[i].sim);
            if (a > best) best = a, best_t = p[i].sim;
        }
        acc[fold] = fold_accuracy(p, n, fold, 1, best_t);
        sum += acc[fold];
    }
    double mean = sum / 10, var = 0;
    for (int i = 0; i < 10; i++) var += (acc[i] - mean) * (acc[i] - mean);
    printf("LFW 10-fold accuracy: %.2f%% (std %.2f)\n", 100 * mean, 100 * sqrt(var / 10));
}

static int cmp_float_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* TAR at FAR: the threshold is the impostor score ranked at FAR * count; impostors
 * are all pairs of embedded images of different people (failed enrolments would
 * be accepted impostors; they are added as such at the top). */
static void tar_at_far(const item *items, int n_items, const pair *p, int n, int dim, int failed)
{
    size_t cap = (size_t)n_items * (n_items - 1) / 2, k = 0;
    float *imp = malloc(cap * sizeof *imp);
    if (!imp) return;
    for (int i = 0; i < n_items; i++) {
        if (!items[i].ok) continue;
        for (int j = i + 1; j < n_items; j++) {
            if (!items[j].ok || strcmp(items[i].person, items[j].person) == 0) continue;
            imp[k++] = embedding_similarity(items[i].emb, items[j].emb, dim);
        }
    }
    size_t fail_pairs = (size_t)failed * (size_t)(n_items - 1);
    qsort(imp, k, sizeof *imp, cmp_float_desc);
    const double fars[2] = {1e-3, 1e-4};
    for (int f = 0; f < 2; f++) {
        size_t total = k + fail_pairs, rank = (size_t)(fars[f] * (double)total);
        float t = rank < fail_pairs ? INFINITY : imp[rank - fail_pairs < k ? rank - fail_pairs : k - 1];
        int acc = 0, gen = 0;
        for (int i = 0; i < n; i++) {
            if (!p[i].same) continue;
            gen++;
            acc += !isnan(p[i].sim) && p[i].sim > t;
        }
        printf("TAR at FAR %.0e: %.2f%% (threshold %.4f, %zu impostor pairs, %d genuine)\n",
               fars[f], 100.0 * acc / gen, t, total, gen);
    }
    free(imp);
}

static void write_embeddings(const item *items, int n, int dim, const char *suffix)
{
    char tp[128], bp[128];
    snprintf(tp, sizeof tp, "build/lfw_embeddings%s.tsv", suffix);
    snprintf(bp, sizeof bp, "build/lfw_embeddings%s.f32", suffix);
    FILE *tsv = fopen(tp, "w");
    FILE *bin = fopen(bp, "wb");
    if (!tsv || !bin) {
        if (tsv) fclose(tsv);
        if (bin) fclose(bin);
        return;
    }
    fprintf(tsv, "# row\tok\tperson\tpath (row r = floats [r*%d, (r+1)*%d) of the .f32)\n", dim, dim);
    for (int i = 0; i < n; i++) {
        fprintf(tsv, "%d\t%d\t%s\t%s\n", i, items[i].ok, items[i].person, items[i].path);
        fwrite(items[i].emb, sizeof(float), (size_t)dim, bin);
    }
    fclose(tsv);
    fclose(bin);
    printf("embeddings: %s + .f32 (%d x %d float32)\n", tp, n, dim);
}

/* The algorithms the modes use (src/api/modes.c): the fast one is the baseline. */
static const struct { const char *name, *modes; int accurate; } ALGORITHMS[] = {
    {"fast", "F5_1_VID60, F5_3_VID60, F5_1_VID0", 0},
    {"accurate", "F5_2_VID75", 1},
};

static void bench_lfw(const char *dir, const face_engine *e, int algo)
{
    item *items = calloc(MAX_IMAGES, sizeof *items);
    pair *pairs = calloc(MAX_PAIRS, sizeof *pairs);
    int accurate = ALGORITHMS[algo].accurate;
    int n_items = 0, dim = accurate ? face_accurate_dim(e) : face_engine_embedding_dim(e);
    int n = load_pairs(dir, items, &n_items, pairs);
    if (n <= 0) {
        fprintf(stderr, "cannot read %s/lfw/pairs_lfw/pairs.txt\n", dir);
        exit(1);
    }
    float *embs = calloc((size_t)n_items * dim, sizeof *embs);
    for (int i = 0; i < n_items; i++) items[i].emb = embs + (size_t)i * dim;
    /* BENCH_MIRROR=1 measures the slower mirrored-embedding variant. */
    job_queue q = {.items = items, .n = n_items, .dim = dim, .engine = e,
                   .mirror = getenv("BENCH_MIRROR") != NULL, .accurate = accurate};
    printf("\n== mode %s (%s)\n", ALGORITHMS[algo].name, ALGORITHMS[algo].modes);
    run_all(&q);
    int failed = 0;
    for (int i = 0; i < n_items; i++) failed += !items[i].ok;
    for (int i = 0; i < n; i++) {
        const item *a = &items[pairs[i].a], *b = &items[pairs[i].b];
        pairs[i].sim = a->ok && b->ok ? embedding_similarity(a->emb, b->emb, dim) : NAN;
    }
    printf("LFW: %d pairs, %d images, %d failures to enrol\n", n, n_items, failed);
    printf("speed: %.2f ms a face (CPU time of face_analyze on one core, mean of %d LFW images)\n",
           1000.0 * q.cpu_s / n_items, n_items);
    ten_fold(pairs, n);
    if (!getenv("BENCH_NO_TAR")) tar_at_far(items, n_items, pairs, n, dim, failed);
    /* Only the default variant over every pair (a partial run must not replace them). */
    if (!q.mirror && !getenv("BENCH_PAIRS")) write_embeddings(items, n_items, dim, accurate ? "_accurate" : "");
    free(embs);
    free(items);
    free(pairs);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/data";
    const char *models = argc > 2 ? argv[2] : "models";
    char err[512];
    face_engine *e = face_engine_load(models, err, sizeof err);
    if (!e) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("engine: %s\n", face_engine_describe(e));
    const char *modes = getenv("BENCH_MODES");
    for (int a = 0; a < 2; a++)
        if (!modes || strstr(modes, ALGORITHMS[a].name)) bench_lfw(dir, e, a);
    face_engine_free(e);
    return 0;
}
