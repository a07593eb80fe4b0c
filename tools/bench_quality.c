/* bench_quality - does the quality score predict recognition errors? The
 * error-versus-discard curve (ISO/IEC 29794-1 style) of the real pipeline on LFW
 * (docs/quality.md):
 *
 * 1. face_analyze embeds every image of the DevTrain and the DevTest people (two
 *    disjoint sets of people, pairs_lfw/people*.txt).
 * 2. On each set: the threshold is the similarity at FAR 1e-3 over every impostor
 *    pair of enrolled images; the genuine comparisons are every pair of images of
 *    one person. A pair's quality is the lower of its two images' (a failure to enrol
 *    has quality -10000 and counts as a false non-match).
 * 3. FNMR at that fixed threshold after discarding the lowest-quality 0, 5, 10, 20 %
 *    of the genuine comparisons, for each predictor: the server's quality, the
 *    superseded quality (the first five factors multiplied, without the likeness
 *    factor and the exponents fitted on DevTrain: src/face/quality.c), and each
 *    factor alone.
 *
 * The exponents in src/face/quality.c were fitted on DevTrain only (tools/fit_quality.py
 * on the dump below); DevTest is the honest report, DevTrain shows the fit.
 *
 *   bench_quality [DATA_DIR [MODELS_DIR]]
 *   environment: QUALITY_DUMP=PREFIX writes PREFIX.tsv (one row an image: set,
 *   person, enrolled, quality, factors, embedding norm) and PREFIX.f32 (embeddings). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_images.h"
#include "match/similarity.h"

#define TARGET_FAR 1e-3
#define FAILED_QUALITY (-10000.0f)

typedef struct {
    int set;    /* 0 DevTrain, 1 DevTest */
    int person; /* index within the set's people list */
    bool ok;
    float quality, norm, factors[FACE_QF_COUNT];
} lfw_image;

typedef struct {
    lfw_image *img;
    float *emb;
    int dim;
} lfw_run;

static void on_result(void *ctx, int i, int rc, const face_result *r, double seconds)
{
    (void)seconds;
    lfw_run *run = ctx;
    lfw_image *m = &run->img[i];
    m->ok = rc == FACE_OK && r->faces_found > 0;
    m->quality = m->ok ? r->quality : FAILED_QUALITY;
    m->norm = m->ok ? r->embedding_norm : 0;
    for (int k = 0; k < FACE_QF_COUNT; k++) m->factors[k] = m->ok ? r->quality_factors[k] : 0;
    if (m->ok) memcpy(run->emb + (size_t)i * run->dim, r->embedding, (size_t)run->dim * sizeof(float));
}

/* Reads "count\nname<TAB>n\n..." and adds every image of those people. */
static int load_people(const char *lfw, const char *list, int set, bench_image_list *l,
                       lfw_image **img, int *cap)
{
    char path[2048], name[256];
    snprintf(path, sizeof path, "%s/pairs_lfw/%s", lfw, list);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int people = 0, n;
    if (fscanf(f, "%d", &people) != 1) people = 0;
    for (int p = 0; fscanf(f, "%255s %d", name, &n) == 2; p++)
        for (int i = 1; i <= n; i++) {
            snprintf(path, sizeof path, "%s/lfw_deepfunneled/%s/%s_%04d.jpg", lfw, name, name, i);
            if (l->n == *cap) {
                *cap = *cap ? 2 * *cap : 4096;
                *img = realloc(*img, (size_t)*cap * sizeof **img);
                if (!*img) abort();
            }
            (*img)[l->n] = (lfw_image){.set = set, .person = p};
            bench_images_add(l, path);
        }
    fclose(f);
    return 0;
}

static int cmp_float_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The similarity that TARGET_FAR of the set's impostor pairs reach. */
static float far_threshold(const lfw_run *run, int n, int set)
{
    enum { KEEP = 1 << 16 }; /* top impostor scores kept: FAR 1e-3 of <= 65M pairs */
    float *top = malloc(2 * KEEP * sizeof *top);
    size_t kept = 0, total = 0;
    float floor_sim = -2;
    for (int i = 0; i < n; i++) {
        const lfw_image *a = &run->img[i];
        if (a->set != set || !a->ok) continue;
        for (int j = i + 1; j < n; j++) {
            const lfw_image *b = &run->img[j];
            if (b->set != set || !b->ok || b->person == a->person) continue;
            total++;
            float s = embedding_similarity(run->emb + (size_t)i * run->dim,
                                           run->emb + (size_t)j * run->dim, run->dim);
            if (s <= floor_sim) continue;
            top[kept++] = s;
            if (kept == 2 * KEEP) { /* keep the best half, raise the floor */
                qsort(top, kept, sizeof *top, cmp_float_desc);
                kept = KEEP;
                floor_sim = top[KEEP - 1];
            }
        }
    }
    qsort(top, kept, sizeof *top, cmp_float_desc);
    size_t rank = (size_t)(TARGET_FAR * (double)total);
    float t = rank < kept ? top[rank] : floor_sim;
    free(top);
    printf("  FAR %.0e threshold %.4f over %zu impostor pairs\n", TARGET_FAR, t, total);
    return t;
}

typedef struct {
    float quality;
    bool error;
} comparison;

static int by_quality(const void *a, const void *b)
{
    float x = ((const comparison *)a)->quality, y = ((const comparison *)b)->quality;
    return (x > y) - (x < y);
}

/* Predictors: 0 the server's quality, 1 the superseded formula, then each factor. */
#define PREDICTORS (2 + FACE_QF_COUNT)
static const char *predictor_name(int p)
{
    static const char *factor[FACE_QF_COUNT] = {"detection", "eyes", "sharpness",
                                                "exposure", "pose", "likeness"};
    return p == 0 ? "quality (server)" : p == 1 ? "quality before (v1)" : factor[p - 2];
}

static float predictor(const lfw_image *m, int p)
{
    if (!m->ok) return FAILED_QUALITY;
    if (p == 0) return m->quality;
    if (p == 1) { /* the v1 formula: the product of the first five factors */
        float v = 1;
        for (int k = 0; k < FACE_QF_LIKENESS; k++) v *= m->factors[k];
        return 330 * v - 30;
    }
    return m->factors[p - 2];
}

static void discard_curve(const lfw_run *run, int n, int set, float threshold)
{
    static const double fractions[] = {0, 0.05, 0.10, 0.20};
    size_t cap = 0, count = 0;
    for (int i = 0; i < n; i++) /* images of one person are adjacent */
        for (int j = i + 1; j < n && run->img[j].set == run->img[i].set &&
                            run->img[j].person == run->img[i].person; j++)
            cap += run->img[i].set == set;
    comparison *c = malloc((cap ? cap : 1) * sizeof *c);
    printf("  %zu genuine comparisons; FNMR after discarding the lowest-quality share:\n", cap);
    printf("  | predictor            |     0 %% |     5 %% |    10 %% |    20 %% |\n");
    for (int p = 0; p < PREDICTORS; p++) {
        count = 0;
        for (int i = 0; i < n; i++) {
            const lfw_image *a = &run->img[i];
            if (a->set != set) continue;
            for (int j = i + 1; j < n && run->img[j].set == set && run->img[j].person == a->person; j++) {
                const lfw_image *b = &run->img[j];
                float s = a->ok && b->ok ? embedding_similarity(run->emb + (size_t)i * run->dim,
                                                                run->emb + (size_t)j * run->dim, run->dim)
                                         : -2;
                c[count++] = (comparison){fminf(predictor(a, p), predictor(b, p)), s < threshold};
            }
        }
        qsort(c, count, sizeof *c, by_quality);
        printf("  | %-20s |", predictor_name(p));
        for (int f = 0; f < 4; f++) {
            size_t from = (size_t)(fractions[f] * (double)count), errors = 0;
            for (size_t k = from; k < count; k++) errors += c[k].error;
            printf(" %5.2f %% |", count > from ? 100.0 * (double)errors / (double)(count - from) : 0);
        }
        printf("\n");
    }
    free(c);
}

static void dump(const char *prefix, const lfw_run *run, const bench_image_list *l)
{
    char path[1024];
    snprintf(path, sizeof path, "%s.tsv", prefix);
    FILE *t = fopen(path, "w");
    snprintf(path, sizeof path, "%s.f32", prefix);
    FILE *b = fopen(path, "wb");
    if (!t || !b) {
        if (t) fclose(t);
        if (b) fclose(b);
        return;
    }
    fprintf(t, "set\tperson\tok\tquality\tdetection\teyes\tsharpness\texposure\tpose\tlikeness\tnorm\tpath\n");
    for (int i = 0; i < l->n; i++) {
        const lfw_image *m = &run->img[i];
        fprintf(t, "%d\t%d\t%d\t%.3f", m->set, m->person, m->ok, m->quality);
        for (int k = 0; k < FACE_QF_COUNT; k++) fprintf(t, "\t%.5f", m->factors[k]);
        fprintf(t, "\t%.5f\t%s\n", m->norm, l->paths[i]);
        fwrite(run->emb + (size_t)i * run->dim, sizeof(float), (size_t)run->dim, b);
    }
    fclose(t);
    fclose(b);
    printf("dump: %s.tsv + .f32 (%d x %d float32)\n", prefix, l->n, run->dim);
}

int main(int argc, char **argv)
{
    const char *dir;
    face_engine *e = bench_engine_from_args(argc, argv, &dir);
    char lfw[1024];
    snprintf(lfw, sizeof lfw, "%s/lfw", dir);
    bench_image_list l = {0};
    lfw_run run = {.dim = face_engine_embedding_dim(e)};
    int cap = 0;
    if (load_people(lfw, "peopleDevTrain.txt", 0, &l, &run.img, &cap) ||
        load_people(lfw, "peopleDevTest.txt", 1, &l, &run.img, &cap)) {
        fprintf(stderr, "cannot read %s/pairs_lfw/people*.txt\n", lfw);
        return 1;
    }
    run.emb = calloc((size_t)l.n * run.dim, sizeof(float));
    if (!run.emb) return 1;
    face_options opt = {.want_embedding = true};
    bench_images_run(&l, e, &opt, 2, on_result, &run);
    printf("engine: %s; %d LFW images\n", face_engine_describe(e), l.n);
    const char *names[2] = {"DevTrain people (the quality fit's data)", "DevTest people (held out)"};
    for (int set = 0; set < 2; set++) {
        printf("%s:\n", names[set]);
        discard_curve(&run, l.n, set, far_threshold(&run, l.n, set));
    }
    const char *prefix = getenv("QUALITY_DUMP");
    if (prefix) dump(prefix, &run, &l);
    free(run.emb);
    free(run.img);
    bench_images_free(&l);
    face_engine_free(e);
    return 0;
}
