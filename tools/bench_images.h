/* bench_images.h - runs face_analyze over a list of image files on a few threads,
 * for the benchmark tools (header-only: each tool is one .c file). Each thread owns
 * a face_worker; results go to a caller-supplied callback, called under no lock but
 * for one image at a time per thread, with the image's index.
 *
 *   bench_image_list l = {0};
 *   bench_images_add(&l, path);                           ... every image
 *   bench_images_run(&l, engine, &opt, threads, on_result, ctx);
 *   bench_images_free(&l);
 *
 * A file that cannot be read or decoded reaches the callback with rc != FACE_OK. */
#ifndef BENCH_IMAGES_H
#define BENCH_IMAGES_H
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/util.h"
#include "face/pipeline.h"

#define BENCH_IMAGE_MAX_BYTES ((size_t)1 << 28)

typedef struct {
    char **paths;
    int n, cap;
} bench_image_list;

/* rc is face_analyze's return; seconds the CPU time face_analyze took on its thread
 * (decode included): unlike wall time it does not grow when other processes share
 * the cores. */
typedef void (*bench_image_fn)(void *ctx, int index, int rc, const face_result *r, double seconds);

typedef struct {
    const bench_image_list *list;
    const face_engine *engine;
    const face_options *opt;
    bench_image_fn fn;
    void *ctx;
    int next;
    pthread_mutex_t lock;
} bench_images_job;

/* The engine of a benchmark run as `tool [DATA_DIR [MODELS_DIR]]` (defaults
 * ../shared/data and models); *data_dir gets the data folder. Exits when the models
 * do not load. */
static inline face_engine *bench_engine_from_args(int argc, char **argv, const char **data_dir)
{
    char err[512];
    *data_dir = argc > 1 ? argv[1] : "../shared/data";
    face_engine *e = face_engine_load(argc > 2 ? argv[2] : "models", err, sizeof err);
    if (!e) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return e;
}

static inline void bench_images_add(bench_image_list *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->paths = realloc(l->paths, (size_t)l->cap * sizeof *l->paths);
        if (!l->paths) abort();
    }
    l->paths[l->n] = strdup(path);
    if (!l->paths[l->n++]) abort();
}

static inline void bench_images_free(bench_image_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

static inline void *bench_images_thread(void *arg)
{
    bench_images_job *job = arg;
    char err[256];
    face_worker *w = face_worker_create(job->engine, err, sizeof err);
    face_result *r = malloc(sizeof *r);
    if (!w || !r) {
        fprintf(stderr, "worker: %s\n", w ? "out of memory" : err);
        exit(1);
    }
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int i = job->next++;
        pthread_mutex_unlock(&job->lock);
        if (i >= job->list->n) break;
        size_t len = 0;
        uint8_t *data = file_read_all(job->list->paths[i], BENCH_IMAGE_MAX_BYTES, &len);
        double t0 = time_thread_cpu_s();
        int rc = data ? face_analyze(w, data, len, job->opt, r, err, sizeof err) : FACE_ERR_IMAGE;
        double dt = time_thread_cpu_s() - t0;
        free(data);
        job->fn(job->ctx, i, rc, r, dt);
    }
    free(r);
    face_worker_free(w);
    return NULL;
}

static inline void bench_images_run(const bench_image_list *l, const face_engine *e,
                                    const face_options *opt, int threads, bench_image_fn fn,
                                    void *ctx)
{
    enum { MAX_THREADS = 16 };
    pthread_t t[MAX_THREADS];
    bench_images_job job = {.list = l, .engine = e, .opt = opt, .fn = fn, .ctx = ctx};
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    pthread_mutex_init(&job.lock, NULL);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, bench_images_thread, &job);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    pthread_mutex_destroy(&job.lock);
}

#endif
