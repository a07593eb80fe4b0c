/* make bench-match (part 1): cost of comparing two templates in memory, the
 * inner loop of GetMatches, next to the naive double-precision loop as baseline,
 * and of opening a client-held template (base64 + AES-256-GCM). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "face/pipeline.h"
#include "face/template.h"
#include "core/util.h"
#include "match/similarity.h"

#define DIM 512
#define FACES 1000
#define ROUNDS 2000

static double naive_cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

int main(void) {
    float *emb = malloc(sizeof(float) * DIM * FACES);
    srand(1);
    for (int f = 0; f < FACES; f++) {
        double norm = 0;
        for (int i = 0; i < DIM; i++) norm += pow(emb[f * DIM + i] = (float)rand() / RAND_MAX - 0.5f, 2);
        for (int i = 0; i < DIM; i++) emb[f * DIM + i] /= (float)sqrt(norm);
    }
    volatile float sink = 0;
    double t = time_monotonic_s();
    for (int r = 0; r < ROUNDS; r++)
        for (int f = 1; f < FACES; f++) sink += embedding_similarity(emb, emb + f * DIM, DIM);
    double ours = (time_monotonic_s() - t) / ((double)ROUNDS * (FACES - 1)) * 1e9;
    t = time_monotonic_s();
    for (int r = 0; r < ROUNDS / 10; r++)
        for (int f = 1; f < FACES; f++) sink += (float)naive_cosine(emb, emb + f * DIM, DIM);
    double naive = (time_monotonic_s() - t) / ((double)ROUNDS / 10 * (FACES - 1)) * 1e9;
    char dir[] = "/tmp/bench-compare-XXXXXX", err[256];
    data_keyring *ring = mkdtemp(dir) ? data_keyring_load_or_create(dir, err, sizeof err) : NULL;
    if (!ring) return fprintf(stderr, "bench_compare: no key ring: %s\n", err), 1;
    template_keys keys = {.ring = ring};
    char *b64 = template_encode(&keys, "bench", "F5_1_VID60", emb, DIM);
    face_template *tpl = malloc(sizeof(*tpl));
    t = time_monotonic_s();
    for (int r = 0; r < 20000; r++) sink += (float)template_decode(&keys, "bench", b64, tpl, err, sizeof err);
    double decode = (time_monotonic_s() - t) / 20000 * 1e6;
    printf("template comparison (512-d cosine, L2-normalised): %.1f ns   naive double loop: %.1f ns   ratio %.1fx\n",
           ours, naive, naive / ours);
    printf("1:%d comparisons: %.3f ms\n", FACES - 1, ours * (FACES - 1) / 1e6);
    printf("opening a client template (base64 + AES-256-GCM, make bench-crypto has the detail): %.2f us\n", decode);
    free(b64);
    data_keyring_free(ring);
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, DATA_KEYRING_FILE);
    unlink(path);
    rmdir(dir);
    free(tpl);
    free(emb);
    return sink == 12345.0f;
}
