/* The browser capture page: a fixed list of static files from the configured
 * web folder (docs/liveness.md). */
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"

#define WEB_MAX_FILE ((long)1 << 20)

static const struct { const char *name, *type; } web_files[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"capture.js", "text/javascript; charset=utf-8"},
    {"style.css", "text/css; charset=utf-8"},
    {NULL, NULL},
};

/* Only the files listed above, from the configured folder: no path ever comes
 * from the request, so there is nothing to traverse. */
void handle_web_capture(http_request *req) {
    const char *name = req->param_count > 0 ? req->params[0] : "index.html";
    int i = 0;
    while (web_files[i].name && strcmp(web_files[i].name, name)) i++;
    if (!web_files[i].name) { http_reply_error(req, 404, "no such file in the capture page"); return; }
    char path[1024];
    snprintf(path, sizeof path, "%s/capture/%s", req->app->config.web_dir, web_files[i].name);
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    char *data = n >= 0 && n <= WEB_MAX_FILE ? arena_alloc(req->arena, (size_t)n + 1) : NULL;
    bool ok = data && fseek(f, 0, SEEK_SET) == 0 && fread(data, 1, (size_t)n, f) == (size_t)n;
    if (f) fclose(f);
    if (!ok) { http_reply_error(req, 404, "the capture page is not installed on this server (%s)", web_files[i].name); return; }
    http_add_header(req, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'");
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_add_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, web_files[i].type, data, (size_t)n);
}
