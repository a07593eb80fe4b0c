/* Segment-by-segment matching of request paths against the route table. */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#define PREFIX "/bioserver-app"

/* Matches path against pattern; path parameters are copied into the arena. */
static bool match_pattern(const char *pattern, const char *path, http_request *req, bool capture) {
    int count = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/') return false;
        p++;
        s++;
        size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
        if (pl == 2 && !strncmp(p, "{}", 2)) {
            if (sl == 0 || sl > 128 || count >= HTTP_MAX_PARAMS) return false;
            if (capture) req->params[count] = arena_strndup(req->arena, s, sl);
            count++;
        } else if (pl != sl || strncmp(p, s, pl)) {
            return false;
        }
        p += pl;
        s += sl;
    }
    if (*p || (*s && strcmp(s, "/"))) return false; /* a trailing slash is tolerated */
    if (capture) req->param_count = count;
    return true;
}

/* The path relative to the route table, or NULL when it is outside every prefix. */
static const char *relative_path(const char *path, const char *video_prefix, http_request *req) {
    size_t vl = video_prefix ? strlen(video_prefix) : 0;
    if (vl && !strncmp(path, video_prefix, vl) && (path[vl] == '/' || !path[vl])) {
        char *rel = arena_alloc(req->arena, strlen(ROUTER_VIDEO_PATTERN) + strlen(path + vl) + 1);
        if (rel) sprintf(rel, "%s%s", ROUTER_VIDEO_PATTERN, path + vl);
        return rel;
    }
    if (!strncmp(path, PREFIX, strlen(PREFIX))) {
        const char *rel = path + strlen(PREFIX);
        /* The video routes are reachable only under their own prefix. */
        return strncmp(rel, ROUTER_VIDEO_PATTERN "/", strlen(ROUTER_VIDEO_PATTERN) + 1) ? rel : NULL;
    }
    return strcmp(path, "/metrics") ? NULL : path;
}

route_result router_match(const route *routes, const char *method, const char *path, const char *video_prefix,
                          http_request *req, const route **found, char *allow, size_t allow_len) {
    const char *rel = relative_path(path, video_prefix, req);
    if (!rel) return ROUTE_NO_PATH;
    bool path_known = false;
    allow[0] = '\0';
    for (const route *r = routes; r->pattern; r++) {
        if (!match_pattern(r->pattern, rel, req, false)) continue;
        if (!strcmp(r->method, method) || (!strcmp(method, "HEAD") && !strcmp(r->method, "GET"))) {
            match_pattern(r->pattern, rel, req, true);
            *found = r;
            return ROUTE_FOUND;
        }
        path_known = true;
        size_t used = strlen(allow);
        snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", r->method);
    }
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NO_PATH;
}
