/* Maps method + path to a handler. Patterns are literal segments and "{}" for one
 * path parameter, relative to the "/bioserver-app" prefix, except those under
 * ROUTER_VIDEO_PATTERN: the WebCapture server flow, served under a configurable
 * prefix of its own (video_server_path). A path that matches a pattern under
 * another method yields 405 with the allowed methods. */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H
#include <stdbool.h>
#include <stddef.h>

#include "http/request.h"

typedef void (*route_handler)(http_request *req);

/* How much body a route takes; the limit is known (and enforced) before any byte of
 * the body is read. ROUTE_BODY_DEFAULT: none for GET/DELETE, max_body_bytes for POST. */
typedef enum { ROUTE_BODY_DEFAULT = 0, ROUTE_BODY_JSON, ROUTE_BODY_CAPTURE, ROUTE_BODY_DISCARD } route_body;
#define ROUTE_JSON_MAX_BYTES ((size_t)64 << 10) /* sessions, parameters, a face JSON with its template */
/* ROUTE_BODY_DISCARD (the upload speed test, public): bytes are counted as they
 * arrive and dropped, so a caller without a key makes the server hold no memory;
 * a declared size over the cap is a 413 before any byte is read, and a chunked
 * upload is cut off at the cap, which bounds how long one request keeps a
 * connection busy. */
#define ROUTE_DISCARD_MAX_BYTES ((size_t)2 << 20)

typedef struct {
    const char *method;
    const char *pattern;
    unsigned permission; /* 0: no API key needed */
    const char *operation;
    route_handler handler;
    route_body body;
    /* Image decoding, inference, signing many matches: the handler runs on a worker
     * thread (the connection is suspended meanwhile), so HTTP threads never wait on
     * it and a full queue is a 429 at once. */
    bool heavy;
} route;

typedef enum { ROUTE_FOUND, ROUTE_NO_PATH, ROUTE_BAD_METHOD } route_result;

#define ROUTER_VIDEO_PATTERN "/video-server"

/* On ROUTE_FOUND fills req->params; on ROUTE_BAD_METHOD writes "GET, DELETE" to allow.
 * video_prefix: where the ROUTER_VIDEO_PATTERN routes are served (e.g. "/video-server"). */
route_result router_match(const route *routes, const char *method, const char *path, const char *video_prefix,
                          http_request *req, const route **found, char *allow, size_t allow_len);

#endif
