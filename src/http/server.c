/* libmicrohttpd integration; see server.h. A request goes through three stages:
 * headers (route, authenticate, the route's body limit against the declared size),
 * body chunks (appended up to the route's limit and within a global budget of
 * buffered bytes, then discarded; a ROUTE_BODY_DISCARD route's are only counted),
 * and dispatch to its handler. A heavy route's handler runs on a worker thread
 * while its connection is suspended, so HTTP threads never wait on inference:
 * cheap routes stay fast under load, and a full worker queue is a 429 at once. A
 * handler may accept an upgrade (a WebSocket, http_accept_upgrade): after the 101
 * the connection runs on a thread of its own, tracked here so that stopping the
 * server shuts those connections down first. */
#include "http/server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/app.h"
#include "core/keyring.h"
#include "core/log.h"
#include "http/cors.h"
#include "http/tls.h"

struct http_server {
    struct MHD_Daemon *daemon;
    app *app;
    const route *routes;
    atomic_int in_flight;
    atomic_llong usage_warned_ms; /* last "usage not stored" log line (monotonic ms; 0 = never) */
    atomic_size_t buffered;       /* request-body bytes held across connections (max_buffered_bytes) */
    pthread_mutex_t upgraded_lock; /* guards upgraded (the list) */
    pthread_cond_t upgraded_gone;
    struct upgraded *upgraded;
    atomic_bool stopping;
};

/* One accepted upgrade. The request holds it until libmicrohttpd hands the socket
 * over (then its thread owns it and the request forgets it) or the request ends
 * without that (on_completed drops and frees it); both happen on the connection's
 * MHD thread. */
typedef struct upgraded {
    http_server *server;
    http_upgrade_run run;
    http_upgrade_drop drop;
    void *cls;
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    char *extra;
    size_t extra_len;
    struct upgraded *next;
} upgraded;

#define USAGE_WARN_INTERVAL_MS 60000

typedef struct {
    http_request req;
    http_server *server;
    const route *route;
    bool responded; /* a response was queued at the header stage */
    bool too_large, over_budget;
    bool dispatched; /* a heavy handler was handed to a worker: the connection waits suspended */
    uint8_t *body;
    size_t body_len, body_cap, body_limit;
    double started;
    int key_index;
    upgraded *upgrade; /* a 101 was queued */
} request_ctx;

const char *http_query(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header_value(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

static void *upgraded_thread(void *arg) {
    upgraded *u = arg;
    http_server *s = u->server;
    u->run(u->cls, u->fd, u->extra, u->extra_len, &s->stopping);
    MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
    pthread_mutex_lock(&s->upgraded_lock);
    for (upgraded **p = &s->upgraded; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            break;
        }
    pthread_cond_broadcast(&s->upgraded_gone);
    pthread_mutex_unlock(&s->upgraded_lock);
    free(u->extra);
    free(u);
    return NULL;
}

/* libmicrohttpd hands over the socket after sending the 101. */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)conn;
    upgraded *u = cls;
    request_ctx *ctx = con_cls;
    ctx->upgrade = NULL; /* the thread owns u now; on_completed comes only when it has closed */
    http_server *s = u->server;
    u->fd = sock;
    u->urh = urh;
    u->extra = extra_in_size ? malloc(extra_in_size) : NULL;
    if (u->extra) memcpy(u->extra, extra_in, extra_in_size);
    u->extra_len = u->extra ? extra_in_size : 0;
    pthread_mutex_lock(&s->upgraded_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = (!extra_in_size || u->extra) && !atomic_load(&s->stopping) &&
              pthread_create(&t, &attr, upgraded_thread, u) == 0;
    pthread_attr_destroy(&attr);
    if (ok) {
        u->next = s->upgraded;
        s->upgraded = u;
    }
    pthread_mutex_unlock(&s->upgraded_lock);
    if (ok) return;
    log_event("error", "cannot start a thread for an upgraded connection");
    u->drop(u->cls);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    free(u->extra);
    free(u);
}

/* Ends every upgraded connection and waits for their threads. Only the reading side
 * is shut: a thread blocked in a read wakes up at once and may still say goodbye
 * (its writes are bounded in time by their own deadlines). */
static void stop_upgraded(http_server *s) {
    atomic_store(&s->stopping, true);
    pthread_mutex_lock(&s->upgraded_lock);
    for (upgraded *u = s->upgraded; u; u = u->next) shutdown(u->fd, SHUT_RD);
    while (s->upgraded) pthread_cond_wait(&s->upgraded_gone, &s->upgraded_lock);
    pthread_mutex_unlock(&s->upgraded_lock);
}

static struct MHD_Response *create_response(request_ctx *ctx) {
    http_request *req = &ctx->req;
    if (!req->upgrade_run)
        return MHD_create_response_from_buffer(req->response_len, (void *)req->response_body, MHD_RESPMEM_MUST_COPY);
    upgraded *u = calloc(1, sizeof(*u));
    struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(on_upgrade, u) : NULL;
    if (!resp) {
        free(u);
        req->upgrade_drop(req->upgrade_cls);
        req->upgrade_run = NULL;
        http_reply_error(req, 500, "internal error: cannot accept the upgrade");
        return MHD_create_response_from_buffer(req->response_len, (void *)req->response_body, MHD_RESPMEM_MUST_COPY);
    }
    *u = (upgraded){.server = ctx->server, .run = req->upgrade_run, .drop = req->upgrade_drop, .cls = req->upgrade_cls,
                    .fd = -1};
    ctx->upgrade = u;
    return resp;
}

static enum MHD_Result queue(request_ctx *ctx) {
    http_request *req = &ctx->req;
    if (!req->status) http_reply_error(req, 500, "internal error: the handler produced no response");
    struct MHD_Response *resp = create_response(ctx);
    if (!resp) return MHD_NO;
    if (req->response_type) MHD_add_response_header(resp, "Content-Type", req->response_type);
    for (http_header *h = req->response_headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    /* API answers are never cached; static files (api/web.c) set their own policy. */
    if (!ctx->upgrade && !http_response_header(req, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    /* Public routes that any page may read (the SDK files, the network check) set
     * "Access-Control-Allow-Origin: *" themselves; the others follow cors_origins. */
    const char *origin = http_response_header(req, "Access-Control-Allow-Origin")
                             ? NULL
                             : cors_allow_origin(ctx->server->app->config.cors_origins, http_header_value(req, "Origin"));
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(req->connection, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Accepts "apikey: K", "Authorization: K" and "Authorization: Bearer K". Returns
 * the key (NULL: unknown or revoked, *missing: none sent). */
static const api_key_config *find_key(const app *a, const http_request *req, int *index, bool *missing) {
    const char *k = http_header_value(req, "apikey");
    if (!k) {
        k = http_header_value(req, "Authorization");
        if (k && !strncasecmp(k, "Bearer ", 7)) k += 7;
        else if (k && !strncasecmp(k, "ApiKey ", 7)) k += 7;
    }
    *missing = !k;
    return k ? keyring_find(a->keys, k, index) : NULL;
}

/* The most body bytes this route reads (0: it takes none). */
static size_t route_body_limit(const route *r, const server_config *cfg) {
    switch (r->body) {
    case ROUTE_BODY_JSON: return cfg->max_body_bytes < ROUTE_JSON_MAX_BYTES ? cfg->max_body_bytes : ROUTE_JSON_MAX_BYTES;
    case ROUTE_BODY_CAPTURE: return cfg->liveness_max_upload_bytes;
    case ROUTE_BODY_DISCARD: return ROUTE_DISCARD_MAX_BYTES;
    default: return strcmp(r->method, "POST") ? 0 : cfg->max_body_bytes;
    }
}

typedef struct {
    const char *first;
    bool conflicting;
    bool chunked;
} framing;

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing *f = cls;
    if (!strcasecmp(key, "Content-Length")) {
        if (f->first && strcmp(f->first, value)) f->conflicting = true;
        if (!f->first) f->first = value;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        f->chunked = true;
    }
    return MHD_YES;
}

/* Refuses, before any body byte is read, a body the route does not take or that
 * is larger than its limit, and ambiguous framing (request smuggling). */
static bool refuse_declared_body(request_ctx *ctx) {
    http_request *req = &ctx->req;
    framing f = {0};
    MHD_get_connection_values(req->connection, MHD_HEADER_KIND, collect_framing, &f);
    if (f.conflicting || (f.first && f.chunked)) {
        http_add_header(req, "Connection", "close");
        http_reply_error(req, 400, f.conflicting ? "conflicting Content-Length headers"
                                                 : "Content-Length and Transfer-Encoding together");
        return true;
    }
    unsigned long long declared = f.first ? strtoull(f.first, NULL, 10) : 0;
    if (ctx->body_limit == 0 && (declared || f.chunked)) {
        http_add_header(req, "Connection", "close");
        http_reply_error(req, 413, "%s %s takes no request body", req->method, ctx->route->pattern);
        return true;
    }
    if (declared > ctx->body_limit) {
        http_add_header(req, "Connection", "close");
        http_reply_error(req, 413, "the request body is %llu bytes; the limit is %zu bytes", declared, ctx->body_limit);
        return true;
    }
    return false;
}

/* Header stage. Returns true when a response was decided already. */
static bool admit(request_ctx *ctx, const char *method, const char *url) {
    http_request *req = &ctx->req;
    app *a = ctx->server->app;
    char allow[64];
    route_result rr = router_match(ctx->server->routes, method, url, a->config.video_server_path, req, &ctx->route, allow,
                                   sizeof allow);
    if (rr == ROUTE_NO_PATH) {
        http_reply_error(req, 404, "no such resource: %s %s", method, url);
        return true;
    }
    if (rr == ROUTE_BAD_METHOD && !strcmp(method, "OPTIONS") &&
        cors_allow_origin(a->config.cors_origins, http_header_value(req, "Origin"))) {
        http_add_header(req, "Access-Control-Allow-Methods", allow);
        http_add_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        http_add_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
        http_reply_empty(req, 204); /* a preflight carries no credentials */
        return true;
    }
    if (rr == ROUTE_BAD_METHOD) {
        http_add_header(req, "Allow", allow);
        http_reply_error(req, 405, "method %s is not allowed here (allowed: %s)", method, allow);
        return true;
    }
    req->operation = ctx->route->operation;
    if (ctx->route->permission) {
        bool missing = false;
        req->key = find_key(a, req, &ctx->key_index, &missing);
        if (!req->key) {
            http_add_header(req, "WWW-Authenticate", "apikey");
            http_reply_error(req, 401, missing ? "authentication is required: send the 'apikey' header"
                                               : "authentication failed: unknown API key");
            return true;
        }
        if (!(req->key->permissions & ctx->route->permission)) {
            http_reply_error(req, 403, "this API key is not allowed to call %s", req->operation);
            return true;
        }
    }
    ctx->body_limit = route_body_limit(ctx->route, &a->config);
    return refuse_declared_body(ctx);
}

/* Takes `bytes` from the budget of buffered request bodies; false when it is spent. */
static bool budget_take(http_server *s, size_t bytes) {
    size_t max = s->app->config.max_buffered_bytes, cur = atomic_load(&s->buffered);
    do {
        if (cur + bytes > max) return false;
    } while (!atomic_compare_exchange_weak(&s->buffered, &cur, cur + bytes));
    return true;
}

static void append_body(request_ctx *ctx, const char *data, size_t n) {
    size_t limit = ctx->body_limit;
    if (ctx->too_large || ctx->over_budget || ctx->body_len + n > limit) {
        ctx->too_large = !ctx->over_budget; /* keep reading to the end, store nothing more */
        return;
    }
    if (ctx->route->body == ROUTE_BODY_DISCARD) { /* counted, never held */
        ctx->body_len += n;
        return;
    }
    if (ctx->body_len + n > ctx->body_cap) {
        size_t cap = ctx->body_cap ? ctx->body_cap : 16384;
        while (cap < ctx->body_len + n) cap *= 2;
        if (cap > limit) cap = limit;
        if (!budget_take(ctx->server, cap - ctx->body_cap)) {
            ctx->over_budget = true;
            return;
        }
        uint8_t *b = realloc(ctx->body, cap + 1);
        if (!b) {
            atomic_fetch_sub(&ctx->server->buffered, cap - ctx->body_cap);
            ctx->too_large = true;
            return;
        }
        ctx->body = b;
        ctx->body_cap = cap;
    }
    memcpy(ctx->body + ctx->body_len, data, n);
    ctx->body_len += n;
}

static request_ctx *ctx_create(http_server *s, struct MHD_Connection *conn, const char *method, const char *url) {
    request_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return NULL;
    ctx->req.arena = arena_create(8192);
    if (!ctx->req.arena) {
        free(ctx);
        return NULL;
    }
    ctx->server = s;
    ctx->key_index = -1;
    ctx->started = time_monotonic_s();
    ctx->req.app = s->app;
    ctx->req.connection = conn;
    ctx->req.method = arena_strdup(ctx->req.arena, method);
    ctx->req.path = arena_strdup(ctx->req.arena, url);
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    ctx->req.content_type = ct ? arena_strdup(ctx->req.arena, ct) : NULL;
    atomic_fetch_add(&s->in_flight, 1);
    return ctx;
}

/* A heavy handler on a worker thread. */
static void run_handler(void *worker_ctx, void *arg) {
    request_ctx *ctx = arg;
    ctx->req.on_worker = true;
    ctx->req.worker_ctx = worker_ctx;
    ctx->route->handler(&ctx->req);
}

/* The handler has replied and its worker is idle again: send the reply. */
static void resume_after_handler(void *arg) {
    request_ctx *ctx = arg;
    MHD_resume_connection(ctx->req.connection);
}

/* Hands the handler to the worker pool with the connection suspended. False when it
 * could not (the reply, 429 or 503, is set): answer now. */
static bool dispatch(request_ctx *ctx) {
    http_request *req = &ctx->req;
    ctx->dispatched = true;
    MHD_suspend_connection(req->connection);
    int rc = worker_pool_submit(ctx->server->app->workers, run_handler, ctx, resume_after_handler);
    if (rc == WORKER_POOL_OK) return true;
    MHD_resume_connection(req->connection);
    ctx->dispatched = false;
    if (rc == WORKER_POOL_BUSY) http_reply_busy(req);
    else http_reply_error(req, 503, "the server is shutting down");
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    http_server *s = cls;
    request_ctx *ctx = *con_cls;
    if (!ctx) {
        ctx = ctx_create(s, conn, method, url);
        if (!ctx) return MHD_NO;
        *con_cls = ctx;
        if (admit(ctx, method, url)) {
            ctx->responded = true;
            return queue(ctx);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!ctx->responded) append_body(ctx, upload_data, *upload_data_size);
        *upload_data_size = 0;
        /* A public speed test streamed (chunked) past its cap: cut it off rather
         * than read on for nothing. */
        if (ctx->too_large && ctx->route->body == ROUTE_BODY_DISCARD) return MHD_NO;
        return MHD_YES;
    }
    if (ctx->dispatched) return queue(ctx); /* resumed: the worker has replied */
    if (ctx->responded) return MHD_YES;
    ctx->responded = true;
    http_request *req = &ctx->req;
    if (ctx->over_budget) { /* other uploads hold the budget of buffered bodies */
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", s->app->config.retry_after_seconds);
        http_add_header(req, "Retry-After", seconds);
        http_reply_error(req, 503, "the server is receiving too many uploads at once; try again shortly");
    } else if (ctx->too_large) {
        http_reply_error(req, 413, "the request body exceeds the limit of %zu bytes", ctx->body_limit);
    } else {
        if (ctx->body) ctx->body[ctx->body_len] = '\0'; /* handy for text parsers */
        req->body = ctx->body ? ctx->body : (const uint8_t *)"";
        req->body_len = ctx->body_len;
        if (ctx->route->heavy && dispatch(ctx)) return MHD_YES;
        if (!req->status) ctx->route->handler(req);
    }
    return queue(ctx);
}

/* Adds the request to its key's billing count in the store, shared by every
 * instance. The response is already sent, so a store failure must not change it;
 * it is counted in a metric and logged at most once a minute, because when Redis is
 * down it happens on every request. */
static void count_usage(http_server *s, const http_request *req) {
    store *st = s->app->store;
    int rc = st->ops->usage_add(st, req->key->name, req->operation, 1);
    if (rc == STORE_OK) return;
    metrics_usage_store_error(s->app->metrics);
    long long now = time_monotonic_ms(), last = atomic_load(&s->usage_warned_ms);
    if (last && now - last < USAGE_WARN_INTERVAL_MS) return;
    if (atomic_compare_exchange_strong(&s->usage_warned_ms, &last, now))
        log_event("warn", "usage counts cannot be written to the state store (code %d); "
                          "calls are being lost from /v2/usage (see bioserver_usage_store_errors_total)", rc);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    http_server *s = cls;
    request_ctx *ctx = *con_cls;
    if (!ctx) return;
    double seconds = time_monotonic_s() - ctx->started;
    http_request *req = &ctx->req;
    int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? req->status : (req->status ? req->status : 499);
    log_request(req->method, req->path, status, seconds * 1000.0,
                req->key ? req->key->name : NULL, req->correlation_id,
                req->error_id[0] ? req->error_id : NULL, req->error_message);
    metrics_record(s->app->metrics, req->operation, ctx->key_index, status, seconds);
    if (req->key && req->operation) count_usage(s, req);
    if (ctx->upgrade) { /* the 101 never went out */
        ctx->upgrade->drop(ctx->upgrade->cls);
        free(ctx->upgrade);
    }
    arena_free(req->arena);
    atomic_fetch_sub(&s->buffered, ctx->body_cap);
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

http_server *http_server_start(app *a, const route *routes, char *err, size_t err_len) {
    http_server *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->app = a;
    s->routes = routes;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", a->config.listen_port);
    if (getaddrinfo(a->config.listen_host, port, &hints, &ai) || !ai) {
        snprintf(err, err_len, "cannot resolve listen address %s", a->config.listen_host);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->upgraded_lock, NULL);
    pthread_cond_init(&s->upgraded_gone, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* The certificate comes from a callback at each handshake, so that a reload
     * (http_server_reload_tls) reaches new connections without a restart. */
    if (a->config.tls_cert[0]) {
        if (tls_material_load(a->config.tls_cert, a->config.tls_key, err, err_len)) {
            freeaddrinfo(ai);
            free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)&tls_certificate_for_handshake},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->config.http_threads,
        /* An idle connection (no byte for connection_timeout) is closed; one address
         * holds at most max_connections_per_ip (slow or idle clients cannot take
         * every slot); the pool threads share the listen socket through epoll. */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)a->config.connection_timeout_seconds,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->config.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)a->config.max_connections_per_ip,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_ARRAY, a->config.tls_cert[0] ? tls_opts : &tls_opts[1], MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        snprintf(err, err_len, "cannot listen on %s:%d (address in use or TLS material invalid)",
                 a->config.listen_host, a->config.listen_port);
        tls_material_shutdown();
        free(s);
        return NULL;
    }
    return s;
}

int http_server_port(const http_server *s) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : -1;
}

void http_server_stop(http_server *s, int grace_ms) {
    if (!s) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    /* Refuse new connections now (Linux stops listening on shutdown) but keep the fd
     * open: see below. */
    if (fd != MHD_INVALID_SOCKET) shutdown(fd, SHUT_RDWR);
    stop_upgraded(s); /* their requests count as in flight until they close */
    for (int waited = 0; atomic_load(&s->in_flight) > 0 && waited < grace_ms; waited += 10)
        usleep(10 * 1000);
    MHD_stop_daemon(s->daemon);
    /* Only now: the pool threads may still be taking the listen socket out of their
     * epoll sets after quiesce, and a closed fd there makes libmicrohttpd abort. */
    if (fd != MHD_INVALID_SOCKET) close(fd);
    tls_material_shutdown();
    pthread_mutex_destroy(&s->upgraded_lock);
    pthread_cond_destroy(&s->upgraded_gone);
    free(s);
}

int http_server_reload_tls(http_server *s, char *err, size_t err_len) {
    const server_config *c = &s->app->config;
    if (!c->tls_cert[0]) return 0;
    return tls_material_load(c->tls_cert, c->tls_key, err, err_len);
}
