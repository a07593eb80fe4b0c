/* 4-bit gallery index; see gallery_index.h. Each embedding is scaled so that its
 * largest component is 7 (one scale per face) and stored as nibbles (code + 8),
 * 64 dimensions per 32 bytes: byte j of a block holds dimension j in its low
 * nibble and dimension 32 + j in its high one, so one AVX2 load feeds two
 * multiply-adds against the query's halves. The query is int8 (largest component
 * 127); the integer dot product times both scales approximates the cosine. */
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
    uint8_t *codes; /* cap * gallery_code_bytes(dim) */
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

/* Symmetric quantisation with the largest component at +-levels; returns the
 * scale (x ~= code * scale). */
static float quantize(const float *x, int dim, int levels, int8_t *code) {
    float max = 0;
    for (int i = 0; i < dim; i++) max = fmaxf(max, fabsf(x[i]));
    float scale = max > 0 ? max / (float)levels : 1.0f;
    for (int i = 0; i < dim; i++) code[i] = (int8_t)fmaxf(-levels, fminf(levels, lrintf(x[i] / scale)));
    return scale;
}

size_t gallery_code_bytes(int dim) { return (size_t)(dim + 63) / 64 * 32; }

void gallery_pack_int4(const int8_t *code, int dim, uint8_t *out) {
    size_t bytes = gallery_code_bytes(dim);
    for (size_t b = 0; b < bytes; b++) {
        size_t block = b / 32, j = b % 32, lo = block * 64 + j, hi = lo + 32;
        int l = lo < (size_t)dim ? code[lo] : 0, h = hi < (size_t)dim ? code[hi] : 0;
        out[b] = (uint8_t)((l + 8) | (h + 8) << 4);
    }
}

static int32_t dot_scalar(const uint8_t *codes, const int8_t *q, size_t bytes) {
    int32_t s = 0;
    for (size_t b = 0; b < bytes; b++) {
        size_t block = b / 32, j = b % 32;
        s += (int32_t)(codes[b] & 15) * q[block * 64 + j] + (int32_t)(codes[b] >> 4) * q[block * 64 + 32 + j];
    }
    return s;
}

/* AVX2, 64 dimensions per step: the two nibble planes times the query's two
 * halves with maddubs (unsigned nibble <= 15 times signed query: pair sums stay
 * far below the int16 limit), widened to int32 by madd. */
__attribute__((target("avx2"))) static int32_t dot_avx2(const uint8_t *codes, const int8_t *q, size_t bytes) {
    __m256i acc = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1), nibble = _mm256_set1_epi8(15);
    for (size_t b = 0; b < bytes; b += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(codes + b));
        __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
        __m256i ql = _mm256_loadu_si256((const __m256i *)(q + 2 * b)), qh = _mm256_loadu_si256((const __m256i *)(q + 2 * b + 32));
        __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ql), _mm256_maddubs_epi16(hi, qh));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* AVX-512 VNNI, 128 dimensions per step: dpbusd multiplies 64 unsigned nibbles by
 * 64 signed query values and sums them into int32 lanes in one instruction. The
 * query is pre-arranged (arrange_query) so that each 64-byte load of codes meets
 * its low- and high-nibble partners contiguously. Needs bytes % 64 == 0. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int32_t dot_vnni(const uint8_t *codes, const int8_t *q,
                                                                               size_t bytes) {
    __m512i acc = _mm512_setzero_si512(), nibble = _mm512_set1_epi8(15);
    for (size_t b = 0; b < bytes; b += 64) {
        __m512i v = _mm512_loadu_si512(codes + b);
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(v, nibble), _mm512_loadu_si512(q + 2 * b));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble), _mm512_loadu_si512(q + 2 * b + 64));
    }
    return _mm512_reduce_add_epi32(acc);
}

typedef int32_t (*dot_fn)(const uint8_t *, const int8_t *, size_t);

typedef struct {
    dot_fn dot;
    bool arranged; /* dot wants the query as arrange_query makes it */
} kernel;

/* The kernel asked for, or the fastest this CPU has (BEST); dot NULL when the CPU
 * lacks it. */
static kernel pick_kernel(gallery_kernel want, int dim) {
    bool vnni = gallery_code_bytes(dim) % 64 == 0 && __builtin_cpu_supports("avx512vnni") &&
                __builtin_cpu_supports("avx512bw");
    bool avx2 = __builtin_cpu_supports("avx2");
    if (want == GALLERY_KERNEL_BEST) want = vnni ? GALLERY_KERNEL_VNNI : avx2 ? GALLERY_KERNEL_AVX2 : GALLERY_KERNEL_SCALAR;
    switch (want) {
    case GALLERY_KERNEL_VNNI: return (kernel){vnni ? dot_vnni : NULL, true};
    case GALLERY_KERNEL_AVX2: return (kernel){avx2 ? dot_avx2 : NULL, false};
    default: return (kernel){dot_scalar, false};
    }
}

/* For dot_vnni: per 128 dimensions, the query values of the low nibbles of 64 code
 * bytes (dims 0-31 and 64-95), then of their high nibbles (32-63 and 96-127). */
static void arrange_query(const int8_t *q, size_t bytes, int8_t *out) {
    for (size_t c = 0; c < bytes / 64; c++) {
        const int8_t *src = q + 128 * c;
        int8_t *dst = out + 128 * c;
        memcpy(dst, src, 32), memcpy(dst + 32, src + 64, 32);
        memcpy(dst + 64, src + 32, 32), memcpy(dst + 96, src + 96, 32);
    }
}

bool gallery_dot_int4(gallery_kernel which, const uint8_t *codes, const int8_t *query, int dim, int32_t *dot) {
    int32_t sum_q = 0;
    for (int i = 0; i < dim; i++) sum_q += query[i];
    kernel k = pick_kernel(which, dim);
    if (!k.dot) return false;
    size_t bytes = gallery_code_bytes(dim);
    int8_t arranged[FACE_EMBEDDING_MAX + 128];
    if (k.arranged) arrange_query(query, bytes, arranged);
    *dot = k.dot(codes, k.arranged ? arranged : query, bytes) - 8 * sum_q; /* nibbles hold code + 8 */
    return true;
}

static bool grow(gallery_index *gi) {
    size_t cap = gi->cap ? gi->cap + gi->cap / 2 : 1024;
    uint8_t *codes = realloc(gi->codes, cap * gallery_code_bytes(gi->dim));
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
        int8_t code[FACE_EMBEDDING_MAX];
        gi->scales[i] = quantize(embedding, dim, 7, code);
        gallery_pack_int4(code, dim, gi->codes + i * gallery_code_bytes(dim));
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
        size_t bytes = gallery_code_bytes(gi->dim);
        memcpy(gi->codes + i * bytes, gi->codes + last * bytes, bytes);
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
    const int8_t *query; /* zero-padded to the codes' blocks, arranged for the kernel */
    int32_t query_sum;    /* removes the +8 offset of the nibbles */
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
    dot_fn dot = pick_kernel(GALLERY_KERNEL_BEST, gi->dim).dot;
    size_t bytes = gallery_code_bytes(gi->dim);
    for (size_t i = j->begin; i < j->end; i++) {
        int32_t d = dot(gi->codes + i * bytes, j->query, bytes) - 8 * j->query_sum;
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
    int8_t qcode[FACE_EMBEDDING_MAX + 128] = {0}, arranged[FACE_EMBEDDING_MAX + 128] = {0};
    float qscale = quantize(query, dim, 127, qcode);
    int32_t qsum = 0;
    for (int i = 0; i < dim; i++) qsum += qcode[i];
    if (pick_kernel(GALLERY_KERNEL_BEST, dim).arranged) {
        arrange_query(qcode, gallery_code_bytes(dim), arranged);
        memcpy(qcode, arranged, sizeof qcode);
    }
    scan_job jobs[SCAN_THREADS_MAX];
    size_t *slots = malloc((size_t)threads * k * sizeof(size_t));
    float *sims = malloc((size_t)threads * k * sizeof(float));
    slot_sim *all = malloc((size_t)threads * k * sizeof(slot_sim));
    if (!slots || !sims || !all) rc = GALLERY_INDEX_NOMEM;
    for (int t = 0; !rc && t < threads; t++)
        jobs[t] = (scan_job){gi, qcode, qsum, qscale, n * (size_t)t / (size_t)threads, n * (size_t)(t + 1) / (size_t)threads,
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
