/* Fixed threads over a ring buffer of jobs; see worker_pool.h. */
#include "core/worker_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    worker_job_fn fn;
    void *arg;
    void (*on_done)(void *arg);
    struct sync_wait *waiter; /* set for worker_pool_run */
} job;

typedef struct sync_wait {
    pthread_mutex_t *lock;
    pthread_cond_t cond;
    bool done;
} sync_wait;

struct worker_pool {
    pthread_mutex_t lock;
    pthread_cond_t has_work;
    job *ring;
    int capacity, head, count, busy;
    bool stopping;
    worker_hooks hooks;
    pthread_t *threads;
    int thread_count;
};

typedef struct {
    worker_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    worker_pool *pool = wa.pool;
    void *ctx = pool->hooks.init ? pool->hooks.init(pool->hooks.shared, wa.index) : pool->hooks.shared;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->count && !pool->stopping) pthread_cond_wait(&pool->has_work, &pool->lock);
        if (!pool->count) break; /* stopping and drained */
        job j = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
        pool->busy++;
        pthread_mutex_unlock(&pool->lock);
        j.fn(ctx, j.arg);
        pthread_mutex_lock(&pool->lock);
        pool->busy--;
        if (j.waiter) {
            j.waiter->done = true;
            pthread_cond_signal(&j.waiter->cond);
        }
        if (j.on_done) {
            /* After the worker counts as idle: whoever on_done answers may submit its
             * next job at once without finding this worker busy. */
            pthread_mutex_unlock(&pool->lock);
            j.on_done(j.arg);
            pthread_mutex_lock(&pool->lock);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    if (pool->hooks.destroy) pool->hooks.destroy(ctx);
    return NULL;
}

worker_pool *worker_pool_create(int workers, int queue_depth, const worker_hooks *hooks) {
    worker_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) return NULL;
    /* Depth counts waiting jobs; the ring also holds one slot per worker so a job
     * can be accepted while every worker is still picking up its previous one. */
    pool->capacity = queue_depth + workers;
    pool->ring = calloc((size_t)pool->capacity, sizeof(job));
    pool->threads = calloc((size_t)workers, sizeof(pthread_t));
    if (hooks) pool->hooks = *hooks;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->has_work, NULL);
    if (!pool->ring || !pool->threads) {
        worker_pool_free(pool);
        return NULL;
    }
    for (int i = 0; i < workers; i++) {
        worker_arg *wa = malloc(sizeof(*wa));
        if (!wa) break;
        wa->pool = pool;
        wa->index = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, wa)) {
            free(wa);
            break;
        }
        pool->thread_count++;
    }
    if (pool->thread_count != workers) {
        worker_pool_free(pool);
        return NULL;
    }
    return pool;
}

void worker_pool_free(worker_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->has_work);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->thread_count; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->has_work);
    free(pool->threads);
    free(pool->ring);
    free(pool);
}

/* Caller holds the lock. Waiting jobs beyond the depth are refused: a job is only
 * "waiting" when no idle worker can take it right away. */
static int enqueue_locked(worker_pool *pool, job j) {
    if (pool->stopping) return WORKER_POOL_STOPPED;
    int idle = pool->thread_count - pool->busy;
    int waiting_after = pool->count + 1 - idle;
    if (pool->count >= pool->capacity || waiting_after > pool->capacity - pool->thread_count)
        return WORKER_POOL_BUSY;
    pool->ring[(pool->head + pool->count) % pool->capacity] = j;
    pool->count++;
    pthread_cond_signal(&pool->has_work);
    return WORKER_POOL_OK;
}

int worker_pool_run(worker_pool *pool, worker_job_fn fn, void *arg) {
    sync_wait w = {.lock = &pool->lock, .done = false};
    pthread_cond_init(&w.cond, NULL);
    pthread_mutex_lock(&pool->lock);
    int rc = enqueue_locked(pool, (job){fn, arg, NULL, &w});
    if (rc == WORKER_POOL_OK)
        while (!w.done) pthread_cond_wait(&w.cond, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_destroy(&w.cond);
    return rc;
}

int worker_pool_submit(worker_pool *pool, worker_job_fn fn, void *arg, void (*on_done)(void *)) {
    pthread_mutex_lock(&pool->lock);
    int rc = enqueue_locked(pool, (job){fn, arg, on_done, NULL});
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* ---- parallel for ---------------------------------------------------------------- */

/* Shared by the caller and its helpers. Indices are claimed from `next`; the caller
 * returns once it ran out of indices and no helper is inside the loop. A helper
 * that starts later finds nothing to claim, so it never touches fn or arg after the
 * caller returned; the struct itself lives until the last reference is dropped. */
typedef struct {
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int running; /* helpers between claiming and finishing */
    int refs;    /* the caller + every queued helper */
} parallel_for;

static void parallel_work(parallel_for *p) {
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;) p->fn(p->arg, i);
}

static void parallel_release(void *arg) {
    parallel_for *p = arg;
    pthread_mutex_lock(&p->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last) return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->idle);
    free(p);
}

static void parallel_helper(void *worker_ctx, void *arg) {
    (void)worker_ctx;
    parallel_for *p = arg;
    pthread_mutex_lock(&p->lock);
    p->running++;
    pthread_mutex_unlock(&p->lock);
    parallel_work(p);
    pthread_mutex_lock(&p->lock);
    if (--p->running == 0) pthread_cond_signal(&p->idle);
    pthread_mutex_unlock(&p->lock);
}

/* Queues up to `want` helpers, one per worker idle right now; returns how many. */
static int queue_helpers(worker_pool *pool, parallel_for *p, int want) {
    int queued = 0;
    pthread_mutex_lock(&pool->lock);
    int idle = pool->thread_count - pool->busy - pool->count;
    while (queued < want && queued < idle &&
           enqueue_locked(pool, (job){parallel_helper, p, parallel_release, NULL}) == WORKER_POOL_OK)
        queued++;
    pthread_mutex_unlock(&pool->lock);
    return queued;
}

void worker_pool_parallel_for(worker_pool *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg) {
    parallel_for *p = n > 1 ? calloc(1, sizeof(*p)) : NULL;
    if (!p) { /* one index, or no memory for the shared state: do it here */
        for (size_t i = 0; i < n; i++) fn(arg, i);
        return;
    }
    int want = n - 1 < (size_t)pool->thread_count ? (int)(n - 1) : pool->thread_count;
    /* References for every helper we may queue, taken before one can finish. */
    *p = (parallel_for){.fn = fn, .arg = arg, .n = n, .refs = 1 + want};
    atomic_init(&p->next, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->idle, NULL);
    int helpers = queue_helpers(pool, p, want);
    pthread_mutex_lock(&p->lock);
    p->refs -= want - helpers;
    pthread_mutex_unlock(&p->lock);
    parallel_work(p);
    pthread_mutex_lock(&p->lock);
    while (p->running) pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
    parallel_release(p);
}

int worker_pool_queued(worker_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    int n = pool->count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

int worker_pool_busy(worker_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    int n = pool->busy;
    pthread_mutex_unlock(&pool->lock);
    return n;
}
