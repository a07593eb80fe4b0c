/* Origin matching for CORS; see cors.h. */
#include "http/cors.h"

#include <string.h>
#include <strings.h>

const char *cors_allow_origin(const char *allowed, const char *origin) {
    if (!origin || !*origin || !allowed || !*allowed) return NULL;
    size_t olen = strlen(origin);
    for (const char *s = allowed; *s;) {
        s += strspn(s, ", ");
        size_t n = strcspn(s, ", ");
        if (n == 1 && *s == '*') return "*";
        /* Scheme and host are case-insensitive; a listed origin matches exactly otherwise. */
        if (n && n == olen && !strncasecmp(s, origin, n)) return origin;
        s += n;
    }
    return NULL;
}
