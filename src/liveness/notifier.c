/* Callback delivery and capture timeouts; see notifier.h. */
#include "liveness/notifier.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
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
    bool allow_private, stopping;
    notifier_timeout_fn on_timeout;
    void *ctx;
    pending table[NOTIFIER_MAX_PENDING];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
};

static bool v4_allowed(uint32_t a) {
    uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
    return !(b0 == 0 || b0 == 10 || b0 == 127 || b0 >= 224 || (b0 == 169 && b1 == 254) ||
             (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) || (b0 == 100 && (b1 & 0xc0) == 64) ||
             (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) || (b0 == 198 && (b1 & 0xfe) == 18));
}

bool notifier_address_allowed(const struct sockaddr *sa, bool allow_private) {
    if (allow_private) return true;
    if (sa->sa_family == AF_INET) return v4_allowed(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6) return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        uint32_t v4;
        memcpy(&v4, a->s6_addr + 12, 4);
        return v4_allowed(ntohl(v4));
    }
    uint8_t b0 = a->s6_addr[0];
    return !(IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
             IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) || (b0 & 0xfe) == 0xfc /* ULA */);
}

/* Host and port of url (http/https only), via libcurl's own parser so that what we
 * check is what curl connects to. */
static int url_host_port(const char *url, char *host, size_t host_len, char *port, size_t port_len) {
    CURLU *u = curl_url();
    char *scheme = NULL, *h = NULL, *p = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (!strcmp(scheme, "http") || !strcmp(scheme, "https")) &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        /* IPv6 literals come bracketed; getaddrinfo and CURLOPT_RESOLVE want them bare. */
        size_t hl = strlen(h);
        const char *hs = h;
        if (hl >= 2 && h[0] == '[') hs = h + 1, hl -= 2;
        if (hl < host_len && strlen(p) < port_len) {
            memcpy(host, hs, hl);
            host[hl] = 0;
            snprintf(port, port_len, "%s", p);
            rc = 0;
        }
    }
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* Resolves host and returns the first address if every address is allowed. */
static int resolve_checked(const char *host, const char *port, bool allow_private, char *addr, size_t addr_len,
                           char *err, size_t err_len) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) || !res) {
        snprintf(err, err_len, "cannot resolve %s", host);
        return -1;
    }
    int rc = 0;
    for (struct addrinfo *r = res; r; r = r->ai_next)
        if (!notifier_address_allowed(r->ai_addr, allow_private)) rc = -1;
    const void *a = res->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                                              : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(res->ai_family, a, text, sizeof text);
    if (rc) snprintf(err, err_len, "refused: %s resolves to a private or local address (%s)", host, text);
    else snprintf(addr, addr_len, res->ai_family == AF_INET6 ? "[%s]" : "%s", text);
    freeaddrinfo(res);
    return rc;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *user) {
    (void)ptr, (void)user;
    return size * nmemb;
}

int notifier_post(const char *url, const char *session_id, bool allow_private, char *err, size_t err_len) {
    char host[256], port[16], addr[INET6_ADDRSTRLEN + 2], pin[600];
    if (url_host_port(url, host, sizeof host, port, sizeof port)) {
        snprintf(err, err_len, "not an http(s) URL");
        return -1;
    }
    if (resolve_checked(host, port, allow_private, addr, sizeof addr, err, err_len)) return -1;
    snprintf(pin, sizeof pin, "%s:%s:%s", host, port, addr);
    json_t *body = json_pack("{s:s}", "sessionId", session_id);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    CURL *c = text ? curl_easy_init() : NULL;
    struct curl_slist *resolve = c ? curl_slist_append(NULL, pin) : NULL;
    struct curl_slist *headers = resolve ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
    int rc = -1;
    if (headers) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
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
    if (notifier_post(p->url, p->session_id, n->allow_private, err, sizeof err) == 0) {
        log_event("info", "liveness callback delivered for session %s", p->session_id);
        return false;
    }
    p->attempts++;
    bool refused = !strncmp(err, "refused", 7) || !strcmp(err, "not an http(s) URL");
    log_event("error", "liveness callback for session %s, attempt %d: %s", p->session_id, p->attempts, err);
    if (refused || p->attempts >= NOTIFIER_MAX_ATTEMPTS) return false;
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

liveness_notifier *liveness_notifier_create(bool allow_private, notifier_timeout_fn on_timeout, void *ctx) {
    liveness_notifier *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->allow_private = allow_private;
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
