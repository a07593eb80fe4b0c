/* The encrypted capture upload of replay liveness ("envelope").
 *
 * The server owns an RSA-2048 encryption key and a self-signed certificate for it,
 * kept in the data folder (liveness-enc-key.pem / liveness-enc-cert.pem) and
 * separate from the ES256 response-signing key, so rotating one never touches the
 * other. init-liveness-parameters publishes the certificate; the client:
 *   1. draws a fresh AES-256 key K and a 12-byte IV,
 *   2. encrypts the capture JSON with AES-256-GCM (16-byte tag appended to the
 *      ciphertext, as WebCrypto does) and the additional data
 *      "bioserver-liveness-v1\n" + sessionId + "\n" + serverRandom,
 *   3. wraps K with RSA-OAEP (SHA-256, MGF1-SHA-256): WebCrypto's "RSA-OAEP" with
 *      hash "SHA-256", JOSE's RSA-OAEP-256.
 * Binding serverRandom (fresh per init, single use) and the session id in the
 * authenticated data is what makes an old or foreign upload fail to decrypt. */
#ifndef LIVENESS_ENVELOPE_H
#define LIVENESS_ENVELOPE_H
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_KEY_BYTES 32
#define ENVELOPE_IV_BYTES 12
#define ENVELOPE_TAG_BYTES 16
#define ENVELOPE_AAD_PREFIX "bioserver-liveness-v1\n"

enum {
    ENVELOPE_OK = 0,
    ENVELOPE_ERR_KEY = -1,    /* the wrapped key does not unwrap with our key */
    ENVELOPE_ERR_AUTH = -2,   /* GCM tag mismatch: tampered, or other session/serverRandom */
    ENVELOPE_ERR_FORMAT = -3, /* wrong IV length, ciphertext shorter than a tag, ... */
    ENVELOPE_ERR_NOMEM = -4,
};

typedef struct envelope_key envelope_key;

/* Loads data_dir/liveness-enc-{key,cert}.pem or creates them (key 0600). */
envelope_key *envelope_key_load_or_create(const char *data_dir, char *err, size_t err_len);
void envelope_key_free(envelope_key *k);

/* The certificate, DER, and its base64 (what "certificates" lists). */
const uint8_t *envelope_certificate_der(const envelope_key *k, size_t *len);
const char *envelope_certificate_b64(const envelope_key *k);

/* The additional authenticated data for one session and serverRandom; malloc'd,
 * length in *len. */
uint8_t *envelope_aad(const char *session_id, const char *server_random, size_t *len);

/* Unwraps the AES key and decrypts. On success *plain is malloc'd (caller frees)
 * and the return value is ENVELOPE_OK; otherwise a negative ENVELOPE_ERR_*. */
int envelope_open(const envelope_key *k, const uint8_t *wrapped_key, size_t wrapped_len,
                  const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext, size_t ct_len,
                  const uint8_t *aad, size_t aad_len, uint8_t **plain, size_t *plain_len);

/* The two steps of envelope_open, for the capture stream (docs/capture-stream.md),
 * which unwraps its key once and decrypts every frame with it. envelope_decrypt
 * writes ct_len - ENVELOPE_TAG_BYTES bytes to out. */
int envelope_unwrap(const envelope_key *k, const uint8_t *wrapped, size_t wrapped_len,
                    uint8_t key[ENVELOPE_KEY_BYTES]);
int envelope_decrypt(const uint8_t key[ENVELOPE_KEY_BYTES], const uint8_t iv[ENVELOPE_IV_BYTES], const uint8_t *ct,
                     size_t ct_len, const uint8_t *aad, size_t aad_len, uint8_t *out);

/* The sealing side, for tests and the reference client in C: the inverse of
 * envelope_open with a caller-chosen AES key and IV. Buffers are malloc'd. */
int envelope_seal(const uint8_t *cert_der, size_t cert_len, const uint8_t key[ENVELOPE_KEY_BYTES],
                  const uint8_t iv[ENVELOPE_IV_BYTES], const uint8_t *plain, size_t plain_len,
                  const uint8_t *aad, size_t aad_len, uint8_t **wrapped, size_t *wrapped_len,
                  uint8_t **ciphertext, size_t *ct_len);

const char *envelope_strerror(int code);

#endif
