/* Bounded pool of threads for heavy work (image decoding, inference, liveness
 * replay). The queue has a fixed depth: when it is full a submission fails at once
 * with WORKER_POOL_BUSY, which the HTTP layer turns into 429 + Retry-After, so load
 * never turns into an unbounded wait. Each worker owns a context created by the
 * pool's init hook (e.g. its inference sessions), so jobs need no locking for it. */
#ifndef CORE_WORKER_POOL_H
#define CORE_WORKER_POOL_H

#include <stddef.h>

enum { WORKER_POOL_OK = 0, WORKER_POOL_BUSY = -1, WORKER_POOL_STOPPED = -2 };

typedef struct worker_pool worker_pool;
typedef void (*worker_job_fn)(void *worker_ctx, void *arg);

typedef struct {
    void *(*init)(void *shared, int worker_index); /* NULL → worker_ctx = shared */
    void (*destroy)(void *worker_ctx);
    void *shared;
} worker_hooks;

worker_pool *worker_pool_create(int workers, int queue_depth, const worker_hooks *hooks);
/* Stops accepting work, finishes queued jobs, joins the threads. */
void worker_pool_free(worker_pool *pool);
/* Runs fn on a worker and waits for it to finish. */
int worker_pool_run(worker_pool *pool, worker_job_fn fn, void *arg);
/* Queues fn and returns; on_done (may be NULL) runs on the worker after fn, once the
 * worker counts as idle again (it may free arg, or answer a waiting client). */
int worker_pool_submit(worker_pool *pool, worker_job_fn fn, void *arg, void (*on_done)(void *arg));
/* Runs fn(arg, i) once for every i in [0, n) and returns when all have run. The
 * calling thread works through the indices itself, and idle workers join in: a
 * helper is queued only for a worker that is idle right now, so a busy pool never
 * makes the caller wait in the queue (it then does all of it alone). Callable from
 * a worker's job; fn runs concurrently on several threads. */
void worker_pool_parallel_for(worker_pool *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg);
int worker_pool_queued(worker_pool *pool);
int worker_pool_busy(worker_pool *pool);

#endif
