/* bench_age - age estimation of the real pipeline (face_analyze) on data/age, the
 * method in use against the superseded one (face_options.age_baseline) on the same
 * faces in the same run (docs/age.md).
 *
 * Split: the rows of age/MANIFEST.tsv, sorted by file name, alternate: even rows
 * (0, 2, ...) are the tuning half, odd rows the evaluation half. Only the tuning half
 * chooses anything (the calibration refit printed at the end, the safety margin);
 * every reported number is on the evaluation half. An image without a face counts
 * as an estimate of 30 years in the MAE and is never "called adult".
 *
 * Prints per method: MAE (evaluation and tuning half), the share of under-18s called
 * >= 18 and of adults refused at threshold 18 without and with the margin, and the
 * CPU milliseconds face_analyze takes per image (p50, one thread: decode, detection,
 * landmarks, embedding and age).
 *
 *   bench_age [DATA_DIR [MODELS_DIR]]   (defaults ../shared/data, models) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_images.h"

#define THRESHOLD 18.0
#define MAX_MARGIN 16
#define MINORS_ADULT_TARGET 0.10 /* margin: the smallest keeping minors called adult <= 10 % */

typedef struct {
    int n;
    float *truth;
    float *age[2];          /* [0] current, [1] baseline; NAN without a face */
    float *raw;             /* the current method's model estimates, 2 per image */
    double *seconds[2];
    int method;             /* being filled */
} age_set;

static void on_result(void *ctx, int i, int rc, const face_result *r, double seconds)
{
    age_set *s = ctx;
    bool ok = rc == FACE_OK && r->faces_found > 0 && r->has_age;
    s->age[s->method][i] = ok ? r->age : NAN;
    if (s->method == 0) s->raw[2 * i] = ok ? r->age_raw[0] : NAN, s->raw[2 * i + 1] = r->age_raw[1];
    s->seconds[s->method][i] = seconds;
}

static int load_manifest(const char *dir, bench_image_list *l, float *truth, int max)
{
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/age/MANIFEST.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(line, sizeof line, f)) line[0] = 0; /* header */
    while (l->n < max && fgets(line, sizeof line, f)) {
        char file[512];
        float age;
        if (sscanf(line, "%511[^\t]\t%f", file, &age) != 2) continue;
        snprintf(path, sizeof path, "%s/age/%s", dir, file);
        truth[l->n] = age;
        bench_images_add(l, path);
    }
    fclose(f);
    return l->n;
}

typedef struct {
    double mae;
    int minors, minors_adult, adults, adults_refused, missing;
} age_stats;

/* Over the rows of one half (parity 0 tuning, 1 evaluation) with a margin. */
static age_stats half_stats(const age_set *s, int method, int parity, double margin)
{
    age_stats st = {0};
    int count = 0;
    for (int i = parity; i < s->n; i += 2) {
        float est = s->age[method][i];
        bool ok = !isnan(est);
        st.missing += !ok;
        st.mae += fabs((ok ? est : 30.0) - s->truth[i]);
        count++;
        /* The server rounds the estimate to 0.1 year before comparing (src/api/ages.c). */
        bool adult = ok && round(est * 10) / 10 >= THRESHOLD + margin;
        if (s->truth[i] < THRESHOLD) st.minors++, st.minors_adult += adult;
        else st.adults++, st.adults_refused += !adult;
    }
    st.mae /= count ? count : 1;
    return st;
}

static int pick_margin(const age_set *s, int method)
{
    for (int m = 0; m <= MAX_MARGIN; m++) {
        age_stats t = half_stats(s, method, 0, m);
        if (t.minors_adult <= MINORS_ADULT_TARGET * t.minors) return m;
    }
    return MAX_MARGIN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ms(const double *sec, int n)
{
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return NAN;
    memcpy(v, sec, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double m = 1000 * v[n / 2];
    free(v);
    return m;
}

static double pct(int a, int b) { return b ? 100.0 * a / b : 0.0; }

static void print_method(const age_set *s, int method, const char *name)
{
    age_stats ev = half_stats(s, method, 1, 0), tu = half_stats(s, method, 0, 0);
    int margin = pick_margin(s, method);
    age_stats evm = half_stats(s, method, 1, margin);
    printf("%-9s MAE %5.2f (tuning half %5.2f) | minors called adult %5.1f%% (%d/%d), adults "
           "refused %5.1f%% | margin %2d (from tuning): %5.1f%% (%d/%d), refused %5.1f%% (%d/%d) "
           "| no face %d | %.1f CPU ms/face p50\n",
           name, ev.mae, tu.mae, pct(ev.minors_adult, ev.minors), ev.minors_adult, ev.minors,
           pct(ev.adults_refused, ev.adults), margin, pct(evm.minors_adult, evm.minors),
           evm.minors_adult, evm.minors, pct(evm.adults_refused, evm.adults),
           evm.adults_refused, evm.adults, ev.missing, median_ms(s->seconds[method], s->n));
}

static void print_margins(const age_set *s)
{
    printf("\ncurrent method, evaluation half, threshold 18 (aboveThreshold = estimate >= 18 + margin):\n");
    printf("| margin | under-18s called >= 18 | adults called < 18 |\n|---|---|---|\n");
    for (int m = 0; m <= 12; m += 2) {
        age_stats e = half_stats(s, 0, 1, m);
        printf("| %d | %.1f %% (%d of %d) | %.1f %% (%d of %d) |\n", m,
               pct(e.minors_adult, e.minors), e.minors_adult, e.minors,
               pct(e.adults_refused, e.adults), e.adults_refused, e.adults);
    }
}

#define T FACE_AGE_TERMS

/* Solves the T x T system a x = b by Gaussian elimination with partial pivoting. */
static int solve(double a[T][T], double b[T], double x[T])
{
    for (int c = 0; c < T; c++) {
        int p = c;
        for (int r = c + 1; r < T; r++)
            if (fabs(a[r][c]) > fabs(a[p][c])) p = r;
        if (fabs(a[p][c]) < 1e-12) return -1;
        for (int k = 0; k < T; k++) {
            double t = a[c][k];
            a[c][k] = a[p][k], a[p][k] = t;
        }
        double t = b[c];
        b[c] = b[p], b[p] = t;
        for (int r = c + 1; r < T; r++) {
            double f = a[r][c] / a[c][c];
            for (int k = c; k < T; k++) a[r][k] -= f * a[c][k];
            b[r] -= f * b[c];
        }
    }
    for (int r = T - 1; r >= 0; r--) {
        double v = b[r];
        for (int k = r + 1; k < T; k++) v -= a[r][k] * x[k];
        x[r] = v / a[r][r];
    }
    return 0;
}

/* truth ~ c0 + c1 d + c2 d^2 + c3 f (the terms of src/face/age.c) on the tuning half,
 * by least absolute deviations (iteratively reweighted least squares): the MAE is
 * what we report, and it is less pulled by the few faces the models get badly wrong
 * than a least-squares fit. */
static int fit_calibration(const age_set *s, double c[T])
{
    for (int k = 0; k < T; k++) c[k] = 0;
    for (int iter = 0; iter < 100; iter++) {
        double a[T][T] = {{0}}, b[T] = {0};
        for (int i = 0; i < s->n; i += 2) {
            double d = s->raw[2 * i], f = s->raw[2 * i + 1];
            if (isnan(d)) continue;
            double x[T] = {1, d, d * d, f}, pred = 0;
            for (int k = 0; k < T; k++) pred += c[k] * x[k];
            double w = iter == 0 ? 1 : 1 / fmax(fabs(pred - s->truth[i]), 0.5);
            for (int r = 0; r < T; r++) {
                for (int k = 0; k < T; k++) a[r][k] += w * x[r] * x[k];
                b[r] += w * x[r] * s->truth[i];
            }
        }
        if (solve(a, b, c) != 0) return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir;
    face_engine *e = bench_engine_from_args(argc, argv, &dir);
    if (!face_engine_has_age(e)) {
        fprintf(stderr, "no age model: %s\n", face_engine_describe(e));
        return 1;
    }
    enum { MAX_IMAGES = 100000 };
    bench_image_list l = {0};
    age_set s = {0};
    s.truth = malloc(MAX_IMAGES * sizeof *s.truth);
    if (!s.truth || load_manifest(dir, &l, s.truth, MAX_IMAGES) <= 0) {
        fprintf(stderr, "cannot read %s/age/MANIFEST.tsv\n", dir);
        return 1;
    }
    s.n = l.n;
    if (!(s.raw = malloc(2 * (size_t)s.n * sizeof(float)))) return 1;
    for (int m = 0; m < 2; m++) {
        s.age[m] = malloc((size_t)s.n * sizeof(float));
        s.seconds[m] = malloc((size_t)s.n * sizeof(double));
        if (!s.age[m] || !s.seconds[m]) return 1;
        face_options opt = {.want_embedding = true, .want_age = true, .age_baseline = m == 1};
        s.method = m;
        bench_images_run(&l, e, &opt, 1, on_result, &s); /* one thread: honest ms/face */
    }
    printf("engine: %s\n", face_engine_describe(e));
    printf("data/age: %d images; tuning half = even MANIFEST rows (%d), evaluation half = odd "
           "rows (%d); numbers on the evaluation half\n", s.n, (s.n + 1) / 2, s.n / 2);
    print_method(&s, 1, "baseline");
    print_method(&s, 0, "current");
    print_margins(&s);
    double c[T];
    float now[T];
    face_age_calibration(now);
    if (fit_calibration(&s, c) == 0)
        printf("\nrefit on the tuning half (d faceres-deep, f face-api): age = %.4f %+.5f d %+.6f d^2 "
               "%+.5f f\n  in use (src/face/age.c):                      age = %.4f %+.5f d %+.6f "
               "d^2 %+.5f f\n", c[0], c[1], c[2], c[3], now[0], now[1], now[2], now[3]);
    for (int m = 0; m < 2; m++) free(s.age[m]), free(s.seconds[m]);
    free(s.raw);
    free(s.truth);
    bench_images_free(&l);
    face_engine_free(e);
    return 0;
}
