/*
 * nn.h - small neural-network inference runtime.
 *
 * Loads an ONNX model (opset 9), a TF.js graph model (model.json + weight
 * shards beside it), a TensorFlow Lite model (.tflite) or a face-api weights
 * manifest into one immutable graph, and runs it with XNNPACK for the heavy
 * operators (convolution, fully connected, pooling) and plain C for the cheap
 * glue. It knows nothing about faces.
 *
 * Threading: an nn_model is immutable after load and may be shared read-only
 * by any number of threads. Each thread creates its own nn_session (operators
 * plus workspace); a session runs single-threaded and nn_run() does no heap
 * allocation. Sessions of one model share its packed weights (one copy per
 * process, see shared_weights.c), and sessions that one thread runs in turn may
 * share one activation arena (nn_session_create_in).
 *
 * Layouts: inputs and outputs use the model's native layout, NCHW for ONNX and
 * NHWC for TF.js and TFLite models.
 *
 * Precision: fp32 unless the caller asks for int8 (nn_model_use_int8): then the
 * convolutions with groups == 1 run on oneDNN's int8 kernels (quantize.c).
 */
#ifndef BIO_NN_H
#define BIO_NN_H

#include <stddef.h>

typedef struct nn_model nn_model;       /* immutable weights+graph, shared read-only by threads */
typedef struct nn_session nn_session;   /* per-thread operators + workspace */
typedef struct { int rank; int dims[6]; } nn_shape;

/* Error codes returned by nn_run() (negative). */
enum {
    NN_OK = 0,
    NN_ERR_ARG = -1,      /* NULL session or similar misuse */
    NN_ERR_KERNEL = -2,   /* an XNNPACK operator failed */
};

/* .onnx, .tflite, TF.js model.json (weights shards beside it) or a face-api
 * NAME-weights_manifest.json (faceapi_load.c); NULL + message naming
 * the op/tensor on failure. err may be NULL. */
nn_model *nn_model_load(const char *path, char *err, size_t err_len);
/* The same with the batch of a .tflite model set to batch (> 0) in place of the
 * fixed one in the file (its first input's first dimension), e.g. 1 to run a model
 * exported with batch 2 one image at a time, in half the activation memory; a
 * model whose other shapes depend on it fails to load. NULL for other formats. */
nn_model *nn_model_load_batch(const char *path, int batch, char *err, size_t err_len);
void nn_model_free(nn_model *model);

/* Runs the model's dense convolutions in int8 from now on (quantize.c: per-channel
 * weights, a per-run activation scale), for the sessions created after this call:
 * call it before the first session. Returns how many convolutions it converted (0
 * when none qualifies), or -1 with a message when out of memory; the model stays
 * usable in fp32 on failure. */
int nn_model_use_int8(nn_model *m, char *err, size_t err_len);

int nn_model_input_count(const nn_model *m);
int nn_model_output_count(const nn_model *m);
int nn_model_output_index(const nn_model *m, const char *name); /* -1 if unknown */
nn_shape nn_model_input_shape(const nn_model *m, int index);
nn_shape nn_model_output_shape(const nn_model *m, int index);

nn_session *nn_session_create(const nn_model *m, char *err, size_t err_len);
void nn_session_free(nn_session *s);

/* Bytes of activation memory (inputs, intermediates, outputs) a session uses. */
size_t nn_model_arena_bytes(const nn_model *m);
/* Like nn_session_create, but the activations live in `arena`, which the caller
 * owns: 64-byte aligned, at least nn_model_arena_bytes(m) bytes, zeroed, and
 * outliving the session. Sessions that one thread runs one after another may
 * share one arena (sized for the largest): then writing one session's input or
 * running it overwrites the other sessions' inputs and outputs. */
nn_session *nn_session_create_in(const nn_model *m, void *arena, char *err, size_t err_len);
/* A zeroed arena for nn_session_create_in, big enough for any of the n models
 * (NULL entries are skipped); the caller free()s it after its sessions. NULL when
 * out of memory. */
void *nn_arena_for(const nn_model *const *models, int n);

/* Caller writes input here, in the model's native layout. */
float *nn_session_input(nn_session *s, int index);
/* The same input in NHWC, where the graph's first node (the transpose an NCHW model
 * input gets, onnx_load.c) puts it; NULL when the graph does not start that way.
 * After a non-NULL return, nn_run skips that transpose for good, so the caller
 * writes this input here, never at nn_session_input. Saves the transpose: 86 us a
 * run for fr_detect's 320x240 input. */
float *nn_session_input_nhwc(nn_session *s, int index);
/* 0 on success, negative NN_ERR_* on error; no heap allocation in steady state. */
int nn_run(nn_session *s);
/* Output of the last nn_run(), in the model's native layout. */
const float *nn_session_output(const nn_session *s, int index);

#endif /* BIO_NN_H */
