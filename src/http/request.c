/* Response builders shared by every handler; see request.h. */
#include "http/request.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/app.h"

void http_add_header(http_request *req, const char *name, const char *value) {
    http_header *h = arena_alloc(req->arena, sizeof(*h));
    if (!h) return;
    h->name = arena_strdup(req->arena, name);
    h->value = arena_strdup(req->arena, value);
    h->next = req->response_headers;
    req->response_headers = h;
}

void http_reply_arena_bytes(http_request *req, int status, const char *type, const void *data, size_t len) {
    req->status = status;
    req->response_type = type;
    req->response_body = data;
    req->response_len = data ? len : 0;
}

const char *http_response_header(const http_request *req, const char *name) {
    for (const http_header *h = req->response_headers; h; h = h->next)
        if (!strcasecmp(h->name, name)) return h->value;
    return NULL;
}

void http_reply_bytes(http_request *req, int status, const char *type, const void *data, size_t len) {
    void *copy = arena_alloc(req->arena, len ? len : 1);
    if (copy && len) memcpy(copy, data, len);
    http_reply_arena_bytes(req, status, type, copy, len);
}

void http_reply_empty(http_request *req, int status) {
    req->status = status;
    req->response_type = NULL;
    req->response_body = NULL;
    req->response_len = 0;
}

void http_accept_upgrade(http_request *req, http_upgrade_run run, http_upgrade_drop drop, void *cls) {
    http_reply_empty(req, 101);
    req->upgrade_run = run;
    req->upgrade_drop = drop;
    req->upgrade_cls = cls;
}

void http_reply_json(http_request *req, int status, json_t *body) {
    char *text = json_dumps(body, HTTP_JSON_FLAGS);
    json_decref(body);
    if (!text) {
        http_reply_error(req, 500, "internal error while encoding the response");
        return;
    }
    http_reply_bytes(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_reply_error(http_request *req, int status, const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    uuid_generate(req->error_id);
    req->error_message = arena_strdup(req->arena, message);
    json_t *body = json_pack("{s:s,s:s}", "id", req->error_id, "message", message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) { /* cannot even encode: send the bare minimum */
        http_reply_bytes(req, 500, "application/json", "{}", 2);
        return;
    }
    http_reply_bytes(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_reply_busy(http_request *req) {
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%d", req->app->config.retry_after_seconds);
    http_add_header(req, "Retry-After", seconds);
    http_reply_error(req, 429,
                     "We're currently managing increased traffic and are working to accommodate "
                     "all requests. Please try again shortly. Thank you for your patience.");
}

const char *http_media_type(http_request *req) {
    if (!req->content_type) return NULL;
    size_t n = strcspn(req->content_type, ";");
    while (n && isspace((unsigned char)req->content_type[n - 1])) n--;
    char *t = arena_strndup(req->arena, req->content_type, n);
    if (!t) return NULL;
    for (char *p = t; *p; p++) *p = (char)tolower((unsigned char)*p);
    return t;
}
