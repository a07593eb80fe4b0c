/* Lock-protected counters; see metrics.h. Rendering takes a snapshot under the
 * lock so a scrape never sees half an update. */
#include "http/metrics.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])
#define STATUS_CLASSES 5 /* 1xx..5xx */

typedef struct {
    const char *name;
    long by_class[STATUS_CLASSES];
    long buckets[BUCKETS + 1];
    double seconds_sum;
    long count;
} op_stats;

struct metrics {
    pthread_mutex_t lock;
    op_stats ops[METRICS_MAX_OPERATIONS + 1]; /* last slot: unrouted requests */
    int op_count;
    int key_count;
    long usage[METRICS_MAX_KEYS][METRICS_MAX_OPERATIONS + 1];
    long usage_store_errors;
};

metrics *metrics_create(const char *const *operations, int key_count) {
    metrics *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    pthread_mutex_init(&m->lock, NULL);
    for (int i = 0; operations[i]; i++) {
        /* The route table may list an operation under several paths. */
        int seen = 0;
        for (int j = 0; j < m->op_count; j++) seen |= !strcmp(m->ops[j].name, operations[i]);
        assert(seen || m->op_count < METRICS_MAX_OPERATIONS); /* raise the limit with the route table */
        if (!seen && m->op_count < METRICS_MAX_OPERATIONS) m->ops[m->op_count++].name = operations[i];
    }
    m->ops[m->op_count].name = "unrouted";
    m->key_count = key_count < METRICS_MAX_KEYS ? key_count : METRICS_MAX_KEYS;
    return m;
}

void metrics_free(metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int op_index(const metrics *m, const char *operation) {
    if (operation)
        for (int i = 0; i < m->op_count; i++)
            if (!strcmp(m->ops[i].name, operation)) return i;
    return m->op_count;
}

void metrics_record(metrics *m, const char *operation, int key_index, int status, double seconds) {
    pthread_mutex_lock(&m->lock);
    int i = op_index(m, operation);
    op_stats *o = &m->ops[i];
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < STATUS_CLASSES) o->by_class[cls]++;
    size_t b = 0;
    while (b < BUCKETS && seconds > bucket_bounds[b]) b++;
    o->buckets[b]++;
    o->seconds_sum += seconds;
    o->count++;
    if (key_index >= 0 && key_index < m->key_count) m->usage[key_index][i]++;
    pthread_mutex_unlock(&m->lock);
}

long metrics_key_usage(metrics *m, int key_index, const char *operation) {
    if (key_index < 0 || key_index >= m->key_count) return 0;
    pthread_mutex_lock(&m->lock);
    long n = m->usage[key_index][op_index(m, operation)];
    pthread_mutex_unlock(&m->lock);
    return n;
}

void metrics_usage_store_error(metrics *m) {
    pthread_mutex_lock(&m->lock);
    m->usage_store_errors++;
    pthread_mutex_unlock(&m->lock);
}

int metrics_operation_count(const metrics *m) { return m->op_count; }
const char *metrics_operation_name(const metrics *m, int i) { return m->ops[i].name; }

typedef struct {
    char *data;
    size_t len, cap;
} text_buf;

static void tb_printf(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 8192) + (size_t)n;
        char *d = realloc(t->data, cap);
        if (!d) return;
        t->data = d;
        t->cap = cap;
    }
}

char *metrics_render(metrics *m, const char *const *key_names, int queue_depth, int busy_workers) {
    text_buf t = {0};
    pthread_mutex_lock(&m->lock);
    tb_printf(&t, "# HELP bioserver_requests_total Requests by operation and status class.\n"
                  "# TYPE bioserver_requests_total counter\n");
    for (int i = 0; i <= m->op_count; i++)
        for (int c = 0; c < STATUS_CLASSES; c++)
            if (m->ops[i].by_class[c])
                tb_printf(&t, "bioserver_requests_total{operation=\"%s\",status=\"%dxx\"} %ld\n",
                          m->ops[i].name, c + 1, m->ops[i].by_class[c]);
    tb_printf(&t, "# HELP bioserver_request_seconds Request latency.\n"
                  "# TYPE bioserver_request_seconds histogram\n");
    for (int i = 0; i <= m->op_count; i++) {
        op_stats *o = &m->ops[i];
        if (!o->count) continue;
        long cumulative = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            cumulative += o->buckets[b];
            tb_printf(&t, "bioserver_request_seconds_bucket{operation=\"%s\",le=\"%g\"} %ld\n",
                      o->name, bucket_bounds[b], cumulative);
        }
        tb_printf(&t, "bioserver_request_seconds_bucket{operation=\"%s\",le=\"+Inf\"} %ld\n", o->name, o->count);
        tb_printf(&t, "bioserver_request_seconds_sum{operation=\"%s\"} %.6f\n", o->name, o->seconds_sum);
        tb_printf(&t, "bioserver_request_seconds_count{operation=\"%s\"} %ld\n", o->name, o->count);
    }
    tb_printf(&t, "# HELP bioserver_key_calls_total Calls per API key and operation (billing).\n"
                  "# TYPE bioserver_key_calls_total counter\n");
    for (int k = 0; k < m->key_count; k++)
        for (int i = 0; i < m->op_count; i++)
            if (m->usage[k][i])
                tb_printf(&t, "bioserver_key_calls_total{key=\"%s\",operation=\"%s\"} %ld\n",
                          key_names[k], m->ops[i].name, m->usage[k][i]);
    tb_printf(&t, "# HELP bioserver_usage_store_errors_total Billing counts lost: the store refused them.\n"
                  "# TYPE bioserver_usage_store_errors_total counter\nbioserver_usage_store_errors_total %ld\n",
              m->usage_store_errors);
    pthread_mutex_unlock(&m->lock);
    tb_printf(&t, "# HELP bioserver_queue_depth Heavy jobs waiting for a worker.\n"
                  "# TYPE bioserver_queue_depth gauge\nbioserver_queue_depth %d\n"
                  "# HELP bioserver_busy_workers Workers running a job.\n"
                  "# TYPE bioserver_busy_workers gauge\nbioserver_busy_workers %d\n",
              queue_depth, busy_workers);
    return t.data;
}
