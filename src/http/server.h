/* The HTTP front: libmicrohttpd daemon (thread pool + epoll, optional TLS), body
 * limits enforced while streaming, API-key authentication, routing, JSON errors,
 * one log line per request, metrics. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H
#include <stddef.h>

#include "http/router.h"

struct app;
typedef struct http_server http_server;

http_server *http_server_start(struct app *a, const route *routes, char *err, size_t err_len);
int http_server_port(const http_server *s);
/* Re-reads the TLS certificate and key (no-op over plain HTTP): new connections
 * use them at once, open ones keep theirs. On error the old material stays. */
int http_server_reload_tls(http_server *s, char *err, size_t err_len);
/* Stops accepting, lets in-flight requests finish (up to grace_ms), then stops. */
void http_server_stop(http_server *s, int grace_ms);

#endif
