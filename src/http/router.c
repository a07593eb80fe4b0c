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

route_result router_match(const route *routes, const char *method, const char *path,
                          http_request *req, const route **found, char *allow, size_t allow_len) {
    if (strncmp(path, PREFIX, strlen(PREFIX)) && strcmp(path, "/metrics")) return ROUTE_NO_PATH;
    const char *rel = strncmp(path, PREFIX, strlen(PREFIX)) ? path : path + strlen(PREFIX);
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
