/* int8 gallery index; see gallery_index.h. Each embedding is scaled so that its
 * largest component is 127 (per-face scale), the query likewise, and the integer
 * dot product times both scales approximates the cosine similarity. */
#include "gallery/gallery_index.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/pipeline.h"

struct gallery_index {
    pthread_rwlock_t lock;
    int dim;
    size_t count, cap;
    int8_t *codes; /* cap * dim */
    float *scales;
    uint8_t (*ids)[GALLERY_ID_BYTES];
};

gallery_index *gallery_index_create(void) {
    gallery_index *gi = calloc(1, sizeof(*gi));
    if (gi && pthread_rwlock_init(&gi->lock, NULL)) {
        free(gi);
        return NULL;
    }
    return gi;
}

void gallery_index_free(gallery_index *gi) {
    if (!gi) return;
    pthread_rwlock_destroy(&gi->lock);
    free(gi->codes);
    free(gi->scales);
    free(gi->ids);
    free(gi);
}

/* Returns the scale: x ~= code * scale. */
static float quantize(const float *x, int dim, int8_t *code) {
    float max = 0;
    for (int i = 0; i < dim; i++) max = fmaxf(max, fabsf(x[i]));
    float scale = max > 0 ? max / 127.0f : 1.0f;
    for (int i = 0; i < dim; i++) code[i] = (int8_t)lrintf(x[i] / scale);
    return scale;
}

static int32_t dot_scalar(const int8_t *a, const int8_t *b, int dim) {
    int32_t s = 0;
    for (int i = 0; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}

/* AVX2: maddubs needs one unsigned operand, so |a| times b with a's sign moved
 * onto b; codes never hold -128, so each pair sum is at most 2*127*127 and the
 * int16 step cannot saturate. Needs dim % 32 == 0. */
__attribute__((target("avx2"))) static int32_t dot_avx2(const int8_t *a, const int8_t *b, int dim) {
    __m256i acc = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < dim; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i)), y = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

typedef int32_t (*dot_fn)(const int8_t *, const int8_t *, int);

static dot_fn pick_kernel(int dim) {
    return dim % 32 == 0 && __builtin_cpu_supports("avx2") ? dot_avx2 : dot_scalar;
}

int32_t gallery_dot_int8(const int8_t *a, const int8_t *b, int dim) { return pick_kernel(dim)(a, b, dim); }

static bool grow(gallery_index *gi) {
    size_t cap = gi->cap ? gi->cap + gi->cap / 2 : 1024;
    int8_t *codes = realloc(gi->codes, cap * (size_t)gi->dim);
    if (codes) gi->codes = codes;
    float *scales = codes ? realloc(gi->scales, cap * sizeof(float)) : NULL;
    if (scales) gi->scales = scales;
    uint8_t(*ids)[GALLERY_ID_BYTES] = scales ? realloc(gi->ids, cap * GALLERY_ID_BYTES) : NULL;
    if (!ids) return false; /* the arrays that did grow keep their contents: still consistent */
    gi->ids = ids;
    gi->cap = cap;
    return true;
}

int gallery_index_add(gallery_index *gi, const uint8_t id[GALLERY_ID_BYTES], const float *embedding, int dim) {
    if (dim <= 0 || dim > FACE_EMBEDDING_MAX) return GALLERY_INDEX_DIM;
    pthread_rwlock_wrlock(&gi->lock);
    int rc = GALLERY_INDEX_OK;
    if (gi->count == 0 && gi->dim != dim) {
        free(gi->codes); /* the first face fixes the code size */
        gi->codes = NULL;
        gi->cap = 0;
        gi->dim = dim;
    }
    if (gi->dim != dim) rc = GALLERY_INDEX_DIM;
    else if (gi->count == gi->cap && !grow(gi)) rc = GALLERY_INDEX_NOMEM;
    else {
        size_t i = gi->count++;
        gi->scales[i] = quantize(embedding, dim, gi->codes + i * (size_t)dim);
        memcpy(gi->ids[i], id, GALLERY_ID_BYTES);
    }
    pthread_rwlock_unlock(&gi->lock);
    return rc;
}

bool gallery_index_remove(gallery_index *gi, const uint8_t id[GALLERY_ID_BYTES]) {
    pthread_rwlock_wrlock(&gi->lock);
    bool found = false;
    for (size_t i = 0; i < gi->count;) {
        if (memcmp(gi->ids[i], id, GALLERY_ID_BYTES)) {
            i++;
            continue;
        }
        size_t last = --gi->count; /* order does not matter: move the last face here, look again */
        memcpy(gi->codes + i * (size_t)gi->dim, gi->codes + last * (size_t)gi->dim, (size_t)gi->dim);
        gi->scales[i] = gi->scales[last];
        memcpy(gi->ids[i], gi->ids[last], GALLERY_ID_BYTES);
        found = true;
    }
    pthread_rwlock_unlock(&gi->lock);
    return found;
}

size_t gallery_index_count(gallery_index *gi) {
    pthread_rwlock_rdlock(&gi->lock);
    size_t n = gi->count;
    pthread_rwlock_unlock(&gi->lock);
    return n;
}

int gallery_index_dim(gallery_index *gi) {
    pthread_rwlock_rdlock(&gi->lock);
    int d = gi->count ? gi->dim : 0;
    pthread_rwlock_unlock(&gi->lock);
    return d;
}

/* One thread's share of a scan: a min-heap of its best k (slot, similarity). */
typedef struct {
    const gallery_index *gi;
    const int8_t *query;
    float query_scale;
    size_t begin, end, k, found;
    size_t *slot;
    float *sim;
} scan_job;

static void heap_sift_down(scan_job *j, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < j->found && j->sim[l] < j->sim[m]) m = l;
        if (r < j->found && j->sim[r] < j->sim[m]) m = r;
        if (m == i) return;
        float ts = j->sim[i];
        size_t tl = j->slot[i];
        j->sim[i] = j->sim[m], j->slot[i] = j->slot[m];
        j->sim[m] = ts, j->slot[m] = tl;
        i = m;
    }
}

static void heap_offer(scan_job *j, size_t slot, float sim) {
    if (j->found < j->k) {
        size_t i = j->found++;
        j->slot[i] = slot, j->sim[i] = sim;
        while (i && j->sim[(i - 1) / 2] > j->sim[i]) { /* sift up */
            size_t p = (i - 1) / 2;
            float ts = j->sim[i];
            size_t tl = j->slot[i];
            j->sim[i] = j->sim[p], j->slot[i] = j->slot[p];
            j->sim[p] = ts, j->slot[p] = tl;
            i = p;
        }
    } else if (sim > j->sim[0]) {
        j->slot[0] = slot, j->sim[0] = sim;
        heap_sift_down(j, 0);
    }
}

static void *scan_range(void *arg) {
    scan_job *j = arg;
    const gallery_index *gi = j->gi;
    dot_fn dot = pick_kernel(gi->dim);
    for (size_t i = j->begin; i < j->end; i++) {
        int32_t d = dot(gi->codes + i * (size_t)gi->dim, j->query, gi->dim);
        heap_offer(j, i, (float)d * gi->scales[i] * j->query_scale);
    }
    return NULL;
}

typedef struct {
    size_t slot;
    float sim;
} slot_sim;

static int by_sim_desc(const void *a, const void *b) {
    float x = ((const slot_sim *)a)->sim, y = ((const slot_sim *)b)->sim;
    return (y > x) - (y < x);
}

#define SCAN_THREADS_MAX 16

/* Runs the scan on `threads` threads (the caller's being one of them). */
static void scan(scan_job *jobs, int threads) {
    pthread_t tid[SCAN_THREADS_MAX];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, scan_range, &jobs[t])) break;
        started = t;
    }
    scan_range(&jobs[0]);
    for (int t = started + 1; t < threads; t++) scan_range(&jobs[t]); /* threads we could not start */
    for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
}

int gallery_index_search(gallery_index *gi, const float *query, int dim, size_t k, int threads,
                         gallery_candidate *out) {
    if (k == 0) return 0;
    pthread_rwlock_rdlock(&gi->lock);
    int rc = 0;
    size_t n = gi->count;
    if (n && dim != gi->dim) rc = GALLERY_INDEX_DIM;
    if (rc || n == 0) {
        pthread_rwlock_unlock(&gi->lock);
        return rc;
    }
    if (threads < 1 || n < GALLERY_INDEX_PARALLEL_MIN) threads = 1;
    if (threads > SCAN_THREADS_MAX) threads = SCAN_THREADS_MAX;
    int8_t qcode[FACE_EMBEDDING_MAX];
    float qscale = quantize(query, dim, qcode);
    scan_job jobs[SCAN_THREADS_MAX];
    size_t *slots = malloc((size_t)threads * k * sizeof(size_t));
    float *sims = malloc((size_t)threads * k * sizeof(float));
    slot_sim *all = malloc((size_t)threads * k * sizeof(slot_sim));
    if (!slots || !sims || !all) rc = GALLERY_INDEX_NOMEM;
    for (int t = 0; !rc && t < threads; t++)
        jobs[t] = (scan_job){gi, qcode, qscale, n * (size_t)t / (size_t)threads, n * (size_t)(t + 1) / (size_t)threads,
                             k, 0, slots + (size_t)t * k, sims + (size_t)t * k};
    if (!rc) scan(jobs, threads);
    size_t total = 0;
    for (int t = 0; !rc && t < threads; t++)
        for (size_t i = 0; i < jobs[t].found; i++) all[total++] = (slot_sim){jobs[t].slot[i], jobs[t].sim[i]};
    if (!rc) {
        qsort(all, total, sizeof(*all), by_sim_desc);
        if (total > k) total = k;
        for (size_t i = 0; i < total; i++) {
            memcpy(out[i].id, gi->ids[all[i].slot], GALLERY_ID_BYTES);
            out[i].similarity = all[i].sim;
        }
        rc = (int)total;
    }
    pthread_rwlock_unlock(&gi->lock);
    free(slots);
    free(sims);
    free(all);
    return rc;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool gallery_id_parse(const char *uuid, uint8_t out[GALLERY_ID_BYTES]) {
    if (!uuid || strlen(uuid) != 36) return false;
    int b = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (uuid[i] != '-') return false;
            continue;
        }
        int hi = hex_value(uuid[i]), lo = hex_value(uuid[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[b++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return b == GALLERY_ID_BYTES;
}

void gallery_id_format(const uint8_t id[GALLERY_ID_BYTES], char out[37]) {
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2],
             id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13], id[14], id[15]);
}
