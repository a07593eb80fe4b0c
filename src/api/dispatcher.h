/* The per-instance thread that feeds work shared through the store into this
 * instance's worker pool, so that any instance can finish what another accepted:
 *  - it pops jobs from a store job queue, but only while one of its workers is
 *    idle (back-pressure: a busy instance leaves the job to an idle peer instead of
 *    queueing it behind its own work);
 *  - it claims due members of a store deadline index (each member is claimed by
 *    exactly one instance) and hands them to a callback on this thread.
 * Stopping waits for the thread (at most one pop wait); jobs already handed to the
 * pool are finished by the pool's own shutdown. */
#ifndef API_DISPATCHER_H
#define API_DISPATCHER_H

#include "core/worker_pool.h"
#include "store/store.h"

/* Runs on a worker thread with that worker's context; payload is the popped job. */
typedef void (*dispatch_job_fn)(void *ctx, void *worker_ctx, const store_value *payload);
/* Runs on the dispatcher thread for each claimed member (a C string). */
typedef void (*dispatch_due_fn)(void *ctx, const char *member);

typedef struct {
    store *store;
    worker_pool *pool;
    int workers;           /* threads in pool: a job is popped only when one is idle */
    const char *queue;     /* job queue name; NULL = pop no jobs on this instance */
    const char *deadlines; /* deadline index name; NULL = claim nothing */
    dispatch_job_fn run;
    dispatch_due_fn due;
    void *ctx;             /* passed to run and due; must outlive the pool's jobs */
} dispatcher_config;

typedef struct dispatcher dispatcher;

dispatcher *dispatcher_start(const dispatcher_config *cfg);
/* Stops and joins the thread; NULL is fine. */
void dispatcher_stop(dispatcher *d);

#endif
