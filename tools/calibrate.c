/* make calibrate: measures the similarity -> false acceptance rate table that the
 * server loads for one algorithm (calibration/far-v1.txt for the fast modes,
 * calibration/far-accurate-v2.txt for F5_2_VID75), with the server's own pipeline.
 *
 * 1. Embeds every image of the LFW DevTrain people and of the DevTest people.
 * 2. DevTrain: every impostor pair (different people) goes into a fine histogram
 *    of cosine similarity; its survival function is the empirical FAR. The table
 *    keeps points down to the FAR where at least MIN_TAIL_COUNT pairs remain;
 *    beyond, log10(FAR) continues on a straight line fitted by least squares to
 *    the last FIT_DECADES decades of the empirical curve (the impostor tail is
 *    roughly Gaussian, so a straight log-tail over-estimates FAR: it errs on the
 *    safe side). The floor is 1e-15.
 * 3. DevTest (disjoint people): predicted vs observed FAR and TAR at the spec's
 *    thresholds 2500/3000/3500/4000. A failure to enrol counts as a rejection of
 *    its genuine pairs.
 *
 * usage: calibrate LFW_DIR MODELS_DIR OUT_TABLE [fast|accurate]   (default fast) */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "face/pipeline.h"
#include "match/far.h"
#include "match/similarity.h"

#define BINS 40000
#define MIN_TAIL_COUNT 100
#define FIT_DECADES 1.5
#define THREADS 2

typedef struct {
    char path[1100];
    int person;
    bool enrolled;
    float emb[FACE_EMBEDDING_MAX];
} sample;

typedef struct {
    sample *samples;
    int count, dim;
} sample_set;

typedef struct {
    const face_engine *engine;
    bool accurate;
    sample *samples;
    int begin, end;
    int dim; /* of the embeddings made, 0 if none */
} embed_job;

static void *embed_range(void *p) {
    embed_job *job = p;
    char err[256];
    face_worker *w = face_worker_create(job->engine, err, sizeof err);
    face_result *r = malloc(sizeof(*r));
    face_options opt = {.want_embedding = true, .max_pixels = 50000000, .accurate = job->accurate};
    for (int i = job->begin; w && r && i < job->end; i++) {
        size_t len;
        uint8_t *data = file_read_all(job->samples[i].path, (size_t)1 << 28, &len);
        if (data && face_analyze(w, data, len, &opt, r, err, sizeof err) == FACE_OK && r->faces_found > 0) {
            memcpy(job->samples[i].emb, r->embedding, sizeof(float) * (size_t)r->embedding_dim);
            job->samples[i].enrolled = true;
            job->dim = r->embedding_dim;
        }
        free(data);
    }
    free(r);
    face_worker_free(w);
    return NULL;
}

/* Reads "count\nname<TAB>n\n..." and lists every image of those people. */
static int load_people(const char *lfw, const char *list, sample_set *set) {
    char path[512];
    snprintf(path, sizeof path, "%s/pairs_lfw/%s", lfw, list);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int people = 0, cap = 0;
    char name[256];
    int n;
    if (fscanf(f, "%d", &people) != 1) people = 0;
    set->count = 0;
    set->samples = NULL;
    for (int p = 0; fscanf(f, "%255s %d", name, &n) == 2; p++) {
        for (int i = 1; i <= n; i++) {
            if (set->count == cap) {
                cap = cap ? cap * 2 : 4096;
                set->samples = realloc(set->samples, (size_t)cap * sizeof(sample));
            }
            sample *s = &set->samples[set->count++];
            memset(s, 0, sizeof(*s));
            snprintf(s->path, sizeof s->path, "%s/lfw_deepfunneled/%s/%s_%04d.jpg", lfw, name, name, i);
            s->person = p;
        }
    }
    fclose(f);
    return set->count ? 0 : -1;
}

static void embed_all(const face_engine *e, bool accurate, sample_set *set) {
    pthread_t t[THREADS];
    embed_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (embed_job){e, accurate, set->samples, set->count * i / THREADS, set->count * (i + 1) / THREADS, 0};
        pthread_create(&t[i], NULL, embed_range, &jobs[i]);
    }
    set->dim = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].dim) set->dim = jobs[i].dim;
    }
}

static int bin_of(float s) {
    int b = (int)((s + 1.0f) * 0.5f * BINS);
    return b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
}
static float bin_low(int b) { return (float)b / BINS * 2.0f - 1.0f; }

/* Histograms of impostor and genuine similarities over one set. */
static void pair_histograms(const sample_set *set, long *impostor, long *genuine, long *n_imp, long *n_gen,
                            long *gen_not_enrolled) {
    *n_imp = *n_gen = *gen_not_enrolled = 0;
    for (int i = 0; i < set->count; i++) {
        const sample *a = &set->samples[i];
        for (int j = i + 1; j < set->count; j++) {
            const sample *b = &set->samples[j];
            bool same = a->person == b->person;
            if (!a->enrolled || !b->enrolled) {
                if (same) (*gen_not_enrolled)++;
                continue;
            }
            float s = embedding_similarity(a->emb, b->emb, set->dim);
            if (same) {
                genuine[bin_of(s)]++;
                (*n_gen)++;
            } else {
                impostor[bin_of(s)]++;
                (*n_imp)++;
            }
        }
    }
}

/* survival[b] = pairs with similarity in bin b or above */
static void survival(const long *hist, long *surv) {
    long acc = 0;
    for (int b = BINS - 1; b >= 0; b--) surv[b] = (acc += hist[b]);
}

static int write_table(const char *out, const char *algorithm, const long *surv, long total) {
    FILE *f = fopen(out, "w");
    if (!f) return -1;
    fprintf(f, "# similarity -> log10(FAR) of the %s algorithm, measured by `make calibrate` on %ld impostor pairs of "
               "LFW DevTrain people.\n", algorithm, total);
    fprintf(f, "# Empirical down to %d remaining pairs, then a straight log-tail fitted on the last %.1f decades.\n",
            MIN_TAIL_COUNT, FIT_DECADES);
    double floor_l = log10((double)MIN_TAIL_COUNT / total);
    double last_l = 1;
    int first = -1, last = -1;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int nfit = 0;
    for (int b = 0; b < BINS; b++) {
        if (surv[b] < MIN_TAIL_COUNT) break;
        double l = log10((double)surv[b] / total);
        if (l <= last_l - 0.02 || first < 0) { /* thin the table: one point per 0.02 decade */
            fprintf(f, "%.5f %.4f\n", bin_low(b), l);
            last_l = l;
            if (first < 0) first = b;
        }
        last = b;
        if (l <= floor_l + FIT_DECADES) {
            sx += bin_low(b); sy += l; sxx += (double)bin_low(b) * bin_low(b); sxy += (double)bin_low(b) * l;
            nfit++;
        }
    }
    double slope = (nfit * sxy - sx * sy) / (nfit * sxx - sx * sx);
    fprintf(f, "tail_slope %.4f\nmin_log10_far -15\n", slope);
    fclose(f);
    printf("table: %d bins from similarity %.4f to %.4f; tail slope %.2f decades per unit similarity (fit on %d bins)\n",
           last - first + 1, bin_low(first), bin_low(last), slope, nfit);
    return 0;
}

static long count_at_or_above(const long *hist, float s) {
    long n = 0;
    for (int b = bin_of(s); b < BINS; b++) n += hist[b];
    return n;
}

/* Smallest similarity whose predicted FAR is at most target. */
static float threshold_for(const far_table *t, double target) {
    float lo = -1, hi = 1;
    for (int i = 0; i < 60; i++) {
        float mid = (lo + hi) / 2;
        if (far_from_similarity(t, mid) > target) lo = mid;
        else hi = mid;
    }
    return hi;
}

static void validate(const far_table *t, const sample_set *test) {
    long *imp = calloc(BINS, sizeof(long)), *gen = calloc(BINS, sizeof(long));
    long n_imp, n_gen, gen_missing;
    pair_histograms(test, imp, gen, &n_imp, &n_gen, &gen_missing);
    printf("\nvalidation on DevTest people: %ld impostor pairs, %ld genuine pairs (+%ld with a failure to enrol, counted as rejected)\n",
           n_imp, n_gen, gen_missing);
    printf("%-6s %-10s %-12s %-12s %-9s %-8s %-7s\n", "score", "similarity", "predicted", "observed", "pairs>=", "obs/pred", "TAR");
    const int scores[] = {2500, 3000, 3500, 4000, 4500};
    for (int i = 0; i < 5; i++) {
        double target = far_from_score(scores[i]);
        float s = threshold_for(t, target);
        double predicted = far_from_similarity(t, s);
        long above = count_at_or_above(imp, s);
        double observed = (double)above / n_imp;
        double tar = (double)count_at_or_above(gen, s) / (double)(n_gen + gen_missing);
        printf("%-6d %-10.4f %-12.3e %-12.3e %-9ld %-8.2f %.4f%s\n", scores[i], s, predicted, observed, above,
               predicted > 0 ? observed / predicted : 0, tar, above < 100 ? "  (fewer than 100 pairs: not conclusive)" : "");
    }
    free(imp);
    free(gen);
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && (!strcmp(argv[4], "fast") || !strcmp(argv[4], "accurate")))) {
        fprintf(stderr, "usage: %s LFW_DIR MODELS_DIR OUT_TABLE [fast|accurate]\n", argv[0]);
        return 2;
    }
    bool accurate = argc == 5 && !strcmp(argv[4], "accurate");
    char err[256];
    face_engine *e = face_engine_load(argv[2], err, sizeof err);
    if (!e) {
        fprintf(stderr, "calibrate: %s\n", err);
        return 1;
    }
    sample_set train, test;
    if (load_people(argv[1], "peopleDevTrain.txt", &train) || load_people(argv[1], "peopleDevTest.txt", &test)) {
        fprintf(stderr, "calibrate: cannot read the LFW people lists under %s\n", argv[1]);
        return 1;
    }
    printf("embedding %d DevTrain and %d DevTest images with %s, %s algorithm...\n", train.count, test.count,
           face_engine_describe(e), accurate ? "accurate" : "fast");
    fflush(stdout);
    embed_all(e, accurate, &train);
    embed_all(e, accurate, &test);
    int fail_train = 0, fail_test = 0;
    for (int i = 0; i < train.count; i++) fail_train += !train.samples[i].enrolled;
    for (int i = 0; i < test.count; i++) fail_test += !test.samples[i].enrolled;
    printf("failures to enrol: DevTrain %d/%d, DevTest %d/%d\n", fail_train, train.count, fail_test, test.count);

    long *imp = calloc(BINS, sizeof(long)), *gen = calloc(BINS, sizeof(long)), *surv = calloc(BINS, sizeof(long));
    long n_imp, n_gen, gen_missing;
    pair_histograms(&train, imp, gen, &n_imp, &n_gen, &gen_missing);
    survival(imp, surv);
    if (write_table(argv[3], accurate ? "accurate (F5_2_VID75)" : "fast (F5_1_VID60, F5_3_VID60, F5_1_VID0)", surv, n_imp)) {
        fprintf(stderr, "calibrate: cannot write %s\n", argv[3]);
        return 1;
    }
    far_table *t = malloc(sizeof(*t));
    if (far_table_load(t, argv[3], err, sizeof err)) {
        fprintf(stderr, "calibrate: %s\n", err);
        return 1;
    }
    validate(t, &test);
    printf("\nwrote %s\n", argv[3]);
    free(t);
    free(imp);
    free(gen);
    free(surv);
    free(train.samples);
    free(test.samples);
    face_engine_free(e);
    return 0;
}
