/* Server-side symmetric secrets (e.g. the template MAC key), kept as files in the
 * data folder so every process that shares the folder shares the secret. */
#ifndef SIGN_SECRET_H
#define SIGN_SECRET_H
#include <stddef.h>
#include <stdint.h>

/* Reads data_dir/name (exactly len bytes) or creates it from the CSPRNG (0600). */
int secret_load_or_create(const char *data_dir, const char *name, uint8_t *out, size_t len,
                          char *err, size_t err_len);

#endif
