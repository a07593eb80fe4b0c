/*
 * nn_internal.h - what the runtime's own files, tools and tests may see beyond
 * the public API: the model struct, the shared packed weights (shared_weights.c)
 * and a few statistics for the benchmark.
 */
#ifndef BIO_NN_INTERNAL_H
#define BIO_NN_INTERNAL_H

#include <xnnpack.h>

#include "nn/graph.h"

typedef struct nn_packed_cache nn_packed_cache;

struct nn_model {
    nn_graph g;
    nn_packed_cache *packed; /* per node: the blocks every session shares */
    size_t *arena_offset;    /* per tensor: its offset in a session's arena, SIZE_MAX if none */
    size_t arena_bytes;
};

/* ---- shared packed weights (shared_weights.c) ---- */

/* The allocator nn.c hands to xnn_initialize: reference-counted blocks. */
const struct xnn_allocator *nn_xnn_allocator(void);

/* The blocks XNNPACK allocated on this thread between begin and end. A create
 * call allocates a descriptor and a few constant blocks, a setup call at most an
 * indirection buffer. */
#define NN_CAPTURE_MAX 8
typedef struct {
    int n;
    void *block[NN_CAPTURE_MAX];
} nn_alloc_capture;
void nn_capture_begin(nn_alloc_capture *c);
void nn_capture_end(void);

/* A cache of n_slots slots (nn.c: two per node, its create and its setup call).
 * NULL when out of memory. Freeing drops the model's references; blocks still used
 * by live sessions stay until those sessions are freed. */
nn_packed_cache *nn_packed_cache_create(int n_slots);
void nn_packed_cache_free(nn_packed_cache *c);
/* The first arena address ever passed: every session sets its operators up at
 * this address first, so that their indirection buffers are equal and shared. */
const void *nn_packed_cache_canonical(nn_packed_cache *c, const void *arena);
/* After a create or setup call of op under capture `cap`: the first operator of a
 * slot gives its blocks to the cache; a later one swaps each block equal to the
 * cached one for it. Thread-safe. Returns the bytes freed. */
size_t nn_packed_cache_adopt(nn_packed_cache *c, int slot, xnn_operator_t op, const nn_alloc_capture *cap);

/* Bytes of packed weights the session shares with the model's other sessions
 * instead of holding its own copy (0 for the first session). */
size_t nn_session_shared_bytes(const nn_session *s);
/* Bytes of weights and constants the model keeps. */
size_t nn_model_weight_bytes(const nn_model *m);
/* Multiply-accumulates of one nn_run. */
double nn_model_macs(const nn_model *m);

#endif /* BIO_NN_INTERNAL_H */
