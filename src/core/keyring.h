/* The API keys requests are checked against: the keys of the configuration (fixed
 * for the process's life) plus those of the keys file, which keyring_reload re-reads
 * (on SIGHUP) while requests keep running.
 *
 * Entries are append-only and freed only by keyring_free: a request keeps a plain
 * pointer to its key, and an entry's index labels its metrics; both stay valid for
 * the life of the process. A key removed from the file is revoked (an atomic flag:
 * the next request with it gets 401); a key whose tenant or permissions change gets
 * a new entry and the old one is revoked. A reload that would need more than
 * KEYRING_MAX entries in all fails and changes nothing (restart to compact).
 *
 * Readers take no lock: an entry is written before `count` is published with
 * release order. Reloads are serialised by a mutex. */
#ifndef CORE_KEYRING_H
#define CORE_KEYRING_H
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define KEYRING_MAX 512

typedef struct keyring keyring;

/* The configuration's keys plus, when cfg->keys_file is set, the file's; NULL with
 * err set when the file cannot be read or has a bad line (every one is listed). */
keyring *keyring_create(const server_config *cfg, char *err, size_t err_len);
void keyring_free(keyring *kr); /* NULL is fine */
/* Re-reads the keys file. On any error (unreadable, bad line, too many entries)
 * nothing changes and err says why. *added / *revoked count the changes. */
int keyring_reload(keyring *kr, int *added, int *revoked, char *err, size_t err_len);
/* The active key whose secret equals `secret` (each candidate compared in constant
 * time), or NULL; *index is its stable index. */
const api_key_config *keyring_find(keyring *kr, const char *secret, int *index);
/* Entries ever added (revoked ones included); entry i and whether it is active. */
int keyring_count(keyring *kr);
const api_key_config *keyring_entry(keyring *kr, int i, bool *active);
int keyring_active_count(keyring *kr);
/* KEYRING_MAX name slots (entry i's name, NULL beyond count): metrics labels. */
const char *const *keyring_names(keyring *kr);
/* Reads one keys file into cfg-like storage (used by create/reload and by
 * --check-config): 0, or -1 with every bad line listed in err. */
int keyring_read_file(const char *path, api_key_config *out, int cap, int *n, char *err, size_t err_len);

#endif
