/* Callback delivery and capture timeouts; see notifier.h. */
#include "liveness/notifier.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

#define URL_MAX 2048

typedef struct {
    bool used, is_watch;
    char tenant[64], session_id[129], url[URL_MAX + 1];
    int attempts;
    int64_t due_ms; /* wall clock */
} pending;

struct liveness_notifier {
    const callback_policy *policy;
    bool stopping;
    atomic_llong delivered, failed_attempts, abandoned;
    notifier_timeout_fn on_timeout;
    void *ctx;
    pending table[NOTIFIER_MAX_PENDING];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *user) {
    (void)ptr, (void)user;
    return size * nmemb;
}

int notifier_post(const char *url, const char *session_id, const callback_policy *policy, char *err, size_t err_len) {
    char pin[600];
    if (callback_policy_check_url(policy, url, pin, sizeof pin, err, err_len)) return -1;
    json_t *body = json_pack("{s:s}", "sessionId", session_id);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    CURL *c = text ? curl_easy_init() : NULL;
    struct curl_slist *resolve = c && pin[0] ? curl_slist_append(NULL, pin) : NULL;
    struct curl_slist *headers = c && (resolve || !pin[0]) ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
    int rc = -1;
    if (headers) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (resolve) curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NOTIFIER_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)NOTIFIER_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) snprintf(err, err_len, "%s", curl_easy_strerror(cc));
        else if (status < 200 || status > 299) snprintf(err, err_len, "HTTP %ld", status);
        else rc = 0;
    } else {
        snprintf(err, err_len, "out of memory");
    }
    curl_slist_free_all(headers);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(c);
    free(text);
    return rc;
}

/* Stores a copy of e in a free slot; -1 when the table is full. */
static int add_entry(liveness_notifier *n, const pending *e) {
    pthread_mutex_lock(&n->lock);
    int rc = -1;
    for (int i = 0; i < NOTIFIER_MAX_PENDING && rc; i++) {
        if (n->table[i].used) continue;
        n->table[i] = *e;
        n->table[i].used = true;
        rc = 0;
    }
    pthread_cond_signal(&n->changed);
    pthread_mutex_unlock(&n->lock);
    if (rc) log_event("error", "liveness notifier table full: dropped %s for session %s",
                      e->is_watch ? "timeout" : "callback", e->session_id);
    return rc;
}

static int add(liveness_notifier *n, bool watch, const char *tenant, const char *sid, const char *url, int64_t due) {
    pending e = {.is_watch = watch, .due_ms = due};
    if (snprintf(e.tenant, sizeof e.tenant, "%s", tenant ? tenant : "") >= (int)sizeof e.tenant ||
        snprintf(e.session_id, sizeof e.session_id, "%s", sid) >= (int)sizeof e.session_id ||
        snprintf(e.url, sizeof e.url, "%s", url ? url : "") >= (int)sizeof e.url)
        return -1;
    return add_entry(n, &e);
}

int liveness_notifier_callback(liveness_notifier *n, const char *url, const char *sid) {
    return add(n, false, NULL, sid, url, time_now_ms());
}

int liveness_notifier_watch(liveness_notifier *n, const char *tenant, const char *sid, const char *url, int64_t deadline) {
    return add(n, true, tenant, sid, url, deadline);
}

/* Runs one due entry outside the lock; returns true when it must stay queued. */
static bool run_entry(liveness_notifier *n, pending *p) {
    if (p->is_watch) {
        if (n->on_timeout(n->ctx, p->tenant, p->session_id) && p->url[0]) {
            p->is_watch = false; /* becomes the callback, now */
            return true;
        }
        return false;
    }
    char err[256] = "";
    if (notifier_post(p->url, p->session_id, n->policy, err, sizeof err) == 0) {
        atomic_fetch_add(&n->delivered, 1);
        log_event("info", "liveness callback delivered for session %s", p->session_id);
        return false;
    }
    p->attempts++;
    atomic_fetch_add(&n->failed_attempts, 1);
    bool refused = !strncmp(err, "refused", 7) || !strncmp(err, "not an http", 11);
    log_event("error", "liveness callback for session %s, attempt %d: %s", p->session_id, p->attempts, err);
    if (refused || p->attempts >= NOTIFIER_MAX_ATTEMPTS) {
        atomic_fetch_add(&n->abandoned, 1);
        log_event("error", "liveness callback for session %s abandoned after %d attempt(s)", p->session_id, p->attempts);
        return false;
    }
    p->due_ms = time_now_ms() + ((int64_t)NOTIFIER_BACKOFF_MS << (p->attempts - 1));
    return true;
}

static void *notifier_main(void *arg) {
    liveness_notifier *n = arg;
    pthread_mutex_lock(&n->lock);
    while (!n->stopping) {
        int64_t now = time_now_ms(), next = now + 1000;
        int due = -1;
        for (int i = 0; i < NOTIFIER_MAX_PENDING; i++) {
            if (!n->table[i].used) continue;
            if (n->table[i].due_ms <= now) due = i;
            else if (n->table[i].due_ms < next) next = n->table[i].due_ms;
        }
        if (due >= 0) {
            pending work = n->table[due];
            n->table[due].used = false;
            pthread_mutex_unlock(&n->lock);
            bool again = run_entry(n, &work);
            if (again) add_entry(n, &work);
            pthread_mutex_lock(&n->lock);
            continue;
        }
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (long)(next % 1000) * 1000000L};
        pthread_cond_timedwait(&n->changed, &n->lock, &ts); /* CLOCK_REALTIME: due times are wall clock */
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

liveness_notifier *liveness_notifier_create(const callback_policy *policy, notifier_timeout_fn on_timeout, void *ctx) {
    liveness_notifier *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->policy = policy;
    n->on_timeout = on_timeout;
    n->ctx = ctx;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->changed, NULL);
    if (pthread_create(&n->thread, NULL, notifier_main, n)) {
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->changed);
        free(n);
        return NULL;
    }
    return n;
}

void liveness_notifier_free(liveness_notifier *n) {
    if (!n) return;
    pthread_mutex_lock(&n->lock);
    n->stopping = true;
    pthread_cond_signal(&n->changed);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->changed);
    free(n);
}

void liveness_notifier_stats(liveness_notifier *n, notifier_stats *out) {
    out->delivered = atomic_load(&n->delivered);
    out->failed_attempts = atomic_load(&n->failed_attempts);
    out->abandoned = atomic_load(&n->abandoned);
}
