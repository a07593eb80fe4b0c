/* The state store: bio-sessions and the items inside them (faces, liveness state),
 * every one scoped to a tenant and expiring with its session. Values are opaque
 * byte strings (the api layer serialises them), so the same interface maps onto an
 * in-process hash table or onto Redis hashes with Redis's own expiry. It also holds
 * the per-API-key usage counters (billing), which never expire, so that several
 * instances on one Redis count together. Handlers only ever see this header.
 *
 * It also carries the two pieces of coordination that several instances need
 * (docs/distributed.md): named job queues with leases (any instance pushes, any
 * instance pops; a popped job stays in flight under a lease until its popper acks
 * it, and a job whose lease ran out, because its popper died, is handed out again:
 * at-least-once delivery) and deadline indexes (members due at a time; each due
 * member is claimed by exactly one caller, which is how a TIMEOUT callback is sent
 * once across instances). */
#ifndef STORE_STORE_H
#define STORE_STORE_H
#include <stddef.h>
#include <stdint.h>

enum {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1,   /* no such session/item for this tenant (or expired) */
    STORE_EXISTS = -2,
    STORE_UNAVAILABLE = -3, /* backend down: 503 */
    STORE_NOMEM = -4,
    STORE_FULL = -5,        /* per-session item limit reached */
    STORE_CONFLICT = -6,    /* compare-and-set lost */
    STORE_CORRUPT = -7,     /* a value failed its integrity check (store/sealed_store.h) */
};

typedef struct {
    uint8_t *data;
    size_t len;
} store_value; /* malloc'd; release with store_value_free */

void store_value_free(store_value *v);

#define STORE_JOB_ID_MAX 32

/* A popped job: its payload, and the lease that job_renew and job_ack name. */
typedef struct {
    store_value payload;
    char id[STORE_JOB_ID_MAX]; /* unique within its queue; kept when the job is handed out again */
    int deliveries;            /* 1 the first time, +1 each time an expired lease hands it out again */
} store_job;

void store_job_free(store_job *j); /* frees the payload; NULL is fine */

/* Usage counters: per API key name, per operation name. */
#define STORE_USAGE_NAME_MAX 63 /* longest key name or operation name counted */
#define STORE_USAGE_MAX_OPS 64  /* operations per key; the route table has fewer */

typedef struct {
    char operation[STORE_USAGE_NAME_MAX + 1];
    long calls;
} store_usage;

typedef struct store store;

typedef struct store_ops {
    const char *name;
    int (*session_create)(store *s, const char *tenant, const char *sid, const store_value *v,
                          int64_t expires_ms);
    int (*session_get)(store *s, const char *tenant, const char *sid, store_value *out,
                       int64_t *expires_ms);
    /* Replaces the session value if its current value equals `expected` (NULL = any). */
    int (*session_update)(store *s, const char *tenant, const char *sid, const store_value *expected,
                          const store_value *v);
    int (*session_delete)(store *s, const char *tenant, const char *sid);
    int (*item_put)(store *s, const char *tenant, const char *sid, const char *kind,
                    const char *item_id, const store_value *v);
    int (*item_get)(store *s, const char *tenant, const char *sid, const char *kind,
                    const char *item_id, store_value *out);
    /* All items of one kind, oldest first; *out is a malloc'd array of values. */
    int (*item_list)(store *s, const char *tenant, const char *sid, const char *kind,
                     store_value **out, size_t *count);
    int (*item_delete)(store *s, const char *tenant, const char *sid, const char *kind,
                       const char *item_id);
    int (*item_delete_all)(store *s, const char *tenant, const char *sid, const char *kind);
    /* Adds delta to the count of (key_name, operation), starting from 0. Names longer
     * than STORE_USAGE_NAME_MAX are STORE_NOT_FOUND; the memory store answers
     * STORE_FULL past STORE_USAGE_MAX_OPS operations of one key. */
    int (*usage_add)(store *s, const char *key_name, const char *operation, long delta);
    /* Every operation counted for key_name (at most max, in no particular order);
     * a key never counted is STORE_OK with *count = 0. */
    int (*usage_get)(store *s, const char *key_name, store_usage *out, size_t max, size_t *count);
    /* Appends payload to the FIFO queue `queue` (a short name). */
    int (*job_push)(store *s, const char *queue, const store_value *payload);
    /* Takes a job whose lease has expired, else the oldest queued job, waiting at
     * most timeout_ms (capped at 500) for one; STORE_NOT_FOUND when none came. The
     * job is leased to the caller for lease_ms (> 0): nobody else gets it until the
     * lease runs out. Lease times are the store's clock (Redis: TIME), so the
     * instances' clocks need not agree. */
    int (*job_pop)(store *s, const char *queue, int timeout_ms, int64_t lease_ms, store_job *out);
    /* Extends the lease of job id to lease_ms from now (0 = expired now: hand it
     * out again at once). STORE_NOT_FOUND when the job was acked. */
    int (*job_renew)(store *s, const char *queue, const char *id, int64_t lease_ms);
    /* The job is done: it is never handed out again. STORE_NOT_FOUND when it was
     * already acked (by another popper it was handed out to again). */
    int (*job_ack)(store *s, const char *queue, const char *id);
    /* Files member (a short string) under deadline_ms in `index`; filing it again
     * moves its deadline. */
    int (*deadline_add)(store *s, const char *index, const char *member, int64_t deadline_ms);
    /* Removes and returns one member whose deadline is <= now_ms, atomically:
     * concurrent claimers never get the same member. STORE_NOT_FOUND when none. */
    int (*deadline_claim)(store *s, const char *index, int64_t now_ms, store_value *member);
    const char *(*status)(store *s); /* "UP" or a reason */
    /* NULL when writes the store acknowledged survive a restart of its server; else
     * a sentence saying what could be lost, or why that is unknown (a string owned
     * by the store, unchanged once its server has been checked). The memory store
     * answers NULL: its data lives and dies with the process by design. */
    const char *(*durability)(store *s);
    void (*destroy)(store *s);
} store_ops;

struct store {
    const store_ops *ops;
};

/* "memory" or "redis://HOST[:PORT][/DB]" */
store *store_open(const char *url, size_t max_items_per_session, char *err, size_t err_len);
/* The same, with the Redis AUTH password (NULL or "" = none; ignored for "memory"). */
store *store_open_auth(const char *url, const char *redis_password, size_t max_items_per_session, char *err,
                       size_t err_len);
void store_close(store *s);
void store_values_free(store_value *values, size_t count);

store *store_memory_create(size_t max_items_per_session);
/* Shared store in Redis (redis_store.c). Starts even when Redis is unreachable
 * (operations then fail with STORE_UNAVAILABLE until it is back); NULL with err on
 * a bad URL or a password/database that Redis refuses. */
store *store_redis_create(const char *url, const char *password, size_t max_items_per_session, char *err,
                          size_t err_len);
/* Splits redis://HOST[:PORT][/DB] (the gallery store shares it); -1 with err. */
int store_redis_parse_url(const char *url, char *host, size_t host_len, int *port, int *db, char *err,
                          size_t err_len);

#endif
