/*
 * graph.h - the runtime's internal graph: one representation that both the
 * ONNX and the TF.js loaders build, and that the executor runs.
 *
 * Every shape here is PHYSICAL: the loaders translate their source layout
 * (ONNX is NCHW, TF.js NHWC) while building, so convolution and pooling nodes
 * always see NHWC data and glue nodes work on plain row-major arrays. Shapes
 * are fixed at load; nodes whose inputs are all constant are evaluated at
 * build time (shape arithmetic disappears that way).
 */
#ifndef BIO_NN_GRAPH_H
#define BIO_NN_GRAPH_H

#include <stddef.h>
#include <stdint.h>
#include "nn/nn.h"

#define NN_MAX_RANK 6
/* Largest tensor a model may declare or produce, in elements (1 GiB of floats):
 * far above any model here, and small enough that every size computation on a
 * valid shape fits in an int and a size_t without overflow. */
#define NN_MAX_ELEMENTS ((size_t)1 << 28)

typedef enum {
    NN_OP_CONV,       /* NHWC convolution (grouped / depthwise), XNNPACK */
    NN_OP_FC,         /* [N,K] x W[M][K] + b -> [N,M], XNNPACK */
    NN_OP_MAXPOOL,    /* NHWC, XNNPACK */
    NN_OP_AVGPOOL,    /* NHWC, XNNPACK */
    NN_OP_GAP,        /* NHWC global average pool -> [N,1,1,C], XNNPACK */
    NN_OP_UNARY,      /* element-wise f(x) */
    NN_OP_PRELU,      /* x<0 ? x*slope[c] : x, slope over the last axis */
    NN_OP_BINARY,     /* element-wise with numpy broadcasting */
    NN_OP_TRANSPOSE,
    NN_OP_RESHAPE,    /* no data movement: output aliases the input buffer */
    NN_OP_CONCAT,
    NN_OP_SLICE,
    NN_OP_SOFTMAX,    /* over the trailing block starting at axis */
    NN_OP_GATHER,
    NN_OP_PAD,        /* constant padding */
    NN_OP_REDUCE,     /* sum / mean / max over a set of axes */
} nn_op;

typedef enum {
    NN_UN_RELU, NN_UN_CLAMP, NN_UN_SIGMOID, NN_UN_TANH, NN_UN_EXP, NN_UN_ABS,
    NN_UN_NEG, NN_UN_SQUARE, NN_UN_SQRT, NN_UN_RSQRT, NN_UN_COPY,
} nn_unary_kind;

/* GE and LT give 1.0 or 0.0 (TFLite's comparisons, whose booleans the graph keeps as floats). */
typedef enum { NN_BIN_ADD, NN_BIN_SUB, NN_BIN_MUL, NN_BIN_DIV, NN_BIN_MAX, NN_BIN_MIN, NN_BIN_GE, NN_BIN_LT } nn_binary_kind;
typedef enum { NN_RED_SUM, NN_RED_MEAN, NN_RED_MAX } nn_reduce_kind;

typedef struct {
    int kh, kw, sh, sw, dh, dw;
    int pad_top, pad_left, pad_bottom, pad_right;
    int groups, cin, cout;        /* cin, cout are totals */
    float *weights;               /* XNNPACK layout [cout][kh][kw][cin/groups], owned */
    float *bias;                  /* [cout], owned */
    float out_min, out_max;       /* fused activation */
} nn_conv_params;

typedef struct {
    int k, m;
    float *weights;               /* [m][k], owned */
    float *bias;                  /* [m], owned */
    float out_min, out_max;
} nn_fc_params;

typedef struct nn_node {
    nn_op op;
    char *source_op;              /* op name in the source model, for messages */
    int *in;                      /* tensor ids */
    int n_in;
    int out;                      /* tensor id */
    nn_conv_params conv;          /* also pooling geometry (kh..pad_right) */
    nn_fc_params fc;
    int kind;                     /* nn_unary_kind / nn_binary_kind / nn_reduce_kind */
    float fmin, fmax;             /* clamp bounds, pad value */
    int axis;                     /* concat, softmax, gather */
    int perm[NN_MAX_RANK];        /* transpose */
    int starts[NN_MAX_RANK], steps[NN_MAX_RANK];  /* slice */
    int pads[2 * NN_MAX_RANK];    /* pad: before[rank] then after[rank] */
    int axes_mask;                /* reduce */
} nn_node;

typedef struct {
    char *name;
    nn_shape shape;
    float *data;        /* constant value, owned by the graph; NULL for activations */
    int alias;          /* tensor whose buffer this one reuses (reshape), or -1 */
    int producer;       /* node index, -1 for inputs and constants */
    int consumers;      /* number of node inputs (plus outputs) reading it */
} nn_tensor;

typedef struct nn_graph {
    nn_tensor *tensors;
    int n_tensors, cap_tensors;
    nn_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs, n_inputs;
    int *outputs, n_outputs;
    char **output_names;          /* public names of outputs (may differ from tensor names) */
    int nchw;                     /* 1 for ONNX: public tensors are NCHW */
    char *err;                    /* error buffer of the current load */
    size_t err_len;
    int failed;
} nn_graph;

/* Size in elements. */
size_t nn_shape_size(const nn_shape *s);
/* 1 when the rank is 0..NN_MAX_RANK, no dimension is negative and the size is at
 * most NN_MAX_ELEMENTS (checked without overflow); 0 otherwise. */
int nn_shape_ok(const nn_shape *s);
/* A float from the model (an axis, index, dimension...) as an int: 0, or -1 when
 * it is NaN, not a whole number or outside [lo, hi]. Converting such a float with
 * a cast would be undefined behaviour. */
int nn_float_to_int(float f, int lo, int hi, int *out);
nn_shape nn_shape_make(int rank, const int *dims);
/* An IEEE half-precision value (float16 weights of TF.js and TFLite models). */
float nn_half_to_float(uint16_t h);
/* TensorFlow's "SAME" padding along one axis (k, s, d >= 1): 0, or -1 when it
 * does not fit in an int. */
int nn_same_pads(int in_size, int k, int s, int d, int *before, int *after);

void nn_graph_init(nn_graph *g, char *err, size_t err_len);
void nn_graph_free(nn_graph *g);
/* printf-style error; returns -1 so callers can `return nn_fail(...)`. */
int nn_fail(nn_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int nn_tensor_add(nn_graph *g, const char *name, nn_shape shape, float *data_owned);
int nn_const_add(nn_graph *g, const char *name, nn_shape shape, const float *data);
static inline const nn_tensor *nn_t(const nn_graph *g, int id) { return &g->tensors[id]; }

/*
 * Node builders. Each checks shapes, computes the output shape, constant-folds
 * when every input is constant, and returns the output tensor id (< 0 on error,
 * with g->err naming the source op and tensor).
 */
int nn_add_conv(nn_graph *g, const char *src, const char *out_name, int x, const nn_conv_params *p);
int nn_add_fc(nn_graph *g, const char *src, const char *out_name, int x, const nn_fc_params *p);
/* Fills p with weights [m][k] (= alpha * w, transposed from w[k][m] unless
 * transposed) and a zero bias, no clamp: the shared part of Gemm and MatMul. */
int nn_fc_from_matrix(nn_graph *g, const float *w, const nn_shape *ws, int transposed, float alpha,
                      nn_fc_params *p);
int nn_add_pool(nn_graph *g, const char *src, const char *out_name, nn_op op, int x, const nn_conv_params *geom);
int nn_add_gap(nn_graph *g, const char *src, const char *out_name, int x);
int nn_add_unary(nn_graph *g, const char *src, const char *out_name, int x, nn_unary_kind k, float lo, float hi);
int nn_add_prelu(nn_graph *g, const char *src, const char *out_name, int x, int slope);
int nn_add_binary(nn_graph *g, const char *src, const char *out_name, nn_binary_kind k, int a, int b);
int nn_add_transpose(nn_graph *g, const char *src, const char *out_name, int x, const int *perm);
int nn_add_reshape(nn_graph *g, const char *src, const char *out_name, int x, nn_shape to);
int nn_add_concat(nn_graph *g, const char *src, const char *out_name, const int *xs, int n, int axis);
int nn_add_slice(nn_graph *g, const char *src, const char *out_name, int x, const int *starts, const int *ends, const int *steps);
int nn_add_softmax(nn_graph *g, const char *src, const char *out_name, int x, int axis);
int nn_add_gather(nn_graph *g, const char *src, const char *out_name, int x, int indices, int axis);
int nn_add_pad(nn_graph *g, const char *src, const char *out_name, int x, const int *before, const int *after, float value);
int nn_add_reduce(nn_graph *g, const char *src, const char *out_name, int x, nn_reduce_kind k, int axes_mask, int keepdims);

/* Declares a fixed-shape input (a new activation tensor); returns its id. */
int nn_graph_add_input(nn_graph *g, const char *name, nn_shape shape);
/* Makes tensor id an output published as public_name. */
int nn_graph_add_output(nn_graph *g, const char *public_name, int id);
/* The tensor named name, -1 if none. */
int nn_tensor_find(const nn_graph *g, const char *name);

/* Fills p's channels, groups, weights (XNNPACK layout) and a zero bias from a TF
 * filter f of shape [kh, kw, cin, cout] (HWIO; a depthwise filter's cout is its
 * channel multiplier), no clamp. Geometry (strides, pads) is left to the caller. */
int nn_conv_from_hwio(nn_graph *g, const float *f, const nn_shape *fs, int depthwise, nn_conv_params *p);

/* After loading: fuse activations / bias / scale into convs, drop dead nodes. */
int nn_graph_finish(nn_graph *g);

/* Runs one glue node (everything except the XNNPACK ops) on plain arrays. */
void nn_glue_run(const nn_graph *g, const nn_node *n, const float *const *in, float *out);

/* Multiply-accumulates of one run, for the benchmark's GFLOP/s. */
double nn_graph_macs(const nn_graph *g);

/* Loaders (fill g; return 0 or -1 with g->err set). */
int nn_onnx_load(nn_graph *g, const char *path);
int nn_tfjs_load(nn_graph *g, const char *path);
/* batch > 0 replaces the model's fixed batch (the first input's first dimension) in
 * its input and activations; 0 keeps the file's. */
int nn_tflite_load(nn_graph *g, const char *path, int batch);
/* A weights-only TF.js manifest (a JSON array of {paths, weights}, shards beside
 * it): every weight becomes a constant tensor of its manifest name, float16 and
 * quantised weights expanded to float32. */
int nn_tfjs_weights_load(nn_graph *g, const char *manifest_path);
/* @vladmandic/face-api's `*-weights_manifest.json` models: the layer graph is
 * built in code from the weight names (faceapi_load.c). */
int nn_faceapi_load(nn_graph *g, const char *path);

/* Puts "prefix: " before the load error unless it already starts with it; the
 * loaders use it so every message names the model file (and the node). */
void nn_fail_prefix(nn_graph *g, const char *prefix);

/* Reads a whole file; NULL + error on failure. */
unsigned char *nn_read_file(nn_graph *g, const char *path, size_t *len);

#endif /* BIO_NN_GRAPH_H */
