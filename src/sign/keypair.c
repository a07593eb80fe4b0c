/* See keypair.h. */
#include "sign/keypair.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static X509 *self_signed(EVP_PKEY *key, const char *common_name) {
    X509 *x = X509_new();
    uint8_t serial[16];
    if (!x || RAND_bytes(serial, sizeof serial) != 1) {
        X509_free(x);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_clear_bit(bn, 127); /* a positive serial of at most 16 bytes */
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"bioserver", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int create_pair(const char *key_path, const char *cert_path, keypair_kind kind, const char *cn) {
    EVP_PKEY *key = kind == KEYPAIR_EC_P256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    X509 *cert = key ? self_signed(key, cn) : NULL;
    int rc = -1;
    FILE *f = cert ? fopen(key_path, "wx") : NULL;
    if (f) {
        chmod(key_path, 0600);
        int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        FILE *c = ok ? fopen(cert_path, "w") : NULL;
        if (c) {
            rc = PEM_write_X509(c, cert) ? 0 : -1;
            fclose(c);
        }
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* -1: no key file yet; -2: files present but unusable. */
static int load_pair(keypair *kp, const char *key_path, const char *cert_path, keypair_kind kind) {
    FILE *f = fopen(key_path, "r");
    if (!f) return -1;
    kp->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(cert_path, "r");
    kp->cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    int want = kind == KEYPAIR_EC_P256 ? EVP_PKEY_EC : EVP_PKEY_RSA;
    if (!kp->key || !kp->cert || EVP_PKEY_get_base_id(kp->key) != want ||
        X509_check_private_key(kp->cert, kp->key) != 1)
        return -2;
    int n = i2d_X509(kp->cert, NULL);
    kp->cert_der = n > 0 ? malloc((size_t)n) : NULL;
    if (!kp->cert_der) return -2;
    uint8_t *p = kp->cert_der;
    i2d_X509(kp->cert, &p);
    kp->cert_der_len = (size_t)n;
    return 0;
}

int keypair_load_or_create(keypair *kp, const char *dir, const char *stem, keypair_kind kind,
                           const char *common_name, char *err, size_t err_len) {
    memset(kp, 0, sizeof(*kp));
    char key_path[1024], cert_path[1024];
    snprintf(key_path, sizeof key_path, "%s/%s-key.pem", dir, stem);
    snprintf(cert_path, sizeof cert_path, "%s/%s-cert.pem", dir, stem);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data folder %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = load_pair(kp, key_path, cert_path, kind);
    if (rc == -1) {
        create_pair(key_path, cert_path, kind, common_name); /* may lose a race: load the winner's */
        rc = load_pair(kp, key_path, cert_path, kind);
    }
    if (rc) {
        snprintf(err, err_len, "cannot load or create the key pair %s / %s (missing, unreadable or not a matching %s pair)",
                 key_path, cert_path, kind == KEYPAIR_EC_P256 ? "EC" : "RSA");
        keypair_free(kp);
        return -1;
    }
    return 0;
}

void keypair_free(keypair *kp) {
    EVP_PKEY_free(kp->key);
    X509_free(kp->cert);
    free(kp->cert_der);
    memset(kp, 0, sizeof(*kp));
}
