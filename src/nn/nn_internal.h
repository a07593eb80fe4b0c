/*
 * nn_internal.h - what the runtime's own tools and tests may see beyond the
 * public API: the model struct and a few statistics for the benchmark.
 */
#ifndef BIO_NN_INTERNAL_H
#define BIO_NN_INTERNAL_H

#include "nn/graph.h"

struct nn_model {
    nn_graph g;
};

/* Bytes of weights and constants the model keeps. */
size_t nn_model_weight_bytes(const nn_model *m);
/* Multiply-accumulates of one nn_run. */
double nn_model_macs(const nn_model *m);

#endif /* BIO_NN_INTERNAL_H */
