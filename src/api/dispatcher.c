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


typedef struct dispatched_job dispatched_job;

/* The jobs this instance holds (queued in its pool or running), whose leases the
 * dispatcher renews. Shared by the dispatcher and its jobs, and freed by the last
 * of them: jobs may outlive the dispatcher (the pool drains them after it stopped). */
typedef struct {
    pthread_mutex_t lock;
    int refs;
    dispatched_job *jobs;
} held_jobs;

/* What a worker needs to run one popped job; independent of the dispatcher. */
struct dispatched_job {
    dispatched_job *next; /* in held->jobs */
    held_jobs *held;
    store *store;
    const char *queue;
    dispatch_job_fn run;
    void *ctx;
    store_job job;
};

struct dispatcher {
    dispatcher_config cfg;
    held_jobs *held;
    int64_t renewed_ms; /* monotonic time of the last lease renewal round */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

static void held_release(held_jobs *h) {
    pthread_mutex_lock(&h->lock);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->lock);
    if (!last) return;
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static void dispatched_run(void *worker_ctx, void *arg) {
    dispatched_job *j = arg;
    if (!j->run(j->ctx, worker_ctx, &j->job.payload, j->job.deliveries)) {
        log_event("warn", "dispatcher: job %s of queue %s runs again once its lease ends", j->job.id, j->queue);
        return;
    }
    int rc = j->store->ops->job_ack(j->store, j->queue, j->job.id);
    if (rc == STORE_NOT_FOUND)
        log_event("warn", "dispatcher: job %s of queue %s was finished elsewhere too (its lease had run out)", j->job.id,
                  j->queue);
    else if (rc)
        log_event("error", "dispatcher: cannot ack job %s of queue %s (store %d): it will run again", j->job.id, j->queue,
                  rc);
}

/* Unlinks the job from the held set and frees it: its lease is renewed no more. */
static void dispatched_free(void *arg) {
    dispatched_job *j = arg;
    held_jobs *h = j->held;
    pthread_mutex_lock(&h->lock);
    dispatched_job **pp = &h->jobs;
    while (*pp && *pp != j) pp = &(*pp)->next;
    if (*pp) *pp = j->next;
    pthread_mutex_unlock(&h->lock);
    store_job_free(&j->job);
    free(j);
    held_release(h);
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

/* Renews the lease of every job this instance holds. The ids are copied out first:
 * store calls are not made under the lock the workers take to finish a job. A job
 * acked meanwhile is simply not found. */
static void renew_leases(dispatcher *d) {
    held_jobs *h = d->held;
    pthread_mutex_lock(&h->lock);
    int n = 0;
    for (dispatched_job *j = h->jobs; j; j = j->next) n++;
    char(*ids)[STORE_JOB_ID_MAX] = n ? calloc((size_t)n, STORE_JOB_ID_MAX) : NULL;
    n = 0;
    for (dispatched_job *j = h->jobs; j && ids; j = j->next) memcpy(ids[n++], j->job.id, STORE_JOB_ID_MAX);
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < n; i++) d->cfg.store->ops->job_renew(d->cfg.store, d->cfg.queue, ids[i], d->cfg.lease_ms);
    free(ids);
}

/* Pops one job when a worker is idle. False when there was nothing to do. */
static bool take_job(dispatcher *d) {
    worker_pool *pool = d->cfg.pool;
    if (worker_pool_busy(pool) + worker_pool_queued(pool) >= d->cfg.workers) return false;
    dispatched_job *j = calloc(1, sizeof(*j));
    if (!j) return false;
    *j = (dispatched_job){.held = d->held, .store = d->cfg.store, .queue = d->cfg.queue, .run = d->cfg.run,
                          .ctx = d->cfg.ctx};
    int rc = d->cfg.store->ops->job_pop(d->cfg.store, d->cfg.queue, POP_WAIT_MS, d->cfg.lease_ms, &j->job);
    if (rc) {
        store_job_free(&j->job);
        free(j);
        return false;
    }
    pthread_mutex_lock(&d->held->lock);
    d->held->refs++;
    j->next = d->held->jobs;
    d->held->jobs = j;
    pthread_mutex_unlock(&d->held->lock);
    if (worker_pool_submit(pool, dispatched_run, j, dispatched_free) != WORKER_POOL_OK) {
        /* An HTTP request took the idle worker meanwhile: end the lease now, so
         * that this instance or a peer takes the job at once. */
        d->cfg.store->ops->job_renew(d->cfg.store, d->cfg.queue, j->job.id, 0);
        dispatched_free(j);
        return false;
    }
    return true;
}

static void *dispatcher_main(void *arg) {
    dispatcher *d = arg;
    while (!stopping(d)) {
        if (d->cfg.deadlines) claim_due(d);
        int64_t started = time_monotonic_ms();
        if (d->cfg.queue && started - d->renewed_ms >= d->cfg.lease_ms / 3) {
            renew_leases(d);
            d->renewed_ms = started;
        }
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
    d->held = calloc(1, sizeof(*d->held));
    if (!d->held) {
        free(d);
        return NULL;
    }
    d->held->refs = 1;
    pthread_mutex_init(&d->held->lock, NULL);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (pthread_create(&d->thread, NULL, dispatcher_main, d)) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        held_release(d->held);
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
    held_release(d->held); /* jobs still in the pool keep it until they are freed */
    free(d);
}
