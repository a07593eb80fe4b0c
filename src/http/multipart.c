/* Multipart parser; see multipart.h. Works on the fully received (size-limited)
 * body, so it can use memmem instead of a streaming state machine. */
#include "http/multipart.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Value of a `param=value` or `param="value"` inside a header value. */
static const char *header_param(arena *a, const char *header, const char *param) {
    size_t pl = strlen(param);
    const char *p = header;
    while ((p = strcasestr(p, param))) {
        bool at_start = p == header || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t';
        if (at_start && p[pl] == '=') {
            p += pl + 1;
            if (*p == '"') {
                const char *end = strchr(p + 1, '"');
                return end ? arena_strndup(a, p + 1, (size_t)(end - p - 1)) : NULL;
            }
            return arena_strndup(a, p, strcspn(p, "; \t"));
        }
        p += pl;
    }
    return NULL;
}

static int parse_part_headers(arena *a, const char *h, size_t len, multipart_part *part) {
    const char *end = h + len;
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        size_t n = eol ? (size_t)(eol - h) : (size_t)(end - h);
        char *line = arena_strndup(a, h, n);
        if (!line) return -1;
        if (!strncasecmp(line, "Content-Disposition:", 20)) {
            part->name = header_param(a, line + 20, "name");
            part->filename = header_param(a, line + 20, "filename");
        } else if (!strncasecmp(line, "Content-Type:", 13)) {
            const char *v = line + 13;
            while (isspace((unsigned char)*v)) v++;
            part->content_type = v;
        }
        h += n + 2;
    }
    return 0;
}

int multipart_parse(arena *a, const char *content_type, const uint8_t *body, size_t len,
                    multipart_body *out, char *err, size_t err_len) {
    memset(out, 0, sizeof(*out));
    const char *boundary = content_type ? header_param(a, content_type, "boundary") : NULL;
    if (!boundary || !*boundary || strlen(boundary) > 70) {
        snprintf(err, err_len, "multipart body without a valid boundary parameter in Content-Type");
        return -1;
    }
    char delim[80];
    int dl = snprintf(delim, sizeof delim, "--%s", boundary);
    const uint8_t *end = body + len;
    const uint8_t *p = memmem(body, len, delim, (size_t)dl);
    if (!p) {
        snprintf(err, err_len, "multipart body does not contain its boundary");
        return -1;
    }
    char next_delim[84];
    int nl = snprintf(next_delim, sizeof next_delim, "\r\n--%s", boundary);
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 0; /* closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') break;
        p += 2;
        const uint8_t *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const uint8_t *data;
        multipart_part part = {0};
        if (hdr_end) {
            if (parse_part_headers(a, (const char *)p, (size_t)(hdr_end - p), &part)) break;
            data = hdr_end + 4;
        } else if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            data = p + 2; /* part without headers */
        } else {
            break;
        }
        const uint8_t *stop = memmem(data, (size_t)(end - data), next_delim, (size_t)nl);
        if (!stop) break;
        if (out->count == MULTIPART_MAX_PARTS) {
            snprintf(err, err_len, "multipart body has more than %d parts", MULTIPART_MAX_PARTS);
            return -1;
        }
        part.data = data;
        part.len = (size_t)(stop - data);
        out->parts[out->count++] = part;
        p = stop + 2;
    }
    snprintf(err, err_len, "malformed or truncated multipart body");
    return -1;
}

const multipart_part *multipart_find(const multipart_body *b, const char *name) {
    for (int i = 0; i < b->count; i++)
        if (b->parts[i].name && !strcmp(b->parts[i].name, name)) return &b->parts[i];
    return NULL;
}
