/* Callback destination policy; see callback_policy.h. */
#include "liveness/callback_policy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    int family; /* AF_INET, AF_INET6, or 0 for a host name */
    uint8_t addr[16];
    int prefix;
    char host[256];
} allow_rule;

struct callback_policy {
    bool allow_private;
    allow_rule rules[CALLBACK_POLICY_MAX_RULES];
    int rule_count;
};

static bool v4_public(uint32_t a) {
    uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff;
    return !(b0 == 0 || b0 == 10 || b0 == 127 || b0 >= 224 || (b0 == 169 && b1 == 254) ||
             (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) || (b0 == 100 && (b1 & 0xc0) == 64) ||
             (b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) || (b0 == 198 && (b1 & 0xfe) == 18));
}

/* IPv6 spellings that carry an IPv4 destination: the IPv4 address decides. Mapped
 * ::ffff:a.b.c.d and compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, NAT64
 * 64:ff9b::a.b.c.d (a NAT64 gateway connects to it), 6to4 2002:AABB:CCDD:: (a relay
 * tunnels to it) and Teredo 2001:0::/32 (the client address, inverted, last). */
static bool embedded_v4(const struct in6_addr *a, uint32_t *v4) {
    static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t *b = a->s6_addr;
    uint8_t v[4];
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a) || !memcmp(b, siit, 12) || !memcmp(b, nat64, 12))
        memcpy(v, b + 12, 4);
    else if (b[0] == 0x20 && b[1] == 0x02)
        memcpy(v, b + 2, 4);
    else if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
        for (int i = 0; i < 4; i++) v[i] = (uint8_t)~b[12 + i];
    else
        return false;
    *v4 = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    return true;
}

static bool public_address(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return v4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6) return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    uint32_t v4;
    if (embedded_v4(a, &v4)) return v4_public(v4);
    const uint8_t *b = a->s6_addr;
    bool local_nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1; /* /48 */
    bool documentation = b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
    return !(IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
             IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc /* ULA */ || local_nat64 ||
             documentation);
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, int bits) {
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes)) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool rule_matches(const allow_rule *r, const char *host, const struct sockaddr *sa) {
    if (!r->family) return host && !strcasecmp(r->host, host);
    if (sa->sa_family != r->family) return false;
    const uint8_t *a = sa->sa_family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
                                                : ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    return prefix_equal(a, r->addr, r->prefix);
}

bool callback_policy_allows(const callback_policy *p, const char *host, const struct sockaddr *sa) {
    if (p->allow_private || public_address(sa)) return true;
    for (int i = 0; i < p->rule_count; i++)
        if (rule_matches(&p->rules[i], host, sa)) return true;
    return false;
}

/* "a.b.c.d[/n]", "v6[/n]" or a host name. */
static int parse_rule(const char *text, allow_rule *r) {
    memset(r, 0, sizeof(*r));
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf || !buf[0]) return -1;
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    if (inet_pton(AF_INET, buf, r->addr) == 1) r->family = AF_INET, r->prefix = 32;
    else if (inet_pton(AF_INET6, buf, r->addr) == 1) r->family = AF_INET6, r->prefix = 128;
    if (slash) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (!r->family || *end || end == slash + 1 || bits < 0 || bits > r->prefix) return -1;
        r->prefix = (int)bits;
    }
    if (!r->family) {
        if (strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen(buf)) return -1;
        snprintf(r->host, sizeof r->host, "%s", buf);
    }
    return 0;
}

callback_policy *callback_policy_create(bool allow_private, const char *allow_list, char *err, size_t err_len) {
    callback_policy *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    p->allow_private = allow_private;
    const char *s = allow_list ? allow_list : "";
    while (*s) {
        s += strspn(s, ", ");
        size_t n = strcspn(s, ", ");
        if (!n) break;
        char entry[256];
        snprintf(entry, sizeof entry, "%.*s", (int)(n < 255 ? n : 255), s);
        if (p->rule_count >= CALLBACK_POLICY_MAX_RULES || n > 255 || parse_rule(entry, &p->rules[p->rule_count])) {
            snprintf(err, err_len, "callback_allow: '%s' is not a CIDR or host name (at most %d entries)", entry,
                     CALLBACK_POLICY_MAX_RULES);
            free(p);
            return NULL;
        }
        p->rule_count++;
        s += n;
    }
    return p;
}

void callback_policy_free(callback_policy *p) { free(p); }

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
        /* IPv6 literals come bracketed; getaddrinfo wants them bare. */
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

int callback_policy_check_url(const callback_policy *p, const char *url, char *pin, size_t pin_len, char *err,
                              size_t err_len) {
    char host[256], port[16];
    if (url_host_port(url, host, sizeof host, port, sizeof port)) {
        snprintf(err, err_len, "not an http:// or https:// URL with a host");
        return -1;
    }
    uint8_t literal[16];
    bool is_address = inet_pton(AF_INET, host, literal) == 1 || inet_pton(AF_INET6, host, literal) == 1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) || !res) {
        snprintf(err, err_len, "the host %s does not resolve", host);
        return -1;
    }
    const struct addrinfo *refused = NULL;
    for (struct addrinfo *r = res; r && !refused; r = r->ai_next)
        if (!callback_policy_allows(p, host, r->ai_addr)) refused = r;
    const struct addrinfo *shown = refused ? refused : res;
    const void *a = shown->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)shown->ai_addr)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)shown->ai_addr)->sin6_addr;
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(shown->ai_family, a, text, sizeof text);
    int rc = 0;
    if (refused) {
        snprintf(err, err_len, "refused: %s resolves to a private or local address (%s) that callback_allow does not list",
                 host, text);
        rc = -1;
    } else if (is_address) {
        pin[0] = '\0'; /* nothing to rebind; and CURLOPT_RESOLVE cannot name an IPv6 host (it ends at the first ':') */
    } else {
        /* CURLOPT_RESOLVE wants IPv6 addresses bracketed. */
        snprintf(pin, pin_len, shown->ai_family == AF_INET6 ? "%s:%s:[%s]" : "%s:%s:%s", host, port, text);
    }
    freeaddrinfo(res);
    return rc;
}
