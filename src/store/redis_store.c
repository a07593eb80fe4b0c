/* Redis store: the same contract as memory_store.c, kept in Redis so that many
 * stateless server processes share sessions. Layout of one session (tenant T, id S,
 * both escaped, see key_escape):
 *
 *   bio:{T:S}     hash: s = session value, e = expiry (epoch ms), n = item sequence,
 *                       i:KIND:ID = item value
 *   bio:{T:S}:o   sorted set: i:KIND:ID scored by sequence (insertion order)
 *
 *   usage:{K}     hash: OPERATION = calls, for API key name K (escaped); no expiry:
 *                 these are the billing counts, shared by every instance
 *   jobs:{Q}      list: job queue Q, jobs never popped yet (LPUSH in, RPOP out: FIFO)
 *   jobs:{Q}:l    sorted set: leased job ids scored by lease end (epoch ms, Redis's clock)
 *   jobs:{Q}:p    hash: ID = payload, n:ID = deliveries, of each leased job
 *   jobs:{Q}:n    counter: the last job id given out
 *   due:{I}       sorted set: deadline index I, members scored by deadline (epoch ms)
 *
 * Both session keys carry PEXPIREAT = the session's expiry, so Redis's own expiry is the TTL
 * and every item dies with its session. The hash tag {T:S} puts both keys in one
 * Cluster slot, so each Lua script below touches a single slot and is atomic: a
 * session and its items are never half-written. Every failure (connection refused,
 * timeout, Redis error) becomes STORE_UNAVAILABLE; a broken connection is dropped and
 * reopened by a later call, so the server recovers without a restart.
 *
 * Connections: a mutex-protected pool of at most POOL_MAX hiredis contexts, opened
 * lazily; a caller holds one context for the duration of one operation. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

#define POOL_MAX 32
#define HOST_MAX 256
#define PASSWORD_MAX 256
#define TIMEOUT_MS 1000          /* connect, command, and waiting for a free connection */
#define RECONNECT_BACKOFF_MS 100 /* after a failed connect, fail fast for this long */
/* Same identifier limits as the memory store (longer ones are "not found"). */
#define TENANT_MAX 63
#define SID_MAX 63
#define KIND_MAX 15
#define ITEM_ID_MAX 63
/* Escaping can triple a name: "bio:{" + 3*63 + ":" + 3*63 + "}:o" fits. */
#define KEY_MAX 400
#define FIELD_MAX 256

/* Lua scripts; results are integers (negative = store error code) or arrays. */
enum { SCRIPT_CREATE, SCRIPT_UPDATE, SCRIPT_DELETE, SCRIPT_PUT, SCRIPT_LIST, SCRIPT_DEL_ITEM,
       SCRIPT_DEL_ALL, SCRIPT_CLAIM, SCRIPT_JOB_POP, SCRIPT_JOB_RENEW, SCRIPT_JOB_ACK, SCRIPT_COUNT };

/* Redis's clock in ms, so lease ends do not depend on the instances' clocks. */
#define LUA_NOW_MS "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"


static const char *const scripts[SCRIPT_COUNT] = {
    [SCRIPT_CREATE] = /* KEYS h o; ARGV value expires_ms */
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -2 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 's', ARGV[1], 'e', ARGV[2], 'n', 0)\n"
    "redis.call('PEXPIREAT', KEYS[1], ARGV[2])\n"
    "return 0\n",
    [SCRIPT_UPDATE] = /* KEYS h; ARGV check(0|1) expected value */
    "local cur = redis.call('HGET', KEYS[1], 's')\n"
    "if not cur then return -1 end\n"
    "if ARGV[1] == '1' and cur ~= ARGV[2] then return -6 end\n"
    "redis.call('HSET', KEYS[1], 's', ARGV[3])\n"
    "return 0\n",
    [SCRIPT_DELETE] = /* KEYS h o */
    "if redis.call('DEL', KEYS[1]) == 0 then return -1 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return 0\n",
    [SCRIPT_PUT] = /* KEYS h o; ARGV field value max_items. Replacing moves to the end. */
    "local e = redis.call('HGET', KEYS[1], 'e')\n"
    "if not e then return -1 end\n"
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and\n"
    "   redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return -5 end\n"
    "local n = redis.call('HINCRBY', KEYS[1], 'n', 1)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], n, ARGV[1])\n"
    "redis.call('PEXPIREAT', KEYS[2], e)\n"
    "return 0\n",
    [SCRIPT_LIST] = /* KEYS h o; ARGV prefix */
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local out = {}\n"
    "for _, f in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do\n"
    "  if string.sub(f, 1, #ARGV[1]) == ARGV[1] then\n"
    "    local v = redis.call('HGET', KEYS[1], f)\n"
    "    if v then out[#out + 1] = v end\n"
    "  end\n"
    "end\n"
    "return out\n",
    [SCRIPT_DEL_ITEM] = /* KEYS h o; ARGV field */
    "if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 0\n",
    [SCRIPT_DEL_ALL] = /* KEYS h o; ARGV prefix */
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "for _, f in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do\n"
    "  if string.sub(f, 1, #ARGV[1]) == ARGV[1] then\n"
    "    redis.call('HDEL', KEYS[1], f)\n"
    "    redis.call('ZREM', KEYS[2], f)\n"
    "  end\n"
    "end\n"
    "return 0\n",
    [SCRIPT_CLAIM] = /* KEYS due; ARGV now_ms. Find-and-remove in one step: one claimer wins. */
    "local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)\n"
    "if #m == 0 then return false end\n"
    "redis.call('ZREM', KEYS[1], m[1])\n"
    "return m[1]\n",
    [SCRIPT_JOB_POP] = /* KEYS list lease payloads counter; ARGV lease_ms. An expired lease first. */
    LUA_NOW_MS
    "local id = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)[1]\n"
    "local p\n"
    "if id then\n"
    "  p = redis.call('HGET', KEYS[3], id)\n"
    "  if not p then redis.call('ZREM', KEYS[2], id) return false end\n"
    "else\n"
    "  p = redis.call('RPOP', KEYS[1])\n"
    "  if not p then return false end\n"
    "  id = tostring(redis.call('INCR', KEYS[4]))\n"
    "  redis.call('HSET', KEYS[3], id, p)\n"
    "end\n"
    "local n = redis.call('HINCRBY', KEYS[3], 'n:' .. id, 1)\n"
    "redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[1])), id)\n"
    "return {id, p, n}\n",
    [SCRIPT_JOB_RENEW] = /* KEYS lease; ARGV id lease_ms */
    LUA_NOW_MS
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end\n"
    "redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])\n"
    "return 0\n",
    [SCRIPT_JOB_ACK] = /* KEYS lease payloads; ARGV id */
    "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
    "redis.call('HDEL', KEYS[2], ARGV[1], 'n:' .. ARGV[1])\n"
    "return 0\n",
};

/* Reasons shown by status(); constant strings so callers on any thread may keep them. */
static const char *const DOWN_CONNECT = "DOWN: cannot connect to Redis";
static const char *const DOWN_IO = "DOWN: Redis connection lost or timed out";
static const char *const DOWN_AUTH = "DOWN: Redis refused the password (AUTH)";
static const char *const DOWN_SELECT = "DOWN: Redis refused the database number (SELECT)";
static const char *const DOWN_ERROR = "DOWN: Redis answered with an error";
static const char *const DOWN_POOL = "DOWN: no free Redis connection within the timeout";

typedef struct {
    redisContext *ctx; /* NULL until first use, and after a failure */
    bool busy;
} redis_slot;

typedef struct {
    store base;
    char host[HOST_MAX];
    int port, db;
    char password[PASSWORD_MAX];
    size_t max_items;
    char sha[SCRIPT_COUNT][41];
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t slot_freed;
    redis_slot slots[POOL_MAX];
    int64_t connect_after_ms; /* backoff: no connect attempt before this time */
    const char *last_error;   /* NULL when the last operation worked */
    pthread_mutex_t durability_lock; /* guards the two below; held while checking */
    bool durability_checked;         /* Redis answered: the note below is final */
    char durability[256];            /* "" = durable, else what could be lost */
} redis_store;

typedef struct {
    char hash[KEY_MAX], order[KEY_MAX];
} session_keys;

/* --- names ------------------------------------------------------------------- */

/* Percent-escapes everything but [A-Za-z0-9._-], so ':' '{' '}' never come from
 * user input: keys of different tenants/ids can never collide, and the Cluster hash
 * tag is always the one we wrote. Returns -1 when out is too small. */
static int key_escape(const char *in, char *out, size_t out_len) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     *p == '.' || *p == '_' || *p == '-';
        if (o + (plain ? 1 : 3) >= out_len) return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

static int make_usage_key(const char *key_name, char out[KEY_MAX]) {
    char k[3 * STORE_USAGE_NAME_MAX + 1];
    if (strlen(key_name) > STORE_USAGE_NAME_MAX || key_escape(key_name, k, sizeof k)) return -1;
    snprintf(out, KEY_MAX, "usage:{%s}", k);
    return 0;
}

/* "PREFIX:{NAME}" for a job queue or deadline index name. */
static int make_named_key(const char *prefix, const char *name, char out[KEY_MAX]) {
    char n[3 * STORE_USAGE_NAME_MAX + 1];
    if (strlen(name) > STORE_USAGE_NAME_MAX || key_escape(name, n, sizeof n)) return -1;
    snprintf(out, KEY_MAX, "%s:{%s}", prefix, n);
    return 0;
}

static int make_keys(const char *tenant, const char *sid, session_keys *k) {
    char t[3 * TENANT_MAX + 1], s[3 * SID_MAX + 1];
    if (strlen(tenant) > TENANT_MAX || strlen(sid) > SID_MAX) return -1;
    if (key_escape(tenant, t, sizeof t) || key_escape(sid, s, sizeof s)) return -1;
    snprintf(k->hash, sizeof k->hash, "bio:{%s:%s}", t, s);
    snprintf(k->order, sizeof k->order, "bio:{%s:%s}:o", t, s);
    return 0;
}

/* "i:KIND:" (id NULL, a listing prefix) or "i:KIND:ID". */
static int make_field(const char *kind, const char *id, char out[FIELD_MAX]) {
    char k[3 * KIND_MAX + 1], i[3 * ITEM_ID_MAX + 1] = "";
    if (strlen(kind) > KIND_MAX || (id && strlen(id) > ITEM_ID_MAX)) return -1;
    if (key_escape(kind, k, sizeof k) || (id && key_escape(id, i, sizeof i))) return -1;
    snprintf(out, FIELD_MAX, "i:%s:%s", k, i);
    return 0;
}

/* --- connections ------------------------------------------------------------- */

static struct timeval timeout_tv(void) {
    return (struct timeval){.tv_sec = TIMEOUT_MS / 1000, .tv_usec = (TIMEOUT_MS % 1000) * 1000};
}

/* One command on a fresh connection during set-up; true when it answered OK. */
static bool setup_command_ok(redisContext *c, int argc, const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    return ok;
}

/* Opens, authenticates and selects the database; NULL with *why on failure. */
static redisContext *connect_redis(redis_store *r, const char **why) {
    redisContext *c = redisConnectWithTimeout(r->host, r->port, timeout_tv());
    if (!c || c->err) {
        *why = DOWN_CONNECT;
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, timeout_tv());
    redisEnableKeepAlive(c);
    char db[16];
    snprintf(db, sizeof db, "%d", r->db);
    const char *auth[] = {"AUTH", r->password}, *select[] = {"SELECT", db};
    if (r->password[0] && !setup_command_ok(c, 2, auth)) *why = c->err ? DOWN_IO : DOWN_AUTH;
    else if (r->db && !setup_command_ok(c, 2, select)) *why = c->err ? DOWN_IO : DOWN_SELECT;
    else return c;
    redisFree(c);
    return NULL;
}

static void deadline_after(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes a free slot (waiting at most TIMEOUT_MS), preferring one with an open
 * connection. Returns NULL when none became free. */
static redis_slot *slot_acquire(redis_store *r) {
    struct timespec deadline;
    deadline_after(&deadline, TIMEOUT_MS);
    pthread_mutex_lock(&r->lock);
    redis_slot *got = NULL;
    for (;;) {
        for (int i = 0; i < POOL_MAX; i++) {
            redis_slot *s = &r->slots[i];
            if (s->busy) continue;
            if (s->ctx) {
                got = s;
                break;
            }
            if (!got) got = s;
        }
        if (got || pthread_cond_timedwait(&r->slot_freed, &r->lock, &deadline) == ETIMEDOUT) break;
    }
    if (got) got->busy = true;
    else r->last_error = DOWN_POOL;
    pthread_mutex_unlock(&r->lock);
    return got;
}

/* Closes every idle connection: once one connection broke, the others to the same
 * server (restarted or failed over) are very likely stale too. Called locked. */
static void drop_idle_locked(redis_store *r) {
    for (int i = 0; i < POOL_MAX; i++) {
        if (!r->slots[i].busy && r->slots[i].ctx) {
            redisFree(r->slots[i].ctx);
            r->slots[i].ctx = NULL;
        }
    }
}

/* Returns a slot. After a broken connection the idle ones are closed too, so the
 * next users reconnect instead of failing one by one on stale sockets. */
static void slot_release(redis_store *r, redis_slot *s, bool broken, const char *error) {
    pthread_mutex_lock(&r->lock);
    if (broken) drop_idle_locked(r);
    s->busy = false;
    r->last_error = error;
    pthread_cond_signal(&r->slot_freed);
    pthread_mutex_unlock(&r->lock);
}

/* Makes sure the slot holds an open connection, honouring the reconnect backoff. */
static bool slot_connect(redis_store *r, redis_slot *s, const char **why) {
    if (s->ctx) return true;
    pthread_mutex_lock(&r->lock);
    bool wait = time_monotonic_ms() < r->connect_after_ms;
    const char *last = r->last_error;
    pthread_mutex_unlock(&r->lock);
    if (wait) {
        *why = last ? last : DOWN_CONNECT;
        return false;
    }
    s->ctx = connect_redis(r, why);
    pthread_mutex_lock(&r->lock);
    r->connect_after_ms = s->ctx ? 0 : time_monotonic_ms() + RECONNECT_BACKOFF_MS;
    pthread_mutex_unlock(&r->lock);
    return s->ctx != NULL;
}

/* --- commands ---------------------------------------------------------------- */

/* Runs one command (argv with lengths) on a pooled connection. A connection that
 * was reused and turned out dead (Redis restarted since) is retried once on a new
 * connection, unless it timed out: a timed-out command may have run, and must not
 * run twice. The caller owns the reply; NULL = unavailable. */
static redisReply *run(redis_store *r, int argc, const char **argv, const size_t *lens) {
    redis_slot *s = slot_acquire(r);
    if (!s) return NULL;
    const char *why = NULL;
    bool broken = false;
    redisReply *reply = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = s->ctx != NULL;
        if (!slot_connect(r, s, &why)) break;
        reply = redisCommandArgv(s->ctx, argc, argv, lens);
        int saved_errno = errno;
        if (reply) {
            why = NULL; /* a retry worked */
            break;
        }
        bool timed_out = s->ctx->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
        redisFree(s->ctx);
        s->ctx = NULL;
        why = DOWN_IO;
        broken = true;
        if (!reused || timed_out) break;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8)) {
        why = DOWN_ERROR;
        log_event("error", "redis store: %.200s", reply->str);
    }
    slot_release(r, s, broken, why);
    return reply;
}

/* EVALSHA, falling back to EVAL when Redis lost its script cache (restart, flush). */
static redisReply *run_script(redis_store *r, int script, int nkeys, int nargs, const char **args,
                              const size_t *lens) {
    enum { ARGS_MAX = 8 };
    const char *argv[3 + ARGS_MAX];
    size_t argl[3 + ARGS_MAX];
    char numkeys[8];
    snprintf(numkeys, sizeof numkeys, "%d", nkeys);
    argv[0] = "EVALSHA", argl[0] = 7;
    argv[1] = r->sha[script], argl[1] = 40;
    argv[2] = numkeys, argl[2] = strlen(numkeys);
    for (int i = 0; i < nargs && i < ARGS_MAX; i++) {
        argv[3 + i] = args[i];
        argl[3 + i] = lens ? lens[i] : strlen(args[i]);
    }
    int argc = 3 + (nargs < ARGS_MAX ? nargs : ARGS_MAX);
    redisReply *reply = run(r, argc, argv, argl);
    if (reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8)) {
        freeReplyObject(reply);
        argv[0] = "EVAL", argl[0] = 4;
        argv[1] = scripts[script], argl[1] = strlen(scripts[script]);
        reply = run(r, argc, argv, argl);
    }
    return reply;
}

/* Maps an integer script result (0 or a negative store code) to a store code. */
static int reply_code(redisReply *reply) {
    int rc = STORE_UNAVAILABLE;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        long long v = reply->integer;
        if (v == 0 || v == STORE_NOT_FOUND || v == STORE_EXISTS || v == STORE_FULL || v == STORE_CONFLICT)
            rc = (int)v;
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

static int value_from_reply(const redisReply *reply, store_value *out) {
    out->data = malloc(reply->len ? reply->len : 1);
    if (!out->data) return STORE_NOMEM;
    memcpy(out->data, reply->str, reply->len);
    out->len = reply->len;
    return STORE_OK;
}

/* --- store operations -------------------------------------------------------- */

static int rs_session_create(store *st, const char *tenant, const char *sid, const store_value *v,
                             int64_t expires_ms) {
    session_keys k;
    if (make_keys(tenant, sid, &k)) return STORE_NOT_FOUND;
    char exp[24];
    snprintf(exp, sizeof exp, "%lld", (long long)expires_ms);
    const char *args[] = {k.hash, k.order, (const char *)v->data, exp};
    size_t lens[] = {strlen(k.hash), strlen(k.order), v->len, strlen(exp)};
    return reply_code(run_script((redis_store *)st, SCRIPT_CREATE, 2, 4, args, lens));
}

static int rs_session_get(store *st, const char *tenant, const char *sid, store_value *out,
                          int64_t *expires_ms) {
    session_keys k;
    if (make_keys(tenant, sid, &k)) return STORE_NOT_FOUND;
    const char *argv[] = {"HMGET", k.hash, "s", "e"};
    redisReply *reply = run((redis_store *)st, 4, argv, NULL);
    int rc = STORE_UNAVAILABLE;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        redisReply *s = reply->element[0], *e = reply->element[1];
        if (s->type != REDIS_REPLY_STRING) rc = STORE_NOT_FOUND;
        else rc = value_from_reply(s, out);
        if (rc == STORE_OK && expires_ms)
            *expires_ms = e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

static int rs_session_update(store *st, const char *tenant, const char *sid, const store_value *expected,
                             const store_value *v) {
    session_keys k;
    if (make_keys(tenant, sid, &k)) return STORE_NOT_FOUND;
    const char *args[] = {k.hash, expected ? "1" : "0", expected ? (const char *)expected->data : "",
                          (const char *)v->data};
    size_t lens[] = {strlen(k.hash), 1, expected ? expected->len : 0, v->len};
    return reply_code(run_script((redis_store *)st, SCRIPT_UPDATE, 1, 4, args, lens));
}

static int rs_session_delete(store *st, const char *tenant, const char *sid) {
    session_keys k;
    if (make_keys(tenant, sid, &k)) return STORE_NOT_FOUND;
    const char *args[] = {k.hash, k.order};
    return reply_code(run_script((redis_store *)st, SCRIPT_DELETE, 2, 2, args, NULL));
}

static int rs_item_put(store *st, const char *tenant, const char *sid, const char *kind, const char *item_id,
                       const store_value *v) {
    redis_store *r = (redis_store *)st;
    session_keys k;
    char field[FIELD_MAX], max[24];
    if (make_keys(tenant, sid, &k) || make_field(kind, item_id, field)) return STORE_NOT_FOUND;
    snprintf(max, sizeof max, "%zu", r->max_items);
    const char *args[] = {k.hash, k.order, field, (const char *)v->data, max};
    size_t lens[] = {strlen(k.hash), strlen(k.order), strlen(field), v->len, strlen(max)};
    return reply_code(run_script(r, SCRIPT_PUT, 2, 5, args, lens));
}

static int rs_item_get(store *st, const char *tenant, const char *sid, const char *kind, const char *item_id,
                       store_value *out) {
    session_keys k;
    char field[FIELD_MAX];
    if (make_keys(tenant, sid, &k) || make_field(kind, item_id, field)) return STORE_NOT_FOUND;
    const char *argv[] = {"HGET", k.hash, field};
    redisReply *reply = run((redis_store *)st, 3, argv, NULL);
    int rc = STORE_UNAVAILABLE;
    if (reply && reply->type == REDIS_REPLY_NIL) rc = STORE_NOT_FOUND;
    else if (reply && reply->type == REDIS_REPLY_STRING) rc = value_from_reply(reply, out);
    if (reply) freeReplyObject(reply);
    return rc;
}

static int list_from_reply(const redisReply *reply, store_value **out, size_t *count) {
    if (!reply->elements) return STORE_OK;
    store_value *vals = calloc(reply->elements, sizeof(*vals));
    if (!vals) return STORE_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) continue;
        if (value_from_reply(reply->element[i], &vals[n])) {
            store_values_free(vals, n);
            return STORE_NOMEM;
        }
        n++;
    }
    *out = vals;
    *count = n;
    return STORE_OK;
}

static int rs_item_list(store *st, const char *tenant, const char *sid, const char *kind, store_value **out,
                        size_t *count) {
    *out = NULL;
    *count = 0;
    session_keys k;
    char prefix[FIELD_MAX];
    if (make_keys(tenant, sid, &k) || make_field(kind, NULL, prefix)) return STORE_NOT_FOUND;
    const char *args[] = {k.hash, k.order, prefix};
    redisReply *reply = run_script((redis_store *)st, SCRIPT_LIST, 2, 3, args, NULL);
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        int rc = list_from_reply(reply, out, count);
        freeReplyObject(reply);
        return rc;
    }
    return reply_code(reply);
}

static int rs_item_delete(store *st, const char *tenant, const char *sid, const char *kind,
                          const char *item_id) {
    session_keys k;
    char field[FIELD_MAX];
    if (make_keys(tenant, sid, &k) || make_field(kind, item_id, field)) return STORE_NOT_FOUND;
    const char *args[] = {k.hash, k.order, field};
    return reply_code(run_script((redis_store *)st, SCRIPT_DEL_ITEM, 2, 3, args, NULL));
}

static int rs_item_delete_all(store *st, const char *tenant, const char *sid, const char *kind) {
    session_keys k;
    char prefix[FIELD_MAX];
    if (make_keys(tenant, sid, &k) || make_field(kind, NULL, prefix)) return STORE_NOT_FOUND;
    const char *args[] = {k.hash, k.order, prefix};
    return reply_code(run_script((redis_store *)st, SCRIPT_DEL_ALL, 2, 3, args, NULL));
}

/* One HINCRBY: atomic in Redis, so concurrent instances never lose a call. The
 * operation is a hash field (binary-safe), stored as is to stay readable. */
static int rs_usage_add(store *st, const char *key_name, const char *operation, long delta) {
    char key[KEY_MAX], by[24];
    if (make_usage_key(key_name, key) || strlen(operation) > STORE_USAGE_NAME_MAX) return STORE_NOT_FOUND;
    snprintf(by, sizeof by, "%ld", delta);
    const char *argv[] = {"HINCRBY", key, operation, by};
    redisReply *reply = run((redis_store *)st, 4, argv, NULL);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_UNAVAILABLE;
    if (reply) freeReplyObject(reply);
    return rc;
}

/* HGETALL answers field, value, field, value...; fields too long for store_usage
 * were never written by usage_add and are skipped. */
static size_t usage_from_reply(const redisReply *reply, store_usage *out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i + 1 < reply->elements && n < max; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || f->len > STORE_USAGE_NAME_MAX)
            continue;
        memcpy(out[n].operation, f->str, f->len);
        out[n].operation[f->len] = '\0';
        out[n].calls = strtol(v->str, NULL, 10);
        n++;
    }
    return n;
}

static int rs_usage_get(store *st, const char *key_name, store_usage *out, size_t max, size_t *count) {
    *count = 0;
    char key[KEY_MAX];
    if (make_usage_key(key_name, key)) return STORE_NOT_FOUND;
    const char *argv[] = {"HGETALL", key};
    redisReply *reply = run((redis_store *)st, 2, argv, NULL);
    int rc = reply && reply->type == REDIS_REPLY_ARRAY ? STORE_OK : STORE_UNAVAILABLE;
    if (rc == STORE_OK) *count = usage_from_reply(reply, out, max);
    if (reply) freeReplyObject(reply);
    return rc;
}

/* --- job queues and deadline indexes ---------------------------------------------- */

typedef struct {
    char list[KEY_MAX], lease[KEY_MAX], payloads[KEY_MAX], counter[KEY_MAX];
} queue_keys;

/* The four keys of queue Q share the hash tag {Q}: one Cluster slot per queue. */
static int make_queue_keys(const char *queue, queue_keys *k) {
    char n[3 * STORE_USAGE_NAME_MAX + 1];
    if (strlen(queue) > STORE_USAGE_NAME_MAX || key_escape(queue, n, sizeof n)) return -1;
    snprintf(k->list, sizeof k->list, "jobs:{%s}", n);
    snprintf(k->lease, sizeof k->lease, "jobs:{%s}:l", n);
    snprintf(k->payloads, sizeof k->payloads, "jobs:{%s}:p", n);
    snprintf(k->counter, sizeof k->counter, "jobs:{%s}:n", n);
    return 0;
}

static int rs_job_push(store *st, const char *queue, const store_value *payload) {
    queue_keys k;
    if (make_queue_keys(queue, &k)) return STORE_NOT_FOUND;
    const char *argv[] = {"LPUSH", k.list, (const char *)payload->data};
    size_t lens[] = {5, strlen(k.list), payload->len};
    redisReply *reply = run((redis_store *)st, 3, argv, lens);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_UNAVAILABLE;
    if (reply) freeReplyObject(reply);
    return rc;
}

/* The pop script's answer {id, payload, deliveries}; STORE_NOT_FOUND for nil. */
static int job_from_reply(redisReply *reply, store_job *out) {
    int rc = STORE_UNAVAILABLE;
    if (reply && reply->type == REDIS_REPLY_NIL) rc = STORE_NOT_FOUND;
    else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
             reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len < STORE_JOB_ID_MAX &&
             reply->element[1]->type == REDIS_REPLY_STRING && reply->element[2]->type == REDIS_REPLY_INTEGER) {
        rc = value_from_reply(reply->element[1], &out->payload);
        memcpy(out->id, reply->element[0]->str, reply->element[0]->len);
        out->id[reply->element[0]->len] = '\0';
        out->deliveries = (int)reply->element[2]->integer;
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

/* Scripts cannot block, so an empty queue is waited for with BLMOVE from the list
 * to its own tail (Redis >= 6.2): it returns as soon as a job is pushed and leaves
 * the list as it was; then the script takes it, unless a peer was faster. The wait
 * is capped well below the command timeout (TIMEOUT_MS), so a quiet queue never
 * looks like a dead connection. */
static int rs_job_pop(store *st, const char *queue, int timeout_ms, int64_t lease_ms, store_job *out) {
    redis_store *r = (redis_store *)st;
    queue_keys k;
    char lease[24], wait[16];
    if (make_queue_keys(queue, &k)) return STORE_NOT_FOUND;
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *args[] = {k.list, k.lease, k.payloads, k.counter, lease};
    int rc = job_from_reply(run_script(r, SCRIPT_JOB_POP, 4, 5, args, NULL), out);
    if (rc != STORE_NOT_FOUND) return rc;
    int ms = timeout_ms < 1 ? 1 : timeout_ms > TIMEOUT_MS / 2 ? TIMEOUT_MS / 2 : timeout_ms;
    snprintf(wait, sizeof wait, "%d.%03d", ms / 1000, ms % 1000);
    const char *argv[] = {"BLMOVE", k.list, k.list, "RIGHT", "RIGHT", wait};
    redisReply *reply = run(r, 6, argv, NULL);
    rc = !reply ? STORE_UNAVAILABLE : reply->type == REDIS_REPLY_STRING ? STORE_OK : STORE_NOT_FOUND;
    if (reply) freeReplyObject(reply);
    if (rc) return rc;
    return job_from_reply(run_script(r, SCRIPT_JOB_POP, 4, 5, args, NULL), out);
}

static int rs_job_renew(store *st, const char *queue, const char *id, int64_t lease_ms) {
    queue_keys k;
    char lease[24];
    if (make_queue_keys(queue, &k)) return STORE_NOT_FOUND;
    snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
    const char *args[] = {k.lease, id, lease};
    return reply_code(run_script((redis_store *)st, SCRIPT_JOB_RENEW, 1, 3, args, NULL));
}

static int rs_job_ack(store *st, const char *queue, const char *id) {
    queue_keys k;
    if (make_queue_keys(queue, &k)) return STORE_NOT_FOUND;
    const char *args[] = {k.lease, k.payloads, id};
    return reply_code(run_script((redis_store *)st, SCRIPT_JOB_ACK, 2, 3, args, NULL));
}

static int rs_deadline_add(store *st, const char *index, const char *member, int64_t deadline_ms) {
    char key[KEY_MAX], score[24];
    if (make_named_key("due", index, key)) return STORE_NOT_FOUND;
    snprintf(score, sizeof score, "%lld", (long long)deadline_ms);
    const char *argv[] = {"ZADD", key, score, member};
    redisReply *reply = run((redis_store *)st, 4, argv, NULL);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? STORE_OK : STORE_UNAVAILABLE;
    if (reply) freeReplyObject(reply);
    return rc;
}

static int rs_deadline_claim(store *st, const char *index, int64_t now_ms, store_value *member) {
    char key[KEY_MAX], now[24];
    if (make_named_key("due", index, key)) return STORE_NOT_FOUND;
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *args[] = {key, now};
    redisReply *reply = run_script((redis_store *)st, SCRIPT_CLAIM, 1, 2, args, NULL);
    int rc = STORE_UNAVAILABLE;
    if (reply && reply->type == REDIS_REPLY_NIL) rc = STORE_NOT_FOUND;
    else if (reply && reply->type == REDIS_REPLY_STRING) rc = value_from_reply(reply, member);
    if (reply) freeReplyObject(reply);
    return rc;
}

/* PINGs Redis, so /monitor reports the state now, not the last request's. */
static const char *rs_status(store *st) {
    redis_store *r = (redis_store *)st;
    const char *argv[] = {"PING"};
    redisReply *reply = run(r, 1, argv, NULL);
    bool up = reply && reply->type == REDIS_REPLY_STATUS;
    if (reply) freeReplyObject(reply);
    if (up) return "UP";
    pthread_mutex_lock(&r->lock);
    const char *why = r->last_error ? r->last_error : DOWN_ERROR;
    pthread_mutex_unlock(&r->lock);
    return why;
}

/* --- durability ------------------------------------------------------------------- */

/* CONFIG GET name -> value in out; false when Redis refused the command (renamed
 * or not permitted by an ACL) or is unreachable (*reachable false then). */
static bool config_get(redis_store *r, const char *name, char *out, size_t out_len, bool *reachable) {
    const char *argv[] = {"CONFIG", "GET", name};
    redisReply *reply = run(r, 3, argv, NULL);
    *reachable = reply != NULL;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
              reply->element[1]->type == REDIS_REPLY_STRING;
    if (ok) snprintf(out, out_len, "%s", reply->element[1]->str);
    if (reply) freeReplyObject(reply);
    return ok;
}

/* Reads the persistence settings (docs/distributed.md): AOF with appendfsync
 * always or everysec keeps every acknowledged write across a Redis crash or
 * restart (everysec: up to a second is lost only if the machine itself fails);
 * anything else can lose acknowledged sessions and faces. */
static const char *rs_durability(store *st) {
    redis_store *r = (redis_store *)st;
    pthread_mutex_lock(&r->durability_lock);
    bool reachable = true;
    if (!r->durability_checked) {
        char aof[16] = "", fsync[16] = "", save[128] = "";
        char *note = r->durability; /* written once: callers may keep what they got */
        size_t len = sizeof r->durability;
        if (!config_get(r, "appendonly", aof, sizeof aof, &reachable) ||
            !config_get(r, "appendfsync", fsync, sizeof fsync, &reachable) ||
            !config_get(r, "save", save, sizeof save, &reachable)) {
            if (reachable) snprintf(note, len, "unknown: Redis refused CONFIG GET (renamed or not permitted), so its "
                                               "persistence could not be checked");
            r->durability_checked = reachable;
        } else {
            r->durability_checked = true;
            if (!strcmp(aof, "yes") && (!strcmp(fsync, "always") || !strcmp(fsync, "everysec")))
                note[0] = '\0';
            else if (!strcmp(aof, "yes"))
                snprintf(note, len, "at risk: appendfsync %s leaves flushing to the OS, so writes acknowledged in the "
                                    "last ~30 s can be lost if Redis's machine fails; use appendfsync everysec or always",
                         fsync);
            else if (save[0])
                snprintf(note, len, "at risk: snapshots only (save \"%.60s\"), so every write since the last snapshot is "
                                    "lost when Redis restarts; use appendonly yes", save);
            else
                snprintf(note, len, "at risk: no persistence (appendonly no, save \"\"), so every session and face is "
                                    "lost when Redis restarts; use appendonly yes");
        }
    }
    const char *out = !reachable ? "unknown: Redis is unreachable; its persistence is checked once it answers"
                      : r->durability[0] ? r->durability : NULL;
    pthread_mutex_unlock(&r->durability_lock);
    return out;
}

static void rs_destroy(store *st) {
    redis_store *r = (redis_store *)st;
    for (int i = 0; i < POOL_MAX; i++)
        if (r->slots[i].ctx) redisFree(r->slots[i].ctx);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->durability_lock);
    pthread_cond_destroy(&r->slot_freed);
    OPENSSL_cleanse(r->password, sizeof r->password);
    free(r);
}

static const store_ops redis_ops = {
    .name = "redis",
    .session_create = rs_session_create,
    .session_get = rs_session_get,
    .session_update = rs_session_update,
    .session_delete = rs_session_delete,
    .item_put = rs_item_put,
    .item_get = rs_item_get,
    .item_list = rs_item_list,
    .item_delete = rs_item_delete,
    .item_delete_all = rs_item_delete_all,
    .usage_add = rs_usage_add,
    .usage_get = rs_usage_get,
    .job_push = rs_job_push,
    .job_pop = rs_job_pop,
    .job_renew = rs_job_renew,
    .job_ack = rs_job_ack,
    .deadline_add = rs_deadline_add,
    .deadline_claim = rs_deadline_claim,
    .status = rs_status,
    .durability = rs_durability,
    .destroy = rs_destroy,
};

/* --- creation ---------------------------------------------------------------- */

/* redis://HOST[:PORT][/DB]; credentials in the URL are refused because the URL is
 * logged: the password comes from its own setting. */
int store_redis_parse_url(const char *url, char *host, size_t host_len, int *port_out, int *db_out, char *err,
                          size_t err_len) {
    const char *p = url + strlen("redis://");
    if (strchr(p, '@')) {
        snprintf(err, err_len, "put the Redis password in redis_password, not in the store URL");
        return -1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= host_len) {
        snprintf(err, err_len, "store URL needs a host: redis://HOST:PORT[/DB]");
        return -1;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    p += hl;
    long port = 6379, db = 0;
    char *end = (char *)p;
    if (*p == ':') port = strtol(p + 1, &end, 10);
    if (port < 1 || port > 65535 || (*end && *end != '/') || end == p + 1) {
        snprintf(err, err_len, "invalid port in store URL (redis://HOST:PORT[/DB])");
        return -1;
    }
    if (*end == '/') {
        const char *d = end + 1;
        db = strtol(d, &end, 10);
        if (end == d || *end || db < 0 || db > 1000000) {
            snprintf(err, err_len, "invalid database number in store URL (redis://HOST:PORT/DB)");
            return -1;
        }
    }
    *port_out = (int)port;
    *db_out = (int)db;
    return 0;
}

/* Redis names a script by the SHA-1 of its text (EVALSHA). */
static void script_sha(const char *text, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha1(), NULL);
    hex_encode(md, len, out);
}

store *store_redis_create(const char *url, const char *password, size_t max_items, char *err, size_t err_len) {
    if (password && strlen(password) >= PASSWORD_MAX) {
        snprintf(err, err_len, "redis_password is longer than %d characters", PASSWORD_MAX - 1);
        return NULL;
    }
    redis_store *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (store_redis_parse_url(url, r->host, sizeof r->host, &r->port, &r->db, err, err_len)) {
        free(r);
        return NULL;
    }
    r->base.ops = &redis_ops;
    r->max_items = max_items;
    if (password) snprintf(r->password, sizeof r->password, "%s", password);
    for (int i = 0; i < SCRIPT_COUNT; i++) script_sha(scripts[i], r->sha[i]);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->durability_lock, NULL);
    pthread_cond_init(&r->slot_freed, NULL);
    /* A wrong password or database is a configuration error: refuse to start. An
     * unreachable Redis is not: the server starts, answers 503 and reconnects. */
    const char *why = rs_status(&r->base);
    if (why == DOWN_AUTH || why == DOWN_SELECT) {
        snprintf(err, err_len, "redis at %s:%d: %s", r->host, r->port, why + strlen("DOWN: "));
        rs_destroy(&r->base);
        return NULL;
    }
    if (strcmp(why, "UP")) log_event("warn", "redis at %s:%d: %s; retrying on each request", r->host, r->port, why);
    return &r->base;
}
