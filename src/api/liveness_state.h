/* Replay-liveness state, kept in the store so that several instances share it
 * (docs/distributed.md). Two places, both expiring with the session:
 *  - the store item kind LIVENESS_KIND, id LIVENESS_ITEM: parameters, status, results;
 *  - the session record's "livenessStatus" and "livenessNonce" (= serverRandom).
 * Every status transition is first a compare-and-set on the session record, so
 * exactly one of {upload, timeout, re-init} wins a race, and DeleteBioSession sees
 * IN_PROGRESS (409) for as long as a worker writes into the session. Store calls
 * return STORE_OK or a store error (store.h); nothing here replies to a request. */
#ifndef API_LIVENESS_STATE_H
#define API_LIVENESS_STATE_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/app.h"
#include "store/store.h"

#define LIVENESS_KIND "liveness"
#define LIVENESS_CAPTURE_KIND "capture" /* the decrypted capture, waiting for a worker */
#define LIVENESS_ITEM "current"
/* Shared across instances through the store: the queue of uploaded captures
 * waiting for a worker, and the index of capture deadlines. */
#define LIVENESS_QUEUE "liveness"
#define LIVENESS_DUE "liveness"

typedef struct {
    store_value raw; /* exactly as stored: the compare-and-set expectation */
    json_t *json;
} liveness_snapshot;

int liveness_snapshot_load(store *st, const char *tenant, const char *sid, liveness_snapshot *s);
void liveness_snapshot_free(liveness_snapshot *s);

/* Moves the session record's liveness status from `from` (NULL = anything but
 * IN_PROGRESS) with nonce `nonce` (NULL = any) to `to` (and the nonce to
 * new_nonce when given). STORE_CONFLICT when the precondition does not hold. */
int liveness_session_transition(store *st, const char *tenant, const char *sid, const char *from, const char *nonce,
                                const char *to, const char *new_nonce);

/* The liveness item: a new reference, or NULL with *rc set. liveness_item_save
 * borrows item. */
json_t *liveness_item_load(store *st, const char *tenant, const char *sid, int *rc);
int liveness_item_save(store *st, const char *tenant, const char *sid, json_t *item);

/* INITIALIZED past its deadline becomes TIMEOUT; true when this call made it so. */
bool liveness_apply_timeout(app *a, const char *tenant, const char *sid);
/* Applies a due TIMEOUT and, when this call made it so, sends the callback. */
void liveness_timeout_and_notify(app *a, const char *tenant, const char *sid);
/* The session's callbackURL (malloc'd), or NULL. */
char *liveness_session_callback(store *st, const char *tenant, const char *sid);
/* Files the TIMEOUT in the shared deadline index, so that any instance applies it
 * even if this one stops; without the store, this instance's notifier watches. */
void liveness_watch_deadline(app *a, const char *tenant, const char *sid, const char *callback, int64_t deadline);

/* Hooks (ctx = app): the notifier's TIMEOUT; the dispatcher's claimed deadline. */
bool liveness_timeout_hook(void *ctx, const char *tenant, const char *session_id);
void liveness_deadline_due(void *ctx, const char *member);

#endif
