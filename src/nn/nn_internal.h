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
typedef struct nn_int8_conv nn_int8_conv;
typedef struct nn_int8_step nn_int8_step;
typedef struct nn_depthwise nn_depthwise;

struct nn_model {
    nn_graph g;
    nn_packed_cache *packed; /* per node: the blocks every session shares */
    size_t *arena_offset;    /* per tensor: its offset in a session's arena, SIZE_MAX if none */
    size_t arena_bytes;
    nn_int8_conv **int8;     /* per node: its int8 convolution, NULL = fp32 (nn_model_use_int8) */
    size_t int8_in_bytes;    /* largest quantized input of those convolutions */
    size_t int8_scratch_bytes; /* largest oneDNN scratchpad */
    nn_depthwise **dw;       /* per node: a depthwise convolution depthwise.c runs, or NULL */
};

/* ---- depthwise convolutions (depthwise.c) ---- */

/* 1 when depthwise.c runs node n on this CPU (its fp32 weights still at hand). */
int nn_depthwise_supported(const nn_node *n);
/* Its weights in depthwise.c's layout (the model keeps them, sessions share them);
 * NULL when out of memory. */
nn_depthwise *nn_depthwise_create(const nn_graph *g, const nn_node *n);
void nn_depthwise_free(nn_depthwise *k);
/* range, when not NULL, gets the output's [min, max] with 0 (an int8 step's input range). */
void nn_depthwise_run(const nn_graph *g, const nn_node *n, const nn_depthwise *k, const float *x, float *y,
                      float *range);
/* What the runtime does on its own beyond XNNPACK and oneDNN, each on by default;
 * tests and benchmarks turn one off to compare (models loaded, or sessions created,
 * from then on): depthwise convolutions on depthwise.c, int8 steps taking their
 * input's range from the depthwise or int8 step that wrote it instead of measuring
 * it, and element-wise ops writing over an input nothing else reads (the same
 * values in every case). */
typedef struct {
    int own_depthwise, shared_ranges, in_place;
} nn_tuning_t;
extern nn_tuning_t nn_tuning;

/* ---- int8 convolutions (quantize.c) ---- */

/* Node n (a convolution with groups == 1) in int8, its weights quantized and packed
 * once; NULL when the node does not qualify or oneDNN has no fast kernel for it. */
nn_int8_conv *nn_int8_conv_create(const nn_graph *g, const nn_node *n);
void nn_int8_conv_free(nn_int8_conv *ic);
size_t nn_int8_conv_input_bytes(const nn_int8_conv *ic);   /* its quantized input */
size_t nn_int8_conv_scratch_bytes(const nn_int8_conv *ic); /* oneDNN's scratchpad */
size_t nn_int8_conv_weight_bytes(const nn_int8_conv *ic);  /* packed int8 weights */
/* One session's use of ic: fp32 `in` and `out` in its arena, `qin` and `scratch`
 * buffers of the sizes above (64-byte aligned), all outliving the step. */
nn_int8_step *nn_int8_step_create(const nn_int8_conv *ic, const float *in, float *out, void *qin, void *scratch);
void nn_int8_step_free(nn_int8_step *st);
/* Saves the pass measuring an input's range: in_range (when not NULL) is where the
 * producer of st's input leaves it every run, before st runs; out_range (when not
 * NULL) is where st leaves its output's, for an int8 step reading it. -1 when st
 * cannot measure its output (no AVX-512). */
int nn_int8_step_link_ranges(nn_int8_step *st, const float *in_range, float *out_range);
/* 0, or -1 when oneDNN failed. */
int nn_int8_step_run(nn_int8_step *st);

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
