/* Static files from the configured web folder: the browser capture page
 * (web_dir/capture/, docs/liveness.md) and the WebCapture browser SDK the pages of
 * a service provider load from the video server (web_dir/sdk/, served under
 * video_server_path). Each is a fixed list: no path ever comes from the request,
 * so there is nothing to traverse. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"

#define WEB_MAX_FILE ((long)1 << 20)
#define JS_TYPE "text/javascript; charset=utf-8"

typedef struct {
    const char *name, *type;
} web_file;

static const web_file capture_files[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"capture.js", JS_TYPE},
    {"style.css", "text/css; charset=utf-8"},
    {NULL, NULL},
};

/* The names the WebCapture pages load: <script src="{video URL}{video_server_path}/NAME">. */
static const web_file sdk_files[] = {
    {"bioserver-environment-api.js", JS_TYPE},
    {"bioserver-network-check.js", JS_TYPE},
    {"bioserver-video-ui.js", JS_TYPE},
    {"bioserver-video-api.js", JS_TYPE},
    {NULL, NULL},
};

static const web_file *find_file(const web_file *list, const char *name) {
    for (; list->name; list++)
        if (!strcmp(list->name, name)) return list;
    return NULL;
}

/* Reads web_dir/folder/name into the request's arena; NULL when it cannot. */
static char *read_web_file(http_request *req, const char *folder, const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", req->app->config.web_dir, folder, name);
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    char *data = n >= 0 && n <= WEB_MAX_FILE ? arena_alloc(req->arena, (size_t)n + 1) : NULL;
    bool ok = data && fseek(f, 0, SEEK_SET) == 0 && fread(data, 1, (size_t)n, f) == (size_t)n;
    if (f) fclose(f);
    *len = ok ? (size_t)n : 0;
    return ok ? data : NULL;
}

/* A strong validator: the first 128 bits of the content's SHA-256, quoted. */
static void content_etag(const char *data, size_t len, char out[35]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL)) md_len = 0;
    out[0] = '"';
    for (int i = 0; i < 16; i++) snprintf(out + 1 + 2 * i, 3, "%02x", i < (int)md_len ? md[i] : 0);
    out[33] = '"';
    out[34] = '\0';
}

/* data with every `token` replaced by `value`, in the arena (NULL when out of memory). */
static char *replace_all(arena *a, const char *data, size_t n, const char *token, const char *value, size_t *out_len) {
    size_t tl = strlen(token), vl = strlen(value), count = 0;
    for (const char *p = data; (p = memmem(p, n - (size_t)(p - data), token, tl)); p += tl) count++;
    size_t len = n + count * vl - count * tl;
    char *out = arena_alloc(a, len + 1), *o = out;
    if (!out) return NULL;
    const char *p = data, *end = data + n, *hit;
    while ((hit = memmem(p, (size_t)(end - p), token, tl))) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, value, vl);
        o += vl;
        p = hit + tl;
    }
    memcpy(o, p, (size_t)(end - p));
    *out_len = len;
    return out;
}

/* The page loads the SDK from the video prefix, which is a setting: index.html says
 * %VIDEO_SERVER_PATH% where it goes. */
#define VIDEO_PATH_TOKEN "%VIDEO_SERVER_PATH%"

void handle_web_capture(http_request *req) {
    const web_file *file = find_file(capture_files, req->param_count > 0 ? req->params[0] : "index.html");
    if (!file) { http_reply_error(req, 404, "no such file in the capture page"); return; }
    size_t n;
    char *data = read_web_file(req, "capture", file->name, &n);
    if (data && !strcmp(file->name, "index.html"))
        data = replace_all(req->arena, data, n, VIDEO_PATH_TOKEN, req->app->config.video_server_path, &n);
    if (!data) { http_reply_error(req, 404, "the capture page is not installed on this server (%s)", file->name); return; }
    http_add_header(req, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'");
    http_add_header(req, "Cache-Control", "no-cache");
    http_reply_bytes(req, 200, file->type, data, n);
}

/* GET {video_server_path}/bioserver-*.js. The pages that load these live on the
 * service provider's origin, often with Cross-Origin-Embedder-Policy: require-corp
 * (the WebCapture demo's do), so the files say they may be embedded anywhere.
 * Cached by validation: a browser asks again each time and gets a 304 while the
 * file is unchanged, so an upgraded server never runs with yesterday's SDK. */
void handle_webcapture_sdk(http_request *req) {
    const char *slash = strrchr(req->path, '/');
    const char *name = slash ? slash + 1 : req->path;
    const web_file *file = find_file(sdk_files, name);
    if (!file) { http_reply_error(req, 404, "no such file in the WebCapture SDK"); return; }
    size_t n;
    char *data = read_web_file(req, "sdk", file->name, &n);
    if (!data) { http_reply_error(req, 404, "the WebCapture SDK is not installed on this server (%s)", file->name); return; }
    char etag[35];
    content_etag(data, n, etag);
    http_add_header(req, "ETag", etag);
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "Cross-Origin-Resource-Policy", "cross-origin");
    http_add_header(req, "Access-Control-Allow-Origin", "*");
    const char *match = http_header_value(req, "If-None-Match");
    if (match && strstr(match, etag)) { http_reply_empty(req, 304); return; }
    http_reply_bytes(req, 200, file->type, data, n);
}
