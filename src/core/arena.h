/* Per-request memory pool: everything a request allocates lives here and is freed
 * at once when the request ends, so a forgotten free cannot leak (nginx-style). */
#ifndef CORE_ARENA_H
#define CORE_ARENA_H
#include <stddef.h>

typedef struct arena arena;

arena *arena_create(size_t first_block_size);
void arena_free(arena *a);
/* Returns zeroed memory aligned for any type; NULL only when malloc fails. */
void *arena_alloc(arena *a, size_t size);
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t arena_bytes_used(const arena *a);

#endif
