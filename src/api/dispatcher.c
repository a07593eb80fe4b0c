/* The job and deadline dispatcher; see dispatcher.h. */
#include "api/dispatcher.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"

#define POP_WAIT_MS 250   /* one blocking pop; also bounds how long stopping takes */
#define IDLE_WAIT_MS 100  /* between rounds when no job can be taken */
#define CLAIMS_PER_ROUND 64

struct dispatcher {
    dispatcher_config cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

/* What a worker needs to run one popped job; independent of the dispatcher, which
 * may already be stopped when the pool drains its queue at shutdown. */
typedef struct {
    dispatch_job_fn run;
    void *ctx;
    store_value payload;
} dispatched_job;

static void dispatched_run(void *worker_ctx, void *arg) {
    dispatched_job *j = arg;
    j->run(j->ctx, worker_ctx, &j->payload);
}

static void dispatched_free(void *arg) {
    dispatched_job *j = arg;
    store_value_free(&j->payload);
    free(j);
}

static bool stopping(dispatcher *d) {
    pthread_mutex_lock(&d->lock);
    bool s = d->stopping;
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* Sleeps ms unless stop is called meanwhile. */
static void idle(dispatcher *d, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&d->lock);
    if (!d->stopping) pthread_cond_timedwait(&d->wake, &d->lock, &until);
    pthread_mutex_unlock(&d->lock);
}

static void claim_due(dispatcher *d) {
    store *st = d->cfg.store;
    for (int i = 0; i < CLAIMS_PER_ROUND; i++) {
        store_value m = {0};
        if (st->ops->deadline_claim(st, d->cfg.deadlines, time_now_ms(), &m)) return;
        char *member = strndup((const char *)m.data, m.len);
        store_value_free(&m);
        if (member) d->cfg.due(d->cfg.ctx, member);
        free(member);
    }
}

/* A job the pool could not take goes back to the queue, for us or a peer. */
static void requeue(dispatcher *d, dispatched_job *j) {
    if (d->cfg.store->ops->job_push(d->cfg.store, d->cfg.queue, &j->payload))
        log_event("error", "dispatcher: a job from queue %s was lost (store unavailable)", d->cfg.queue);
    dispatched_free(j);
}

/* Pops one job when a worker is idle. False when there was nothing to do. */
static bool take_job(dispatcher *d) {
    worker_pool *pool = d->cfg.pool;
    if (worker_pool_busy(pool) + worker_pool_queued(pool) >= d->cfg.workers) return false;
    dispatched_job *j = calloc(1, sizeof(*j));
    if (!j) return false;
    j->run = d->cfg.run;
    j->ctx = d->cfg.ctx;
    int rc = d->cfg.store->ops->job_pop(d->cfg.store, d->cfg.queue, POP_WAIT_MS, &j->payload);
    if (rc) {
        free(j);
        return false;
    }
    if (worker_pool_submit(pool, dispatched_run, j, dispatched_free) != WORKER_POOL_OK) {
        requeue(d, j); /* an HTTP request took the idle worker meanwhile */
        return false;
    }
    return true;
}

static void *dispatcher_main(void *arg) {
    dispatcher *d = arg;
    while (!stopping(d)) {
        if (d->cfg.deadlines) claim_due(d);
        int64_t started = time_monotonic_ms();
        bool took = d->cfg.queue && take_job(d);
        /* A pop that returned at once (store down, no idle worker) must not spin. */
        if (!took && time_monotonic_ms() - started < POP_WAIT_MS / 2) idle(d, IDLE_WAIT_MS);
    }
    return NULL;
}

dispatcher *dispatcher_start(const dispatcher_config *cfg) {
    dispatcher *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->cfg = *cfg;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (pthread_create(&d->thread, NULL, dispatcher_main, d)) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return NULL;
    }
    return d;
}

void dispatcher_stop(dispatcher *d) {
    if (!d) return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}
