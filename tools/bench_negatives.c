/* bench_negatives - faces where there are none, and none lost where there are
 * (docs/negatives.md). Runs the server's face_analyze (no rotation search, as a
 * request without imageRotationEnabled) over:
 *
 *   no_face     negatives/no_face: every image should yield no face
 *   multi_face  negatives/multi_face, photos, documents/specimens, lfw (all 13,233
 *   photos      deep-funneled images, or every LFW_EVERY-th): every image that the
 *   documents   detector finds a face in should keep it
 *   lfw
 *
 * "before" is what the detector alone finds (a face, plausible or not), "after" what
 * survives the plausibility check (FACE_NORM_MIN in src/face/pipeline_internal.h),
 * both from the same run. The pipeline does not depend on imageType, so documents
 * are measured as the server treats an ID_DOCUMENT. Also prints the embedding norms
 * closest to the threshold on each side, i.e. the margin the check has.
 *
 *   bench_negatives [DATA_DIR [MODELS_DIR]]   environment: LFW_EVERY=N */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_images.h"

typedef struct {
    const char *name;
    bool faces_expected;
    int first, count; /* range in the image list */
} image_set;

typedef struct {
    signed char before, after;
    float norm;
} outcome;

static void on_result(void *ctx, int i, int rc, const face_result *r, double seconds)
{
    (void)seconds;
    outcome *o = ctx;
    bool ok = rc == FACE_OK;
    o[i].after = ok && r->faces_found > 0;
    o[i].before = o[i].after || (ok && r->implausible);
    o[i].norm = o[i].before ? r->embedding_norm : NAN;
}

static int is_image(const struct dirent *d)
{
    const char *dot = strrchr(d->d_name, '.');
    return d->d_name[0] != '.' && dot &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
            !strcasecmp(dot, ".webp"));
}

static int is_subdir(const struct dirent *d) { return d->d_name[0] != '.'; }

/* Adds the images of dir (sorted by name), every `every`-th one; returns the count. */
static int add_dir(bench_image_list *l, const char *dir, int every, int *seen)
{
    struct dirent **names;
    int n = scandir(dir, &names, is_image, alphasort), added = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%.3000s/%.1023s", dir, names[i]->d_name);
        if ((*seen)++ % every == 0) bench_images_add(l, path), added++;
        free(names[i]);
    }
    if (n > 0) free(names);
    return added;
}

static int add_lfw(bench_image_list *l, const char *root, int every)
{
    struct dirent **people;
    int n = scandir(root, &people, is_subdir, alphasort), added = 0, seen = 0;
    for (int i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.2047s/%.1023s", root, people[i]->d_name);
        added += add_dir(l, dir, every, &seen);
        free(people[i]);
    }
    if (n > 0) free(people);
    return added;
}

static void report(const image_set *s, const outcome *o, const bench_image_list *l)
{
    int before = 0, after = 0, lost = 0;
    float lowest_kept = INFINITY, highest_dropped = -INFINITY;
    for (int i = s->first; i < s->first + s->count; i++) {
        before += o[i].before, after += o[i].after;
        if (o[i].before && !o[i].after) {
            lost++;
            if (o[i].norm > highest_dropped) highest_dropped = o[i].norm;
        }
        if (o[i].after && o[i].norm < lowest_kept) lowest_kept = o[i].norm;
    }
    printf("| %-10s | %6d | %6d | %6d | %6d | %-10s | %s%.2f / %s%.2f |\n", s->name, s->count,
           before, after, s->faces_expected ? lost : after,
           s->faces_expected ? "lost" : "false faces", "kept >= ", lowest_kept,
           "dropped <= ", highest_dropped);
    for (int i = s->first; i < s->first + s->count; i++)
        if ((s->faces_expected && o[i].before && !o[i].after) || (!s->faces_expected && o[i].after))
            printf("    %s: %s (embedding norm %.3f)\n",
                   s->faces_expected ? "lost" : "face found", l->paths[i], o[i].norm);
}

int main(int argc, char **argv)
{
    const char *dir, *every_env = getenv("LFW_EVERY");
    int lfw_every = every_env && atoi(every_env) > 0 ? atoi(every_env) : 1;
    char path[2048];
    face_engine *e = bench_engine_from_args(argc, argv, &dir);
    bench_image_list l = {0};
    image_set sets[] = {{"no_face", false, 0, 0},  {"multi_face", true, 0, 0},
                        {"photos", true, 0, 0},    {"documents", true, 0, 0},
                        {"lfw", true, 0, 0}};
    const char *dirs[] = {"negatives/no_face", "negatives/multi_face", "photos",
                          "documents/specimens", "lfw/lfw_deepfunneled"};
    for (int k = 0; k < 5; k++) {
        int seen = 0;
        snprintf(path, sizeof path, "%s/%s", dir, dirs[k]);
        sets[k].first = l.n;
        sets[k].count = k == 4 ? add_lfw(&l, path, lfw_every) : add_dir(&l, path, 1, &seen);
        if (sets[k].count == 0) {
            fprintf(stderr, "no images in %s\n", path);
            return 1;
        }
    }
    outcome *o = calloc((size_t)l.n, sizeof *o);
    if (!o) return 1;
    face_options opt = {.want_embedding = true};
    double t0 = time_monotonic_s();
    bench_images_run(&l, e, &opt, 2, on_result, o);
    printf("engine: %s; %d images in %.0f s on 2 threads%s\n", face_engine_describe(e), l.n,
           time_monotonic_s() - t0, lfw_every > 1 ? " (LFW sampled: LFW_EVERY)" : "");
    printf("before = the detector's faces, after = those that pass the plausibility check\n");
    printf("| set        | images | before |  after | wrong  | counted    | embedding norms (after, dropped) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 5; k++) report(&sets[k], o, &l);
    free(o);
    bench_images_free(&l);
    face_engine_free(e);
    return 0;
}
