/* Where liveness callbacks may go (SSRF guard). A callback URL must be http(s);
 * its host is resolved and every address checked: loopback, private, link-local,
 * CGNAT, multicast and unspecified addresses are refused unless the operator
 * allowed private addresses altogether (callback_allow_private) or listed them in
 * callback_allow: CIDRs ("10.1.0.0/16", "::1/128") and host names
 * ("hooks.internal"), comma-separated. The same check runs when a session is
 * created (the client learns of a refused URL at once, 400) and at every delivery
 * (the connection is pinned to the checked address: no second lookup to rebind). */
#ifndef LIVENESS_CALLBACK_POLICY_H
#define LIVENESS_CALLBACK_POLICY_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define CALLBACK_POLICY_MAX_RULES 32

typedef struct callback_policy callback_policy;

/* NULL with err naming the bad entry when allow_list does not parse. */
callback_policy *callback_policy_create(bool allow_private, const char *allow_list, char *err, size_t err_len);
void callback_policy_free(callback_policy *p);

/* True when a callback may go to this address of host (NULL host: an address only). */
bool callback_policy_allows(const callback_policy *p, const char *host, const struct sockaddr *sa);

/* Checks url: scheme, host, resolution and policy. 0 with the pinned resolve entry
 * ("host:port:address", for CURLOPT_RESOLVE) in pin, or "" when the host is an IP
 * address (no lookup to pin), or -1 with the reason in err (client-facing: names
 * the URL's host, never a server detail). IPv6 spellings of an IPv4 address
 * (mapped, compatible, NAT64, 6to4, Teredo) are judged by that IPv4 address. */
int callback_policy_check_url(const callback_policy *p, const char *url, char *pin, size_t pin_len, char *err,
                              size_t err_len);

#endif
