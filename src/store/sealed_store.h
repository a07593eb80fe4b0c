/* A store that encrypts the items of chosen kinds (those holding biometric data:
 * face records, images, liveness captures) before they reach the backend, and
 * authenticates them on the way back. It wraps any backend behind the same
 * store_ops, so handlers and the backends stay unaware of it.
 *
 * A sealed item is "BSV1" | u8 id length | item id | sealed bytes (sign/data_keyring.h,
 * AES-256-GCM with the ring's store key). The associated data is the format tag,
 * tenant, session, kind and item id, so a value copied to another item, session or
 * tenant no longer opens: such a read fails with STORE_CORRUPT, as does one under a
 * key no longer in the ring. Sessions, usage counters, job queues and deadlines
 * pass through unchanged (they hold no biometric data). */
#ifndef STORE_SEALED_STORE_H
#define STORE_SEALED_STORE_H
#include "sign/data_keyring.h"
#include "store/store.h"

#define SEALED_STORE_MAX_KINDS 8

/* Takes ownership of inner (closed with the sealed store); borrows ring, which
 * must outlive it. kinds: NULL-terminated, at most SEALED_STORE_MAX_KINDS, each
 * shorter than 16 characters. NULL on bad arguments (inner is then closed). */
store *store_sealed_create(store *inner, data_keyring *ring, const char *const *kinds);

/* Runs fn(arg, i) for every i < n, possibly on several threads, and returns when all
 * are done (the worker pool's parallel for). */
typedef void sealed_parallel_for(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg);

/* Lists open their items with run (a session's 1,000 face records take ~3 ms on one
 * thread); NULL runs them on the caller's thread again, as before the pool exists
 * and after it stops. s must come from store_sealed_create. */
void store_sealed_set_parallel(store *s, sealed_parallel_for *run, void *ctx);

#endif
