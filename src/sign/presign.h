/* ECDSA P-256 nonces computed ahead of time, so a signature costs a few microseconds
 * when the server had idle CPU before the burst that needs it (GetMatches signs every
 * match: 999 signatures for a 1,000-face session).
 *
 * An ECDSA signature is s = k^-1 (z + r d) mod n with r = (k G).x. The point
 * multiplication k G and the inverse k^-1 do not depend on the message and take ~90%
 * of the ~28 us a P-256 signature costs here (`openssl speed ecdsap256`: 35,500/s on
 * one core). A background thread with the SCHED_IDLE policy (it runs only when no
 * other thread of the machine wants the CPU) keeps a pool of (k^-1, r) pairs filled;
 * presign_sign takes one, uses it for exactly one signature and erases it. With the
 * pool empty (sustained load) it reports so and the caller signs the usual way: the
 * pool never adds work, it moves it to idle time. Signatures are ordinary ES256
 * signatures, indistinguishable from the usual ones.
 *
 * The pairs are as secret as the private key (a pair and the signature made with it
 * give the key away): they live only in this process's memory, are never reused and
 * are cleared when taken or freed. Thread-safe. */
#ifndef SIGN_PRESIGN_H
#define SIGN_PRESIGN_H
#include <openssl/evp.h>
#include <stdint.h>

typedef struct presign presign;

/* Starts the filler thread for key (a P-256 key, borrowed: it must outlive the pool),
 * keeping up to capacity pairs. NULL when the key is not P-256 or on failure. */
presign *presign_create(EVP_PKEY *key, int capacity);
/* Stops the thread and erases the pairs not used; NULL is safe. */
void presign_free(presign *p);
/* Signs a SHA-256 digest with a precomputed pair into raw r||s (the JWS form).
 * Returns 1 when done, 0 when no pair was ready (raw untouched: sign the usual way),
 * -1 on an OpenSSL failure (the pair is spent either way). */
int presign_sign(presign *p, const uint8_t digest[32], uint8_t raw[64]);
/* Pairs ready right now (for tests and metrics). */
int presign_ready(presign *p);

#endif
