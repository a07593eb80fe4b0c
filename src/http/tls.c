/* Reloadable HTTPS material; see tls.h. */
#include "http/tls.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/file.h"

#define TLS_MAX_CHAIN 16
#define TLS_MAX_PEM (1 << 20)

typedef struct tls_material {
    gnutls_pcert_st certs[TLS_MAX_CHAIN];
    unsigned cert_count;
    gnutls_privkey_t key;
    struct tls_material *older; /* replaced material, freed at shutdown */
} tls_material;

/* Process-wide because the GnuTLS callback receives no user pointer; there is one
 * HTTP server per process. Writers (load, shutdown) hold load_lock. */
static _Atomic(tls_material *) current;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int tls_material_check(const char *cert_path, const char *key_path, char *err, size_t err_len) {
    FILE *cf = fopen(cert_path, "r"), *kf = fopen(key_path, "r");
    X509 *cert = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    int rc = -1;
    if (!cf) snprintf(err, err_len, "cannot open TLS certificate %s", cert_path);
    else if (!kf) snprintf(err, err_len, "cannot open TLS key %s", key_path);
    else if (!cert) snprintf(err, err_len, "%s is not a PEM certificate", cert_path);
    else if (!key) snprintf(err, err_len, "%s is not a PEM private key (encrypted keys are not supported)", key_path);
    else if (X509_check_private_key(cert, key) != 1)
        snprintf(err, err_len, "TLS key %s does not belong to the certificate %s", key_path, cert_path);
    else rc = 0;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (cf) fclose(cf);
    if (kf) fclose(kf);
    return rc;
}

static void material_free(tls_material *m) {
    for (unsigned i = 0; i < m->cert_count; i++) gnutls_pcert_deinit(&m->certs[i]);
    if (m->key) gnutls_privkey_deinit(m->key);
    free(m);
}

static tls_material *material_read(const char *cert_path, const char *key_path, char *err, size_t err_len) {
    size_t cert_len = 0, key_len = 0;
    uint8_t *cert_pem = file_read_all(cert_path, TLS_MAX_PEM, &cert_len);
    uint8_t *key_pem = file_read_all(key_path, TLS_MAX_PEM, &key_len);
    tls_material *m = calloc(1, sizeof(*m));
    int rc = -1;
    if (cert_pem && key_pem && m) {
        gnutls_datum_t cd = {cert_pem, (unsigned)cert_len}, kd = {key_pem, (unsigned)key_len};
        m->cert_count = TLS_MAX_CHAIN;
        rc = gnutls_pcert_list_import_x509_raw(m->certs, &m->cert_count, &cd, GNUTLS_X509_FMT_PEM, 0);
        if (rc < 0) m->cert_count = 0;
        if (rc >= 0) rc = gnutls_privkey_init(&m->key);
        if (rc >= 0) rc = gnutls_privkey_import_x509_raw(m->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (rc < 0) snprintf(err, err_len, "TLS material %s / %s: %s", cert_path, key_path, gnutls_strerror(rc));
    } else {
        snprintf(err, err_len, "cannot read TLS certificate/key %s / %s", cert_path, key_path);
    }
    free(cert_pem);
    free(key_pem);
    if (rc < 0 && m) {
        material_free(m);
        m = NULL;
    }
    return m;
}

int tls_material_load(const char *cert_path, const char *key_path, char *err, size_t err_len) {
    if (tls_material_check(cert_path, key_path, err, err_len)) return -1;
    tls_material *m = material_read(cert_path, key_path, err, err_len);
    if (!m) return -1;
    pthread_mutex_lock(&load_lock);
    m->older = atomic_load(&current);
    atomic_store(&current, m);
    pthread_mutex_unlock(&load_lock);
    return 0;
}

int tls_certificate_for_handshake(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req_ca_dn,
                                  const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
                                  unsigned int *pcert_length, gnutls_privkey_t *privkey) {
    (void)session, (void)req_ca_dn, (void)n_req_ca_dn, (void)algos, (void)n_algos;
    tls_material *m = atomic_load(&current);
    if (!m) return -1;
    *pcert = m->certs;
    *pcert_length = m->cert_count;
    *privkey = m->key;
    return 0;
}

void tls_material_shutdown(void) {
    pthread_mutex_lock(&load_lock);
    tls_material *m = atomic_exchange(&current, NULL);
    while (m) {
        tls_material *older = m->older;
        material_free(m);
        m = older;
    }
    pthread_mutex_unlock(&load_lock);
}
