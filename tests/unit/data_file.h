/* Reading evaluation files from ../shared/data in unit tests (they run from the
 * repository root; nothing under data/ is ever committed). Include after cmocka.h. */
#ifndef TESTS_UNIT_DATA_FILE_H
#define TESTS_UNIT_DATA_FILE_H
#include <stdint.h>
#include <stdlib.h>

#include "core/file.h"

typedef struct {
    uint8_t *data;
    size_t len;
} blob;

/* The whole file (up to 256 MiB); len 0 when it cannot be read. */
static inline blob read_blob(const char *path)
{
    blob b = {NULL, 0};
    b.data = file_read_all(path, (size_t)1 << 28, &b.len);
    return b;
}

/* Reads a data file into var, or skips the test when the shared data set is absent. */
#define READ_OR_SKIP(var, path)                                                        \
    blob var = read_blob(path);                                                        \
    if (!var.len) {                                                                    \
        free(var.data);                                                                \
        print_message("missing %s, skipping\n", path);                                 \
        skip();                                                                        \
    }

#endif
