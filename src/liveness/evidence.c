/* The liveness evidence uploader; see evidence.h. One lock guards the queue, the
 * counters and the last error; uploads run outside it. */
#include "liveness/evidence.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"

typedef struct entry {
    evidence_object obj;
    uint8_t *data;
    size_t len;
    int attempts;
    int64_t due_ms; /* wall clock */
    struct entry *next;
} entry;

struct evidence_store {
    char url[256], region[64], bucket[64], access_key[128], secret_key[256];
    evidence_hooks hooks;
    pthread_mutex_t lock;
    pthread_mutex_t report_lock; /* one done hook at a time: it read-modify-writes a record */
    pthread_cond_t changed;
    pthread_t thread;
    atomic_bool stopping; /* also read by curl's progress callback */
    entry *queue;           /* waiting objects, in no particular order */
    evidence_stats stats;   /* pending counts include the object being sent */
};

/* ---- one PUT ------------------------------------------------------------------------ */

typedef struct {
    char etag[80];
    char body[1024]; /* the start of the answer: an S3 error document */
    size_t body_len;
} put_reply;

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    put_reply *r = user;
    size_t len = size * n;
    if (len > 5 && !strncasecmp(buf, "ETag:", 5)) {
        size_t i = 5, j = 0;
        while (i < len && j + 1 < sizeof r->etag) {
            char c = buf[i++];
            if (c != ' ' && c != '"' && c != '\r' && c != '\n') r->etag[j++] = c;
        }
        r->etag[j] = '\0';
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *user) {
    put_reply *r = user;
    size_t len = size * n, room = sizeof r->body - 1 - r->body_len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->body_len, buf, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    return len;
}

static int on_progress(void *flag, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    return flag && atomic_load((const atomic_bool *)flag); /* non-zero aborts the transfer */
}

/* The <Code> of an S3 error document (letters and digits only: never the message,
 * which may echo request details). */
static void error_code(const char *body, char *out, size_t cap) {
    const char *p = strstr(body, "<Code>");
    size_t n = 0;
    for (p = p ? p + 6 : ""; *p && *p != '<' && n + 1 < cap; p++)
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) out[n++] = *p;
    out[n] = '\0';
}

static void digest_hex(const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *raw, unsigned *raw_len, char *hex) {
    EVP_Digest(data, len, raw, raw_len, md, NULL);
    hex_encode(raw, *raw_len, hex);
}

/* The headers of a PUT: content type, payload SHA-256 (signed), Content-MD5. */
static struct curl_slist *put_headers(const evidence_object *obj, const uint8_t *data, size_t len, char md5_hex[33]) {
    uint8_t md5[EVP_MAX_MD_SIZE];
    unsigned md5_len = 0;
    digest_hex(EVP_md5(), data, len, md5, &md5_len, md5_hex);
    char *md5_b64 = base64_encode(md5, md5_len);
    char ct[96], sha[96], cmd5[64];
    snprintf(ct, sizeof ct, "Content-Type: %s", obj->content_type);
    snprintf(sha, sizeof sha, "x-amz-content-sha256: %s", obj->sha256);
    snprintf(cmd5, sizeof cmd5, "Content-MD5: %s", md5_b64 ? md5_b64 : "");
    free(md5_b64);
    struct curl_slist *h = curl_slist_append(NULL, ct), *h2 = h ? curl_slist_append(h, sha) : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, cmd5) : NULL;
    if (!h3) curl_slist_free_all(h);
    return h3;
}

/* Whether an answer is worth another attempt: the store may recover from these. */
static bool transient_status(long status) { return status >= 500 || status == 408 || status == 429; }

int evidence_put_once(const evidence_target *t, const evidence_object *obj, const uint8_t *data, size_t len,
                      const atomic_bool *abort_flag, bool *retry, char *err, size_t err_len) {
    char md5_hex[33] = "", sigv4[96], *url = NULL;
    *retry = false;
    put_reply reply = {0};
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", t->region);
    struct curl_slist *headers = put_headers(obj, data, len, md5_hex);
    CURL *c = headers && asprintf(&url, "%s/%s/%s", t->url, t->bucket, obj->key) >= 0 ? curl_easy_init() : NULL;
    if (!c) {
        snprintf(err, err_len, "out of memory");
        *retry = true;
        curl_slist_free_all(headers);
        free(url);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)data); /* what libcurl hashes into the signature */
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, t->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, t->secret_key);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)EVIDENCE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)abort_flag);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    free(url);
    char code[64];
    error_code(reply.body, code, sizeof code);
    /* A plain ETag is the MD5 of the body; other forms (multipart, SSE-KMS) are not. */
    bool plain_etag = strlen(reply.etag) == 32 && strspn(reply.etag, "0123456789abcdefABCDEF") == 32;
    int rc = -1;
    if (cc != CURLE_OK) {
        snprintf(err, err_len, "the object store cannot be reached: %s", curl_easy_strerror(cc));
        *retry = true;
    } else if (status < 200 || status > 299) {
        snprintf(err, err_len, "the object store answered HTTP %ld%s%s", status, code[0] ? " " : "", code);
        *retry = transient_status(status);
    } else if (plain_etag && strcasecmp(reply.etag, md5_hex)) {
        snprintf(err, err_len, "the object store's ETag %s is not the MD5 of what was sent (%s)", reply.etag, md5_hex);
        *retry = true;
    } else {
        rc = 0;
    }
    return rc;
}

/* ---- keys ----------------------------------------------------------------------------- */

/* Appends "/" (unless first) and part with only key-safe characters. */
static int key_append(char *out, size_t cap, size_t *len, const char *part, bool allow_slash) {
    if (*len && *len + 1 < cap) out[(*len)++] = '/';
    bool only_dots = true;
    for (const char *p = part; *p; p++) only_dots &= *p == '.';
    if (only_dots && *len + 1 < cap) out[(*len)++] = '_';
    for (const char *p = part; *p && *len + 1 < cap; p++) {
        char c = *p;
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '-' || (allow_slash && c == '/');
        out[(*len)++] = safe ? c : '_';
    }
    out[*len] = '\0';
    return *len + 1 < cap ? 0 : -1;
}

int evidence_key(const char *prefix, const char *tenant, const char *session_id, const char *capture_id,
                 const char *name, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    if (prefix[0] && key_append(out, cap, &len, prefix, true)) return -1;
    return key_append(out, cap, &len, tenant, false) || key_append(out, cap, &len, session_id, false) ||
                   key_append(out, cap, &len, capture_id, false) || key_append(out, cap, &len, name, false)
               ? -1 : 0;
}

/* ---- the queue and its thread ----------------------------------------------------------- */

static void entry_free(entry *en) {
    if (!en) return;
    free(en->data);
    free(en);
}

/* Logs the end of one object and tells the caller. */
static void report(evidence_store *e, const evidence_object *obj, size_t len, evidence_outcome outcome, const char *reason) {
    if (outcome == EVIDENCE_STORED)
        log_event("info", "liveness evidence of session %s stored: %s (%zu bytes)", obj->session_id, obj->key, len);
    else if (outcome == EVIDENCE_FAILED)
        log_event("error", "liveness evidence of session %s not stored (%s): %s", obj->session_id, obj->key, reason);
    else
        log_event("info", "liveness evidence of session %s not uploaded: %s", obj->session_id, reason);
    pthread_mutex_lock(&e->report_lock);
    e->hooks.done(e->hooks.ctx, obj, outcome, reason);
    pthread_mutex_unlock(&e->report_lock);
}

static void count_outcome(evidence_store *e, evidence_outcome outcome) {
    if (outcome == EVIDENCE_STORED) {
        e->stats.stored++;
        e->stats.last_success_ms = time_now_ms();
    } else if (outcome == EVIDENCE_FAILED) {
        e->stats.failed++;
    } else {
        e->stats.skipped++;
    }
}

/* The end of a queued object (lock not held): no longer pending. */
static void finish(evidence_store *e, entry *en, evidence_outcome outcome, const char *reason) {
    pthread_mutex_lock(&e->lock);
    e->stats.pending--;
    e->stats.pending_bytes -= en->len;
    count_outcome(e, outcome);
    pthread_mutex_unlock(&e->lock);
    report(e, &en->obj, en->len, outcome, reason);
    entry_free(en);
}

static void note_error(evidence_store *e, const char *reason) {
    pthread_mutex_lock(&e->lock);
    e->stats.failed_attempts++;
    e->stats.last_error_ms = time_now_ms();
    snprintf(e->stats.last_error, sizeof e->stats.last_error, "%s", reason);
    pthread_mutex_unlock(&e->lock);
}

/* One attempt for en (outside the lock); true when it must be queued again. */
static bool attempt(evidence_store *e, entry *en) {
    if (!e->hooks.alive(e->hooks.ctx, en->obj.tenant, en->obj.session_id)) {
        finish(e, en, EVIDENCE_SKIPPED, "the bio-session has expired or was deleted");
        return false;
    }
    evidence_target t = {e->url, e->region, e->bucket, e->access_key, e->secret_key};
    char err[EVIDENCE_REASON_MAX - 32] = "";
    bool retry = false;
    if (evidence_put_once(&t, &en->obj, en->data, en->len, &e->stopping, &retry, err, sizeof err) == 0) {
        finish(e, en, EVIDENCE_STORED, "");
        return false;
    }
    en->attempts++;
    note_error(e, err);
    log_event("error", "liveness evidence %s, attempt %d: %s", en->obj.key, en->attempts, err);
    if (!retry || en->attempts >= EVIDENCE_MAX_ATTEMPTS || atomic_load(&e->stopping)) {
        char reason[EVIDENCE_REASON_MAX];
        snprintf(reason, sizeof reason, "%s (after %d attempt%s)", err, en->attempts, en->attempts > 1 ? "s" : "");
        finish(e, en, EVIDENCE_FAILED, reason);
        return false;
    }
    en->due_ms = time_now_ms() + ((int64_t)EVIDENCE_BACKOFF_MS << (en->attempts - 1));
    return true;
}

/* Unlinks the first due entry; otherwise sets *next_ms to the earliest due time. */
static entry *take_due(evidence_store *e, int64_t now, int64_t *next_ms) {
    for (entry **p = &e->queue; *p; p = &(*p)->next) {
        if ((*p)->due_ms <= now) {
            entry *en = *p;
            *p = en->next;
            return en;
        }
        if ((*p)->due_ms < *next_ms) *next_ms = (*p)->due_ms;
    }
    return NULL;
}

static void *uploader_main(void *arg) {
    evidence_store *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!atomic_load(&e->stopping)) {
        int64_t now = time_now_ms(), next = now + 1000;
        entry *en = take_due(e, now, &next);
        if (en) {
            pthread_mutex_unlock(&e->lock);
            bool again = attempt(e, en);
            pthread_mutex_lock(&e->lock);
            if (again) {
                en->next = e->queue;
                e->queue = en;
            }
            continue;
        }
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (long)(next % 1000) * 1000000L};
        pthread_cond_timedwait(&e->changed, &e->lock, &ts); /* CLOCK_REALTIME: due times are wall clock */
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* An object refused at the door: never pending. */
static int refuse(evidence_store *e, const evidence_object *obj, uint8_t *data, size_t len, const char *reason) {
    free(data);
    pthread_mutex_lock(&e->lock);
    count_outcome(e, EVIDENCE_FAILED);
    e->stats.last_error_ms = time_now_ms();
    snprintf(e->stats.last_error, sizeof e->stats.last_error, "%s", reason);
    pthread_mutex_unlock(&e->lock);
    report(e, obj, len, EVIDENCE_FAILED, reason);
    return -1;
}

int evidence_store_put(evidence_store *e, const evidence_object *obj, uint8_t *data, size_t len) {
    if (len > EVIDENCE_MAX_PENDING_BYTES) return refuse(e, obj, data, len, "the object is larger than the upload queue");
    entry *en = calloc(1, sizeof(*en));
    if (!en) return refuse(e, obj, data, len, "out of memory");
    en->obj = *obj;
    en->data = data;
    en->len = len;
    uint8_t raw[EVP_MAX_MD_SIZE];
    unsigned raw_len = 0;
    digest_hex(EVP_sha256(), data, len, raw, &raw_len, en->obj.sha256);
    en->due_ms = time_now_ms();
    pthread_mutex_lock(&e->lock);
    bool room = e->stats.pending < EVIDENCE_MAX_PENDING && e->stats.pending_bytes + len <= EVIDENCE_MAX_PENDING_BYTES;
    if (room) {
        en->next = e->queue;
        e->queue = en;
        e->stats.pending++;
        e->stats.pending_bytes += len;
        pthread_cond_signal(&e->changed);
    }
    pthread_mutex_unlock(&e->lock);
    if (room) return 0;
    evidence_object copy = en->obj;
    free(en);
    return refuse(e, &copy, data, len, "the evidence upload queue is full (too many objects or bytes waiting)");
}

evidence_store *evidence_store_create(const evidence_target *t, const evidence_hooks *hooks, char *err, size_t err_len) {
    evidence_store *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    bool fits = snprintf(e->url, sizeof e->url, "%s", t->url) < (int)sizeof e->url &&
                snprintf(e->region, sizeof e->region, "%s", t->region) < (int)sizeof e->region &&
                snprintf(e->bucket, sizeof e->bucket, "%s", t->bucket) < (int)sizeof e->bucket &&
                snprintf(e->access_key, sizeof e->access_key, "%s", t->access_key) < (int)sizeof e->access_key &&
                snprintf(e->secret_key, sizeof e->secret_key, "%s", t->secret_key) < (int)sizeof e->secret_key;
    e->hooks = *hooks;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->report_lock, NULL);
    pthread_cond_init(&e->changed, NULL);
    if (!fits || pthread_create(&e->thread, NULL, uploader_main, e)) {
        snprintf(err, err_len, fits ? "cannot start the evidence upload thread" : "an evidence_s3 setting is too long");
        pthread_mutex_destroy(&e->lock);
        pthread_mutex_destroy(&e->report_lock);
        pthread_cond_destroy(&e->changed);
        free(e);
        return NULL;
    }
    return e;
}

void evidence_store_free(evidence_store *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    atomic_store(&e->stopping, true);
    pthread_cond_signal(&e->changed);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    for (entry *en = e->queue, *next; en; en = next) { /* the thread is gone: no lock needed */
        next = en->next;
        finish(e, en, EVIDENCE_FAILED, "the server stopped before the upload");
    }
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->report_lock);
    pthread_cond_destroy(&e->changed);
    OPENSSL_cleanse(e->secret_key, sizeof e->secret_key);
    free(e);
}

void evidence_store_stats(evidence_store *e, evidence_stats *out) {
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    pthread_mutex_unlock(&e->lock);
}
