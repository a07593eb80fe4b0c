/* The per-instance thread that feeds work shared through the store into this
 * instance's worker pool, so that any instance can finish what another accepted:
 *  - it pops jobs from a store job queue, but only while one of its workers is
 *    idle (back-pressure: a busy instance leaves the job to an idle peer instead of
 *    queueing it behind its own work);
 *  - a popped job is leased (store.h): while it waits in the pool or runs, this
 *    thread renews its lease every lease_ms / 3, and the worker acks it when the
 *    hook returns. If this instance dies, the lease runs out and any instance's
 *    dispatcher pops the job again (at-least-once: hooks must be idempotent);
 *  - it claims due members of a store deadline index (each member is claimed by
 *    exactly one instance) and hands them to a callback on this thread.
 * Stopping waits for the thread (at most one pop wait); jobs already handed to the
 * pool are finished by the pool's own shutdown. */
#ifndef API_DISPATCHER_H
#define API_DISPATCHER_H

#include <stdbool.h>

#include "core/worker_pool.h"
#include "store/store.h"

/* Runs on a worker thread with that worker's context; payload is the popped job,
 * delivery is 1 the first time and counts the times it was handed out again (a
 * hook may give up on a job that keeps failing). True when the job is done (it is
 * acked); false when it must run again (it is left to its lease, which then runs
 * out: a natural back-off). */
typedef bool (*dispatch_job_fn)(void *ctx, void *worker_ctx, const store_value *payload, int delivery);
/* Runs on the dispatcher thread for each claimed member (a C string). */
typedef void (*dispatch_due_fn)(void *ctx, const char *member);

typedef struct {
    store *store;
    worker_pool *pool;
    int workers;           /* threads in pool: a job is popped only when one is idle */
    const char *queue;     /* job queue name (static string); NULL = pop no jobs on this instance */
    int64_t lease_ms;      /* how long a popped job is held without renewal (> 0) */
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
