/* File-backed random secrets; see secret.h. */
#include "sign/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int secret_load_or_create(const char *dir, const char *name, uint8_t *out, size_t len, char *err, size_t err_len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, out, len);
        char extra;
        ssize_t more = read(fd, &extra, 1);
        close(fd);
        if (n != (ssize_t)len || more != 0) {
            snprintf(err, err_len, "secret file %s must hold exactly %zu bytes", path, len);
            return -1;
        }
        return 0;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (RAND_bytes(out, (int)len) != 1) {
        snprintf(err, err_len, "no entropy for %s", name);
        return -1;
    }
    /* O_EXCL: two processes starting together must not both write a secret. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return secret_load_or_create(dir, name, out, len, err, err_len);
        snprintf(err, err_len, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, out, len);
    close(fd);
    if (w != (ssize_t)len) {
        snprintf(err, err_len, "cannot write %s", path);
        return -1;
    }
    return 0;
}
