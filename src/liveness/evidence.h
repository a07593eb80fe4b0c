/* Evidence of replay liveness (the best image, the capture's frames) kept in an
 * S3-compatible object store (AWS S3, MinIO, ...), as the reference's imageStorage
 * / videoStorage. One uploader thread, owned by the server context, takes objects
 * from a bounded queue (entries and bytes) so that no request and no evaluation
 * waits for the store; when the queue is full the object is refused at once.
 *
 * Each object is one PUT signed by libcurl's AWS Signature V4 (CURLOPT_AWS_SIGV4;
 * no signing code here), path-style (URL/bucket/key). Integrity: the SHA-256 we
 * compute is sent as x-amz-content-sha256 (part of the signature: S3 refuses a
 * body that does not match it) and the MD5 as Content-MD5 (S3 answers BadDigest);
 * a plain MD5 ETag in the answer must equal ours. Before every attempt the
 * `alive` hook is asked whether the bio-session still exists: evidence of an
 * expired or deleted session is never uploaded late. Failed attempts are retried
 * with back-off (store unreachable, 5xx, 408, 429, ETag mismatch) up to
 * EVIDENCE_MAX_ATTEMPTS; other 4xx answers (credentials refused, no such bucket)
 * are final. Every object ends with exactly one call of the `done` hook, on the
 * uploader thread (or on the caller's, when the queue refuses it). Errors name
 * the HTTP status and the store's error code, never a credential. */
#ifndef LIVENESS_EVIDENCE_H
#define LIVENESS_EVIDENCE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVIDENCE_MAX_PENDING 64                      /* objects waiting or being sent */
#define EVIDENCE_MAX_PENDING_BYTES ((size_t)128 << 20) /* their bytes: ~10 full 12 MB captures */
#define EVIDENCE_MAX_ATTEMPTS 4                      /* first try + 3 retries */
#define EVIDENCE_BACKOFF_MS 500                      /* doubles after each failure */
#define EVIDENCE_TIMEOUT_MS 30000                    /* per attempt: 12 MB on a slow link */
#define EVIDENCE_KEY_MAX 512
#define EVIDENCE_REASON_MAX 200

typedef struct evidence_store evidence_store;

/* Where objects go. Strings are copied at creation. */
typedef struct {
    const char *url;    /* http(s)://host[:port][/path], no trailing "/" */
    const char *region; /* signs requests; reported as "region" */
    const char *bucket;
    const char *access_key, *secret_key;
} evidence_target;

typedef enum { EVIDENCE_STORED, EVIDENCE_FAILED, EVIDENCE_SKIPPED /* session gone */ } evidence_outcome;

/* One object to keep. tag and slot are the caller's (e.g. which capture, which
 * metadata member) and come back in the done hook. */
typedef struct {
    char tenant[64], session_id[129], tag[64], slot[32];
    char key[EVIDENCE_KEY_MAX];
    char content_type[64];
    char sha256[65]; /* hex, filled by evidence_store_put */
} evidence_object;

typedef struct {
    bool (*alive)(void *ctx, const char *tenant, const char *session_id);
    /* reason: empty when stored. */
    void (*done)(void *ctx, const evidence_object *obj, evidence_outcome outcome, const char *reason);
    void *ctx;
} evidence_hooks;

/* NULL with err when the thread cannot start or a string is too long. */
evidence_store *evidence_store_create(const evidence_target *t, const evidence_hooks *hooks, char *err, size_t err_len);
/* Stops the thread (an attempt in flight is aborted); objects still queued end
 * as EVIDENCE_FAILED (done hook called here, so it must still work). NULL-safe. */
void evidence_store_free(evidence_store *e);

/* Queues obj with data (taken: freed on every path; obj is copied and its sha256
 * computed). 0, or -1 when the queue is full or memory ran out: then the done hook
 * has already been called with EVIDENCE_FAILED. */
int evidence_store_put(evidence_store *e, const evidence_object *obj, uint8_t *data, size_t len);

/* One PUT: 0 when the store answered 2xx with a consistent ETag; otherwise -1,
 * why in err and *retry saying whether another attempt may succeed. abort_flag
 * (may be NULL) stops a transfer in flight when it becomes true. */
int evidence_put_once(const evidence_target *t, const evidence_object *obj, const uint8_t *data, size_t len,
                      const atomic_bool *abort_flag, bool *retry, char *err, size_t err_len);

/* "<prefix>/<tenant>/<session>/<capture>/<name>" with only the characters
 * [A-Za-z0-9._-/], so that the key needs no escaping in a URL or a signature:
 * other characters of the tenant, session or capture become "_", and a part made
 * only of dots is prefixed with "_". -1 when it does not fit. */
int evidence_key(const char *prefix, const char *tenant, const char *session_id, const char *capture_id,
                 const char *name, char *out, size_t cap);

typedef struct {
    long long stored, failed_attempts, failed, skipped;
    int pending;
    size_t pending_bytes;
    int64_t last_success_ms, last_error_ms; /* wall clock, 0 = never */
    char last_error[EVIDENCE_REASON_MAX];
} evidence_stats;
void evidence_store_stats(evidence_store *e, evidence_stats *out);

#endif
