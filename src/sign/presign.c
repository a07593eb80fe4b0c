/* Precomputed ECDSA nonces; see presign.h. One mutex guards the stack of pairs, the
 * stop flag and the condition the filler sleeps on while the stack is full. */

/* OpenSSL 3's EVP interface cannot take a precomputed (k^-1, r): only the EC_KEY
 * functions ECDSA_sign_setup / ECDSA_do_sign_ex can, deprecated in 3.0 but kept in
 * every 3.x. They are confined to this file. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sign/presign.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    BIGNUM *kinv, *r;
} nonce_pair;

struct presign {
    EC_KEY *key;
    pthread_t filler;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled when the stack stops being full, or on stop */
    bool stop;
    int count, capacity;
    nonce_pair *pairs;
};

static void pair_clear(nonce_pair *pair) {
    BN_clear_free(pair->kinv);
    BN_clear_free(pair->r);
    *pair = (nonce_pair){0};
}

/* The filler: one pair at a time, computed outside the lock. */
static void *fill(void *arg) {
    presign *p = arg;
    /* Best effort: without SCHED_IDLE (e.g. a seccomp filter) it still works, at
     * normal priority. */
    struct sched_param idle = {0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        if (p->count == p->capacity) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        nonce_pair pair = {0};
        bool ok = ECDSA_sign_setup(p->key, NULL, &pair.kinv, &pair.r) == 1;
        pthread_mutex_lock(&p->lock);
        if (!ok) { /* cannot happen with a valid key; signing falls back anyway */
            pair_clear(&pair);
            break;
        }
        if (p->count < p->capacity) p->pairs[p->count++] = pair;
        else pair_clear(&pair);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

presign *presign_create(EVP_PKEY *key, int capacity) {
    EC_KEY *ec = capacity > 0 ? EVP_PKEY_get1_EC_KEY(key) : NULL;
    const EC_GROUP *g = ec ? EC_KEY_get0_group(ec) : NULL;
    presign *p = g && EC_GROUP_get_curve_name(g) == NID_X9_62_prime256v1 ? calloc(1, sizeof(*p)) : NULL;
    nonce_pair *pairs = p ? calloc((size_t)capacity, sizeof(*pairs)) : NULL;
    if (!pairs) {
        free(p);
        EC_KEY_free(ec);
        return NULL;
    }
    *p = (presign){.key = ec, .capacity = capacity, .pairs = pairs};
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->filler, NULL, fill, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(pairs);
        free(p);
        EC_KEY_free(ec);
        return NULL;
    }
    pthread_setname_np(p->filler, "presign"); /* its CPU shows apart in /proc and top */
    return p;
}

void presign_free(presign *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->filler, NULL);
    for (int i = 0; i < p->count; i++) pair_clear(&p->pairs[i]);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->pairs);
    EC_KEY_free(p->key);
    free(p);
}

/* Takes a pair off the stack; false when none is ready. */
static bool take_pair(presign *p, nonce_pair *out) {
    pthread_mutex_lock(&p->lock);
    bool have = p->count > 0;
    if (have) {
        *out = p->pairs[--p->count];
        p->pairs[p->count] = (nonce_pair){0};
        if (p->count == p->capacity - 1) pthread_cond_signal(&p->wake); /* it was full */
    }
    pthread_mutex_unlock(&p->lock);
    return have;
}

int presign_sign(presign *p, const uint8_t digest[32], uint8_t raw[64]) {
    nonce_pair pair;
    if (!take_pair(p, &pair)) return 0;
    ECDSA_SIG *sig = ECDSA_do_sign_ex(digest, 32, pair.kinv, pair.r, p->key);
    pair_clear(&pair);
    if (!sig) return -1;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 1 : -1;
}

int presign_ready(presign *p) {
    pthread_mutex_lock(&p->lock);
    int n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}
