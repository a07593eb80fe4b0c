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

/* Runs a loaded model once on zero inputs when all its tensors together hold at
 * most 2^24 values (the seeds' models need under 2^22), so a run stays fast and
 * a mutated shape cannot make the fuzzer run out of memory: the loader accepts
 * tensors up to 2^28 values each, which is legal but not what we look for. */
#ifdef BIO_NN_INTERNAL_H
static inline size_t fuzz_elements(nn_shape s)
{
    size_t n = 1;
    for (int d = 0; d < s.rank; d++) n *= (size_t)s.dims[d];
    return n;
}

static inline void fuzz_run_once(nn_model *m)
{
    if (!m) return;
    size_t total = 0;
    for (int i = 0; i < m->g.n_tensors; i++)
        if (m->g.tensors[i].shape.rank >= 0) total += fuzz_elements(m->g.tensors[i].shape);
    if (total > (1u << 24)) return;
    char err[256];
    nn_session *s = nn_session_create(m, err, sizeof err);
    if (!s) return;
    for (int i = 0; i < nn_model_input_count(m); i++)
        memset(nn_session_input(s, i), 0, fuzz_elements(nn_model_input_shape(m, i)) * sizeof(float));
    nn_run(s);
    nn_session_free(s);
}
#endif

#endif
