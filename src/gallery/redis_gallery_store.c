/* Galleries in Redis, shared by every instance on the same Redis. Durable as far
 * as Redis is: run it with appendonly yes and appendfsync everysec (at most a
 * second of acknowledged writes lost on a power cut) or always (none), see
 * docs/distributed.md. Nothing here expires.
 *
 * Layout, for tenant T and gallery G:
 *   gal:T:galleries   sorted set: G by creation sequence (the listing order)
 *   gal:T:meta        hash: G -> gallery JSON;  gal:T:count  hash: G -> face count
 *   gal:T:G:json      hash: face id -> face JSON
 *   gal:T:G:emb       hash: face id -> float32 embedding
 *   gal:T:G:ext       hash: face id -> externalId;  gal:T:G:x:E  set: the faces of externalId E
 *   gal:T:G:order     sorted set: face id by enrolment sequence (paging)
 *   gal:seq, gal:tenants (every tenant with a gallery, for loading)
 *   gal:events        stream: op (add|del|drop), o (writer instance), t, g, f
 * Every write is one Lua script, so it is atomic and its event is in the stream
 * exactly when the write happened. Other instances read the stream (changes())
 * and fetch the embedding of an added face; the stream is capped at
 * EVENTS_MAX entries, so an instance that stops reading for that long must restart.
 *
 * One connection behind a mutex; a broken one is dropped and reopened by the next
 * call, so Redis restarts cost 503s, not a server restart. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store.h"
#include "face/pipeline.h"
#include "gallery/gallery_store.h"

#define EVENTS_MAX "100000"
#define TIMEOUT_MS 2000
#define KEY_MAX 1400 /* "gal:" + tenant (63) + ":" + gallery (36) + ":x:" + externalId (1024) */

typedef struct {
    gallery_store base;
    pthread_mutex_t lock; /* guards ctx */
    redisContext *ctx;
    char host[256], password[256];
    int port, db;
    char origin[UUID_STR_LEN];
    char last_event[64]; /* stream id already applied */
} redis_gstore;

static redis_gstore *R(gallery_store *s) { return (redis_gstore *)s; }

static bool connect_locked(redis_gstore *r) {
    if (r->ctx) return true;
    struct timeval tv = {TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000};
    r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    bool ok = r->ctx && !r->ctx->err && redisSetTimeout(r->ctx, tv) == REDIS_OK;
    char db[16];
    snprintf(db, sizeof db, "%d", r->db);
    const char *setup[2][2] = {{"AUTH", r->password}, {"SELECT", db}};
    for (int i = 0; ok && i < 2; i++) {
        if ((i == 0 && !r->password[0]) || (i == 1 && !r->db)) continue;
        redisReply *rep = redisCommandArgv(r->ctx, 2, setup[i], NULL);
        ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep) freeReplyObject(rep);
    }
    if (!ok && r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    return ok;
}

/* One command; NULL when Redis is unreachable or answered an error. */
static redisReply *command(redis_gstore *r, int argc, const char **argv, const size_t *lens) {
    pthread_mutex_lock(&r->lock);
    redisReply *rep = connect_locked(r) ? redisCommandArgv(r->ctx, argc, argv, lens) : NULL;
    if (!rep && r->ctx) { /* broken connection: the next call reconnects */
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        rep = NULL;
    }
    return rep;
}

#define ARGS_MAX 24

/* EVAL script with nkeys keys then the other arguments (NUL-terminated strings
 * unless lens gives a length; lens may be NULL). */
static redisReply *eval(redis_gstore *r, const char *script, int nkeys, int nargs, const char **args,
                        const size_t *lens) {
    const char *argv[ARGS_MAX + 3];
    size_t argl[ARGS_MAX + 3];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVAL", argv[1] = script, argv[2] = nk;
    for (int i = 0; i < nargs && i < ARGS_MAX; i++) argv[3 + i] = args[i];
    for (int i = 0; i < 3 + nargs && i < ARGS_MAX + 3; i++)
        argl[i] = i >= 3 && lens && lens[i - 3] ? lens[i - 3] : strlen(argv[i]);
    return command(r, 3 + (nargs < ARGS_MAX ? nargs : ARGS_MAX), argv, argl);
}

/* Frees an unexpected (or missing) reply. */
static int unavailable(redisReply *rep) {
    if (rep) freeReplyObject(rep);
    return STORE_UNAVAILABLE;
}

static int code_of(redisReply *rep) {
    int rc = !rep ? STORE_UNAVAILABLE : rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : STORE_OK;
    if (rep) freeReplyObject(rep);
    return rc;
}

/* The key names of one gallery. */
typedef struct {
    char galleries[KEY_MAX], meta[KEY_MAX], count[KEY_MAX];
    char json[KEY_MAX], emb[KEY_MAX], ext[KEY_MAX], order[KEY_MAX], xprefix[KEY_MAX];
} gkeys;

static void make_keys(const char *t, const char *g, gkeys *k) {
    snprintf(k->galleries, KEY_MAX, "gal:%s:galleries", t);
    snprintf(k->meta, KEY_MAX, "gal:%s:meta", t);
    snprintf(k->count, KEY_MAX, "gal:%s:count", t);
    snprintf(k->json, KEY_MAX, "gal:%s:%s:json", t, g);
    snprintf(k->emb, KEY_MAX, "gal:%s:%s:emb", t, g);
    snprintf(k->ext, KEY_MAX, "gal:%s:%s:ext", t, g);
    snprintf(k->order, KEY_MAX, "gal:%s:%s:order", t, g);
    snprintf(k->xprefix, KEY_MAX, "gal:%s:%s:x:", t, g);
}

static bool names_fit(const char *t, const char *g) { return strlen(t) < 64 && strlen(g) < 64; }

static const char *const create_lua =
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return -2 end\n"
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -5 end\n"
    "redis.call('ZADD', KEYS[1], redis.call('INCR', 'gal:seq'), ARGV[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "redis.call('HSET', KEYS[3], ARGV[1], 0)\n"
    "redis.call('SADD', 'gal:tenants', ARGV[4])\n"
    "return 0\n";

static int gallery_create(gallery_store *s, const char *tenant, const char *id, const char *json, long max) {
    if (!names_fit(tenant, id)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, id, &k);
    char m[24];
    snprintf(m, sizeof m, "%ld", max);
    const char *args[] = {k.galleries, k.meta, k.count, id, json, m, tenant};
    return code_of(eval(R(s), create_lua, 3, 7, args, NULL));
}

static const char *const get_lua =
    "local j = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not j then return -1 end\n"
    "return {j, redis.call('HGET', KEYS[2], ARGV[1]) or '0'}\n";

static int gallery_get(gallery_store *s, const char *tenant, const char *id, char **json, long *faces) {
    if (!names_fit(tenant, id)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, id, &k);
    const char *args[] = {k.meta, k.count, id};
    redisReply *rep = eval(R(s), get_lua, 2, 3, args, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return code_of(rep);
    int rc = STORE_OK;
    if (json && !(*json = strdup(rep->element[0]->str))) rc = STORE_NOMEM;
    if (faces) *faces = atol(rep->element[1]->str);
    freeReplyObject(rep);
    return rc;
}

static const char *const list_lua =
    "local out = {}\n"
    "for _, g in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  out[#out + 1] = g\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[2], g) or '{}'\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[3], g) or '0'\n"
    "end\n"
    "return out\n";

static int gallery_list(gallery_store *s, const char *tenant, gallery_row_fn fn, void *ctx) {
    if (!names_fit(tenant, "")) return STORE_OK;
    gkeys k;
    make_keys(tenant, "", &k);
    const char *args[] = {k.galleries, k.meta, k.count};
    redisReply *rep = eval(R(s), list_lua, 3, 3, args, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return unavailable(rep);
    for (size_t i = 0; i + 2 < rep->elements; i += 3)
        if (!fn(ctx, rep->element[i]->str, rep->element[i + 1]->str, atol(rep->element[i + 2]->str))) break;
    freeReplyObject(rep);
    return STORE_OK;
}

static const char *const drop_lua =
    "if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return -1 end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HDEL', KEYS[3], ARGV[1])\n"
    "local seen = {}\n"
    "for _, e in ipairs(redis.call('HVALS', KEYS[6])) do\n"
    "  if not seen[e] then seen[e] = true; redis.call('DEL', ARGV[2] .. e) end\n"
    "end\n"
    "redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])\n"
    "redis.call('XADD', 'gal:events', 'MAXLEN', '~', ARGV[5], '*', 'op', 'drop', 'o', ARGV[3], 't', ARGV[4], 'g', ARGV[1])\n"
    "return 0\n";

static int gallery_delete(gallery_store *s, const char *tenant, const char *id) {
    if (!names_fit(tenant, id)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, id, &k);
    const char *args[] = {k.galleries, k.meta, k.count, k.json, k.emb, k.ext, k.order,
                          id, k.xprefix, R(s)->origin, tenant, EVENTS_MAX};
    return code_of(eval(R(s), drop_lua, 7, 12, args, NULL));
}

static const char *const put_lua =
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
    "if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') >= tonumber(ARGV[6]) then return -5 end\n"
    "if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[3]) == 0 then return -2 end\n"
    "redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])\n"
    "redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])\n"
    "redis.call('ZADD', KEYS[6], redis.call('INCR', 'gal:seq'), ARGV[2])\n"
    "redis.call('SADD', ARGV[7] .. ARGV[5], ARGV[2])\n"
    "redis.call('HINCRBY', KEYS[2], ARGV[1], 1)\n"
    "redis.call('XADD', 'gal:events', 'MAXLEN', '~', ARGV[10], '*', 'op', 'add', 'o', ARGV[8], 't', ARGV[9],"
    " 'g', ARGV[1], 'f', ARGV[2])\n"
    "return 0\n";

static int face_put(gallery_store *s, const gallery_face *f, long max) {
    if (!names_fit(f->tenant, f->gallery)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(f->tenant, f->gallery, &k);
    char m[24];
    snprintf(m, sizeof m, "%ld", max);
    const char *args[] = {k.meta, k.count, k.json, k.emb, k.ext, k.order, f->gallery, f->id, f->json,
                          (const char *)f->embedding, f->external_id, m, k.xprefix, R(s)->origin, f->tenant, EVENTS_MAX};
    size_t lens[16] = {0};
    lens[9] = (size_t)f->dim * sizeof(float);
    return code_of(eval(R(s), put_lua, 6, 16, args, lens));
}

static const char *const face_get_lua =
    "local j = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not j then return -1 end\n"
    "return {j, redis.call('HGET', KEYS[2], ARGV[1]) or ''}\n";

/* Copies an embedding reply; false when it is not a whole embedding. */
static bool embedding_from(const redisReply *e, float *out, int *dim) {
    if (e->type != REDIS_REPLY_STRING || !e->len || e->len % sizeof(float) || e->len / sizeof(float) > FACE_EMBEDDING_MAX)
        return false;
    if (out) memcpy(out, e->str, e->len);
    if (dim) *dim = (int)(e->len / sizeof(float));
    return true;
}

static int face_get(gallery_store *s, const char *tenant, const char *gallery, const char *id, char **json,
                    float *embedding, int *dim) {
    if (!names_fit(tenant, gallery)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, gallery, &k);
    const char *args[] = {k.json, k.emb, id};
    redisReply *rep = eval(R(s), face_get_lua, 2, 3, args, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return code_of(rep);
    int rc = STORE_OK;
    if ((embedding || dim) && !embedding_from(rep->element[1], embedding, dim)) rc = STORE_UNAVAILABLE;
    if (!rc && json && !(*json = strdup(rep->element[0]->str))) rc = STORE_NOMEM;
    freeReplyObject(rep);
    return rc;
}

static const char *const face_list_lua =
    "if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then return -1 end\n"
    "local out = {redis.call('HGET', KEYS[1], ARGV[1]) or '0'}\n"
    "local first = tonumber(ARGV[2])\n"
    "for _, f in ipairs(redis.call('ZRANGE', KEYS[2], first, first + tonumber(ARGV[3]) - 1)) do\n"
    "  out[#out + 1] = f\n"
    "  out[#out + 1] = redis.call('HGET', KEYS[3], f) or '{}'\n"
    "end\n"
    "return out\n";

static int face_list(gallery_store *s, const char *tenant, const char *gallery, long offset, long limit,
                     gallery_face_fn fn, void *ctx, long *total) {
    if (!names_fit(tenant, gallery)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, gallery, &k);
    char off[24], lim[24];
    snprintf(off, sizeof off, "%ld", offset);
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *args[] = {k.count, k.order, k.json, k.meta, gallery, off, lim};
    redisReply *rep = eval(R(s), face_list_lua, 4, 7, args, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return code_of(rep);
    if (total) *total = atol(rep->element[0]->str);
    for (size_t i = 1; i + 1 < rep->elements; i += 2) {
        gallery_face f = {tenant, gallery, rep->element[i]->str, NULL, rep->element[i + 1]->str, NULL, 0};
        if (!fn(ctx, &f)) break;
    }
    freeReplyObject(rep);
    return STORE_OK;
}

static const char *const face_delete_lua =
    "if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return -1 end\n"
    "local e = redis.call('HGET', KEYS[4], ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[2])\n"
    "redis.call('HDEL', KEYS[4], ARGV[2])\n"
    "redis.call('ZREM', KEYS[5], ARGV[2])\n"
    "if e then redis.call('SREM', ARGV[3] .. e, ARGV[2]) end\n"
    "redis.call('HINCRBY', KEYS[1], ARGV[1], -1)\n"
    "redis.call('XADD', 'gal:events', 'MAXLEN', '~', ARGV[6], '*', 'op', 'del', 'o', ARGV[4], 't', ARGV[5],"
    " 'g', ARGV[1], 'f', ARGV[2])\n"
    "return 0\n";

static int face_delete(gallery_store *s, const char *tenant, const char *gallery, const char *id) {
    if (!names_fit(tenant, gallery)) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, gallery, &k);
    const char *args[] = {k.count, k.json, k.emb, k.ext, k.order, gallery, id, k.xprefix, R(s)->origin, tenant, EVENTS_MAX};
    return code_of(eval(R(s), face_delete_lua, 5, 11, args, NULL));
}

static const char *const delete_external_lua =
    "local ids = redis.call('SMEMBERS', KEYS[6])\n"
    "for _, f in ipairs(ids) do\n"
    "  redis.call('HDEL', KEYS[2], f); redis.call('HDEL', KEYS[3], f); redis.call('HDEL', KEYS[4], f)\n"
    "  redis.call('ZREM', KEYS[5], f)\n"
    "  redis.call('XADD', 'gal:events', 'MAXLEN', '~', ARGV[4], '*', 'op', 'del', 'o', ARGV[2], 't', ARGV[3],"
    "    'g', ARGV[1], 'f', f)\n"
    "end\n"
    "redis.call('DEL', KEYS[6])\n"
    "if #ids > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], -#ids) end\n"
    "return ids\n";

static int face_delete_external(gallery_store *s, const char *tenant, const char *gallery, const char *external_id,
                                gallery_face_fn fn, void *ctx) {
    if (!names_fit(tenant, gallery) || strlen(external_id) > 1024) return STORE_NOT_FOUND;
    gkeys k;
    make_keys(tenant, gallery, &k);
    char xset[KEY_MAX + 1100];
    snprintf(xset, sizeof xset, "%s%s", k.xprefix, external_id);
    const char *args[] = {k.count, k.json, k.emb, k.ext, k.order, xset, gallery, R(s)->origin, tenant, EVENTS_MAX};
    redisReply *rep = eval(R(s), delete_external_lua, 6, 10, args, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return code_of(rep);
    for (size_t i = 0; i < rep->elements; i++) {
        gallery_face f = {tenant, gallery, rep->element[i]->str, external_id, NULL, NULL, 0};
        fn(ctx, &f);
    }
    freeReplyObject(rep);
    return STORE_OK;
}

/* Every embedding of one gallery, HSCAN by HSCAN. */
static int load_gallery(redis_gstore *r, const char *tenant, const char *gallery, gallery_face_fn fn, void *ctx,
                        float *emb) {
    gkeys k;
    make_keys(tenant, gallery, &k);
    char cursor[32] = "0";
    do {
        const char *argv[] = {"HSCAN", k.emb, cursor, "COUNT", "1000"};
        redisReply *rep = command(r, 5, argv, NULL);
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) return unavailable(rep);
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        const redisReply *items = rep->element[1];
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            gallery_face f = {tenant, gallery, items->element[i]->str, NULL, NULL, emb, 0};
            if (embedding_from(items->element[i + 1], emb, &f.dim)) fn(ctx, &f);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0"));
    return STORE_OK;
}

/* The newest stream id, so that changes() starts right before the load. */
static int remember_stream_end(redis_gstore *r) {
    const char *argv[] = {"XREVRANGE", "gal:events", "+", "-", "COUNT", "1"};
    redisReply *rep = command(r, 6, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return unavailable(rep);
    snprintf(r->last_event, sizeof r->last_event, "%s", rep->elements ? rep->element[0]->element[0]->str : "0-0");
    freeReplyObject(rep);
    return STORE_OK;
}

static int load_all(gallery_store *s, gallery_face_fn fn, void *ctx) {
    redis_gstore *r = R(s);
    if (remember_stream_end(r)) return STORE_UNAVAILABLE;
    const char *argv[] = {"SMEMBERS", "gal:tenants"};
    redisReply *tenants = command(r, 2, argv, NULL);
    if (!tenants) return STORE_UNAVAILABLE;
    float *emb = malloc(FACE_EMBEDDING_MAX * sizeof(float));
    int rc = emb ? STORE_OK : STORE_NOMEM;
    for (size_t t = 0; !rc && t < tenants->elements; t++) {
        const char *tenant = tenants->element[t]->str;
        char key[KEY_MAX];
        snprintf(key, sizeof key, "gal:%s:galleries", tenant);
        const char *zr[] = {"ZRANGE", key, "0", "-1"};
        redisReply *gs = command(r, 4, zr, NULL);
        if (!gs) rc = STORE_UNAVAILABLE;
        for (size_t g = 0; !rc && g < gs->elements; g++) rc = load_gallery(r, tenant, gs->element[g]->str, fn, ctx, emb);
        if (gs) freeReplyObject(gs);
    }
    free(emb);
    freeReplyObject(tenants);
    return rc;
}

/* The value of field name in a stream entry's flat field list; NULL if absent. */
static const char *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (!strcmp(fields->element[i]->str, name)) return fields->element[i + 1]->str;
    return NULL;
}

static void apply_event(redis_gstore *r, const redisReply *fields, gallery_change_fn fn, void *ctx, float *emb) {
    const char *op = field(fields, "op"), *o = field(fields, "o"), *t = field(fields, "t"), *g = field(fields, "g");
    const char *f = field(fields, "f");
    if (!op || !o || !t || !g || !strcmp(o, r->origin)) return; /* our own writes are applied already */
    gallery_face face = {t, g, f, NULL, NULL, emb, 0};
    if (!strcmp(op, "drop")) fn(ctx, GALLERY_CHANGE_DROP, &face);
    else if (f && !strcmp(op, "del")) fn(ctx, GALLERY_CHANGE_REMOVE, &face);
    else if (f && !strcmp(op, "add") && !face_get(&r->base, t, g, f, NULL, emb, &face.dim))
        fn(ctx, GALLERY_CHANGE_ADD, &face); /* gone already: its "del" follows */
}

static int changes(gallery_store *s, gallery_change_fn fn, void *ctx) {
    redis_gstore *r = R(s);
    float *emb = malloc(FACE_EMBEDDING_MAX * sizeof(float));
    int rc = emb ? STORE_OK : STORE_NOMEM;
    for (bool more = true; !rc && more;) {
        const char *argv[] = {"XREAD", "COUNT", "1000", "STREAMS", "gal:events", r->last_event};
        redisReply *rep = command(r, 6, argv, NULL);
        if (!rep) rc = STORE_UNAVAILABLE;
        more = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1;
        const redisReply *entries = more ? rep->element[0]->element[1] : NULL;
        for (size_t i = 0; entries && i < entries->elements; i++) {
            apply_event(r, entries->element[i]->element[1], fn, ctx, emb);
            snprintf(r->last_event, sizeof r->last_event, "%s", entries->element[i]->element[0]->str);
        }
        more = more && entries->elements == 1000;
        if (rep) freeReplyObject(rep);
    }
    free(emb);
    return rc;
}

static void destroy(gallery_store *s) {
    redis_gstore *r = R(s);
    if (r->ctx) redisFree(r->ctx);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static const gallery_store_ops redis_ops = {
    .name = "redis",
    .gallery_create = gallery_create,
    .gallery_get = gallery_get,
    .gallery_list = gallery_list,
    .gallery_delete = gallery_delete,
    .face_put = face_put,
    .face_get = face_get,
    .face_list = face_list,
    .face_delete = face_delete,
    .face_delete_external = face_delete_external,
    .load_all = load_all,
    .changes = changes,
    .destroy = destroy,
};

gallery_store *gallery_store_redis_open(const char *url, const char *password, char *err, size_t err_len) {
    redis_gstore *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (store_redis_parse_url(url, r->host, sizeof r->host, &r->port, &r->db, err, err_len)) {
        free(r);
        return NULL;
    }
    snprintf(r->password, sizeof r->password, "%s", password ? password : "");
    r->base.ops = &redis_ops;
    pthread_mutex_init(&r->lock, NULL);
    uuid_generate(r->origin);
    snprintf(r->last_event, sizeof r->last_event, "0-0");
    return &r->base;
}
