/* The at-rest key ring: the keys that encrypt biometric data the server hands out
 * (templates) or keeps (face records, images, liveness captures), and AES-256-GCM
 * sealing with them (docs/security.md, "What is encrypted with which key").
 *
 * The ring is the text file DATA_DIR/data-keys, one key a line: "ID HEX64" (ID a
 * positive integer, HEX64 32 random bytes). The key with the highest ID is the
 * current one: everything new is sealed with it; every key in the file still
 * opens what it sealed. data_keyring_rotate appends a new key; instances that share the
 * data folder pick it up when they meet a sealed value of an ID they do not know
 * (the file is read again then), so a rolling restart never strands data.
 *
 * Each ring key is a master key: the AEAD keys are derived from it per purpose
 * (HMAC-SHA256(master, label)), so templates and store values never share a key.
 *
 * Thread safety: a data_keyring may be used from any thread; a reload takes its lock. */
#ifndef SIGN_DATA_KEYRING_H
#define SIGN_DATA_KEYRING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATA_KEYRING_FILE "data-keys"
#define DATA_KEYRING_MAX_KEYS 64
/* A sealed value: u32 key id | 12-byte nonce | ciphertext (plain length) | 16-byte tag. */
#define DATA_KEYRING_NONCE_LEN 12
#define DATA_KEYRING_TAG_LEN 16
#define DATA_KEYRING_OVERHEAD (4 + DATA_KEYRING_NONCE_LEN + DATA_KEYRING_TAG_LEN)

typedef struct data_keyring data_keyring;

typedef enum {
    KEY_PURPOSE_TEMPLATE, /* templates handed to clients */
    KEY_PURPOSE_STORE,    /* face records, images, liveness items in the store */
    KEY_PURPOSE_COUNT,
} key_purpose;

enum {
    DATA_KEYRING_OK = 0,
    DATA_KEYRING_ERR_FORMAT = -1,      /* too short to be a sealed value */
    DATA_KEYRING_ERR_UNKNOWN_KEY = -2, /* sealed with a key this ring does not hold (removed?) */
    DATA_KEYRING_ERR_AUTH = -3,        /* modified, or sealed for other associated data */
    DATA_KEYRING_ERR_CRYPTO = -4,      /* OpenSSL failure (allocation) */
};

/* Reads DATA_DIR/data-keys, creating it with one fresh key when absent (0600; two
 * processes starting together agree on one file). NULL with err on an unreadable
 * or malformed file. */
data_keyring *data_keyring_load_or_create(const char *data_dir, char *err, size_t err_len);
void data_keyring_free(data_keyring *r); /* NULL-safe */

/* Appends a fresh key, which becomes the current one, to DATA_DIR/data-keys
 * (created when absent); running instances keep sealing with their current key
 * until restarted. Returns the new key's ID, or 0 with err. */
uint32_t data_keyring_rotate(const char *data_dir, char *err, size_t err_len);

uint32_t data_keyring_current_id(data_keyring *r);

/* Seals plain (len bytes) into out (len + DATA_KEYRING_OVERHEAD bytes) with the
 * current key, binding aad. deterministic: the nonce is a MAC of aad and plain
 * (synthetic IV), so equal inputs give equal bytes (only equal inputs); otherwise
 * it is random. Returns DATA_KEYRING_OK or DATA_KEYRING_ERR_CRYPTO. */
int data_keyring_seal(data_keyring *r, key_purpose p, const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t len,
                 bool deterministic, uint8_t *out);
/* Opens sealed (len bytes) into plain (len - DATA_KEYRING_OVERHEAD bytes); the same aad
 * must be given. *key_id (may be NULL) receives the key that sealed it. */
int data_keyring_open(data_keyring *r, key_purpose p, const uint8_t *aad, size_t aad_len, const uint8_t *sealed, size_t len,
                 uint8_t *plain, uint32_t *key_id);

#endif
