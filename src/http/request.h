/* One HTTP request as the api layer sees it: parsed method/path/params/body, the
 * authenticated key, and the response being built. All memory hangs off the
 * request's arena. libmicrohttpd stays behind this header. */
#ifndef HTTP_REQUEST_H
#define HTTP_REQUEST_H
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/util.h"

struct app;

typedef struct http_header {
    const char *name, *value;
    struct http_header *next;
} http_header;

#define HTTP_MAX_PARAMS 4

/* An upgraded connection (a WebSocket), run on a thread of the server's own once the
 * 101 is sent: fd is the connection (owned by the server: never closed here),
 * extra the bytes already read past the handshake. It returns when done; *stopping
 * turns true (and fd is shut down for reading) when the server stops. drop is called instead
 * of run when the upgrade cannot go ahead (the client left, no thread). */
typedef void (*http_upgrade_run)(void *cls, int fd, const char *extra, size_t extra_len, const atomic_bool *stopping);
typedef void (*http_upgrade_drop)(void *cls);

typedef struct http_request {
    arena *arena;
    struct app *app;
    void *connection; /* struct MHD_Connection */
    const char *method;
    const char *path; /* as received, without the query string */
    const char *params[HTTP_MAX_PARAMS];
    int param_count;
    const char *content_type; /* NULL when absent */
    const uint8_t *body;
    size_t body_len;
    const api_key_config *key;
    const char *operation; /* billing name of the route, e.g. "createBioSession" */
    /* Set when the handler runs on a worker thread (heavy routes): work it would
     * hand to the pool runs inline there, with this worker's context. */
    bool on_worker;
    void *worker_ctx;

    int status;
    const char *response_type;
    const void *response_body;
    size_t response_len;
    http_header *response_headers;
    char error_id[UUID_STR_LEN];
    const char *error_message;
    const char *correlation_id; /* for the log line */
    http_upgrade_run upgrade_run; /* set by http_accept_upgrade */
    http_upgrade_drop upgrade_drop;
    void *upgrade_cls;
} http_request;

const char *http_query(const http_request *req, const char *name);
const char *http_header_value(const http_request *req, const char *name);
void http_add_header(http_request *req, const char *name, const char *value);
/* The value of a response header the handler added (case-insensitive name), or NULL. */
const char *http_response_header(const http_request *req, const char *name);

/* How every JSON response is serialised, also for signing: compact, and reals
 * with 10 significant digits so 108.561 does not print as 108.56100000000001. */
#define HTTP_JSON_REAL_DIGITS 10
#define HTTP_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(HTTP_JSON_REAL_DIGITS))

/* Serialises body (and drops the reference). */
void http_reply_json(http_request *req, int status, json_t *body);
void http_reply_bytes(http_request *req, int status, const char *type, const void *data, size_t len);
/* The same for data already in req->arena (a large body built in place: no copy). */
void http_reply_arena_bytes(http_request *req, int status, const char *type, const void *data, size_t len);
void http_reply_empty(http_request *req, int status);
/* {"id": "<uuid>", "message": "..."}; the id is logged with the request. */
void http_reply_error(http_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 101 Switching Protocols (add the protocol's headers, e.g. Upgrade, with
 * http_add_header); exactly one of run or drop is later called with cls. */
void http_accept_upgrade(http_request *req, http_upgrade_run run, http_upgrade_drop drop, void *cls);
/* 429 with Retry-After and the spec's wording. */
void http_reply_busy(http_request *req);

/* Media type without parameters, lower-cased: "multipart/form-data". */
const char *http_media_type(http_request *req);

#endif
