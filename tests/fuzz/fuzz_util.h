/* Shared by the libFuzzer harnesses: a private scratch directory and a way to
 * hand fuzz bytes to code that only reads files. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A directory of this process under /dev/shm (or /tmp), made on first use. */
static inline const char *fuzz_scratch_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/bio-fuzz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* Writes data to scratch/name; returns the path (static buffer). */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) abort();
    return path;
}

#endif
