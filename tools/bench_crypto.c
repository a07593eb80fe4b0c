/* make bench-crypto: what encryption at rest costs per face, next to the plain
 * path in the same run on the same bytes.
 *   templates: encode (base64 of the clear bytes vs version 2 sealed) and decode
 *              (version 1 HMAC-checked clear vs version 2 opened);
 *   store:     put + get of a face record and of images through the memory store,
 *              plain vs sealed (store/sealed_store.c), and seal + open alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/util.h"
#include "face/template.h"
#include "store/sealed_store.h"

#define DIM 512

/* Thread CPU time: the machine is shared, and time spent descheduled is not the
 * cost of the code. */
static double now_us(void) { return time_thread_cpu_s() * 1e6; }
static void report(const char *what, double plain, double sealed) {
    printf("%-44s plain %8.2f us   encrypted %8.2f us   +%.2f us (x%.2f)\n", what, plain, sealed, sealed - plain,
           sealed / plain);
}

/* The version 1 form of emb (clear floats + HMAC), as clients of the old server hold it. */
static char *v1_template(const uint8_t *key, const float *emb, uint8_t *clear, size_t *clear_len);

static void bench_templates(data_keyring *ring, const float *emb) {
    static const uint8_t v1key[TEMPLATE_V1_KEY_LEN] = {9};
    template_keys keys = {.ring = ring, .v1_mac_key = v1key};
    face_template *out = malloc(sizeof(*out));
    uint8_t clear[24 + DIM * 4 + 32];
    size_t clear_len = 0;
    char *v1 = v1_template(v1key, emb, clear, &clear_len), err[256];
    const int n = 20000;
    double t = now_us();
    for (int i = 0; i < n; i++) free(base64_encode(clear, clear_len));
    double plain_enc = (now_us() - t) / n;
    t = now_us();
    for (int i = 0; i < n; i++) free(template_encode(&keys, "tenant", "F5_1_VID60", emb, DIM));
    double sealed_enc = (now_us() - t) / n;
    char *v2 = template_encode(&keys, "tenant", "F5_1_VID60", emb, DIM);
    int bad = 0;
    t = now_us();
    for (int i = 0; i < n; i++) bad |= template_decode(&keys, "tenant", v1, out, err, sizeof err);
    double plain_dec = (now_us() - t) / n;
    t = now_us();
    for (int i = 0; i < n; i++) bad |= template_decode(&keys, "tenant", v2, out, err, sizeof err);
    double sealed_dec = (now_us() - t) / n;
    if (bad) fprintf(stderr, "bench_crypto: a template did not decode: %s\n", err);
    report("template encode (512-d; base64 / v2 AES-GCM)", plain_enc, sealed_enc);
    report("template decode (v1 HMAC / v2 AES-GCM)", plain_dec, sealed_dec);
    free(v1);
    free(v2);
    free(out);
}

static char *v1_template(const uint8_t *key, const float *emb, uint8_t *clear, size_t *clear_len) {
    /* Built through the public decoder's expectations: magic, version 1, dim, mode, floats, HMAC. */
    memcpy(clear, "BTPL\x01\x00", 6);
    clear[6] = DIM & 0xff, clear[7] = DIM >> 8;
    memset(clear + 8, 0, 16);
    memcpy(clear + 8, "F5_1_VID60", 10);
    memcpy(clear + 24, emb, DIM * 4);
    *clear_len = 24 + DIM * 4 + 32;
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, TEMPLATE_V1_KEY_LEN, clear, 24 + DIM * 4, clear + 24 + DIM * 4, &n);
    return base64_encode(clear, *clear_len);
}

/* put + get of one item of len bytes, per call pair. */
static double store_round(store *s, size_t len, int n) {
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 131);
    store_value v = {data, len}, out = {0}, sess = {(uint8_t *)"{}", 2};
    s->ops->session_create(s, "tenant", "session", &sess, time_now_ms() + 3600 * 1000);
    double t = now_us();
    for (int i = 0; i < n; i++) {
        s->ops->item_put(s, "tenant", "session", "face", "00000000-0000-4000-8000-000000000000", &v);
        s->ops->item_get(s, "tenant", "session", "face", "00000000-0000-4000-8000-000000000000", &out);
        store_value_free(&out);
    }
    double per = (now_us() - t) / n;
    s->ops->session_delete(s, "tenant", "session");
    free(data);
    return per;
}

/* item_list of a 1,000-face session: the store's share of one GetMatches. */
static double list_round(store *s, int faces, int n) {
    uint8_t rec[2600];
    memset(rec, 3, sizeof rec);
    store_value v = {rec, sizeof rec}, sess = {(uint8_t *)"{}", 2}, *list = NULL;
    s->ops->session_create(s, "tenant", "big", &sess, time_now_ms() + 3600 * 1000);
    for (int i = 0; i < faces; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        s->ops->item_put(s, "tenant", "big", "face", id, &v);
    }
    size_t count = 0;
    double t = now_us();
    for (int i = 0; i < n; i++) {
        s->ops->item_list(s, "tenant", "big", "face", &list, &count);
        store_values_free(list, count);
    }
    double per = (now_us() - t) / n;
    s->ops->session_delete(s, "tenant", "big");
    return per;
}

static void bench_list(data_keyring *ring) {
    static const char *const kinds[] = {"face", NULL};
    store *plain = store_memory_create(1000);
    store *sealed = store_sealed_create(store_memory_create(1000), ring, kinds);
    double p = list_round(plain, 1000, 50), s = list_round(sealed, 1000, 50);
    report("list 1,000 face records (GetMatches' read)", p, s);
    store_close(plain);
    store_close(sealed);
}

static void bench_store(data_keyring *ring) {
    static const char *const kinds[] = {"face", NULL};
    store *plain = store_memory_create(10);
    store *sealed = store_sealed_create(store_memory_create(10), ring, kinds);
    static const struct {
        const char *what;
        size_t len;
        int n;
    } items[] = {
        {"face record put+get (2.6 kB: JSON + 512 floats)", 2600, 20000},
        {"image put+get (25 kB, an LFW JPEG)", 25 * 1024, 5000},
        {"image put+get (600 kB, a 2-megapixel JPEG)", 600 * 1024, 300},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        double p = store_round(plain, items[i].len, items[i].n);
        double s = store_round(sealed, items[i].len, items[i].n);
        report(items[i].what, p, s);
    }
    store_close(plain);
    store_close(sealed);
    bench_list(ring);
    /* Seal + open alone, for the record size (no store around it). */
    uint8_t rec[2600], box[2600 + DATA_KEYRING_OVERHEAD], back[2600];
    memset(rec, 7, sizeof rec);
    const int n = 20000;
    double t = now_us();
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad |= data_keyring_seal(ring, KEY_PURPOSE_STORE, (const uint8_t *)"aad", 3, rec, sizeof rec, false, box);
        bad |= data_keyring_open(ring, KEY_PURPOSE_STORE, (const uint8_t *)"aad", 3, box, sizeof box, back, NULL);
    }
    double both = (now_us() - t) / n;
    t = now_us();
    for (int i = 0; i < n; i++) memcpy(back, rec, sizeof rec), memcpy(box, back, sizeof back);
    double copy = (now_us() - t) / n;
    if (bad) fprintf(stderr, "bench_crypto: seal/open failed\n");
    report("record seal+open alone (2.6 kB; plain = 2 copies)", copy, both);
}

int main(void) {
    char dir[] = "/tmp/bench-crypto-XXXXXX", err[256];
    data_keyring *ring = mkdtemp(dir) ? data_keyring_load_or_create(dir, err, sizeof err) : NULL;
    if (!ring) {
        fprintf(stderr, "bench_crypto: no key ring: %s\n", err);
        return 1;
    }
    float emb[DIM];
    double norm = 0;
    for (int i = 0; i < DIM; i++) norm += pow(emb[i] = cosf((float)i * 0.11f), 2);
    for (int i = 0; i < DIM; i++) emb[i] /= (float)sqrt(norm);
    printf("encryption at rest, one thread, CPU time per operation (AES-256-GCM, OpenSSL %s)\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    bench_templates(ring, emb);
    bench_store(ring);
    data_keyring_free(ring);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, DATA_KEYRING_FILE);
    unlink(path);
    rmdir(dir);
    return 0;
}
