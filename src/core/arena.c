/* Bump allocator over a chain of malloc'd blocks; see arena.h. */
#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct arena_block {
    struct arena_block *next;
    size_t size, used;
    max_align_t data[];
} arena_block;

struct arena {
    arena_block *head;
    size_t block_size, total;
};

static arena_block *block_new(size_t size) {
    arena_block *b = malloc(sizeof(*b) + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

arena *arena_create(size_t first_block_size) {
    arena *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->block_size = first_block_size ? first_block_size : 4096;
    return a;
}

void arena_free(arena *a) {
    if (!a) return;
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *arena_alloc(arena *a, size_t size) {
    const size_t align = sizeof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    if (need < size) return NULL; /* overflow */
    arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        /* Grow geometrically so a request with many small allocations stays cheap. */
        size_t bs = a->block_size;
        while (bs < need) {
            if (bs > (SIZE_MAX - sizeof(arena_block)) / 2) return NULL; /* would overflow */
            bs *= 2;
        }
        a->block_size = bs < (1u << 20) ? bs * 2 : bs;
        b = block_new(bs);
        if (!b) return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    a->total += need;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t arena_bytes_used(const arena *a) { return a->total; }
