/* Background delivery for replay liveness: the service provider's callback
 * (POST {"sessionId": ...} once a result is available) with bounded retries and
 * back-off, and the TIMEOUT of captures that never arrive. One thread, owned by
 * the server context, with a bounded table of pending entries; when it is full the
 * entry is dropped and logged (a TIMEOUT is still applied lazily on read).
 *
 * SSRF: every delivery checks the URL against the callback policy
 * (callback_policy.h) and pins the connection to the checked address; redirects
 * are not followed, and only http/https are used. */
#ifndef LIVENESS_NOTIFIER_H
#define LIVENESS_NOTIFIER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "liveness/callback_policy.h"

#define NOTIFIER_MAX_PENDING 1024
#define NOTIFIER_MAX_ATTEMPTS 4       /* first try + 3 retries */
#define NOTIFIER_BACKOFF_MS 500       /* doubles after each failure */
#define NOTIFIER_TIMEOUT_MS 3000      /* per attempt, connect included */

typedef struct liveness_notifier liveness_notifier;

/* Called on the notifier thread when a watched capture's deadline passes. Returns
 * true when it moved the capture to TIMEOUT (then the callback, if any, is sent). */
typedef bool (*notifier_timeout_fn)(void *ctx, const char *tenant, const char *session_id);

/* Borrows policy, which must outlive the notifier. */
liveness_notifier *liveness_notifier_create(const callback_policy *policy, notifier_timeout_fn on_timeout, void *ctx);
/* Stops the thread; pending deliveries are abandoned. */
void liveness_notifier_free(liveness_notifier *n);

/* Queues a callback POST. Returns 0, or -1 when the table is full. */
int liveness_notifier_callback(liveness_notifier *n, const char *url, const char *session_id);
/* Calls on_timeout at deadline_ms (wall clock), then the callback (url may be NULL). */
int liveness_notifier_watch(liveness_notifier *n, const char *tenant, const char *session_id, const char *url,
                            int64_t deadline_ms);

/* One delivery attempt: 0 on a 2xx answer, -1 otherwise (why in err). */
int notifier_post(const char *url, const char *session_id, const callback_policy *policy, char *err, size_t err_len);

/* Counters since start (metrics): delivered callbacks, failed attempts, callbacks
 * given up (refused by the policy or out of attempts). */
typedef struct {
    long long delivered, failed_attempts, abandoned;
} notifier_stats;
void liveness_notifier_stats(liveness_notifier *n, notifier_stats *out);

#endif
