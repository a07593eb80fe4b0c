/* bench_pad - presentation-attack detection error rates (ISO/IEC 30107-3 APCER:
 * attacks accepted; BPCER: live faces rejected) on data/spoof (NUAA: 8 subjects,
 * each 12 live webcam frames and 12 frames of a printed photo; no screen replays).
 *
 * 1. Subject split, per PAD model and fusion (liveness/pad.h): 4 folds, each
 *    holding out 2 subjects and tuning on the other 6. From the tuning subjects
 *    only: the z-normalisation of every model and the level thresholds
 *    (fit_thresholds: LOW minimises APCER + BPCER, MEDIUM 3 APCER + BPCER, HIGH
 *    BPCER with no tuning attack accepted). Reported: every fold, and the pooled
 *    held-out APCER/BPCER per level, PASSIVE (one image a capture).
 * 2. The server's split: tuned on subjects 0001-0004, reported on 0005-0008,
 *    printing the constants src/liveness/evaluate.c uses.
 * 3. The server itself (liveness_analyze_frame, liveness_decide) on every image:
 *    PASSIVE, and PASSIVE_VIDEO on runs of VIDEO_WINDOW consecutive frames of one
 *    subject and label (timestamps 100 ms apart). Subjects 0001-0004 tuned it.
 * 4. CPU milliseconds per model run on one thread, fr_liveness (the server's) as
 *    the baseline, on the same faces in the same run.
 *
 *   bench_pad [DATA_DIR [MODELS_DIR]]   (defaults ../shared/data, models) */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/util.h"
#include "face/image.h"
#include "liveness/evaluate.h"
#include "liveness/pad.h"

#define MAX_ITEMS 2000
#define VIDEO_WINDOW 4
#define SUBJECTS 8
#define FOLDS 4

typedef struct {
    char path[512];
    char recording[64]; /* label + subject folder */
    int subject;        /* 1..SUBJECTS */
    int attack;
    uint8_t *data;
    size_t len;
    liveness_frame_info info;
    float raw[PAD_MODELS]; /* -FLT_MAX without a face */
} item;

static int by_recording(const void *pa, const void *pb) {
    const item *a = pa, *b = pb;
    int c = strcmp(a->recording, b->recording);
    return c ? c : strcmp(a->path, b->path);
}

/* MANIFEST.tsv rows "nuaa/live/0001/0001_00_00_01_0.jpg<TAB>live|spoof<TAB>...". */
static int load_manifest(const char *data_dir, item *items) {
    char path[600], line[2048];
    snprintf(path, sizeof path, "%s/spoof/MANIFEST.tsv", data_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < MAX_ITEMS && fgets(line, sizeof line, f)) {
        char file[400], label[32];
        if (sscanf(line, "%399[^\t]\t%31[^\t]", file, label) != 2 || strcmp(file, "file") == 0) continue;
        item *it = &items[n];
        snprintf(it->path, sizeof it->path, "%s/spoof/%s", data_dir, file);
        it->attack = strcmp(label, "live") != 0;
        const char *slash = strrchr(file, '/'), *prev = slash;
        while (prev && prev > file && prev[-1] != '/') prev--;
        if (!slash || !prev) continue;
        snprintf(it->recording, sizeof it->recording, "%s/%.*s", label, (int)(slash - prev), prev);
        it->subject = atoi(prev);
        if (it->subject < 1 || it->subject > SUBJECTS) continue;
        n++;
    }
    fclose(f);
    return n;
}

/* ---- fusions and subject-split thresholds ----------------------------------------- */

static const char *const LEVEL_NAMES[3] = {"LOW", "MEDIUM", "HIGH"};

static void fusion_name(unsigned mask, char *out, size_t cap) {
    out[0] = 0;
    for (int m = 0; m < PAD_MODELS; m++)
        if (mask >> m & 1)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "+" : "", pad_model_name((pad_model_id)m));
}

/* z-normalisation of every model over the items in `use` that have a face, and its
 * orientation: a model whose live faces score lower than the attacks on those
 * items is turned round (negative sd). One model alone keeps its own scale. */
static void fit_fusion(const item *items, int n, const int *use, unsigned mask, pad_fusion *f) {
    memset(f, 0, sizeof *f);
    f->mask = mask;
    for (int m = 0; m < PAD_MODELS; m++) {
        double s = 0, s2 = 0, by_label[2] = {0};
        int k = 0, count[2] = {0};
        for (int i = 0; i < n; i++) {
            if (!use[i] || !items[i].info.face) continue;
            double v = items[i].raw[m];
            s += v, s2 += v * v, k++;
            by_label[items[i].attack] += v, count[items[i].attack]++;
        }
        bool turned = count[0] && count[1] && by_label[0] / count[0] < by_label[1] / count[1];
        bool alone = __builtin_popcount(mask) == 1;
        f->mean[m] = k && !alone ? (float)(s / k) : 0;
        f->sd[m] = k > 1 && !alone ? (float)sqrt(fmax(s2 / k - (s / k) * (s / k), 1e-12)) : 1;
        if (turned) f->sd[m] = -f->sd[m];
    }
}

static float fused(const item *it, const pad_fusion *f) { return it->info.face ? pad_fuse(f, it->raw) : -1.0f; }

/* The level thresholds from the tuning items. Level l accepts score >= t where t
 * minimises LEVEL_WEIGHT[l] * APCER + BPCER on them (HIGH: APCER must be 0; ties:
 * the lowest t), placed LEVEL_GAP[l] of the way, in logit space, from the highest
 * rejected tuning score to the lowest accepted one: inside the gap LOW leans
 * towards the attacks, HIGH towards the live faces. */
static const double LEVEL_WEIGHT[3] = {1, 3, 1e9};
static const float LEVEL_GAP[3] = {0.25f, 0.5f, 0.75f};

static float logit(float p) { p = fminf(fmaxf(p, 1e-7f), 1 - 1e-7f); return logf(p / (1 - p)); }

static void fit_thresholds(const item *items, int n, const int *use, const pad_fusion *f, float th[3]) {
    static float s[MAX_ITEMS];
    static int atk[MAX_ITEMS];
    int k = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++)
        if (use[i]) s[k] = fused(&items[i], f), atk[k] = items[i].attack, na += atk[k], nb += !atk[k], k++;
    for (int l = 0; l < 3; l++) {
        /* candidate j: t just above s[j] (j = -1: below everything) */
        double best = INFINITY;
        float lo = -1.0f, hi = 1.0f;
        for (int j = -1; j < k; j++) {
            float t0 = j < 0 ? -1.0f : s[j], t1 = 2.0f; /* next score above t0 */
            int passed_atk = 0, rejected_bona = 0;
            for (int i = 0; i < k; i++) {
                if (s[i] > t0 && s[i] < t1) t1 = s[i];
                if (s[i] > t0) passed_atk += atk[i];
                else rejected_bona += !atk[i];
            }
            double cost = LEVEL_WEIGHT[l] * passed_atk / (na ? na : 1) + (double)rejected_bona / (nb ? nb : 1);
            if (cost < best - 1e-12 || (cost < best + 1e-12 && t0 < lo)) best = cost, lo = t0, hi = t1 > 1.0f ? 1.0f : t1;
        }
        float a = logit(fmaxf(lo, 0)), b = logit(hi);
        th[l] = 1.0f / (1.0f + expf(-(a + LEVEL_GAP[l] * (b - a))));
        if (th[l] <= lo) th[l] = nextafterf(lo, 2.0f);
    }
}

typedef struct { int attacks, accepted, bona, rejected; } counts;

static void count(const item *items, int n, const int *use, const pad_fusion *f, const float th[3], counts c[3]) {
    for (int i = 0; i < n; i++) {
        if (!use[i]) continue;
        float s = fused(&items[i], f);
        for (int l = 0; l < 3; l++) {
            bool ok = items[i].info.face && s >= th[l];
            if (items[i].attack) c[l].attacks++, c[l].accepted += ok;
            else c[l].bona++, c[l].rejected += !ok;
        }
    }
}

static double pct(int a, int b) { return b ? 100.0 * a / b : 0; }

/* Tunes a fusion and its thresholds on the items in `tune`; counts the items in `test`. */
static void tune_and_test(const item *items, int n, const int *tune, const int *test, unsigned mask, pad_fusion *f,
                          float th[3], counts c[3]) {
    memset(c, 0, 3 * sizeof *c);
    fit_fusion(items, n, tune, mask, f);
    fit_thresholds(items, n, tune, f, th);
    count(items, n, test, f, th, c);
}

/* Held-out subjects of fold k: 2k+1 and 2k+2. */
static int held_out(int subject, int fold) { return (subject - 1) / 2 == fold; }

static void cross_validate(const item *items, int n, unsigned mask, bool all_folds) {
    static int tune[MAX_ITEMS], test[MAX_ITEMS];
    counts pooled[3] = {{0}};
    char name[128];
    fusion_name(mask, name, sizeof name);
    if (all_folds) printf("\n%s\n", name);
    for (int k = 0; k < FOLDS; k++) {
        for (int i = 0; i < n; i++) test[i] = held_out(items[i].subject, k), tune[i] = !test[i];
        pad_fusion f;
        float th[3];
        counts c[3];
        tune_and_test(items, n, tune, test, mask, &f, th, c);
        for (int l = 0; l < 3; l++) {
            pooled[l].attacks += c[l].attacks, pooled[l].accepted += c[l].accepted;
            pooled[l].bona += c[l].bona, pooled[l].rejected += c[l].rejected;
        }
        if (all_folds)
            printf("  fold %d (held out %04d+%04d): APCER/BPCER %% LOW %5.1f/%5.1f  MEDIUM %5.1f/%5.1f  HIGH %5.1f/%5.1f"
                   "  (thr %.3f %.3f %.3f)\n", k + 1, 2 * k + 1, 2 * k + 2, pct(c[0].accepted, c[0].attacks),
                   pct(c[0].rejected, c[0].bona), pct(c[1].accepted, c[1].attacks), pct(c[1].rejected, c[1].bona),
                   pct(c[2].accepted, c[2].attacks), pct(c[2].rejected, c[2].bona), th[0], th[1], th[2]);
    }
    printf("%-48s", all_folds ? "  pooled held-out" : name);
    for (int l = 0; l < 3; l++)
        printf("  %5.1f %5.1f", pct(pooled[l].accepted, pooled[l].attacks), pct(pooled[l].rejected, pooled[l].bona));
    printf("   (%d attacks, %d bona fide)\n", pooled[0].attacks, pooled[0].bona);
}

/* The server's constants: tuned on subjects 1-4, reported on 5-8. */
static void server_split(const item *items, int n, unsigned mask) {
    static int tune[MAX_ITEMS], test[MAX_ITEMS];
    for (int i = 0; i < n; i++) tune[i] = items[i].subject <= 4, test[i] = !tune[i];
    pad_fusion f;
    float th[3];
    counts c[3];
    tune_and_test(items, n, tune, test, mask, &f, th, c);
    char name[128];
    fusion_name(mask, name, sizeof name);
    printf("\nserver split: %s tuned on subjects 0001-0004, held out 0005-0008\n", name);
    for (int m = 0; m < PAD_MODELS; m++)
        if (mask >> m & 1) printf("  %-17s z = (raw - %.4f) / %.4f\n", pad_model_name((pad_model_id)m), f.mean[m], f.sd[m]);
    for (int l = 0; l < 3; l++)
        printf("  %-7s threshold %.4f   held-out APCER %5.1f %%  BPCER %5.1f %%\n", LEVEL_NAMES[l], th[l],
               pct(c[l].accepted, c[l].attacks), pct(c[l].rejected, c[l].bona));
}

/* ---- the server's own decision -------------------------------------------------- */

static void report_server(const item *items, int n, int window, liveness_type type) {
    printf("\n%s (%s), the server on all subjects\n%-7s %6s %8s %8s\n", liveness_type_name(type),
           window > 1 ? "4-frame windows" : "one image per capture", "level", "thr", "APCER%", "BPCER%");
    for (int level = LEVEL_LOW; level <= LEVEL_HIGH; level++) {
        counts all = {0}, held = {0};
        for (int i = 0; i + window <= n; i++) {
            if (strcmp(items[i].recording, items[i + window - 1].recording)) continue;
            liveness_frame frames[VIDEO_WINDOW];
            liveness_frame_info infos[VIDEO_WINDOW];
            for (int k = 0; k < window; k++) {
                frames[k] = (liveness_frame){.timestamp_ms = 100 * k, .data = items[i + k].data, .len = items[i + k].len};
                infos[k] = items[i + k].info;
            }
            liveness_request rq = {.type = type, .level = level};
            liveness_outcome out;
            liveness_decide(&rq, frames, infos, window, &out);
            bool ok = out.verdict == VERDICT_SUCCESS;
            counts *c[2] = {&all, items[i].subject > 4 ? &held : NULL};
            for (int j = 0; j < 2; j++) {
                if (!c[j]) continue;
                if (items[i].attack) c[j]->attacks++, c[j]->accepted += ok;
                else c[j]->bona++, c[j]->rejected += !ok;
            }
        }
        printf("%-7s %6.3f %8.1f %8.1f   (%d attacks, %d bona fide); held-out 0005-0008: %.1f / %.1f\n",
               liveness_level_name(level), liveness_level_thresholds(level).live_min, pct(all.accepted, all.attacks),
               pct(all.rejected, all.bona), all.attacks, all.bona, pct(held.accepted, held.attacks),
               pct(held.rejected, held.bona));
    }
}

/* ---- scoring ---------------------------------------------------------------------- */

typedef struct {
    nn_model *model[PAD_MODELS];
    nn_session *session[PAD_MODELS];
    double seconds[PAD_MODELS];
    int runs[PAD_MODELS];
} scorers;

/* CPU time of this thread: steadier than wall time on a machine shared with other jobs. */
static int score_item(scorers *sc, item *it, char *err, size_t err_len) {
    for (int m = 0; m < PAD_MODELS; m++) it->raw[m] = -FLT_MAX;
    if (!it->info.face) return 0;
    image_rgb img = {0};
    image_limits lim = {0};
    if (image_decode(it->data, it->len, &lim, 1, &img, err, err_len)) return -1;
    for (int m = 0; m < PAD_MODELS; m++) {
        double t0 = time_thread_cpu_s();
        if (pad_score((pad_model_id)m, sc->session[m], &img, it->info.box, &it->raw[m])) {
            snprintf(err, err_len, "%s failed", pad_model_name((pad_model_id)m));
            image_rgb_free(&img);
            return -1;
        }
        sc->seconds[m] += time_thread_cpu_s() - t0;
        sc->runs[m]++;
    }
    image_rgb_free(&img);
    return 0;
}

int main(int argc, char **argv) {
    const char *data_dir = argc > 1 ? argv[1] : "../shared/data";
    const char *models = argc > 2 ? argv[2] : "models";
    static item items[MAX_ITEMS];
    int n = load_manifest(data_dir, items);
    if (n <= 0) {
        fprintf(stderr, "bench_pad: cannot read %s/spoof/MANIFEST.tsv\n", data_dir);
        return 1;
    }
    char err[512];
    face_engine *fe = face_engine_load(models, err, sizeof err);
    face_worker *fw = fe ? face_worker_create(fe, err, sizeof err) : NULL;
    liveness_engine *le = fw ? liveness_engine_load(models, err, sizeof err) : NULL;
    static scorers sc;
    for (int m = 0; le && m < PAD_MODELS; m++)
        if (!(sc.model[m] = pad_model_load((pad_model_id)m, models, err, sizeof err)) ||
            !(sc.session[m] = nn_session_create(sc.model[m], err, sizeof err)))
            le = NULL;
    if (!le) {
        fprintf(stderr, "bench_pad: %s\n", err);
        return 1;
    }
    int no_face = 0;
    for (int i = 0; i < n; i++) {
        items[i].data = file_read_all(items[i].path, (size_t)1 << 28, &items[i].len);
        liveness_frame f = {.data = items[i].data, .len = items[i].len};
        if (!items[i].data || liveness_analyze_frame(le, fw, &f, 0, &items[i].info, err, sizeof err) ||
            score_item(&sc, &items[i], err, sizeof err)) {
            fprintf(stderr, "bench_pad: %s: %s\n", items[i].path, items[i].data ? err : "unreadable");
            return 1;
        }
        no_face += !items[i].info.face;
        if (getenv("BENCH_PAD_VERBOSE"))
            printf("%s\t%s\tface=%d\tlive=%.4f\traw=%.3f %.3f %.3f %.3f\n", items[i].attack ? "spoof" : "live",
                   items[i].path, items[i].info.face, items[i].info.live, items[i].raw[0], items[i].raw[1],
                   items[i].raw[2], items[i].raw[3]);
    }
    qsort(items, (size_t)n, sizeof(item), by_recording);
    printf("bench_pad: %d images from %s/spoof, %d subjects (%d without a detected face count as rejected);\n"
           "photo attacks only: the data holds no screen-replay samples\n", n, data_dir, SUBJECTS, no_face);

    printf("\nPASSIVE, one image a capture, subject split: %d folds of 2 held-out subjects, thresholds and\n"
           "z-normalisation from the 6 tuning subjects; pooled held-out APCER%% BPCER%% per level\n"
           "%-48s  %11s  %11s  %11s\n", FOLDS, "model / fusion", "LOW", "MEDIUM", "HIGH");
    for (unsigned mask = 1; mask < (1u << PAD_MODELS); mask++) cross_validate(items, n, mask, false);
    printf("\nevery fold of the single models and the server's fusion:");
    for (int m = 0; m < PAD_MODELS; m++) cross_validate(items, n, 1u << m, true);
    unsigned server_mask = liveness_engine_fusion(le)->mask;
    if (__builtin_popcount(server_mask) > 1) cross_validate(items, n, server_mask, true);
    server_split(items, n, server_mask);

    report_server(items, n, 1, LIVENESS_PASSIVE);
    report_server(items, n, VIDEO_WINDOW, LIVENESS_PASSIVE_VIDEO);

    printf("\nCPU ms per run, one thread (%d faces), ratio to fr_liveness (the baseline, the server's model):\n",
           sc.runs[0]);
    for (int m = 0; m < PAD_MODELS; m++)
        printf("  %-17s %7.2f ms  x%.2f\n", pad_model_name((pad_model_id)m), 1e3 * sc.seconds[m] / (sc.runs[m] ? sc.runs[m] : 1),
               sc.seconds[0] > 0 ? sc.seconds[m] / sc.seconds[0] : 0);

    for (int i = 0; i < n; i++) free(items[i].data);
    for (int m = 0; m < PAD_MODELS; m++) nn_session_free(sc.session[m]), nn_model_free(sc.model[m]);
    face_worker_free(fw); /* before the liveness models its sessions use */
    liveness_engine_free(le);
    face_engine_free(fe);
    return 0;
}
