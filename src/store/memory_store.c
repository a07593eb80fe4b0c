/* In-process store: one hash table of sessions, each holding its items in
 * insertion order. A sweeper thread drops expired sessions; reads also check the
 * expiry, so an expired session is gone the moment its time is up, not when the
 * sweeper next runs. One mutex guards everything: operations are short copies.
 * The usage counters (billing) are a separate small list under their own mutex:
 * they are touched on every request and must not wait behind the sweeper.
 * The job queues and deadline indexes (one process: a plain FIFO list and a plain
 * list) have their own mutex too, and a condition variable for waiting poppers.
 * A popped job stays in the FIFO list, marked leased, until it is acked. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "store/store.h"

#define BUCKETS 4096

typedef struct mem_item {
    struct mem_item *next;
    char kind[16];
    char id[64];
    store_value value;
} mem_item;

typedef struct mem_session {
    struct mem_session *next;
    char tenant[64];
    char id[64];
    int64_t expires_ms;
    store_value value;
    mem_item *items, *items_tail;
    size_t item_count;
} mem_session;

/* The counters of one API key; a handful of keys, so a list is enough. */
typedef struct mem_usage {
    struct mem_usage *next;
    char key_name[STORE_USAGE_NAME_MAX + 1];
    size_t count;
    store_usage ops[STORE_USAGE_MAX_OPS];
} mem_usage;

#define NAME_MAX_LEN 63 /* queue, index and member names */

typedef struct mem_job {
    struct mem_job *next;
    char queue[NAME_MAX_LEN + 1];
    store_value payload;
    uint64_t id;          /* 0 until first popped */
    int64_t lease_until;  /* meaningful once id != 0 */
    int deliveries;
} mem_job;

typedef struct mem_deadline {
    struct mem_deadline *next;
    char index[NAME_MAX_LEN + 1];
    char member[NAME_MAX_LEN * 4 + 1];
    int64_t deadline_ms;
} mem_deadline;

typedef struct {
    store base;
    pthread_mutex_t jobs_lock; /* guards jobs and deadlines */
    pthread_cond_t job_added;
    mem_job *jobs, *jobs_tail;
    uint64_t last_job_id;
    mem_deadline *deadlines;
    pthread_mutex_t usage_lock; /* guards usage only */
    mem_usage *usage;
    pthread_mutex_t lock;
    pthread_cond_t stop_cond;
    bool stopping;
    pthread_t sweeper;
    size_t max_items;
    mem_session *buckets[BUCKETS];
} memory_store;

static uint64_t hash_key(const char *tenant, const char *sid) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = tenant; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = sid; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

static int value_copy(store_value *dst, const store_value *src) {
    dst->data = malloc(src->len ? src->len : 1);
    if (!dst->data) return STORE_NOMEM;
    memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return STORE_OK;
}

static void session_destroy(mem_session *s) {
    mem_item *it = s->items;
    while (it) {
        mem_item *next = it->next;
        store_value_free(&it->value);
        free(it);
        it = next;
    }
    store_value_free(&s->value);
    free(s);
}

/* Finds a live session; an expired one found on the way is unlinked and freed. */
static mem_session *find_locked(memory_store *m, const char *tenant, const char *sid) {
    mem_session **pp = &m->buckets[hash_key(tenant, sid) % BUCKETS];
    int64_t now = time_now_ms();
    while (*pp) {
        mem_session *s = *pp;
        if (!strcmp(s->tenant, tenant) && !strcmp(s->id, sid)) {
            if (s->expires_ms <= now) {
                *pp = s->next;
                session_destroy(s);
                return NULL;
            }
            return s;
        }
        pp = &s->next;
    }
    return NULL;
}

static int mem_session_create(store *st, const char *tenant, const char *sid, const store_value *v,
                              int64_t expires_ms) {
    memory_store *m = (memory_store *)st;
    if (strlen(tenant) >= 64 || strlen(sid) >= 64) return STORE_NOT_FOUND;
    mem_session *s = calloc(1, sizeof(*s));
    if (!s) return STORE_NOMEM;
    strcpy(s->tenant, tenant);
    strcpy(s->id, sid);
    s->expires_ms = expires_ms;
    if (value_copy(&s->value, v)) {
        free(s);
        return STORE_NOMEM;
    }
    pthread_mutex_lock(&m->lock);
    int rc = STORE_OK;
    if (find_locked(m, tenant, sid)) {
        rc = STORE_EXISTS;
    } else {
        mem_session **b = &m->buckets[hash_key(tenant, sid) % BUCKETS];
        s->next = *b;
        *b = s;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) session_destroy(s);
    return rc;
}

static int mem_session_get(store *st, const char *tenant, const char *sid, store_value *out,
                           int64_t *expires_ms) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    int rc = s ? value_copy(out, &s->value) : STORE_NOT_FOUND;
    if (s && expires_ms) *expires_ms = s->expires_ms;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_session_update(store *st, const char *tenant, const char *sid,
                              const store_value *expected, const store_value *v) {
    memory_store *m = (memory_store *)st;
    store_value copy;
    if (value_copy(&copy, v)) return STORE_NOMEM;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    int rc = STORE_OK;
    if (!s) rc = STORE_NOT_FOUND;
    else if (expected && (expected->len != s->value.len ||
                          memcmp(expected->data, s->value.data, s->value.len)))
        rc = STORE_CONFLICT;
    else {
        store_value_free(&s->value);
        s->value = copy;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) store_value_free(&copy);
    return rc;
}

static int mem_session_delete(store *st, const char *tenant, const char *sid) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    int rc = STORE_NOT_FOUND;
    if (find_locked(m, tenant, sid)) {
        mem_session **pp = &m->buckets[hash_key(tenant, sid) % BUCKETS];
        while (*pp && !(strcmp((*pp)->tenant, tenant) == 0 && strcmp((*pp)->id, sid) == 0))
            pp = &(*pp)->next;
        mem_session *s = *pp;
        *pp = s->next;
        session_destroy(s);
        rc = STORE_OK;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static mem_item *item_find(mem_session *s, const char *kind, const char *id, mem_item **prev) {
    mem_item *p = NULL;
    for (mem_item *it = s->items; it; p = it, it = it->next) {
        if (!strcmp(it->kind, kind) && !strcmp(it->id, id)) {
            if (prev) *prev = p;
            return it;
        }
    }
    return NULL;
}

static void item_unlink(mem_session *s, mem_item *it, mem_item *prev) {
    if (prev) prev->next = it->next;
    else s->items = it->next;
    if (s->items_tail == it) s->items_tail = prev;
    s->item_count--;
    store_value_free(&it->value);
    free(it);
}

static int mem_item_put(store *st, const char *tenant, const char *sid, const char *kind,
                        const char *item_id, const store_value *v) {
    memory_store *m = (memory_store *)st;
    if (strlen(kind) >= 16 || strlen(item_id) >= 64) return STORE_NOT_FOUND;
    mem_item *it = calloc(1, sizeof(*it));
    if (!it || value_copy(&it->value, v)) {
        free(it);
        return STORE_NOMEM;
    }
    strcpy(it->kind, kind);
    strcpy(it->id, item_id);
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    int rc = STORE_OK;
    mem_item *prev = NULL, *old = s ? item_find(s, kind, item_id, &prev) : NULL;
    if (!s) rc = STORE_NOT_FOUND;
    else if (!old && s->item_count >= m->max_items) rc = STORE_FULL;
    else {
        if (old) item_unlink(s, old, prev); /* replace keeps one copy per id */
        if (s->items_tail) s->items_tail->next = it;
        else s->items = it;
        s->items_tail = it;
        s->item_count++;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        store_value_free(&it->value);
        free(it);
    }
    return rc;
}

static int mem_item_get(store *st, const char *tenant, const char *sid, const char *kind,
                        const char *item_id, store_value *out) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    mem_item *it = s ? item_find(s, kind, item_id, NULL) : NULL;
    int rc = it ? value_copy(out, &it->value) : STORE_NOT_FOUND;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_item_list(store *st, const char *tenant, const char *sid, const char *kind,
                         store_value **out, size_t *count) {
    memory_store *m = (memory_store *)st;
    *out = NULL;
    *count = 0;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    int rc = s ? STORE_OK : STORE_NOT_FOUND;
    if (s && s->item_count) {
        store_value *vals = calloc(s->item_count, sizeof(*vals));
        size_t n = 0;
        for (mem_item *it = s->items; vals && it; it = it->next) {
            if (strcmp(it->kind, kind)) continue;
            if (value_copy(&vals[n], &it->value)) break;
            n++;
        }
        if (!vals) rc = STORE_NOMEM;
        *out = vals;
        *count = n;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_item_delete(store *st, const char *tenant, const char *sid, const char *kind,
                           const char *item_id) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    mem_item *prev = NULL, *it = s ? item_find(s, kind, item_id, &prev) : NULL;
    if (it) item_unlink(s, it, prev);
    pthread_mutex_unlock(&m->lock);
    return it ? STORE_OK : STORE_NOT_FOUND;
}

static int mem_item_delete_all(store *st, const char *tenant, const char *sid, const char *kind) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    mem_session *s = find_locked(m, tenant, sid);
    if (s) {
        mem_item *prev = NULL, *it = s->items;
        while (it) {
            mem_item *next = it->next;
            if (!strcmp(it->kind, kind)) item_unlink(s, it, prev);
            else prev = it;
            it = next;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return s ? STORE_OK : STORE_NOT_FOUND;
}

/* The counters of key_name, created empty when `create` (NULL when absent or out
 * of memory). Called with usage_lock held. */
static mem_usage *usage_find_locked(memory_store *m, const char *key_name, bool create) {
    for (mem_usage *u = m->usage; u; u = u->next)
        if (!strcmp(u->key_name, key_name)) return u;
    if (!create) return NULL;
    mem_usage *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    strcpy(u->key_name, key_name);
    u->next = m->usage;
    m->usage = u;
    return u;
}

static int usage_bump(mem_usage *u, const char *operation, long delta) {
    for (size_t i = 0; i < u->count; i++) {
        if (!strcmp(u->ops[i].operation, operation)) {
            u->ops[i].calls += delta;
            return STORE_OK;
        }
    }
    if (u->count == STORE_USAGE_MAX_OPS) return STORE_FULL;
    strcpy(u->ops[u->count].operation, operation);
    u->ops[u->count++].calls = delta;
    return STORE_OK;
}

static int mem_usage_add(store *st, const char *key_name, const char *operation, long delta) {
    memory_store *m = (memory_store *)st;
    if (strlen(key_name) > STORE_USAGE_NAME_MAX || strlen(operation) > STORE_USAGE_NAME_MAX)
        return STORE_NOT_FOUND;
    pthread_mutex_lock(&m->usage_lock);
    mem_usage *u = usage_find_locked(m, key_name, true);
    int rc = u ? usage_bump(u, operation, delta) : STORE_NOMEM;
    pthread_mutex_unlock(&m->usage_lock);
    return rc;
}

static int mem_usage_get(store *st, const char *key_name, store_usage *out, size_t max, size_t *count) {
    memory_store *m = (memory_store *)st;
    *count = 0;
    if (strlen(key_name) > STORE_USAGE_NAME_MAX) return STORE_NOT_FOUND;
    pthread_mutex_lock(&m->usage_lock);
    mem_usage *u = usage_find_locked(m, key_name, false);
    size_t n = u ? (u->count < max ? u->count : max) : 0;
    if (n) memcpy(out, u->ops, n * sizeof(*out));
    *count = n;
    pthread_mutex_unlock(&m->usage_lock);
    return STORE_OK;
}

/* --- job queues and deadline indexes ------------------------------------------ */

static int mem_job_push(store *st, const char *queue, const store_value *payload) {
    memory_store *m = (memory_store *)st;
    if (strlen(queue) > NAME_MAX_LEN) return STORE_NOT_FOUND;
    mem_job *j = calloc(1, sizeof(*j));
    if (!j || value_copy(&j->payload, payload)) {
        free(j);
        return STORE_NOMEM;
    }
    strcpy(j->queue, queue);
    pthread_mutex_lock(&m->jobs_lock);
    if (m->jobs_tail) m->jobs_tail->next = j;
    else m->jobs = j;
    m->jobs_tail = j;
    pthread_cond_broadcast(&m->job_added); /* poppers may wait on other queues */
    pthread_mutex_unlock(&m->jobs_lock);
    return STORE_OK;
}

/* A job of `queue` whose lease expired, else its oldest job never popped; NULL
 * when there is none. Called locked. */
static mem_job *job_next_locked(memory_store *m, const char *queue, int64_t now) {
    mem_job *fresh = NULL;
    for (mem_job *j = m->jobs; j; j = j->next) {
        if (strcmp(j->queue, queue)) continue;
        if (j->id && j->lease_until <= now) return j;
        if (!j->id && !fresh) fresh = j;
    }
    return fresh;
}

static mem_job *job_find_locked(memory_store *m, const char *queue, const char *id) {
    for (mem_job *j = m->jobs; j; j = j->next) {
        char text[STORE_JOB_ID_MAX];
        snprintf(text, sizeof text, "%llu", (unsigned long long)j->id);
        if (j->id && !strcmp(j->queue, queue) && !strcmp(text, id)) return j;
    }
    return NULL;
}

static int mem_job_pop(store *st, const char *queue, int timeout_ms, int64_t lease_ms, store_job *out) {
    memory_store *m = (memory_store *)st;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(timeout_ms < 500 ? timeout_ms : 500) * 1000000;
    deadline.tv_sec += (time_t)(ns / 1000000000);
    deadline.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&m->jobs_lock);
    mem_job *j;
    /* A push wakes the wait; an expiring lease is seen by the next call. */
    while (!(j = job_next_locked(m, queue, time_now_ms())))
        if (pthread_cond_timedwait(&m->job_added, &m->jobs_lock, &deadline)) break;
    int rc = STORE_NOT_FOUND;
    if (j && (rc = value_copy(&out->payload, &j->payload)) == STORE_OK) {
        if (!j->id) j->id = ++m->last_job_id;
        j->lease_until = time_now_ms() + lease_ms;
        out->deliveries = ++j->deliveries;
        snprintf(out->id, sizeof out->id, "%llu", (unsigned long long)j->id);
    }
    pthread_mutex_unlock(&m->jobs_lock);
    return rc;
}

static int mem_job_renew(store *st, const char *queue, const char *id, int64_t lease_ms) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->jobs_lock);
    mem_job *j = job_find_locked(m, queue, id);
    if (j) j->lease_until = time_now_ms() + lease_ms;
    if (j && lease_ms <= 0) pthread_cond_broadcast(&m->job_added);
    pthread_mutex_unlock(&m->jobs_lock);
    return j ? STORE_OK : STORE_NOT_FOUND;
}

static int mem_job_ack(store *st, const char *queue, const char *id) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->jobs_lock);
    mem_job *j = job_find_locked(m, queue, id), *prev = NULL;
    if (j) {
        for (mem_job *p = m->jobs; p != j; p = p->next) prev = p;
        if (prev) prev->next = j->next;
        else m->jobs = j->next;
        if (m->jobs_tail == j) m->jobs_tail = prev;
    }
    pthread_mutex_unlock(&m->jobs_lock);
    if (!j) return STORE_NOT_FOUND;
    store_value_free(&j->payload);
    free(j);
    return STORE_OK;
}

static int mem_deadline_add(store *st, const char *index, const char *member, int64_t deadline_ms) {
    memory_store *m = (memory_store *)st;
    if (strlen(index) > NAME_MAX_LEN || strlen(member) > NAME_MAX_LEN * 4) return STORE_NOT_FOUND;
    pthread_mutex_lock(&m->jobs_lock);
    mem_deadline *d = m->deadlines;
    while (d && (strcmp(d->index, index) || strcmp(d->member, member))) d = d->next;
    if (!d && (d = calloc(1, sizeof(*d)))) {
        strcpy(d->index, index);
        strcpy(d->member, member);
        d->next = m->deadlines;
        m->deadlines = d;
    }
    if (d) d->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&m->jobs_lock);
    return d ? STORE_OK : STORE_NOMEM;
}

static int mem_deadline_claim(store *st, const char *index, int64_t now_ms, store_value *member) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->jobs_lock);
    mem_deadline **pp = &m->deadlines;
    while (*pp && (strcmp((*pp)->index, index) || (*pp)->deadline_ms > now_ms)) pp = &(*pp)->next;
    mem_deadline *d = *pp;
    if (d) *pp = d->next;
    pthread_mutex_unlock(&m->jobs_lock);
    if (!d) return STORE_NOT_FOUND;
    store_value v = {(uint8_t *)d->member, strlen(d->member)};
    int rc = value_copy(member, &v);
    free(d);
    return rc;
}

static void jobs_free(memory_store *m) {
    while (m->jobs) {
        mem_job *next = m->jobs->next;
        store_value_free(&m->jobs->payload);
        free(m->jobs);
        m->jobs = next;
    }
    while (m->deadlines) {
        mem_deadline *next = m->deadlines->next;
        free(m->deadlines);
        m->deadlines = next;
    }
    pthread_mutex_destroy(&m->jobs_lock);
    pthread_cond_destroy(&m->job_added);
}

static const char *mem_status(store *st) {
    (void)st;
    return "UP";
}

/* Frees expired sessions once a second so memory does not wait for a read. */
static void *sweeper_main(void *p) {
    memory_store *m = p;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 1;
        pthread_cond_timedwait(&m->stop_cond, &m->lock, &deadline);
        int64_t now = time_now_ms();
        for (int b = 0; b < BUCKETS; b++) {
            mem_session **pp = &m->buckets[b];
            while (*pp) {
                mem_session *s = *pp;
                if (s->expires_ms <= now) {
                    *pp = s->next;
                    session_destroy(s);
                } else {
                    pp = &s->next;
                }
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static const char *mem_durability(store *st) {
    (void)st;
    return NULL;
}

static void mem_destroy(store *st) {
    memory_store *m = (memory_store *)st;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->stop_cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->sweeper, NULL);
    for (int b = 0; b < BUCKETS; b++) {
        mem_session *s = m->buckets[b];
        while (s) {
            mem_session *next = s->next;
            session_destroy(s);
            s = next;
        }
    }
    while (m->usage) {
        mem_usage *next = m->usage->next;
        free(m->usage);
        m->usage = next;
    }
    jobs_free(m);
    pthread_mutex_destroy(&m->usage_lock);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->stop_cond);
    free(m);
}

static const store_ops memory_ops = {
    .name = "memory",
    .session_create = mem_session_create,
    .session_get = mem_session_get,
    .session_update = mem_session_update,
    .session_delete = mem_session_delete,
    .item_put = mem_item_put,
    .item_get = mem_item_get,
    .item_list = mem_item_list,
    .item_delete = mem_item_delete,
    .item_delete_all = mem_item_delete_all,
    .usage_add = mem_usage_add,
    .usage_get = mem_usage_get,
    .job_push = mem_job_push,
    .job_pop = mem_job_pop,
    .job_renew = mem_job_renew,
    .job_ack = mem_job_ack,
    .deadline_add = mem_deadline_add,
    .deadline_claim = mem_deadline_claim,
    .status = mem_status,
    .durability = mem_durability,
    .destroy = mem_destroy,
};

store *store_memory_create(size_t max_items_per_session) {
    memory_store *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->base.ops = &memory_ops;
    m->max_items = max_items_per_session;
    pthread_mutex_init(&m->usage_lock, NULL);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->stop_cond, NULL);
    pthread_mutex_init(&m->jobs_lock, NULL);
    pthread_cond_init(&m->job_added, NULL);
    if (pthread_create(&m->sweeper, NULL, sweeper_main, m)) {
        jobs_free(m);
        pthread_mutex_destroy(&m->usage_lock);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->stop_cond);
        free(m);
        return NULL;
    }
    return &m->base;
}
