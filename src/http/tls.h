/* HTTPS certificate and key that can be replaced while the server runs.
 *
 * libmicrohttpd's GnuTLS build asks a callback for the certificate at every TLS
 * handshake (MHD_OPTION_HTTPS_CERT_CALLBACK), so a reload makes new connections use
 * the new material at once while open connections keep theirs: no listener restart,
 * no refused connection. Replaced material is kept until tls_material_shutdown
 * because GnuTLS sessions still in use may point at it. */
#ifndef HTTP_TLS_H
#define HTTP_TLS_H
#include <gnutls/abstract.h>
#include <stddef.h>

/* Checks a PEM certificate chain and private key: both parse and the key belongs
 * to the first certificate. 0, or -1 with err set (used by --check-config too). */
int tls_material_check(const char *cert_path, const char *key_path, char *err, size_t err_len);
/* Loads (or replaces) the material the handshake callback hands out. On error the
 * previous material stays in use. */
int tls_material_load(const char *cert_path, const char *key_path, char *err, size_t err_len);
/* A gnutls_certificate_retrieve_function2 for MHD_OPTION_HTTPS_CERT_CALLBACK: the
 * current material. */
int tls_certificate_for_handshake(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req_ca_dn,
                                  const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
                                  unsigned int *pcert_length, gnutls_privkey_t *privkey);
/* Frees all material (current and replaced); only after the daemon stopped. */
void tls_material_shutdown(void);

#endif
