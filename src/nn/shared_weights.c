/*
 * shared_weights.c - one copy of every operator's packed weights per process.
 *
 * Debian 12's XNNPACK (git 2022-02-16) has no weights cache: each operator packs
 * its own copy of the weights when it is created, so N workers held N copies of
 * every model (51 MB per worker with all models, `make bench-memory`). XNNPACK
 * takes all its memory (operator descriptor, packed weights, zero padding, lookup
 * tables, indirection buffers) from the allocator given to xnn_initialize, so we
 * give it one whose blocks carry a reference count and which can record the
 * blocks a create or setup call allocated on this thread.
 *
 * A session creates its operators as before. For each slot (a node's create call,
 * or its setup call, see nn.c), the blocks of the model's first operator are kept
 * by the model (nn_packed_cache). A later operator's block that is byte-for-byte
 * equal to the first operator's block of the same rank is swapped for it: every
 * pointer into the copy inside the operator descriptor is rebased onto the shared
 * block, and the copy is released. XNNPACK writes these blocks only in the call
 * that allocated them; a later reallocation of a shared block (an indirection
 * buffer rebuilt for new input dimensions) gets a fresh copy and leaves the shared
 * one alone, so sharing them read-only between threads is safe. A block that
 * differs, or that the descriptor does not point to, stays private: sharing can
 * save memory but never change a result.
 */
#include "nn/nn_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xnnpack.h>

#define BLOCK_MAGIC 0x6e6e626bu /* "nnbk": catches a block that is not ours */

/* Blocks from this size up are mapped, not malloc'ed: every session packs a copy
 * before it is swapped for the shared block, and a freed copy in a worker thread's
 * malloc arena stays resident (19 MB per worker instead of 9, make bench-memory). */
#define MAP_MIN_BYTES (64 * 1024)

/* Lives just before the address handed to XNNPACK. */
typedef struct {
    void *base;        /* what posix_memalign or mmap returned */
    size_t mapped;     /* bytes mapped at base, 0 when malloc'ed */
    size_t size;       /* bytes XNNPACK asked for */
    atomic_int refs;
    uint32_t magic;
} block_header;

struct nn_packed_cache {
    pthread_mutex_t lock;
    const void *canonical; /* the arena address operators are first set up at */
    int n_slots;
    struct packed_slot {
        bool filled;
        int n;
        void *block[NN_CAPTURE_MAX];
    } *slots;
};

static _Thread_local nn_alloc_capture *capturing;

static block_header *header_of(void *p)
{
    block_header *h = (block_header *)((char *)p - sizeof(block_header));
    assert(h->magic == BLOCK_MAGIC);
    return h;
}

static void *block_alloc(void *ctx, size_t alignment, size_t size)
{
    (void)ctx;
    if (alignment < _Alignof(block_header)) alignment = _Alignof(block_header);
    size_t head = (sizeof(block_header) + alignment - 1) / alignment * alignment;
    if (size > SIZE_MAX / 2 - head) return NULL;
    void *base = NULL;
    size_t mapped = 0;
    if (size >= MAP_MIN_BYTES && alignment <= 4096) {
        mapped = head + size;
        base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return NULL;
    } else if (posix_memalign(&base, alignment, head + size) != 0) {
        return NULL;
    }
    void *p = (char *)base + head;
    block_header *h = (block_header *)((char *)p - sizeof(block_header));
    h->base = base;
    h->mapped = mapped;
    h->size = size;
    atomic_init(&h->refs, 1);
    h->magic = BLOCK_MAGIC;
    nn_alloc_capture *c = capturing;
    if (c && c->n < NN_CAPTURE_MAX) c->block[c->n++] = p;
    return p;
}

static void block_retain(void *p) { atomic_fetch_add(&header_of(p)->refs, 1); }

static void block_release(void *ctx, void *p)
{
    (void)ctx;
    if (!p) return;
    block_header *h = header_of(p);
    if (atomic_fetch_sub(&h->refs, 1) == 1) {
        h->magic = 0;
        if (h->mapped) munmap(h->base, h->mapped);
        else free(h->base);
    }
}

/* Plain memory is a block too (malloc's alignment), so indirection buffers can be
 * shared like weights. */
static void *plain_alloc(void *ctx, size_t size) { return block_alloc(ctx, 16, size); }

/* Never in place: the old block may be shared; this caller gets its own copy. */
static void *plain_realloc(void *ctx, void *p, size_t size)
{
    void *q = block_alloc(ctx, 16, size);
    if (!q || !p) return q;
    size_t old = header_of(p)->size;
    memcpy(q, p, old < size ? old : size);
    block_release(ctx, p);
    return q;
}

static const struct xnn_allocator allocator = {
    .context = NULL,
    .allocate = plain_alloc,
    .reallocate = plain_realloc,
    .deallocate = block_release,
    .aligned_allocate = block_alloc,
    .aligned_deallocate = block_release,
};

const struct xnn_allocator *nn_xnn_allocator(void) { return &allocator; }

void nn_capture_begin(nn_alloc_capture *c)
{
    c->n = 0;
    capturing = c;
}

void nn_capture_end(void) { capturing = NULL; }

/* ---- the per-model cache ------------------------------------------------------ */

nn_packed_cache *nn_packed_cache_create(int n_slots)
{
    nn_packed_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->slots = calloc((size_t)n_slots + 1, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->n_slots = n_slots;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void nn_packed_cache_free(nn_packed_cache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_slots; i++)
        for (int k = 0; k < c->slots[i].n; k++) block_release(NULL, c->slots[i].block[k]);
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c);
}

/* Points every word of the descriptor that points into `from` at the same offset
 * of `to`; returns how many it changed. */
static int rebase_pointers(void *descriptor, const void *from, const void *to, size_t len)
{
    size_t words = header_of(descriptor)->size / sizeof(uintptr_t);
    uintptr_t lo = (uintptr_t)from, hi = lo + len;
    int changed = 0;
    for (size_t i = 0; i < words; i++) {
        uintptr_t v;
        memcpy(&v, (char *)descriptor + i * sizeof v, sizeof v);
        if (v < lo || v >= hi) continue;
        v = v - lo + (uintptr_t)to;
        memcpy((char *)descriptor + i * sizeof v, &v, sizeof v);
        changed++;
    }
    return changed;
}

const void *nn_packed_cache_canonical(nn_packed_cache *c, const void *arena)
{
    pthread_mutex_lock(&c->lock);
    if (!c->canonical) c->canonical = arena;
    const void *canonical = c->canonical;
    pthread_mutex_unlock(&c->lock);
    return canonical;
}

size_t nn_packed_cache_adopt(nn_packed_cache *c, int slot, xnn_operator_t op, const nn_alloc_capture *cap)
{
    if (!c || !op || slot < 0 || slot >= c->n_slots) return 0;
    size_t saved = 0;
    pthread_mutex_lock(&c->lock);
    struct packed_slot *pn = &c->slots[slot];
    int k = 0;
    for (int i = 0; i < cap->n; i++) {
        void *b = cap->block[i];
        if (b == (void *)op) continue; /* the descriptor itself is per operator */
        if (!pn->filled) {             /* first operator for this slot: the model keeps its blocks */
            block_retain(b);
            pn->block[pn->n++] = b;
            continue;
        }
        if (k >= pn->n) break;
        void *shared = pn->block[k++];
        size_t len = header_of(b)->size;
        if (len != header_of(shared)->size || memcmp(b, shared, len) != 0) continue;
        if (rebase_pointers(op, b, shared, len) == 0) continue;
        block_retain(shared);
        block_release(NULL, b);
        saved += len;
    }
    pn->filled = true;
    pthread_mutex_unlock(&c->lock);
    return saved;
}
