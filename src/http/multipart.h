/* multipart/form-data and multipart/mixed bodies (RFC 7578 / 2046) split into
 * named parts. Parts point into the request body; headers are copied into the
 * request arena. */
#ifndef HTTP_MULTIPART_H
#define HTTP_MULTIPART_H
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

#define MULTIPART_MAX_PARTS 16

typedef struct {
    const char *name;         /* from Content-Disposition; NULL when absent */
    const char *filename;     /* NULL when absent */
    const char *content_type; /* NULL when absent */
    const uint8_t *data;
    size_t len;
} multipart_part;

typedef struct {
    multipart_part parts[MULTIPART_MAX_PARTS];
    int count;
} multipart_body;

/* Returns 0, or -1 with a message for the client in err. */
int multipart_parse(arena *a, const char *content_type, const uint8_t *body, size_t len,
                    multipart_body *out, char *err, size_t err_len);
const multipart_part *multipart_find(const multipart_body *b, const char *name);

#endif
