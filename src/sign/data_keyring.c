/* The at-rest key ring and AES-256-GCM sealing; see data_keyring.h. */
#include "sign/data_keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/util.h"

#define KEY_LEN 32
#define FILE_MAX_BYTES 16384

/* Per purpose: the AEAD key and the synthetic-IV MAC, both derived. The MAC
 * context is keyed once and copied per use (keying it costs more than the MAC). */
typedef struct {
    uint8_t aead[KEY_LEN];
    EVP_MAC_CTX *siv;
} purpose_keys;

typedef struct {
    uint32_t id;
    purpose_keys purpose[KEY_PURPOSE_COUNT];
} ring_key;

struct data_keyring {
    char path[1024];
    pthread_mutex_t lock; /* guards count and keys[] (entries never move or change) */
    int count;
    ring_key *keys[DATA_KEYRING_MAX_KEYS];
    ring_key *current;
    int64_t reloaded_ms; /* an unknown key id reads the file at most once a second */
    /* Fetched once: OpenSSL 3 looks an algorithm up on every implicit fetch. */
    EVP_MAC *hmac;
    EVP_CIPHER *gcm;
};

static const char *const purpose_labels[KEY_PURPOSE_COUNT] = {"bioserver template v2", "bioserver store v1"};

static void derive(const uint8_t master[KEY_LEN], const char *label, const char *use, uint8_t out[KEY_LEN]) {
    char info[96];
    int n = snprintf(info, sizeof info, "%s/%s", label, use);
    unsigned int len = KEY_LEN;
    HMAC(EVP_sha256(), master, KEY_LEN, (const uint8_t *)info, (size_t)n, out, &len);
}

static void ring_key_free(ring_key *k) {
    if (!k) return;
    for (int p = 0; p < KEY_PURPOSE_COUNT; p++) EVP_MAC_CTX_free(k->purpose[p].siv);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

static ring_key *ring_key_new(EVP_MAC *hmac, uint32_t id, const uint8_t master[KEY_LEN]) {
    ring_key *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    k->id = id;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0), OSSL_PARAM_END};
    bool ok = true;
    for (int p = 0; p < KEY_PURPOSE_COUNT; p++) {
        uint8_t siv[KEY_LEN];
        derive(master, purpose_labels[p], "aead", k->purpose[p].aead);
        derive(master, purpose_labels[p], "nonce", siv);
        k->purpose[p].siv = EVP_MAC_CTX_new(hmac);
        ok = ok && k->purpose[p].siv && EVP_MAC_init(k->purpose[p].siv, siv, KEY_LEN, params);
        OPENSSL_cleanse(siv, sizeof siv);
    }
    if (!ok) {
        ring_key_free(k);
        return NULL;
    }
    return k;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One "ID HEX64" line; false when malformed. */
static bool parse_line(const char *line, uint32_t *id, uint8_t master[KEY_LEN]) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(line, &end, 10);
    if (errno || end == line || *end != ' ' || v == 0 || v > 0x7fffffffUL || line[0] == '-' || line[0] == '+')
        return false;
    const char *hex = end + 1;
    for (int i = 0; i < KEY_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        master[i] = (uint8_t)(hi << 4 | lo);
    }
    *id = (uint32_t)v;
    return hex[2 * KEY_LEN] == '\0';
}

static ring_key *find_locked(data_keyring *r, uint32_t id) {
    for (int i = 0; i < r->count; i++)
        if (r->keys[i]->id == id) return r->keys[i];
    return NULL;
}

/* Reads the file; keys already known are kept as they are, new ones are added.
 * With the lock held (or before the ring is shared). */
static int reload_locked(data_keyring *r, char *err, size_t err_len) {
    size_t len = 0;
    char *text = (char *)file_read_all(r->path, FILE_MAX_BYTES, &len);
    if (!text) {
        snprintf(err, err_len, "cannot read the key ring %s (at most %d bytes)", r->path, FILE_MAX_BYTES);
        return -1;
    }
    int lineno = 0, rc = 0;
    for (char *line = text, *next; line && rc == 0; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[n - 1] = '\0';
        if (!line[0] || line[0] == '#') continue;
        uint32_t id;
        uint8_t master[KEY_LEN];
        if (!parse_line(line, &id, master)) {
            snprintf(err, err_len, "%s: line %d must be 'ID HEX' (ID 1..2147483647, 64 hex digits)", r->path, lineno);
            rc = -1;
        } else if (!find_locked(r, id)) {
            ring_key *k = r->count < DATA_KEYRING_MAX_KEYS ? ring_key_new(r->hmac, id, master) : NULL;
            if (k) r->keys[r->count++] = k;
            else {
                snprintf(err, err_len, "%s: more than %d keys", r->path, DATA_KEYRING_MAX_KEYS);
                rc = -1;
            }
        }
        OPENSSL_cleanse(master, sizeof master);
    }
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc == 0 && r->count == 0) {
        snprintf(err, err_len, "the key ring %s holds no key", r->path);
        rc = -1;
    }
    /* The current key is chosen once, at load: a reload only adds keys to open with. */
    ring_key *best = NULL;
    for (int i = 0; rc == 0 && !r->current && i < r->count; i++)
        if (!best || r->keys[i]->id > best->id) best = r->keys[i];
    if (best) r->current = best;
    return rc;
}

static int append_key_line(int fd, uint32_t id, char *err, size_t err_len) {
    uint8_t master[KEY_LEN];
    char hex[2 * KEY_LEN + 1], line[128];
    if (RAND_bytes(master, KEY_LEN) != 1) {
        snprintf(err, err_len, "no entropy for a new data key");
        return -1;
    }
    hex_encode(master, KEY_LEN, hex);
    int n = snprintf(line, sizeof line, "%u %s\n", id, hex);
    OPENSSL_cleanse(master, sizeof master);
    bool ok = write(fd, line, (size_t)n) == n;
    OPENSSL_cleanse(hex, sizeof hex);
    OPENSSL_cleanse(line, sizeof line);
    if (!ok) snprintf(err, err_len, "cannot write the key ring: %s", strerror(errno));
    return ok ? 0 : -1;
}

static const char header[] = "# bioserver at-rest keys: 'ID HEX'; the highest ID seals new data, every key opens (docs/security.md)\n";

/* A complete first file, published with link() so that a concurrent starter
 * either sees none or all of it. */
static int create_file(const char *path, char *err, size_t err_len) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.new.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int rc = write(fd, header, sizeof header - 1) == (ssize_t)(sizeof header - 1) ? append_key_line(fd, 1, err, err_len) : -1;
    if (rc == 0 && fsync(fd)) rc = -1;
    close(fd);
    if (rc == 0 && link(tmp, path) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", path, strerror(errno));
        rc = -1;
    }
    unlink(tmp);
    return rc;
}

static int ensure_dir(const char *dir, char *err, size_t err_len) {
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data folder %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

data_keyring *data_keyring_load_or_create(const char *data_dir, char *err, size_t err_len) {
    data_keyring *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    snprintf(r->path, sizeof r->path, "%s/%s", data_dir, DATA_KEYRING_FILE);
    pthread_mutex_init(&r->lock, NULL);
    r->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    r->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (!r->hmac || !r->gcm) {
        snprintf(err, err_len, "OpenSSL has no HMAC or AES-256-GCM");
        data_keyring_free(r);
        return NULL;
    }
    if (ensure_dir(data_dir, err, err_len) || (access(r->path, F_OK) && create_file(r->path, err, err_len)) ||
        reload_locked(r, err, err_len)) {
        data_keyring_free(r);
        return NULL;
    }
    return r;
}

void data_keyring_free(data_keyring *r) {
    if (!r) return;
    for (int i = 0; i < r->count; i++) ring_key_free(r->keys[i]);
    EVP_MAC_free(r->hmac);
    EVP_CIPHER_free(r->gcm);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

uint32_t data_keyring_rotate(const char *data_dir, char *err, size_t err_len) {
    data_keyring *r = data_keyring_load_or_create(data_dir, err, err_len);
    if (!r) return 0;
    /* flock: two rotations at once must not pick the same ID. */
    int fd = open(r->path, O_WRONLY | O_APPEND);
    uint32_t id = 0;
    if (fd < 0 || flock(fd, LOCK_EX)) {
        snprintf(err, err_len, "cannot open %s for writing: %s", r->path, strerror(errno));
    } else if (reload_locked(r, err, err_len) == 0) {
        uint32_t next = r->current->id + 1;
        if (next > 0x7fffffffu) snprintf(err, err_len, "key IDs are exhausted in %s", r->path);
        else if (append_key_line(fd, next, err, err_len) == 0 && fsync(fd) == 0) id = next;
    }
    if (fd >= 0) close(fd);
    data_keyring_free(r);
    return id;
}

uint32_t data_keyring_current_id(data_keyring *r) {
    pthread_mutex_lock(&r->lock);
    uint32_t id = r->current->id;
    pthread_mutex_unlock(&r->lock);
    return id;
}

/* The key of that ID; an unknown ID reads the file again once (another instance
 * may have rotated). NULL when it still is unknown. */
static const ring_key *find_key(data_keyring *r, uint32_t id) {
    pthread_mutex_lock(&r->lock);
    const ring_key *k = find_locked(r, id);
    int64_t now = time_now_ms();
    if (!k && now - r->reloaded_ms >= 1000) {
        char err[256];
        r->reloaded_ms = now;
        reload_locked(r, err, sizeof err);
        k = find_locked(r, id);
    }
    pthread_mutex_unlock(&r->lock);
    return k;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Synthetic IV: HMAC(siv key, key id | aad length | aad | plain), first 12 bytes. */
static int synthetic_nonce(const EVP_MAC_CTX *keyed, const uint8_t id[4], const uint8_t *aad, size_t aad_len,
                           const uint8_t *plain, size_t len, uint8_t nonce[DATA_KEYRING_NONCE_LEN]) {
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(keyed);
    uint8_t alen[8], out[32];
    for (int i = 0; i < 8; i++) alen[i] = (uint8_t)((uint64_t)aad_len >> (8 * i));
    size_t n = 0;
    int ok = ctx && EVP_MAC_update(ctx, id, 4) &&
             EVP_MAC_update(ctx, alen, 8) && EVP_MAC_update(ctx, aad, aad_len) && EVP_MAC_update(ctx, plain, len) &&
             EVP_MAC_final(ctx, out, &n, sizeof out);
    EVP_MAC_CTX_free(ctx);
    if (ok) memcpy(nonce, out, DATA_KEYRING_NONCE_LEN);
    return ok ? 0 : -1;
}

/* One AES-256-GCM pass; the key id bytes are authenticated before aad. */
static int gcm(const EVP_CIPHER *cipher, bool encrypt, const uint8_t key[KEY_LEN], const uint8_t *nonce, const uint8_t id[4],
               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx && EVP_CipherInit_ex(ctx, cipher, NULL, key, nonce, encrypt) &&
                    EVP_CipherUpdate(ctx, NULL, &n, id, 4) && (!aad_len || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len)) &&
                    (!len || EVP_CipherUpdate(ctx, out, &n, in, (int)len));
    if (ok && !encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, DATA_KEYRING_TAG_LEN, tag);
    if (ok) ok = EVP_CipherFinal_ex(ctx, out + (len ? n : 0), &n) == 1 ? 1 : (encrypt ? 0 : -1);
    if (ok == 1 && encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, DATA_KEYRING_TAG_LEN, tag);
    EVP_CIPHER_CTX_free(ctx);
    return ok == 1 ? DATA_KEYRING_OK : ok < 0 ? DATA_KEYRING_ERR_AUTH : DATA_KEYRING_ERR_CRYPTO;
}

int data_keyring_seal(data_keyring *r, key_purpose p, const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t len,
                 bool deterministic, uint8_t *out) {
    pthread_mutex_lock(&r->lock);
    const ring_key *k = r->current;
    pthread_mutex_unlock(&r->lock);
    put_u32(out, k->id);
    uint8_t *nonce = out + 4;
    int ok = deterministic ? synthetic_nonce(k->purpose[p].siv, out, aad, aad_len, plain, len, nonce) == 0
                           : RAND_bytes(nonce, DATA_KEYRING_NONCE_LEN) == 1;
    if (!ok || len > INT32_MAX || aad_len > INT32_MAX) return DATA_KEYRING_ERR_CRYPTO;
    uint8_t *cipher = nonce + DATA_KEYRING_NONCE_LEN;
    return gcm(r->gcm, true, k->purpose[p].aead, nonce, out, aad, aad_len, plain, len, cipher, cipher + len);
}

int data_keyring_open(data_keyring *r, key_purpose p, const uint8_t *aad, size_t aad_len, const uint8_t *sealed, size_t len,
                 uint8_t *plain, uint32_t *key_id) {
    if (len < DATA_KEYRING_OVERHEAD || len - DATA_KEYRING_OVERHEAD > INT32_MAX || aad_len > INT32_MAX) return DATA_KEYRING_ERR_FORMAT;
    uint32_t id = get_u32(sealed);
    const ring_key *k = find_key(r, id);
    if (!k) return DATA_KEYRING_ERR_UNKNOWN_KEY;
    if (key_id) *key_id = id;
    size_t plain_len = len - DATA_KEYRING_OVERHEAD;
    const uint8_t *nonce = sealed + 4, *cipher = nonce + DATA_KEYRING_NONCE_LEN;
    uint8_t tag[DATA_KEYRING_TAG_LEN];
    memcpy(tag, cipher + plain_len, DATA_KEYRING_TAG_LEN);
    return gcm(r->gcm, false, k->purpose[p].aead, nonce, sealed, aad, aad_len, cipher, plain_len, plain, tag);
}
